//! `peerd`: one actor per Lightning peer connection, behind a thin bridge to its TCP socket.
//!
//! - The bridge is two tasks: a reader that hands each chunk read to the actor (awaiting its
//!   bounded mailbox), and a writer that writes each batch the session produced in one call.
//! - Back-pressure: once [`MAX_QUEUED_OUT`] bytes wait to be written, the actor stops feeding
//!   the session (input stays buffered) and the reader stops reading, until the writer has
//!   drained half of it. A peer that does not read ours is not read either; what it sent
//!   meanwhile stays in its socket.
//! - The protocol lives in [`Session`] (sans-I/O); the actor moves bytes, runs the timer and
//!   enforces the [`PeerError`]'s action: flush what the session queued (a `warning`), close.
//! - Supervision: every handler runs guarded. A failure (error or panic, e.g. `debug crash`)
//!   drops this connection cleanly (requests in flight answered, registry entry removed) and
//!   touches no other peer; the key state of a BOLT-8 session cannot be rebuilt, so a restart
//!   would be a new connection anyway, which the remote side or an operator's `connect` makes.

use super::peers::{unix_now, Registry};
use crate::bus::Bus;
use crate::guard::guard;
use crate::wire::bolt1::{Message, PONG_BYTES_IGNORED_FROM};
use crate::wire::lnp_api::{Direction, PeerMessage};
use crate::wire::lnp_peer::{address_descriptor, Event, PeerError, Session};
use crate::wire::msg::{code, Envelope, Msg};
use actix::prelude::*;
use bitcoin::secp256k1::{rand, PublicKey, SecretKey};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};

/// Bytes waiting to be written to one peer before we stop reading from it: 1 MiB (QUALITY.md
/// row 7). A peer flooding pings without reading our pongs stalls at this figure.
pub const MAX_QUEUED_OUT: usize = 1 << 20;

/// Bytes read per socket read: one maximal BOLT-8 packet (65,535 + 34) fits.
const READ_CHUNK: usize = 64 * 1024;

/// Mailbox of a peer actor: the reader awaits room, so this bounds unprocessed input to
/// 16 x 64 KiB per peer.
const MAILBOX: usize = 16;

/// How often the session's timers run (act deadlines, pings): a deadline fires at most this
/// late.
const TICK: Duration = Duration::from_millis(100);

/// After a close, queued bytes (a `warning`) get this long to reach a peer before the socket
/// is dropped regardless.
const FLUSH_GRACE: Duration = Duration::from_secs(1);

/// Byte counters of one connection, shared with its bridge tasks and the registry.
#[derive(Default, Debug)]
pub struct Counters {
    /// Bytes read from the socket.
    pub bytes_in: AtomicU64,
    /// Bytes written to the socket.
    pub bytes_out: AtomicU64,
}

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

#[derive(Message)]
#[rtype(result = "()")]
struct Inbound(Vec<u8>);

#[derive(Message)]
#[rtype(result = "()")]
struct SocketEnded(String);

/// The writer drained below half of [`MAX_QUEUED_OUT`] after a stall.
#[derive(Message)]
#[rtype(result = "()")]
struct Resume;

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
    /// Sends batches to the writer task.
    writer: Option<mpsc::UnboundedSender<Vec<u8>>>,
    /// Bytes queued for the writer (the reader pauses above [`MAX_QUEUED_OUT`]).
    queued: Arc<AtomicUsize>,
    /// Wakes the paused reader when the writer drains.
    drained: Arc<Notify>,
    /// Set while the output is over [`MAX_QUEUED_OUT`]: input is neither read nor processed.
    stalled: Arc<AtomicBool>,
    counters: Arc<Counters>,
    /// The bridge's tasks, stopped when the actor stops.
    tasks: Vec<actix_rt::task::JoinHandle<()>>,
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
            writer: None,
            queued: Arc::new(AtomicUsize::new(0)),
            drained: Arc::new(Notify::new()),
            stalled: Arc::new(AtomicBool::new(false)),
            counters: Arc::new(Counters::default()),
            tasks: Vec::new(),
            node_id,
            connect_reply: None,
            ping_replies: VecDeque::new(),
            closed: false,
            origin: Some(origin),
        }
    }

    /// The connection's byte counters.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    fn ephemeral() -> SecretKey {
        SecretKey::new(&mut rand::thread_rng())
    }

    /// Starts the bridge on a connected socket.
    fn attach(&mut self, stream: TcpStream, ctx: &mut Context<Self>) {
        let _ = stream.set_nodelay(true);
        let (mut read, mut write) = stream.into_split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let (queued, drained, stalled, counters) = (
            self.queued.clone(),
            self.drained.clone(),
            self.stalled.clone(),
            self.counters.clone(),
        );
        let me = ctx.address();
        self.tasks.push(actix_rt::spawn(async move {
            while let Some(batch) = rx.recv().await {
                if let Err(e) = write.write_all(&batch).await {
                    me.do_send(SocketEnded(format!("write failed: {e}")));
                    return;
                }
                counters
                    .bytes_out
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                let left = queued.fetch_sub(batch.len(), Ordering::AcqRel) - batch.len();
                if left < MAX_QUEUED_OUT / 2 && stalled.swap(false, Ordering::AcqRel) {
                    drained.notify_one();
                    me.do_send(Resume);
                }
            }
            let _ = write.shutdown().await;
        }));
        let (drained, stalled, counters) = (
            self.drained.clone(),
            self.stalled.clone(),
            self.counters.clone(),
        );
        let me = ctx.address();
        self.tasks.push(actix_rt::spawn(async move {
            let mut chunk = vec![0u8; READ_CHUNK];
            loop {
                while stalled.load(Ordering::Acquire) {
                    drained.notified().await;
                }
                let n = match read.read(&mut chunk).await {
                    Ok(0) => {
                        me.do_send(SocketEnded("the peer closed the connection".into()));
                        return;
                    }
                    Ok(n) => n,
                    Err(e) => {
                        me.do_send(SocketEnded(format!("read failed: {e}")));
                        return;
                    }
                };
                counters.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                if me.send(Inbound(chunk[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        }));
        self.writer = Some(tx);
    }

    /// Hands what the session produced to the writer.
    fn flush(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let out = session.take_output();
        if out.is_empty() {
            return;
        }
        if let Some(w) = &self.writer {
            self.queued.fetch_add(out.len(), Ordering::AcqRel);
            let _ = w.send(out);
        }
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
        self.writer = None;
        let mut tasks = std::mem::take(&mut self.tasks);
        if tasks.len() == 2 {
            tasks.pop().expect("reader").abort();
        }
        if let Some(writer) = tasks.pop() {
            actix_rt::spawn(async move {
                actix_rt::time::sleep(FLUSH_GRACE).await;
                writer.abort();
            });
        }
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
                        let id = self.node_id.map(|k| hex(&k)).unwrap_or_default();
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
        Some(id) => format!("peerd-{}", hex(&id[..8])),
        None => format!("peerd-#{conn}"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
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
                let dial = async move {
                    match actix_rt::time::timeout(timeout, TcpStream::connect(addr.clone())).await {
                        Ok(Ok(stream)) => Ok(stream),
                        Ok(Err(e)) => Err(format!("cannot connect to {addr}: {e}")),
                        Err(_) => Err(format!(
                            "cannot connect to {addr}: no answer within {} ms",
                            timeout.as_millis()
                        )),
                    }
                };
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
            for t in self.tasks.drain(..) {
                t.abort();
            }
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
            let queued = self.queued.load(Ordering::Acquire);
            let Some(session) = self.session.as_mut() else {
                return Ok(());
            };
            if self.buf.is_empty() || self.stalled.load(Ordering::Acquire) {
                return Ok(());
            }
            let room = MAX_QUEUED_OUT.saturating_sub(queued);
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
            if result.is_ok() && !self.buf.is_empty() && queued + pending >= MAX_QUEUED_OUT {
                // The writer resumes us (and the reader) once it has drained half of the queue.
                self.stalled.store(true, Ordering::Release);
                // Unless it drained all of it before the flag was up and has nothing more to
                // write: then nobody would resume us, so go on now.
                let now_queued = self.queued.load(Ordering::Acquire);
                again = pending == 0
                    && now_queued < MAX_QUEUED_OUT / 2
                    && self.stalled.swap(false, Ordering::AcqRel);
                if !again {
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
