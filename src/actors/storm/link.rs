//! The Storm node's link to the LNP node it joined (`--lnp`/`-M`, `[lnp] join`): a thread with
//! a DEALER on the LNP node's MSG bus, as `50` (stormd's id; an LNP node does not keep it).
//!
//! - It subscribes to the Storm Bifrost app (`0x0001`) and hands every Storm message from a
//!   Bifrost peer on: chat posts to the chat ([`super::chat`]), other posts to the app of the
//!   STORM bus they are for (`app_message` from the peer's node id), container messages to
//!   the transfers ([`super::transfer`]). A message that does not decode is counted and logged
//!   (rate-limited) and dropped.
//! - After each burst of messages it commits the chunks received (one durable transaction)
//!   and runs the transfers' timers; it wakes at least every [`POLL`].
//! - It sends `info` to `lnpd` every [`HEARTBEAT`]: no answer for [`DEAD_AFTER`] marks the LNP
//!   node unreachable (requests that need it fail at once, `info` says so); the first answer
//!   after that subscribes again (a restarted LNP node has forgotten us). ZMQ reconnects the
//!   socket by itself.
//! - Sends are requests to `lnpd` (`send_bifrost_app`); their final reply answers the Storm
//!   request that asked for them.

use super::chat::Chat;
use super::stormd::Apps;
use super::transfer::{Outgoing, Transfers};
use crate::actors::clock::unix_now_ms;
use crate::bus::client::{open_message, seal_message, Dial, Liveness};
use crate::bus::Bus;
use crate::lograte::STORM_REFUSED;
use crate::sync::lock;
use crate::wire::api::lnp::{AppMessage, LnpMsg};
use crate::wire::api::session::ClientSession;
use crate::wire::api::storm::{ChatEntry, StormMsg};
use crate::wire::api::{code, Envelope, Msg, MsgKind, ServiceId};
use crate::wire::bifrost::msg::APP_STORM;
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::ContainerId;
use crate::wire::storm::p2p::{Mesg, MessageId, StormP2p};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::bus::client::{DEAD_AFTER, HEARTBEAT};

/// Longest wait for the LNP node's act two (a remote MSG bus).
const HANDSHAKE: Duration = Duration::from_secs(2);

/// Longest wait for the LNP node's messages before the timers run.
pub const POLL: Duration = Duration::from_millis(50);
/// Most messages taken in one burst before the chunks are committed.
const BURST: usize = 256;
/// Transfer messages with `lnpd` at once (its peer connection's mailbox holds 16 commands):
/// the rest wait in the link, so a busy connection is not a lost chunk.
const SEND_WINDOW: usize = 8;
/// Most transfer messages waiting in the link (about 15 MiB of chunks); beyond, chunks asked
/// for are not served (the asking peer asks again after its timeout).
const MAX_QUEUED: usize = 256;

/// The Storm app id of chat inside Storm messages (storm-core `StormApp::Chat`).
pub const STORM_APP_CHAT: u16 = 0x0001;

enum LinkCmd {
    /// Send a Storm message to a peer; answer `reply` with the outcome.
    Send {
        peer: NodeId,
        payload: Vec<u8>,
        /// The chat entry to keep once sent.
        keep: Option<ChatEntry>,
        reply: (Bus, Envelope),
    },
}

/// What a request to `lnpd` was for.
enum Pending {
    /// A Storm request: its final reply answers it (a chat entry is kept on success).
    Reply(Box<(Option<ChatEntry>, Bus, Envelope)>),
    /// A transfer message (in the send window): sent again if the peer's connection was busy.
    Transfer(Queued),
}

/// A transfer message waiting for (or in) the send window.
struct Queued {
    peer: NodeId,
    payload: Vec<u8>,
    /// The download it is for (a failure makes it wait), or `None` for what we serve (the
    /// peer asks again if it is lost).
    download: Option<ContainerId>,
}

/// What the link thread works with.
pub struct LinkParts {
    /// The chat.
    pub chat: Arc<Chat>,
    /// The apps of the STORM bus.
    pub apps: Arc<Apps>,
    /// The transfers.
    pub transfers: Arc<Mutex<Transfers>>,
}

/// The link, shared by `stormd` and `info`.
pub struct Link {
    /// The LNP node's MSG endpoint, as given.
    pub endpoint: String,
    reachable: AtomicBool,
    tx: Mutex<(Sender<LinkCmd>, zmq::Socket)>,
}

impl Link {
    /// Starts the link thread to `endpoint`.
    pub fn start(endpoint: Dial, parts: LinkParts) -> Result<Arc<Link>, String> {
        let (tx, rx) = channel();
        // The doorbell: a command wakes the thread at once (it also wakes every POLL).
        let ctx = zmq::Context::new();
        let bell = |kind| {
            ctx.socket(kind)
                .map_err(|e| format!("no doorbell socket: {e}"))
        };
        let (pull, push) = (bell(zmq::PULL)?, bell(zmq::PUSH)?);
        pull.bind("inproc://storm-link")
            .and_then(|()| push.connect("inproc://storm-link"))
            .map_err(|e| format!("no doorbell: {e}"))?;
        let link = Arc::new(Link {
            endpoint: endpoint.shown(),
            reachable: AtomicBool::new(false),
            tx: Mutex::new((tx, push)),
        });
        let me = link.clone();
        std::thread::Builder::new()
            .name("storm-lnp-link".into())
            .spawn(move || run(&me, &endpoint, &parts, Doorbell { ctx, pull, rx }))
            .map_err(|e| format!("cannot start the LNP link: {e}"))?;
        Ok(link)
    }

    /// Whether the LNP node answers.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Acquire)
    }

    /// The error of a request that needs the LNP node while it is unreachable.
    pub fn unreachable(&self) -> String {
        format!("the LNP node at {} is not reachable", self.endpoint)
    }

    /// Sends a chat message to `peer`; the link answers `reply`. Fails at once if the LNP node
    /// is unreachable.
    pub fn chat(&self, peer: NodeId, text: String, reply: (Bus, Envelope)) -> Result<(), String> {
        let post = StormP2p::Post(
            STORM_APP_CHAT,
            Mesg {
                parent_id: MessageId::default(),
                body: text.clone().into_bytes(),
                container_ids: vec![],
            },
        );
        let keep = ChatEntry {
            peer,
            outgoing: true,
            time_ms: unix_now_ms(),
            text,
        };
        self.send(peer, post, Some(keep), reply)
    }

    /// Sends `msg` to `peer`; the link answers `reply` with `lnpd`'s outcome (and keeps
    /// `keep` on success). Fails at once if the LNP node is unreachable.
    pub fn send(
        &self,
        peer: NodeId,
        msg: StormP2p,
        keep: Option<ChatEntry>,
        reply: (Bus, Envelope),
    ) -> Result<(), String> {
        if !self.reachable() {
            return Err(self.unreachable());
        }
        let payload = msg.encode().map_err(|e| format!("too long: {e}"))?;
        let cmd = LinkCmd::Send {
            peer,
            payload,
            keep,
            reply,
        };
        let tx = crate::sync::lock(&self.tx);
        tx.0.send(cmd)
            .map_err(|_| "the LNP link has stopped".to_string())?;
        let _ = tx.1.send(&[][..], zmq::DONTWAIT);
        Ok(())
    }

    /// Wakes the link thread (the transfers have work for it).
    pub fn wake(&self) {
        let tx = crate::sync::lock(&self.tx);
        let _ = tx.1.send(&[][..], zmq::DONTWAIT);
    }
}

/// The thread's end of the commands.
struct Doorbell {
    /// Keeps the doorbell's context alive.
    #[allow(dead_code)]
    ctx: zmq::Context,
    pull: zmq::Socket,
    rx: Receiver<LinkCmd>,
}

/// The DEALER on the LNP node's MSG bus, as stormd.
struct Socket {
    sock: zmq::Socket,
    next_id: u64,
    /// The encrypted session of a remote target.
    session: Option<ClientSession>,
}

impl Socket {
    /// A socket to `target` (for a remote one, after the handshake).
    fn open(ctx: &zmq::Context, target: &Dial) -> Result<Socket, String> {
        let sock = ctx
            .socket(zmq::DEALER)
            .map_err(|e| format!("no socket: {e}"))?;
        let _ = sock.set_linger(0);
        if let Dial::Local(_) = target {
            // Known again at once after a reconnect. (Over TCP each connection is a new
            // session anyway, and ZMQ picks a fresh routing id for it.)
            let _ = sock.set_identity(&ServiceId::Stormd.to_bytes());
        }
        let endpoint = match target {
            Dial::Local(e) => e.zmq(),
            Dial::Remote(r, _) => r.zmq(),
        };
        sock.connect(&endpoint)
            .map_err(|e| format!("cannot connect to {endpoint}: {e}"))?;
        let session = match target {
            Dial::Local(_) => None,
            Dial::Remote(r, key) => Some(
                crate::bus::client::handshake(&sock, r, key, HANDSHAKE, None)
                    .map_err(|e| e.to_string())?,
            ),
        };
        Ok(Socket {
            sock,
            next_id: 1,
            session,
        })
    }

    /// The next message from the LNP node, if one waits (a message that does not decode or
    /// decrypt is skipped: `Some(None)`).
    fn recv(&mut self) -> Option<Option<Envelope>> {
        let message = self.sock.recv_multipart(zmq::DONTWAIT).ok()?;
        let frames = open_message(self.session.as_mut(), message).ok();
        Some(frames.and_then(|f| Envelope::decode_frames(&f).ok()))
    }

    /// Sends a request to `lnpd`; its id, or `None` if it could not be queued.
    fn send(&mut self, msg: LnpMsg) -> Option<u64> {
        let id = self.next_id;
        self.next_id += 1;
        let env = Envelope {
            src: ServiceId::Stormd,
            dst: ServiceId::Lnpd,
            request_id: id,
            msg: msg.into(),
        };
        let message = seal_message(self.session.as_mut(), env.encode_frames().ok()?).ok()?;
        self.sock.send_multipart(message, zmq::DONTWAIT).ok()?;
        Some(id)
    }

    fn send_storm(&mut self, peer: NodeId, payload: &[u8]) -> Option<u64> {
        self.send(LnpMsg::SendBifrostApp(AppMessage {
            node_id: peer,
            app: APP_STORM,
            payload: payload.to_vec(),
        }))
    }
}

/// The link thread: runs until the process ends.
fn run(link: &Link, target: &Dial, parts: &LinkParts, bell: Doorbell) {
    let ctx = zmq::Context::new();
    let endpoint = target.shown();
    // A remote target is reached by a handshake, again after each silence.
    let mut sock = loop {
        match Socket::open(&ctx, target) {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(%endpoint, "the LNP link cannot connect yet: {e}");
                std::thread::sleep(DEAD_AFTER);
            }
        }
    };
    let mut live = Liveness::new(Instant::now());
    let mut next_beat = Instant::now();
    let mut subscription: Option<u64> = None;
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    // Transfer messages wait here; at most SEND_WINDOW are with lnpd at once.
    let mut queue: VecDeque<Queued> = VecDeque::new();
    let mut sending = 0usize;
    let mut out: Vec<Outgoing> = Vec::new();
    loop {
        // Commands from stormd.
        while bell.pull.recv_bytes(zmq::DONTWAIT).is_ok() {}
        loop {
            match bell.rx.try_recv() {
                Ok(LinkCmd::Send {
                    peer,
                    payload,
                    keep,
                    reply,
                }) => match sock.send_storm(peer, &payload) {
                    Some(id) => {
                        pending.insert(id, Pending::Reply(Box::new((keep, reply.0, reply.1))));
                    }
                    None => {
                        let (bus, env) = reply;
                        bus.send(env.reply(Msg::failure(
                            code::BUSY,
                            "the link to the LNP node is full; retry",
                        )));
                    }
                },
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        let now = Instant::now();
        if now >= next_beat {
            next_beat = now + HEARTBEAT;
            let _ = sock.send(LnpMsg::ListPeers);
        }
        let alive = live.alive(now);
        if matches!(target, Dial::Remote(..)) && live.stale(now) {
            live.opened(now);
            if let Ok(s) = Socket::open(&ctx, target) {
                sock = s;
                subscription = None;
            }
        }
        if link.reachable() && !alive {
            tracing::warn!(%endpoint, "the LNP node is not reachable");
            link.reachable.store(false, Ordering::Release);
            subscription = None;
            for (_, p) in pending.drain() {
                if let Pending::Reply(r) = p {
                    let (_, bus, env) = *r;
                    bus.send(env.reply(Msg::failure(
                        code::PEER_FAILED,
                        "the LNP node stopped answering",
                    )));
                }
            }
            queue.clear();
            sending = 0;
            lock(&parts.transfers).link_down(now);
        }
        let mut items = [
            sock.sock.as_poll_item(zmq::POLLIN),
            bell.pull.as_poll_item(zmq::POLLIN),
        ];
        let _ = zmq::poll(&mut items, POLL.as_millis() as i64);
        let readable = items[0].is_readable();
        let mut t = lock(&parts.transfers);
        if readable {
            for _ in 0..BURST {
                let Some(next) = sock.recv() else {
                    break;
                };
                let Some(env) = next else {
                    continue;
                };
                live.heard(Instant::now());
                if !link.reachable() {
                    tracing::info!(%endpoint, "the LNP node is reachable");
                    link.reachable.store(true, Ordering::Release);
                }
                if subscription.is_none() {
                    subscription = sock.send(LnpMsg::SubscribeBifrostApps {
                        apps: vec![APP_STORM],
                    });
                }
                match (&env.msg, env.msg.kind()) {
                    (Msg::Lnp(LnpMsg::BifrostAppIn(m)), MsgKind::OneWay) => {
                        received(parts, &mut t, m, &mut out)
                    }
                    (msg, MsgKind::Final) => match pending.remove(&env.request_id) {
                        Some(Pending::Reply(r)) => {
                            let (keep, bus, req) = *r;
                            let answer = match msg {
                                Msg::Failure { code, message } => {
                                    Msg::failure(*code, message.clone())
                                }
                                _ => {
                                    if let Some(e) = keep {
                                        if let Err(why) = parts.chat.record(&e) {
                                            tracing::warn!("{why}");
                                        }
                                    }
                                    Msg::Success(None)
                                }
                            };
                            bus.send(req.reply(answer));
                        }
                        Some(Pending::Transfer(q)) => {
                            sending = sending.saturating_sub(1);
                            match msg {
                                // The peer's connection was busy: again, in order.
                                Msg::Failure { code: c, .. } if *c == code::BUSY => {
                                    queue.push_front(q)
                                }
                                Msg::Failure { message, .. } => match q.download {
                                    Some(c) => t.send_failed(&c, message, Instant::now()),
                                    None => tracing::debug!("a Storm message not sent: {message}"),
                                },
                                _ => {}
                            }
                        }
                        None => {}
                    },
                    _ => {}
                }
            }
            t.commit();
        }
        t.tick(Instant::now(), link.reachable(), &mut out);
        for o in out.drain(..) {
            // What we serve waits only while the queue has room: a peer that pulls faster than
            // its connection drains gets the rest when it asks again.
            if o.download.is_none() && queue.len() >= MAX_QUEUED {
                if STORM_REFUSED.allow(&o.peer.to_string()) {
                    tracing::warn!(peer = %o.peer.to_string(), "storm: {MAX_QUEUED} messages wait to be sent: a chunk pull dropped");
                }
                continue;
            }
            match o.msg.encode() {
                Ok(payload) => queue.push_back(Queued {
                    peer: o.peer,
                    payload,
                    download: o.download,
                }),
                Err(e) => tracing::warn!("a Storm message not sent: {e}"),
            }
        }
        while sending < SEND_WINDOW {
            let Some(q) = queue.pop_front() else {
                break;
            };
            match sock.send_storm(q.peer, &q.payload) {
                Some(id) => {
                    sending += 1;
                    pending.insert(id, Pending::Transfer(q));
                }
                None => match q.download {
                    Some(c) => {
                        t.send_failed(&c, "the link to the LNP node is full", Instant::now())
                    }
                    None => tracing::debug!("a Storm message not sent: the link is full"),
                },
            }
        }
    }
}

/// A Storm message from a Bifrost peer.
fn received(parts: &LinkParts, t: &mut Transfers, m: &AppMessage, out: &mut Vec<Outgoing>) {
    let from = m.node_id.to_string();
    match StormP2p::decode(&m.payload) {
        Ok(StormP2p::Post(STORM_APP_CHAT, post)) => match String::from_utf8(post.body) {
            Ok(text) => parts.chat.received(ChatEntry {
                peer: m.node_id,
                outgoing: false,
                time_ms: unix_now_ms(),
                text,
            }),
            Err(_) => {
                if STORM_REFUSED.allow(&from) {
                    tracing::warn!(peer = %from, "storm: a chat message that is not UTF-8 dropped");
                }
            }
        },
        Ok(StormP2p::Post(app, post)) => {
            let msg = StormMsg::AppMessage {
                app,
                from: from.clone(),
                payload: post.body,
            };
            if !parts.apps.deliver(app, msg) && STORM_REFUSED.allow(&from) {
                tracing::warn!(peer = %from, "storm: a message for app {app:#06x}, which is not registered, dropped");
            }
        }
        Ok(other) => t.on_message(m.node_id, other, Instant::now(), out),
        Err(e) => {
            if STORM_REFUSED.allow(&from) {
                tracing::warn!(peer = %from, "storm: a Storm message that does not decode dropped: {e}");
            }
        }
    }
}
