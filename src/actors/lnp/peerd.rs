//! `peerd`: one actor per Lightning peer connection, the connection driver
//! ([`crate::actors::conn`]) over the Lightning protocol [`Peer`].
//!
//! - The protocol lives in [`Session`] (sans-I/O); [`Peer`] builds it, reports its events to the
//!   registry and the requests waiting on this peer, and handles `lnpd`'s commands.
//! - The driver moves bytes with back-pressure, runs the timer, and on an error flushes what
//!   the session queued (a `warning`) and closes.
//! - Supervision: every handler runs guarded. A failure (error or panic, e.g. `debug crash`)
//!   drops this connection cleanly (requests in flight answered, registry entry removed) and
//!   touches no other peer; the key state of a BOLT-8 session cannot be rebuilt, so a restart
//!   would be a new connection anyway, which the remote side or an operator's `connect` makes.

use super::peers::{Registry, Waiting};
use crate::actors::clock::unix_now;
use crate::actors::conn::{Conn, Protocol};
use crate::bus::Bus;
use crate::wire::api::lnp::{LnpMsg, PeerMessage};
use crate::wire::api::{code, Envelope, Msg};
use crate::wire::ln::bolt1::{Message, PONG_BYTES_IGNORED_FROM};
use crate::wire::ln::peer::{address_descriptor, Event, Session};
use crate::wire::node_id::NodeId;
use crate::wire::session::PeerError;
use actix::prelude::*;
use bitcoin::secp256k1::{rand, PublicKey, SecretKey};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Commands to a peer actor (from `lnpd`).
#[derive(Message)]
#[rtype(result = "()")]
pub enum PeerCmd {
    /// Ping and answer `env` with the round-trip time.
    Ping {
        /// Bus of the request.
        bus: Bus,
        /// The request.
        env: Envelope,
        /// Pong bytes asked.
        num_pong_bytes: u16,
    },
    /// Close the connection and answer `env` (if given).
    Disconnect {
        /// Who asked, to answer.
        reply: Option<(Bus, Envelope)>,
        /// Why, for the log.
        reason: String,
    },
    /// Send a Lightning message and answer `env`.
    Send {
        /// Bus of the request.
        bus: Bus,
        /// The request.
        env: Envelope,
        /// The message.
        msg: PeerMessage,
    },
    /// Send a Lightning message (from `channeld`; no reply).
    Deliver {
        /// Type.
        type_id: u16,
        /// Payload.
        payload: Vec<u8>,
    },
    /// Panic inside the handler (fault injection).
    Crash {
        /// Who asked.
        requested_by: String,
    },
}

/// The Lightning protocol of one connection, run by the connection driver ([`Conn`]).
pub struct Peer {
    /// Registry key.
    conn: u64,
    registry: Arc<Registry>,
    /// Which message types a service asked for (the session forwards them, even if even).
    wanted: Box<dyn Fn(u16) -> bool>,
    /// The peer's key when we dial it.
    remote: Option<PublicKey>,
    /// The peer's node id once known (dialled, or learnt in act three).
    node_id: Option<NodeId>,
    /// The requests waiting on this connection.
    waiting: Waiting,
    /// `init` was accepted (the channel sink was told).
    ready: bool,
}

/// One peer connection: the driver over [`Peer`].
pub type Peerd = Conn<Peer>;

impl Peer {
    /// The protocol of connection `conn` (registered in `registry` by the caller): inbound, or
    /// outbound to `remote` answering `connect_reply`.
    pub fn new(
        conn: u64,
        registry: Arc<Registry>,
        remote: Option<PublicKey>,
        connect_reply: Option<(Bus, Envelope)>,
    ) -> Peer {
        let r = registry.clone();
        Peer {
            conn,
            registry,
            wanted: Box::new(move |t| r.wants(t)),
            remote,
            node_id: remote.map(NodeId::from),
            waiting: Waiting {
                connect: connect_reply,
                ..Waiting::default()
            },
            ready: false,
        }
    }

    fn ephemeral() -> SecretKey {
        SecretKey::new(&mut rand::thread_rng())
    }
}

impl Protocol for Peer {
    type Session = Session;
    type Cmd = PeerCmd;

    fn name(&self) -> String {
        service_name(self.node_id.as_ref(), self.conn)
    }

    fn dial_timeout(&self) -> Duration {
        self.registry.config.session.act_timeout
    }

    fn dialing(&mut self, addr: &str) {
        if let Some((bus, env)) = &self.waiting.connect {
            bus.send(env.reply(Msg::Progress(format!("connecting to {addr}"))));
        }
    }

    fn connected(
        &mut self,
        peer: Option<SocketAddr>,
        outbound: bool,
    ) -> Result<Session, PeerError> {
        let config = self.registry.config.session.clone();
        let secret = self.registry.secret();
        let now = Instant::now();
        match self.remote {
            Some(remote) if outbound => {
                if let Some(a) = peer {
                    self.registry.set_addr(self.conn, a.to_string());
                }
                if let Some((bus, env)) = &self.waiting.connect {
                    bus.send(env.reply(Msg::Progress("TCP connected, BOLT-8 handshake".into())));
                }
                Ok(Session::outbound(
                    config,
                    secret,
                    remote,
                    Self::ephemeral(),
                    now,
                ))
            }
            _ => {
                let remote_addr = peer.as_ref().map(address_descriptor);
                Ok(Session::inbound(
                    config,
                    secret,
                    Self::ephemeral(),
                    remote_addr,
                    now,
                ))
            }
        }
    }

    fn context(&self) -> &(dyn Fn(u16) -> bool + 'static) {
        &*self.wanted
    }

    fn event(&mut self, _: &mut Session, ev: Event) -> Result<(), PeerError> {
        match ev {
            Event::Authenticated { remote } => {
                let id = NodeId::from(remote);
                self.node_id = Some(id);
                self.registry.authenticated(self.conn, id);
            }
            Event::Ready { init } => {
                let features = init.global_features.or(&init.features);
                tracing::info!(peer = %self.name(), features = ?features.bits(), "peer ready");
                self.registry
                    .ready(self.conn, features.0.clone(), unix_now(), true);
                if let (Some(c), Some(id)) = (self.registry.channels(), self.node_id) {
                    self.ready = true;
                    c.connected(id, features.0, self.remote.is_none());
                }
                if let Some((bus, env)) = self.waiting.connect.take() {
                    let id = self.node_id.map(|k| k.to_string()).unwrap_or_default();
                    bus.send(env.reply(Msg::Success(Some(format!("connected to {id}")))));
                }
            }
            Event::Pong { rtt, requested } => {
                let us = rtt.as_micros() as u64;
                self.registry.rtt(self.conn, us);
                if requested {
                    if let Some((bus, env)) = self.waiting.pings.pop_front() {
                        bus.send(env.reply(LnpMsg::PeerPong { rtt_us: us }.into()));
                    }
                }
            }
            Event::Forward { type_id, payload } => {
                let node_id = self.node_id.expect("forwarding needs a ready peer");
                if let Some(c) = self.registry.channels().filter(|c| c.wants(type_id)) {
                    if !c.message(node_id, type_id, payload) {
                        return Err(PeerError::close(
                            "channeld cannot take its channel messages now",
                        ));
                    }
                    return Ok(());
                }
                self.registry.forward(PeerMessage {
                    node_id,
                    type_id,
                    payload,
                });
            }
            Event::Note(text) => tracing::info!(peer = %self.name(), "{text}"),
        }
        Ok(())
    }

    fn command(&mut self, session: Option<&mut Session>, cmd: PeerCmd) -> Result<(), PeerError> {
        match cmd {
            PeerCmd::Ping {
                bus,
                env,
                num_pong_bytes,
            } => {
                let result = match session {
                    Some(s) if s.is_ready() => s.ping(num_pong_bytes, Instant::now()),
                    _ => Err(PeerError::close("the peer is not ready yet")),
                };
                match result {
                    Ok(()) => self.waiting.pings.push_back((bus, env)),
                    Err(e) => {
                        let c = if num_pong_bytes >= PONG_BYTES_IGNORED_FROM {
                            code::REFUSED
                        } else {
                            code::PEER_FAILED
                        };
                        bus.send(env.reply(Msg::failure(c, e.reason)));
                    }
                }
                Ok(())
            }
            PeerCmd::Disconnect { reply, reason } => {
                self.waiting.disconnect = reply;
                Err(PeerError::close(reason))
            }
            PeerCmd::Send { bus, env, msg } => {
                let m = Message::Unknown {
                    type_id: msg.type_id,
                    payload: msg.payload,
                };
                let reply = match session.map(|s| s.send(&m)) {
                    Some(Ok(())) => Msg::Success(None),
                    Some(Err(e)) => Msg::failure(code::PEER_FAILED, e.reason),
                    None => Msg::failure(code::PEER_FAILED, "not connected yet"),
                };
                bus.send(env.reply(reply));
                Ok(())
            }
            PeerCmd::Deliver { type_id, payload } => {
                let m = Message::Unknown { type_id, payload };
                match session {
                    Some(s) if s.is_ready() => s.send(&m),
                    _ => Err(PeerError::close("a channel message for a peer not ready")),
                }
            }
            PeerCmd::Crash { requested_by } => {
                panic!("debug crash of {} requested by {requested_by}", self.name())
            }
        }
    }

    fn closed(&mut self, e: &PeerError, failure: bool) {
        if std::mem::take(&mut self.ready) {
            if let (Some(c), Some(id)) = (self.registry.channels(), self.node_id) {
                c.disconnected(id);
            }
        }
        let name = self.name();
        self.registry
            .closed(self.conn, &name, &e.reason, failure, &mut self.waiting);
    }

    fn stopped(&mut self) {
        self.registry.remove(self.conn);
    }
}

/// The service name of a peer: `peerd-` and the first 8 bytes of its node id in hex (or the
/// connection number before the id is known).
pub fn service_name(node_id: Option<&NodeId>, conn: u64) -> String {
    match node_id {
        Some(id) => format!("peerd-{}", id.short()),
        None => format!("peerd-#{conn}"),
    }
}
