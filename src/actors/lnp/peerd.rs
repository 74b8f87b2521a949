//! `peerd`: one actor per Lightning peer connection, behind a thin bridge to its TCP socket.
//!
//! - The bridge ([`TcpBridge`]) moves bytes between the socket and this actor, with
//!   back-pressure: at 1 MiB of unwritten output the session is not fed and the socket not read.
//! - The protocol lives in [`Session`] (sans-I/O); the actor moves bytes, runs the timer and
//!   enforces the [`PeerError`]'s action: flush what the session queued (a `warning`), close.
//! - Supervision: every handler runs guarded. A failure (error or panic, e.g. `debug crash`)
//!   drops this connection cleanly (requests in flight answered, registry entry removed) and
//!   touches no other peer; the key state of a BOLT-8 session cannot be rebuilt, so a restart
//!   would be a new connection anyway, which the remote side or an operator's `connect` makes.

use super::peers::{unix_now, Registry};
use crate::actors::tcp::{Counters, Inbound, Resume, SocketEnded, TcpBridge};
use crate::bus::Bus;
use crate::guard::guard;
use crate::wire::bolt1::{Message, PONG_BYTES_IGNORED_FROM};
use crate::wire::lnp_api::{Direction, PeerMessage};
use crate::wire::lnp_peer::{address_descriptor, Event, PeerError, Session};
use crate::wire::msg::{code, Envelope, Msg};
use actix::prelude::*;
use bitcoin::hex::DisplayHex;
use bitcoin::secp256k1::{rand, PublicKey, SecretKey};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Mailbox of a peer actor: the reader awaits room, so this bounds unprocessed input to
/// 16 x 64 KiB per peer.
const MAILBOX: usize = 16;

/// How often the session's timers run (act deadlines, pings): a deadline fires at most this
/// late.
const TICK: Duration = Duration::from_millis(100);

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
    /// Panic inside the handler (fault injection).
    Crash {
        /// Who asked.
        requested_by: String,
    },
}

/// Where a connection comes from.
pub enum Origin {
    /// Accepted by a listener.
    Inbound(TcpStream, SocketAddr),
    /// To dial: the peer's key, its address, and the `connect` request to answer.
    Outbound {
        /// The peer's node id.
        remote: PublicKey,
        /// `host:port`.
        addr: String,
        /// The request (boxed: an envelope is large next to a socket).
        reply: Box<(Bus, Envelope)>,
    },
}

/// One peer connection.
pub struct Peerd {
    /// Registry key.
    conn: u64,
    registry: Arc<Registry>,
    /// Set once the TCP connection exists.
    session: Option<Session>,
    /// Bytes read and not yet consumed by the session.
    buf: Vec<u8>,
    /// The socket bridge.
    tcp: TcpBridge,
    /// The peer's node id once known (dialled, or learnt in act three).
    node_id: Option<[u8; 33]>,
    /// The `connect` request to answer when the peer is ready (or fails).
    connect_reply: Option<(Bus, Envelope)>,
    /// `ping` requests waiting for their pong, in order.
    ping_replies: VecDeque<(Bus, Envelope)>,
    /// Set by the first close; later events are ignored.
    closed: bool,
    origin: Option<Origin>,
}

impl Peerd {
    /// A peer actor (registered in `registry` under `conn` by the caller).
    pub fn new(conn: u64, registry: Arc<Registry>, origin: Origin) -> Peerd {
        let node_id = match &origin {
            Origin::Outbound { remote, .. } => Some(remote.serialize()),
            Origin::Inbound(..) => None,
        };
        Peerd {
            conn,
            registry,
            session: None,
            buf: Vec::new(),
            tcp: TcpBridge::new(),
            node_id,
            connect_reply: None,
            ping_replies: VecDeque::new(),
            closed: false,
            origin: Some(origin),
        }
    }

    /// The connection's byte counters.
    pub fn counters(&self) -> Arc<Counters> {
        self.tcp.counters()
    }

    fn ephemeral() -> SecretKey {
        SecretKey::new(&mut rand::thread_rng())
    }

    /// Starts the bridge on a connected socket.
    fn attach(&mut self, stream: TcpStream, ctx: &mut Context<Self>) {
        self.tcp.attach(stream, ctx.address());
    }

    /// Hands what the session produced to the writer.
    fn flush(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        self.tcp.write(session.take_output());
    }

    fn name(&self) -> String {
        service_name(self.node_id.as_ref(), self.conn)
    }

    /// Ends the connection: flushes a queued warning, answers what waits, leaves the registry.
    fn close(&mut self, reason: &str, failure: bool, ctx: &mut Context<Self>) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.flush();
        let name = self.name();
        if failure {
            tracing::warn!(peer = %name, "connection dropped: {reason}");
        } else {
            tracing::info!(peer = %name, "connection closed: {reason}");
        }
        if let Some((bus, env)) = self.connect_reply.take() {
            bus.send(env.reply(Msg::failure(code::PEER_FAILED, reason)));
        }
        for (bus, env) in self.ping_replies.drain(..) {
            let why = format!("connection closed before the pong: {reason}");
            bus.send(env.reply(Msg::failure(code::PEER_FAILED, why)));
        }
        self.registry.remove(self.conn);
        // The writer drains what is queued, then shuts the socket; the reader stops now.
        self.tcp.close();
        ctx.stop();
    }

    /// Runs `f` guarded: an error or a panic closes this connection only.
    fn guarded(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut Self, &mut Context<Self>) -> Result<(), PeerError>,
    ) {
        if self.closed {
            return;
        }
        let result = guard(|| Ok(f(self, ctx)));
        match result {
            Ok(Ok(())) => self.flush(),
            Ok(Err(e)) => self.close(&e.reason, false, ctx),
            Err(panic) => {
                let reason = format!("{} failed: {panic}", self.name());
                self.close(&reason, true, ctx);
            }
        }
    }

    fn on_events(&mut self, events: Vec<Event>) -> Result<(), PeerError> {
        for ev in events {
            match ev {
                Event::Authenticated { remote } => {
                    let id = remote.serialize();
                    self.node_id = Some(id);
                    self.registry.authenticated(self.conn, id);
                }
                Event::Ready { init } => {
                    let features = init.global_features.or(&init.features);
                    tracing::info!(peer = %self.name(), features = ?features.bits(), "peer ready");
                    self.registry.ready(self.conn, features.0, unix_now());
                    if let Some((bus, env)) = self.connect_reply.take() {
                        let id = self
                            .node_id
                            .map(|k| k.to_lower_hex_string())
                            .unwrap_or_default();
                        bus.send(env.reply(Msg::Success(Some(format!("connected to {id}")))));
                    }
                }
                Event::Pong { rtt, requested } => {
                    let us = rtt.as_micros() as u64;
                    self.registry.rtt(self.conn, us);
                    if requested {
                        if let Some((bus, env)) = self.ping_replies.pop_front() {
                            bus.send(env.reply(Msg::PeerPong { rtt_us: us }));
                        }
                    }
                }
                Event::Forward { type_id, payload } => {
                    let node_id = self.node_id.expect("forwarding needs a ready peer");
                    self.registry.forward(PeerMessage {
                        node_id,
                        type_id,
                        payload,
                    });
                }
                Event::Note(text) => tracing::info!(peer = %self.name(), "{text}"),
            }
        }
        Ok(())
    }
}

/// The service name of a peer: `peerd-` and the first 8 bytes of its node id in hex (or the
/// connection number before the id is known).
pub fn service_name(node_id: Option<&[u8; 33]>, conn: u64) -> String {
    match node_id {
        Some(id) => format!("peerd-{}", id[..8].to_lower_hex_string()),
        None => format!("peerd-#{conn}"),
    }
}

impl Actor for Peerd {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        let config = self.registry.config.session.clone();
        let secret = self.registry.secret();
        match self.origin.take() {
            Some(Origin::Inbound(stream, addr)) => {
                let remote_addr = Some(address_descriptor(&addr));
                let now = Instant::now();
                let s = Session::inbound(config, secret, Self::ephemeral(), remote_addr, now);
                self.session = Some(s);
                self.attach(stream, ctx);
            }
            Some(Origin::Outbound {
                remote,
                addr,
                reply,
            }) => {
                reply.0.send(
                    reply
                        .1
                        .reply(Msg::Progress(format!("connecting to {addr}"))),
                );
                self.connect_reply = Some(*reply);
                let timeout = config.act_timeout;
                let dial = crate::actors::tcp::dial(addr, timeout);
                ctx.spawn(dial.into_actor(self).map(move |result, me, ctx| {
                    me.guarded(ctx, |me, ctx| {
                        let stream = result.map_err(|reason| PeerError {
                            reason,
                            warned: false,
                        })?;
                        if let Ok(a) = stream.peer_addr() {
                            me.registry.set_addr(me.conn, a.to_string());
                        }
                        if let Some((bus, env)) = &me.connect_reply {
                            bus.send(
                                env.reply(Msg::Progress("TCP connected, BOLT-8 handshake".into())),
                            );
                        }
                        let now = Instant::now();
                        let s = Session::outbound(config, secret, remote, Self::ephemeral(), now);
                        me.session = Some(s);
                        me.attach(stream, ctx);
                        Ok(())
                    })
                }));
            }
            None => {}
        }
        ctx.run_interval(TICK, |me, ctx| {
            me.guarded(ctx, |me, _| match me.session.as_mut() {
                Some(s) => s.tick(Instant::now()),
                None => Ok(()),
            })
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        // Stopped by the system (node shutdown) rather than by `close`.
        if !self.closed {
            self.registry.remove(self.conn);
            self.tcp.abort();
        }
    }
}

impl Handler<Inbound> for Peerd {
    type Result = ();

    fn handle(&mut self, msg: Inbound, ctx: &mut Context<Self>) {
        self.buf.extend_from_slice(&msg.0);
        self.guarded(ctx, |me, _| me.process());
    }
}

impl Handler<Resume> for Peerd {
    type Result = ();

    fn handle(&mut self, _: Resume, ctx: &mut Context<Self>) {
        self.guarded(ctx, |me, _| me.process());
    }
}

impl Peerd {
    /// Feeds buffered input to the session while the output has room.
    fn process(&mut self) -> Result<(), PeerError> {
        loop {
            let queued = self.tcp.queued();
            let Some(session) = self.session.as_mut() else {
                return Ok(());
            };
            if self.buf.is_empty() || self.tcp.is_stalled() {
                return Ok(());
            }
            let room = self.tcp.room();
            let mut events = Vec::new();
            let registry = self.registry.clone();
            let result = session.receive_bounded(
                &mut self.buf,
                Instant::now(),
                &|t| registry.wants(t),
                &mut events,
                room,
            );
            let pending = session.pending_output();
            let mut again = false;
            if result.is_ok() && !self.buf.is_empty() {
                // The writer resumes us once it has drained half of the queue.
                again = self.tcp.stall(queued, pending);
                if self.tcp.is_stalled() {
                    tracing::debug!(peer = %self.name(), "peer does not read: pausing its input");
                }
            }
            // Events before an error still count (e.g. a pong, then a bad MAC).
            self.on_events(events)?;
            result?;
            if !again {
                return Ok(());
            }
        }
    }
}

impl Handler<SocketEnded> for Peerd {
    type Result = ();

    fn handle(&mut self, msg: SocketEnded, ctx: &mut Context<Self>) {
        self.close(&msg.0, false, ctx);
    }
}

impl Handler<PeerCmd> for Peerd {
    type Result = ();

    fn handle(&mut self, cmd: PeerCmd, ctx: &mut Context<Self>) {
        match cmd {
            PeerCmd::Ping {
                bus,
                env,
                num_pong_bytes,
            } => self.guarded(ctx, |me, _| {
                let result = match me.session.as_mut() {
                    Some(s) if s.is_ready() => s.ping(num_pong_bytes, Instant::now()),
                    _ => Err(PeerError {
                        reason: "the peer is not ready yet".into(),
                        warned: false,
                    }),
                };
                match result {
                    Ok(()) => me.ping_replies.push_back((bus, env)),
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
            }),
            PeerCmd::Disconnect { reply, reason } => {
                let id = self.name();
                self.close(&reason, false, ctx);
                if let Some((bus, env)) = reply {
                    bus.send(env.reply(Msg::Success(Some(format!("disconnected {id}")))));
                }
            }
            PeerCmd::Send { bus, env, msg } => self.guarded(ctx, |me, _| {
                let m = Message::Unknown {
                    type_id: msg.type_id,
                    payload: msg.payload,
                };
                let reply = match me.session.as_mut().map(|s| s.send(&m)) {
                    Some(Ok(())) => Msg::Success(None),
                    Some(Err(e)) => Msg::failure(code::PEER_FAILED, e.reason),
                    None => Msg::failure(code::PEER_FAILED, "not connected yet"),
                };
                bus.send(env.reply(reply));
                Ok(())
            }),
            PeerCmd::Crash { requested_by } => self.guarded(ctx, |me, _| {
                panic!("debug crash of {} requested by {requested_by}", me.name())
            }),
        }
    }
}

/// Direction of an origin.
pub fn direction(origin: &Origin) -> Direction {
    match origin {
        Origin::Inbound(..) => Direction::Inbound,
        Origin::Outbound { .. } => Direction::Outbound,
    }
}
