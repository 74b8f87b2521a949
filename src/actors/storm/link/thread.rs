//! The link thread: one method per event (a command from `stormd`, the LNP node's messages,
//! the heartbeat, the timers), over the state it alone owns (the socket, the requests with
//! `lnpd`, the send window, the transfers and their listeners).

use super::{Link, LinkCmd, LinkParts, DEAD_AFTER, HEARTBEAT};
use super::{BURST, HANDSHAKE, MAX_QUEUED, POLL, SEND_WINDOW, STORM_APP_CHAT};
use crate::actors::clock::unix_now_ms;
use crate::actors::limits::MAX_LISTENERS;
use crate::actors::storm::apps::Apps;
use crate::actors::storm::chat::Chat;
use crate::actors::storm::transfer::{refuse, Effects, Transfers};
use crate::bus::client::{open_message, seal_message, Dial, Liveness};
use crate::bus::{Bus, Subscribers};
use crate::wire::api::lnp::{AppMessage, LnpMsg};
use crate::wire::api::session::ClientSession;
use crate::wire::api::storm::{ChatEntry, StormMsg};
use crate::wire::api::{code, Envelope, Msg, MsgKind, ServiceId};
use crate::wire::bifrost::msg::APP_STORM;
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::ContainerId;
use crate::wire::storm::p2p::StormP2p;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Instant;

/// Starts the link thread (`storm-link`) over `parts`, woken by `pull` and fed by `rx`.
pub(super) fn start(
    link: Arc<Link>,
    target: Option<Dial>,
    parts: LinkParts,
    ctx: zmq::Context,
    pull: zmq::Socket,
    rx: Receiver<LinkCmd>,
) -> Result<(), String> {
    let now = Instant::now();
    let thread = LinkThread {
        link,
        target,
        zmq: zmq::Context::new(),
        bell: Doorbell { ctx, pull, rx },
        sock: None,
        opening: None,
        next_open: now,
        live: Liveness::new(now),
        next_beat: now,
        subscription: None,
        pending: HashMap::new(),
        queue: VecDeque::new(),
        sending: 0,
        transfers: parts.transfers,
        listeners: Subscribers::new("transfer listeners", MAX_LISTENERS),
        chat: parts.chat,
        apps: parts.apps,
    };
    std::thread::Builder::new()
        .name("storm-link".into())
        .spawn(move || thread.run())
        .map(|_| ())
        .map_err(|e| format!("cannot start the LNP link: {e}"))
}

/// The thread's end of the commands.
struct Doorbell {
    /// Keeps the doorbell's context alive.
    #[allow(dead_code)]
    ctx: zmq::Context,
    pull: zmq::Socket,
    rx: Receiver<LinkCmd>,
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

/// The DEALER on the LNP node's MSG bus, as stormd.
struct Socket {
    sock: zmq::Socket,
    next_id: u64,
    /// The encrypted session of a remote target.
    session: Option<ClientSession>,
}

impl Socket {
    /// A socket to `target` (for a remote one, after the handshake: this blocks up to
    /// [`HANDSHAKE`], so it runs on a thread of its own).
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

/// The link thread's state; one method per event.
struct LinkThread {
    link: Arc<Link>,
    /// The LNP node to join, if any.
    target: Option<Dial>,
    zmq: zmq::Context,
    bell: Doorbell,
    /// The socket to the LNP node, once open.
    sock: Option<Socket>,
    /// A socket being opened on a thread of its own.
    opening: Option<Receiver<Result<Socket, String>>>,
    /// When the next opening may start.
    next_open: Instant,
    live: Liveness,
    next_beat: Instant,
    /// The request id of our `subscribe_bifrost_apps` (none: to send).
    subscription: Option<u64>,
    /// Our requests to `lnpd` by request id.
    pending: HashMap<u64, Pending>,
    /// Transfer messages waiting for the send window.
    queue: VecDeque<Queued>,
    /// Transfer messages with `lnpd`.
    sending: usize,
    transfers: Transfers,
    /// The `transfer_subscribe` listeners.
    listeners: Subscribers,
    chat: Arc<Chat>,
    apps: Arc<Apps>,
}

impl LinkThread {
    /// Runs until the node's process ends (the command channel closes).
    fn run(mut self) {
        loop {
            if !self.commands() {
                return;
            }
            let now = Instant::now();
            self.connection(now);
            self.heartbeat(now);
            if self.readable() {
                self.burst();
            }
            let reachable = self.link.reachable();
            self.transfers(|t, fx| t.tick(Instant::now(), reachable, fx));
            self.send_window();
        }
    }

    /// Takes every command waiting; false once `stormd`'s side is gone.
    fn commands(&mut self) -> bool {
        while self.bell.pull.recv_bytes(zmq::DONTWAIT).is_ok() {}
        loop {
            match self.bell.rx.try_recv() {
                Ok(cmd) => self.on_command(cmd),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn on_command(&mut self, cmd: LinkCmd) {
        let now = Instant::now();
        match cmd {
            LinkCmd::Send {
                peer,
                payload,
                keep,
                reply,
            } => self.request(peer, &payload, keep, reply),
            LinkCmd::Share {
                peer,
                container,
                app,
                reply,
            } => match self.transfers.share(peer, container, app) {
                Err(e) => reply.0.send(reply.1.reply(e.into())),
                Ok(announce) => match announce.encode() {
                    Ok(payload) => self.request(peer, &payload, None, reply),
                    Err(e) => reply.0.send(
                        reply
                            .1
                            .reply(Msg::failure(code::INVALID_DATA, e.to_string())),
                    ),
                },
            },
            LinkCmd::Accept { container, reply } => {
                // The reply goes before the download's first progress notification.
                let mut fx = Effects::default();
                let answer = match self.transfers.accept(container, now, &mut fx) {
                    Ok(text) => Msg::Success(Some(text)),
                    Err(e) => e.into(),
                };
                reply.0.send(reply.1.reply(answer));
                self.effects(fx);
            }
            LinkCmd::List { reply } => {
                let list = StormMsg::TransferList(self.transfers.list());
                reply.0.send(reply.1.reply(list.into()));
            }
            LinkCmd::Subscribe {
                sub,
                container,
                reply,
            } => match self.listeners.add(sub.clone(), ()) {
                Err(e) => reply.0.send(reply.1.reply(Msg::failure(code::BUSY, e))),
                Ok(()) => {
                    // The reply first: the client takes what follows as notifications.
                    let ok = Msg::Success(Some("listening for transfers".into()));
                    reply.0.send(reply.1.reply(ok));
                    for t in self.transfers.list() {
                        sub.notify(&ServiceId::Stormd, StormMsg::TransferProgress(t).into());
                    }
                    if let Some(info) = container.and_then(|c| self.transfers.already_received(&c))
                    {
                        sub.notify(&ServiceId::Stormd, StormMsg::ContainerReceived(info).into());
                    }
                }
            },
            LinkCmd::Forget(id) => {
                self.listeners.remove(&id);
            }
        }
    }

    /// Sends a Storm request's message through `lnpd`, whose final reply answers `reply`.
    fn request(
        &mut self,
        peer: NodeId,
        payload: &[u8],
        keep: Option<ChatEntry>,
        reply: (Bus, Envelope),
    ) {
        match self.sock.as_mut().and_then(|s| s.send_storm(peer, payload)) {
            Some(id) => {
                let (bus, env) = reply;
                self.pending
                    .insert(id, Pending::Reply(Box::new((keep, bus, env))));
            }
            None => {
                let (bus, env) = reply;
                bus.send(env.reply(Msg::failure(
                    code::BUSY,
                    "the link to the LNP node is full; retry",
                )));
            }
        }
    }

    /// Opens the socket (on a thread of its own), again after a remote session went silent.
    fn connection(&mut self, now: Instant) {
        let Some(target) = &self.target else {
            return;
        };
        if let Some(rx) = &self.opening {
            match rx.try_recv() {
                Ok(Ok(s)) => {
                    self.sock = Some(s);
                    self.live.opened(now);
                    self.subscription = None;
                    self.opening = None;
                }
                Ok(Err(e)) => {
                    tracing::warn!(endpoint = %target.shown(), "the LNP link cannot connect yet: {e}");
                    self.opening = None;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => self.opening = None,
            }
        }
        let stale = matches!(target, Dial::Remote(..)) && self.live.stale(now);
        if (self.sock.is_none() || stale) && self.opening.is_none() && now >= self.next_open {
            self.next_open = now + DEAD_AFTER;
            self.live.opened(now);
            let (tx, rx) = channel();
            let (ctx, target) = (self.zmq.clone(), target.clone());
            let spawned = std::thread::Builder::new()
                .name("storm-link-open".into())
                .spawn(move || {
                    let _ = tx.send(Socket::open(&ctx, &target));
                });
            if spawned.is_ok() {
                self.opening = Some(rx);
            }
        }
        if self.link.reachable() && !self.live.alive(now) {
            self.lost(now);
        }
    }

    /// Asks `lnpd` whether it is there, every [`HEARTBEAT`].
    fn heartbeat(&mut self, now: Instant) {
        if now < self.next_beat {
            return;
        }
        if let Some(s) = self.sock.as_mut() {
            self.next_beat = now + HEARTBEAT;
            let _ = s.send(LnpMsg::ListPeers);
        }
    }

    /// The LNP node stopped answering: what waits on it fails, every download waits.
    fn lost(&mut self, now: Instant) {
        let endpoint = self.link.endpoint().unwrap_or_default().to_string();
        tracing::warn!(%endpoint, "the LNP node is not reachable");
        self.link.reachable.store(false, Ordering::Release);
        self.subscription = None;
        for (_, p) in self.pending.drain() {
            if let Pending::Reply(r) = p {
                let (_, bus, env) = *r;
                bus.send(env.reply(Msg::failure(
                    code::PEER_FAILED,
                    "the LNP node stopped answering",
                )));
            }
        }
        self.queue.clear();
        self.sending = 0;
        self.transfers(|t, fx| t.link_down(now, fx));
    }

    /// Waits up to [`POLL`] for the LNP node or a command; whether the LNP node sent something.
    fn readable(&self) -> bool {
        let timeout = POLL.as_millis() as i64;
        match &self.sock {
            Some(s) => {
                let mut items = [
                    s.sock.as_poll_item(zmq::POLLIN),
                    self.bell.pull.as_poll_item(zmq::POLLIN),
                ];
                let _ = zmq::poll(&mut items, timeout);
                items[0].is_readable()
            }
            None => {
                let mut items = [self.bell.pull.as_poll_item(zmq::POLLIN)];
                let _ = zmq::poll(&mut items, timeout);
                false
            }
        }
    }

    /// Up to [`BURST`] messages from the LNP node, then one commit of the chunks received.
    fn burst(&mut self) {
        for _ in 0..BURST {
            let Some(next) = self.sock.as_mut().and_then(Socket::recv) else {
                break;
            };
            if let Some(env) = next {
                self.on_envelope(env);
            }
        }
        self.transfers(|t, fx| t.commit(Instant::now(), fx));
    }

    fn on_envelope(&mut self, env: Envelope) {
        self.live.heard(Instant::now());
        if !self.link.reachable() {
            let endpoint = self.link.endpoint().unwrap_or_default().to_string();
            tracing::info!(%endpoint, "the LNP node is reachable");
            self.link.reachable.store(true, Ordering::Release);
        }
        if self.subscription.is_none() {
            let apps = vec![APP_STORM];
            self.subscription = self
                .sock
                .as_mut()
                .and_then(|s| s.send(LnpMsg::SubscribeBifrostApps { apps }));
        }
        match (env.msg, env.request_id) {
            (Msg::Lnp(LnpMsg::BifrostAppIn(m)), _) => self.on_storm(m),
            (msg, id) if msg.kind() == MsgKind::Final => self.on_final(id, msg),
            _ => {}
        }
    }

    /// The final reply to one of our requests to `lnpd`.
    fn on_final(&mut self, request_id: u64, msg: Msg) {
        match self.pending.remove(&request_id) {
            Some(Pending::Reply(r)) => {
                let (keep, bus, req) = *r;
                let answer = match msg {
                    Msg::Failure { code, message } => Msg::failure(code, message),
                    _ => {
                        if let Some(e) = keep {
                            if let Err(why) = self.chat.record(&e) {
                                tracing::warn!("{why}");
                            }
                        }
                        Msg::Success(None)
                    }
                };
                bus.send(req.reply(answer));
            }
            Some(Pending::Transfer(q)) => {
                self.sending = self.sending.saturating_sub(1);
                match msg {
                    // The peer's connection was busy: again, in order.
                    Msg::Failure { code: c, .. } if c == code::BUSY => self.queue.push_front(q),
                    Msg::Failure { message, .. } => match q.download {
                        Some(c) => {
                            self.transfers(|t, fx| t.send_failed(&c, &message, Instant::now(), fx))
                        }
                        None => tracing::debug!("a Storm message not sent: {message}"),
                    },
                    _ => {}
                }
            }
            None => {}
        }
    }

    /// A Storm message from a Bifrost peer.
    fn on_storm(&mut self, m: AppMessage) {
        let from = m.node_id;
        let refused = |why: &str| refuse(&from, why);
        match StormP2p::decode(&m.payload) {
            Ok(StormP2p::Post(STORM_APP_CHAT, post)) => match String::from_utf8(post.body) {
                Ok(text) => self.chat.received(ChatEntry {
                    peer: from,
                    outgoing: false,
                    time_ms: unix_now_ms(),
                    text,
                }),
                Err(_) => refused("a chat message that is not UTF-8 dropped"),
            },
            Ok(StormP2p::Post(app, post)) => {
                let msg = StormMsg::AppMessage {
                    app,
                    from: from.to_string(),
                    payload: post.body,
                };
                if !self.apps.deliver(app, msg) {
                    refused(&format!(
                        "a message for app {app:#06x}, which is not registered, dropped"
                    ));
                }
            }
            Ok(other) => self.transfers(|t, fx| t.on_message(from, other, Instant::now(), fx)),
            Err(e) => refused(&format!(
                "a Storm message that does not decode dropped: {e}"
            )),
        }
    }

    /// Runs `f` on the transfers, then sends what it returned.
    fn transfers<T>(&mut self, f: impl FnOnce(&mut Transfers, &mut Effects) -> T) -> T {
        let mut fx = Effects::default();
        let out = f(&mut self.transfers, &mut fx);
        self.effects(fx);
        out
    }

    /// Sends what the transfers returned.
    fn effects(&mut self, fx: Effects) {
        for m in fx.notify {
            self.listeners.notify(&ServiceId::Stormd, m);
        }
        for (app, m) in fx.deliver {
            self.apps.deliver(app, m);
        }
        for o in fx.send {
            // What we serve waits only while the queue has room: a peer that pulls faster than
            // its connection drains gets the rest when it asks again.
            if o.download.is_none() && self.queue.len() >= MAX_QUEUED {
                let why = format!("{MAX_QUEUED} messages wait to be sent: a chunk pull dropped");
                refuse(&o.peer, &why);
                continue;
            }
            match o.msg.encode() {
                Ok(payload) => self.queue.push_back(Queued {
                    peer: o.peer,
                    payload,
                    download: o.download,
                }),
                Err(e) => tracing::warn!("a Storm message not sent: {e}"),
            }
        }
    }

    /// Hands waiting transfer messages to `lnpd`, at most [`SEND_WINDOW`] at once.
    fn send_window(&mut self) {
        let Some(sock) = self.sock.as_mut() else {
            return;
        };
        let mut failed = Vec::new();
        while self.sending < SEND_WINDOW {
            let Some(q) = self.queue.pop_front() else {
                break;
            };
            match sock.send_storm(q.peer, &q.payload) {
                Some(id) => {
                    self.sending += 1;
                    self.pending.insert(id, Pending::Transfer(q));
                }
                None => match q.download {
                    Some(c) => failed.push(c),
                    None => tracing::debug!("a Storm message not sent: the link is full"),
                },
            }
        }
        if !failed.is_empty() {
            self.transfers(|t, fx| {
                for c in &failed {
                    t.send_failed(c, "the link to the LNP node is full", Instant::now(), fx);
                }
            });
        }
    }
}
