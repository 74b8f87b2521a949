//! `bifrost`: one actor per Bifrost peer connection (LNPBP-50 over Brontozaur, port 9999), the
//! connection driver ([`crate::actors::conn`]) over the protocol [`Bifrost`]. Like `peerd`, a
//! failure drops this connection only; the registry ([`super::peers`]) holds both kinds.

use super::peers::{Registry, Waiting};
use crate::actors::clock::unix_now;
use crate::actors::conn::{Conn, Protocol};
use crate::bus::Bus;
use crate::wire::api::lnp::{AppMessage, LnpMsg};
use crate::wire::api::{code, Envelope, Msg};
use crate::wire::bifrost::peer::{BifrostConfig, Event, Session};
use crate::wire::node_id::NodeId;
use crate::wire::session::PeerError;
use bitcoin::secp256k1::{rand, PublicKey, SecretKey};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Commands to a Bifrost peer (from `lnpd`).
pub enum BifrostCmd {
    /// Ping and answer `env` with the round-trip time.
    Ping {
        /// Bus of the request.
        bus: Bus,
        /// The request.
        env: Envelope,
        /// Pong bytes asked.
        pong_size: u16,
    },
    /// Close the connection and answer `reply` (if given).
    Disconnect {
        /// Who asked.
        reply: Option<(Bus, Envelope)>,
        /// Why, for the log.
        reason: String,
    },
    /// Send an app message and answer `env`.
    SendApp {
        /// Bus of the request.
        bus: Bus,
        /// The request.
        env: Envelope,
        /// The app.
        app: u16,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// Panic inside the handler (fault injection).
    Crash {
        /// Who asked.
        requested_by: String,
    },
}

/// The Bifrost protocol of one connection.
pub struct Bifrost {
    conn: u64,
    registry: Arc<Registry>,
    remote: Option<PublicKey>,
    node_id: Option<NodeId>,
    waiting: Waiting,
}

/// One Bifrost connection: the driver over [`Bifrost`].
pub type Bifrostd = Conn<Bifrost>;

/// The service name of a Bifrost connection: `bifrost-` and the first 8 bytes of the node id
/// in hex (or the connection number before it is known).
pub fn service_name(node_id: Option<&NodeId>, conn: u64) -> String {
    match node_id {
        Some(id) => format!("bifrost-{}", id.short()),
        None => format!("bifrost-#{conn}"),
    }
}

impl Bifrost {
    /// The protocol of connection `conn`: inbound, or outbound to `remote` answering
    /// `connect_reply`.
    pub fn new(
        conn: u64,
        registry: Arc<Registry>,
        remote: Option<PublicKey>,
        connect_reply: Option<(Bus, Envelope)>,
    ) -> Bifrost {
        Bifrost {
            conn,
            registry,
            node_id: remote.map(NodeId::from),
            remote,
            waiting: Waiting {
                connect: connect_reply,
                ..Waiting::default()
            },
        }
    }

    fn config(&self) -> BifrostConfig {
        let s = &self.registry.config.session;
        BifrostConfig {
            protocols: String::new(),
            act_timeout: s.act_timeout,
            ping_interval: s.ping_interval,
            pong_timeout: s.pong_timeout,
        }
    }
}

impl Protocol for Bifrost {
    type Session = Session;
    type Cmd = BifrostCmd;

    fn name(&self) -> String {
        service_name(self.node_id.as_ref(), self.conn)
    }

    fn dial_timeout(&self) -> Duration {
        self.registry.config.session.act_timeout
    }

    fn dialing(&mut self, addr: &str) {
        if let Some((bus, env)) = &self.waiting.connect {
            bus.send(env.reply(Msg::Progress(format!("connecting to {addr} (Bifrost)"))));
        }
    }

    fn connected(
        &mut self,
        peer: Option<SocketAddr>,
        outbound: bool,
    ) -> Result<Session, PeerError> {
        let ephemeral = SecretKey::new(&mut rand::thread_rng());
        let now = Instant::now();
        match self.remote {
            Some(remote) if outbound => {
                if let Some(a) = peer {
                    self.registry.set_addr(self.conn, a.to_string());
                }
                if let Some((bus, env)) = &self.waiting.connect {
                    bus.send(
                        env.reply(Msg::Progress("TCP connected, Brontozaur handshake".into())),
                    );
                }
                Ok(Session::outbound(
                    self.config(),
                    self.registry.secret(),
                    remote,
                    ephemeral,
                    now,
                ))
            }
            _ => Ok(Session::inbound(
                self.config(),
                self.registry.secret(),
                ephemeral,
                now,
            )),
        }
    }

    fn context(&self) -> &() {
        &()
    }

    fn event(&mut self, session: &mut Session, ev: Event) -> Result<(), PeerError> {
        match ev {
            Event::Authenticated { remote } => {
                let id = NodeId::from(remote);
                self.node_id = Some(id);
                self.registry.authenticated(self.conn, id);
            }
            Event::Ready {
                protocols, init, ..
            } => {
                if init {
                    tracing::info!(peer = %self.name(), %protocols, "Bifrost peer ready");
                } else {
                    tracing::info!(peer = %self.name(),
                        "Bifrost peer ready without its init: it answered our ping");
                }
                self.registry.ready(self.conn, Vec::new(), unix_now(), init);
                if let Some((bus, env)) = self.waiting.connect.take() {
                    let id = self.node_id.map(|k| k.to_string()).unwrap_or_default();
                    let text = format!("connected to {id} (Bifrost)");
                    bus.send(env.reply(Msg::Success(Some(text))));
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
            Event::App { app, payload } => {
                let node_id = self.node_id.expect("a ready peer has a node id");
                let m = AppMessage {
                    node_id,
                    app,
                    payload,
                };
                if !self.registry.forward_app(m) {
                    // Nobody takes it: the peer is told (LNPBP-50 `error`).
                    session.send_error(2, format!("no service takes Bifrost app {app:#06x}"))?;
                }
            }
            Event::PeerError { errno, message } => {
                tracing::info!(peer = %self.name(), errno, message = ?message, "the peer sent an error")
            }
            Event::Note(text) => tracing::debug!(peer = %self.name(), "{text}"),
        }
        Ok(())
    }

    fn command(&mut self, session: Option<&mut Session>, cmd: BifrostCmd) -> Result<(), PeerError> {
        match cmd {
            BifrostCmd::Ping {
                bus,
                env,
                pong_size,
            } => {
                let result = match session {
                    Some(s) if s.is_ready() => s.ping(pong_size, Instant::now()),
                    _ => Err(PeerError::close("the peer is not ready yet")),
                };
                match result {
                    Ok(()) => self.waiting.pings.push_back((bus, env)),
                    Err(e) => bus.send(env.reply(Msg::failure(code::PEER_FAILED, e.reason))),
                }
                Ok(())
            }
            BifrostCmd::SendApp {
                bus,
                env,
                app,
                payload,
            } => {
                let reply = match session.map(|s| s.send_app(app, payload)) {
                    Some(Ok(())) => Msg::Success(None),
                    Some(Err(e)) => Msg::failure(code::PEER_FAILED, e.reason),
                    None => Msg::failure(code::PEER_FAILED, "not connected yet"),
                };
                bus.send(env.reply(reply));
                Ok(())
            }
            BifrostCmd::Disconnect { reply, reason } => {
                self.waiting.disconnect = reply;
                Err(PeerError::close(reason))
            }
            BifrostCmd::Crash { requested_by } => {
                panic!("debug crash of {} requested by {requested_by}", self.name())
            }
        }
    }

    fn closed(&mut self, e: &PeerError, failure: bool) {
        let name = self.name();
        self.registry
            .closed(self.conn, &name, &e.reason, failure, &mut self.waiting);
    }

    fn stopped(&mut self) {
        self.registry.remove(self.conn);
    }
}
