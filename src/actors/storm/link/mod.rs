//! The Storm node's link to the LNP node it joined (`--lnp`/`-M`, `[lnp] join`), and the
//! thread that owns the container transfers ([`Transfers`]).
//!
//! The thread (`storm-link`) runs whether or not the node joined an LNP node: it is the only
//! owner of the transfers, so `stormd`'s transfer requests come to it as [`LinkCmd`]s (through
//! a channel and a doorbell) and it answers them on the bus; no lock is shared with the actix
//! thread, and no request waits behind a durable commit of the transfers.
//!
//! With an LNP node to join, the thread has a DEALER on its MSG bus, as `50` (stormd's id; an
//! LNP node does not keep it):
//!
//! - It subscribes to the Storm Bifrost app (`0x0001`) and hands every Storm message from a
//!   Bifrost peer on: chat posts to the chat ([`super::chat`]), other posts to the app of the
//!   STORM bus they are for (`app_message` from the peer's node id), container messages to the
//!   transfers. A message that does not decode is counted and logged (rate-limited) and
//!   dropped.
//! - After each burst of messages it commits the chunks received (one durable transaction)
//!   and runs the transfers' timers; it wakes at least every [`POLL`].
//! - It sends `info` to `lnpd` every [`HEARTBEAT`]: no answer for [`DEAD_AFTER`] marks the LNP
//!   node unreachable (requests that need it fail at once, `info` says so); the first answer
//!   after that subscribes again (a restarted LNP node has forgotten us). ZMQ reconnects the
//!   socket by itself; a remote (encrypted) session is opened on a thread of its own, so the
//!   handshake never holds up the requests the link answers.
//! - Sends are requests to `lnpd` (`send_bifrost_app`); their final reply answers the Storm
//!   request that asked for them. At most `SEND_WINDOW` (8) transfer messages are with `lnpd`
//!   at once (a Bifrost connection's mailbox holds 16 commands); the rest wait in the link, and
//!   one the connection was too busy for is sent again, so back-pressure is no lost chunk.

mod thread;

use super::apps::Apps;
use super::chat::Chat;
use super::transfer::Transfers;
use crate::actors::clock::unix_now_ms;
use crate::bus::client::Dial;
use crate::bus::{Bus, Subscriber};
use crate::sync::lock;
use crate::wire::api::storm::ChatEntry;
use crate::wire::api::{Envelope, ServiceId};
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::ContainerId;
use crate::wire::storm::p2p::StormP2p;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// A request for the link thread.
pub enum LinkCmd {
    /// Send a Storm message to a peer; answer `reply` with the outcome.
    Send {
        /// The peer.
        peer: NodeId,
        /// The Storm message, encoded.
        payload: Vec<u8>,
        /// The chat entry to keep once sent.
        keep: Option<ChatEntry>,
        /// The request to answer.
        reply: (Bus, Envelope),
    },
    /// `send_container`: share the container with the peer and announce it.
    Share {
        /// The peer.
        peer: NodeId,
        /// The container.
        container: ContainerId,
        /// The Storm app.
        app: u16,
        /// The request to answer.
        reply: (Bus, Envelope),
    },
    /// `accept_container`.
    Accept {
        /// The offer.
        container: ContainerId,
        /// The request to answer.
        reply: (Bus, Envelope),
    },
    /// `transfers`.
    List {
        /// The request to answer.
        reply: (Bus, Envelope),
    },
    /// `transfer_subscribe`.
    Subscribe {
        /// Who listens.
        sub: Subscriber,
        /// A container to say at once is stored, if it is.
        container: Option<ContainerId>,
        /// The request to answer.
        reply: (Bus, Envelope),
    },
    /// A listener is gone from its bus.
    Forget(ServiceId),
}

/// What the link thread works with.
pub struct LinkParts {
    /// The chat.
    pub chat: Arc<Chat>,
    /// The apps of the STORM bus.
    pub apps: Arc<Apps>,
    /// The transfers (the thread owns them).
    pub transfers: Transfers,
}

/// The link, shared by `stormd` and `info`.
pub struct Link {
    /// The LNP node's MSG endpoint, as given (none: the node joined no LNP node).
    endpoint: Option<String>,
    reachable: AtomicBool,
    /// The commands, and the doorbell that wakes the thread.
    tx: Mutex<(Sender<LinkCmd>, zmq::Socket)>,
}

impl Link {
    /// Starts the link thread, to `target` if the node joins an LNP node.
    pub fn start(target: Option<Dial>, parts: LinkParts) -> Result<Arc<Link>, String> {
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
            endpoint: target.as_ref().map(Dial::shown),
            reachable: AtomicBool::new(false),
            tx: Mutex::new((tx, push)),
        });
        thread::start(link.clone(), target, parts, ctx, pull, rx)?;
        Ok(link)
    }

    /// The LNP node's MSG endpoint, if the node joined one.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// Whether the node joined an LNP node.
    pub fn joined(&self) -> bool {
        self.endpoint.is_some()
    }

    /// Whether the LNP node answers.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Acquire)
    }

    /// The error of a request that needs the LNP node while it is unreachable.
    pub fn unreachable(&self) -> String {
        format!(
            "the LNP node at {} is not reachable",
            self.endpoint.as_deref().unwrap_or("(none)")
        )
    }

    /// Sends a chat message to `peer`; the link answers `reply`. Fails at once if the LNP node
    /// is unreachable.
    pub fn chat(&self, peer: NodeId, text: String, reply: (Bus, Envelope)) -> Result<(), String> {
        let post = StormP2p::post(STORM_APP_CHAT, text.clone().into_bytes());
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
        self.command(LinkCmd::Send {
            peer,
            payload,
            keep,
            reply,
        })
    }

    /// Hands `cmd` to the link thread, which answers it.
    pub fn command(&self, cmd: LinkCmd) -> Result<(), String> {
        let tx = lock(&self.tx);
        tx.0.send(cmd)
            .map_err(|_| "the LNP link has stopped".to_string())?;
        let _ = tx.1.send(&[][..], zmq::DONTWAIT);
        Ok(())
    }
}
