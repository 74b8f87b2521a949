//! The Storm node's link to the LNP node it joined (`--lnp`/`-M`, `[lnp] join`): a thread with
//! a DEALER on the LNP node's MSG bus, as `50` (stormd's id; an LNP node does not keep it).
//!
//! - It subscribes to the Storm Bifrost app (`0x0001`) and hands every Storm message from a
//!   Bifrost peer to the chat ([`super::chat`]); other Storm messages are logged for now.
//! - It sends `info` to `lnpd` every [`HEARTBEAT`]: no answer for [`DEAD_AFTER`] marks the LNP
//!   node unreachable (requests that need it fail at once, `info` says so); the first answer
//!   after that subscribes again (a restarted LNP node has forgotten us). ZMQ reconnects the
//!   socket by itself.
//! - Sends are requests to `lnpd` (`send_bifrost_app`); their final reply answers the Storm
//!   request that asked for them.

use super::chat::Chat;
use crate::actors::clock::unix_now_ms;
use crate::bus::{Bus, Endpoint};
use crate::wire::bifrost::APP_STORM;
use crate::wire::lnp_api::{AppMessage, LnpMsg};
use crate::wire::msg::{code, Envelope, Msg, MsgKind, ServiceId};
use crate::wire::storm_api::ChatEntry;
use crate::wire::storm_p2p::{Mesg, StormP2p};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the LNP node is asked whether it is there.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// Silence after which the LNP node counts as unreachable.
pub const DEAD_AFTER: Duration = Duration::from_secs(3);

/// The Storm app id of chat inside Storm messages (storm-core `StormApp::Chat`).
pub const STORM_APP_CHAT: u16 = 0x0001;

enum LinkCmd {
    /// Send a Storm message to a peer; answer `reply` with the outcome.
    Send {
        peer: [u8; 33],
        payload: Vec<u8>,
        /// The chat entry to keep once sent.
        keep: Option<ChatEntry>,
        reply: (Bus, Envelope),
    },
}

/// The link, shared by `stormd` and `info`.
pub struct Link {
    /// The LNP node's MSG endpoint, as given.
    pub endpoint: String,
    reachable: AtomicBool,
    tx: Mutex<Sender<LinkCmd>>,
}

impl Link {
    /// Starts the link thread to `endpoint`.
    pub fn start(endpoint: Endpoint, chat: Arc<Chat>) -> Result<Arc<Link>, String> {
        let (tx, rx) = channel();
        let link = Arc::new(Link {
            endpoint: endpoint.zmq(),
            reachable: AtomicBool::new(false),
            tx: Mutex::new(tx),
        });
        let me = link.clone();
        std::thread::Builder::new()
            .name("storm-lnp-link".into())
            .spawn(move || run(&me, &endpoint, &chat, rx))
            .map_err(|e| format!("cannot start the LNP link: {e}"))?;
        Ok(link)
    }

    /// Whether the LNP node answers.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Acquire)
    }

    /// Sends a chat message to `peer`; the link answers `reply`. Fails at once if the LNP node
    /// is unreachable.
    pub fn chat(&self, peer: [u8; 33], text: String, reply: (Bus, Envelope)) -> Result<(), String> {
        if !self.reachable() {
            return Err(format!(
                "the LNP node at {} is not reachable",
                self.endpoint
            ));
        }
        let post = StormP2p::Post(
            STORM_APP_CHAT,
            Mesg {
                parent_id: [0; 32],
                body: text.clone().into_bytes(),
                container_ids: vec![],
            },
        );
        let payload = post.encode().map_err(|e| format!("too long: {e}"))?;
        let keep = ChatEntry {
            peer,
            outgoing: true,
            time_ms: unix_now_ms(),
            text,
        };
        let cmd = LinkCmd::Send {
            peer,
            payload,
            keep: Some(keep),
            reply,
        };
        self.tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(cmd)
            .map_err(|_| "the LNP link has stopped".to_string())
    }
}

/// The link thread: runs until the process ends.
fn run(link: &Link, endpoint: &Endpoint, chat: &Chat, rx: Receiver<LinkCmd>) {
    let ctx = zmq::Context::new();
    let Ok(sock) = ctx.socket(zmq::DEALER) else {
        tracing::error!("the LNP link has no socket");
        return;
    };
    let me = ServiceId::Stormd;
    let _ = sock.set_linger(0);
    let _ = sock.set_identity(&me.to_bytes());
    if let Err(e) = sock.connect(&endpoint.zmq()) {
        tracing::error!(endpoint = %endpoint.zmq(), "the LNP link cannot connect: {e}");
        return;
    }
    let mut next_id = 1u64;
    let mut send = |msg: LnpMsg| -> u64 {
        let id = next_id;
        next_id += 1;
        let env = Envelope {
            src: me.clone(),
            dst: ServiceId::Lnpd,
            request_id: id,
            msg: msg.into(),
        };
        if let Ok(frames) = env.encode_frames() {
            let _ = sock.send_multipart(frames, zmq::DONTWAIT);
        }
        id
    };
    let mut last_heard: Option<Instant> = None;
    let mut next_beat = Instant::now();
    let mut subscription: Option<u64> = None;
    let mut pending: HashMap<u64, (Option<ChatEntry>, (Bus, Envelope))> = HashMap::new();
    loop {
        // Commands from stormd.
        loop {
            match rx.try_recv() {
                Ok(LinkCmd::Send {
                    peer,
                    payload,
                    keep,
                    reply,
                }) => {
                    let id = send(LnpMsg::SendBifrostApp(AppMessage {
                        node_id: peer,
                        app: APP_STORM,
                        payload,
                    }));
                    pending.insert(id, (keep, reply));
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        let now = Instant::now();
        if now >= next_beat {
            next_beat = now + HEARTBEAT;
            let _ = send(LnpMsg::ListPeers);
        }
        let alive = last_heard.is_some_and(|t| now.saturating_duration_since(t) < DEAD_AFTER);
        if link.reachable() && !alive {
            tracing::warn!(endpoint = %endpoint.zmq(), "the LNP node is not reachable");
            link.reachable.store(false, Ordering::Release);
            subscription = None;
            for (_, (_, (bus, env))) in pending.drain() {
                bus.send(env.reply(Msg::failure(
                    code::PEER_FAILED,
                    "the LNP node stopped answering",
                )));
            }
        }
        if sock.poll(zmq::POLLIN, 100).unwrap_or(0) == 0 {
            continue;
        }
        let Ok(frames) = sock.recv_multipart(0) else {
            continue;
        };
        let Ok(env) = Envelope::decode_frames(&frames) else {
            continue;
        };
        last_heard = Some(Instant::now());
        if !link.reachable() {
            tracing::info!(endpoint = %endpoint.zmq(), "the LNP node is reachable");
            link.reachable.store(true, Ordering::Release);
        }
        if subscription.is_none() {
            subscription = Some(send(LnpMsg::SubscribeBifrostApps {
                apps: vec![APP_STORM],
            }));
        }
        match (&env.msg, env.msg.kind()) {
            (Msg::Lnp(LnpMsg::BifrostAppIn(m)), MsgKind::OneWay) => received(chat, m),
            (msg, MsgKind::Final) => {
                if let Some((keep, (bus, req))) = pending.remove(&env.request_id) {
                    let answer = match msg {
                        Msg::Failure { code, message } => Msg::failure(*code, message.clone()),
                        _ => {
                            if let Some(e) = keep {
                                if let Err(why) = chat.record(&e) {
                                    tracing::warn!("{why}");
                                }
                            }
                            Msg::Success(None)
                        }
                    };
                    bus.send(req.reply(answer));
                }
            }
            _ => {}
        }
    }
}

/// A Storm message from a Bifrost peer.
fn received(chat: &Chat, m: &AppMessage) {
    match StormP2p::decode(&m.payload) {
        Ok(StormP2p::Post(STORM_APP_CHAT, post)) => match String::from_utf8(post.body) {
            Ok(text) => chat.received(ChatEntry {
                peer: m.node_id,
                outgoing: false,
                time_ms: unix_now_ms(),
                text,
            }),
            Err(_) => tracing::debug!("a chat message that is not UTF-8 dropped"),
        },
        Ok(other) => tracing::debug!(ty = other.type_id(), "a Storm message not handled yet"),
        Err(e) => tracing::debug!("a bad Storm message from a peer: {e}"),
    }
}
