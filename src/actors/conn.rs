//! The connection driver: one actor per peer connection, generic over the protocol. It is the
//! skeleton every P2P service shares (LNP `peerd` and `bifrost-…`, BP `wired`):
//!
//! - dial with a deadline (outbound) or take an accepted socket (inbound);
//! - the TCP bridge ([`TcpBridge`]) with back-pressure: at [`MAX_QUEUED_OUT`] unwritten bytes
//!   the session is not fed and the socket not read, until the writer drains half;
//! - the session's timers: one sleep until its next deadline (not a periodic tick);
//! - the guarded handlers: an error is enforced by its [`PeerAction`] (the one place for every
//!   protocol: close, close after the warning, ignore and log, discourage), a panic closes this
//!   connection only (requests in flight answered by the protocol, its registry entry
//!   removed); no other peer is touched;
//! - the close, done once: flush what the session queued (a last `warning`), then stop.
//!
//! The protocol (`actors::lnp::peerd`, `actors::lnp::bifrostd`, `actors::bp::wired`)
//! implements [`Protocol`]: it builds
//! the session, reacts to its events and to commands from its node's manager, and says what a
//! close means (log line, answers, discouragement). The session is the sans-I/O state machine
//! of `wire` behind [`PeerSession`].
//!
//! [`MAX_QUEUED_OUT`]: super::limits::MAX_QUEUED_OUT

use super::clock::random_u64;
use super::limits::CONN_MAILBOX;
use super::tcp::{Counters, Inbound, Resume, SocketEnded, TcpBridge};
use crate::guard::guard;
use crate::wire::session::{PeerAction, PeerError, PeerSession};
use actix::prelude::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Input buffer capacity kept once a burst is consumed; above it the buffer is freed.
const SHRINK_ABOVE: usize = 4096;

/// The event type of a protocol's session.
pub type EventOf<P> = <<P as Protocol>::Session as PeerSession>::Event;

/// What a P2P protocol adds to the driver.
pub trait Protocol: Sized + Unpin + 'static {
    /// The sans-I/O session.
    type Session: PeerSession + Unpin + 'static;
    /// Commands from the node's manager (ping, send, disconnect, crash, ...).
    type Cmd: Send + 'static;
    /// The connection's name for logs and `debug crash` (`peerd-…`, `wired-…`).
    fn name(&self) -> String;

    /// Deadline of the TCP dial of an outbound connection.
    fn dial_timeout(&self) -> Duration;

    /// An outbound connection is about to be dialled (tell whoever asked).
    fn dialing(&mut self, _addr: &str) {}

    /// The TCP connection to `peer` exists (`outbound` if we dialled): build its session.
    fn connected(
        &mut self,
        peer: Option<SocketAddr>,
        outbound: bool,
    ) -> Result<Self::Session, PeerError>;

    /// What the session consults while receiving.
    fn context(&self) -> &<Self::Session as PeerSession>::Context;

    /// Reacts to one event of the session.
    fn event(&mut self, session: &mut Self::Session, event: EventOf<Self>)
        -> Result<(), PeerError>;

    /// Handles a command; the session is `None` while the TCP dial is under way. An error
    /// closes the connection.
    fn command(
        &mut self,
        session: Option<&mut Self::Session>,
        cmd: Self::Cmd,
    ) -> Result<(), PeerError>;

    /// The connection ends with `error` (`failure`: a handler failed, e.g. panicked): log it,
    /// answer what waits, leave the registry. Called once, after [`Protocol::discourage`] when
    /// the error's action is [`PeerAction::Discourage`].
    fn closed(&mut self, error: &PeerError, failure: bool);

    /// The peer's address is to be refused for a while ([`PeerAction::Discourage`]). A
    /// protocol whose node keeps no such list only closes the connection (and says so).
    fn discourage(&mut self) {
        tracing::debug!(peer = %self.name(), "this protocol keeps no discouraged addresses: closed only");
    }

    /// The actor was stopped by the system (node shutdown) without [`Protocol::closed`]:
    /// leave the registry.
    fn stopped(&mut self);
}

/// Where a connection comes from.
pub enum Origin {
    /// Accepted by a listener.
    Inbound(TcpStream, SocketAddr),
    /// To dial (`host:port`).
    Outbound(String),
}

/// A command for the protocol of a connection (wrapped, so that any type can be one).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Command<C>(pub C);

/// One connection.
pub struct Conn<P: Protocol> {
    proto: P,
    /// Set once the TCP connection exists.
    session: Option<P::Session>,
    /// Bytes read and not yet consumed by the session.
    buf: Vec<u8>,
    /// The socket bridge.
    tcp: TcpBridge,
    /// Set by the first close; later events are ignored.
    closed: bool,
    /// Taken when the actor starts.
    origin: Option<Origin>,
    /// The armed timer: when, and its handle (re-armed after every step, see [`Conn::arm`]).
    timer: Option<(Instant, SpawnHandle)>,
}

impl<P: Protocol> Conn<P> {
    /// A connection actor for `proto` (registered by the caller, who keeps its counters).
    pub fn new(proto: P, origin: Origin) -> Conn<P> {
        Conn {
            proto,
            session: None,
            buf: Vec::new(),
            tcp: TcpBridge::new(),
            closed: false,
            origin: Some(origin),
            timer: None,
        }
    }

    /// The connection's byte counters.
    pub fn counters(&self) -> Arc<Counters> {
        self.tcp.counters()
    }

    /// Builds the session on a connected socket and starts the bridge (`accepted_from` is the
    /// address an inbound connection came from; `None` for one we dialled).
    fn attach(
        &mut self,
        stream: TcpStream,
        accepted_from: Option<SocketAddr>,
        ctx: &mut Context<Self>,
    ) -> Result<(), PeerError> {
        let outbound = accepted_from.is_none();
        let peer = accepted_from.or_else(|| stream.peer_addr().ok());
        let session = self.proto.connected(peer, outbound)?;
        self.session = Some(session);
        self.tcp.attach(stream, ctx.address());
        Ok(())
    }

    /// Hands what the session produced to the writer.
    fn flush(&mut self) {
        if let Some(s) = self.session.as_mut() {
            self.tcp.write(s.take_output());
        }
    }

    /// Ends the connection: flushes a queued warning, discourages the peer if the error says
    /// so, lets the protocol answer and log, stops.
    fn close(&mut self, error: &PeerError, failure: bool, ctx: &mut Context<Self>) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.flush();
        if error.action == PeerAction::Discourage {
            self.proto.discourage();
        }
        self.proto.closed(error, failure);
        // The writer drains what is queued, then shuts the socket; the reader stops now.
        self.tcp.close();
        ctx.stop();
    }

    /// Sleeps until the session's next deadline (one timer in tokio's timer wheel per peer,
    /// moved only when the deadline moves; an idle peer wakes once per ping interval).
    fn arm(&mut self, ctx: &mut Context<Self>) {
        let next = self.session.as_ref().and_then(|s| s.next_deadline());
        if self.timer.map(|(at, _)| Some(at)) == Some(next) {
            return;
        }
        if let Some((_, handle)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        if let Some(at) = next {
            // A deadline already due still waits a millisecond: a session that did not move
            // it on would otherwise spin.
            let wait = at
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            let handle = ctx.run_later(wait, |me, ctx| {
                me.timer = None;
                me.guarded(ctx, |me, _| match me.session.as_mut() {
                    Some(s) => s.tick(Instant::now(), random_u64()),
                    None => Ok(()),
                });
            });
            self.timer = Some((at, handle));
        }
    }

    /// Runs `f` guarded: an error is enforced by its action (the one place every protocol's
    /// errors are), a panic closes this connection only.
    fn guarded(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut Self, &mut Context<Self>) -> Result<(), PeerError>,
    ) {
        if self.closed {
            return;
        }
        match guard(|| Ok(f(self, ctx))) {
            Ok(Ok(())) => {
                self.flush();
                self.arm(ctx);
            }
            Ok(Err(e)) if !e.closes() => {
                tracing::debug!(peer = %self.proto.name(), "ignored: {}", e.reason);
                self.flush();
                self.arm(ctx);
            }
            Ok(Err(e)) => self.close(&e, false, ctx),
            Err(panic) => {
                let reason = format!("{} failed: {panic}", self.proto.name());
                self.close(&PeerError::close(reason), true, ctx);
            }
        }
    }

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
            let mut events = Vec::new();
            let room = self.tcp.room();
            let result = session.receive(
                &mut self.buf,
                Instant::now(),
                self.proto.context(),
                room,
                &mut events,
            );
            let pending = session.pending_output();
            let mut again = false;
            if result.is_ok() && !self.buf.is_empty() {
                // The writer resumes us once it has drained half of the queue.
                again = self.tcp.stall(queued, pending);
                if self.tcp.is_stalled() {
                    tracing::debug!(peer = %self.proto.name(), "peer does not read: pausing its input");
                }
            }
            // Events before an error still count (e.g. a pong, then a bad MAC).
            for ev in events {
                let session = self.session.as_mut().expect("set above");
                match self.proto.event(session, ev) {
                    Err(e) if !e.closes() => {
                        tracing::debug!(peer = %self.proto.name(), "ignored: {}", e.reason)
                    }
                    other => other?,
                }
            }
            result?;
            if self.buf.is_empty() && self.buf.capacity() > SHRINK_ABOVE {
                // An idle peer keeps no large buffer from a burst.
                self.buf = Vec::new();
            }
            if !again {
                return Ok(());
            }
        }
    }
}

impl<P: Protocol> Actor for Conn<P> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(CONN_MAILBOX);
        match self.origin.take() {
            Some(Origin::Inbound(stream, from)) => {
                self.guarded(ctx, |me, ctx| me.attach(stream, Some(from), ctx));
            }
            Some(Origin::Outbound(addr)) => {
                self.proto.dialing(&addr);
                let dial = super::tcp::dial(addr, self.proto.dial_timeout());
                ctx.spawn(dial.into_actor(self).map(|result, me, ctx| {
                    me.guarded(ctx, |me, ctx| {
                        let stream = result.map_err(PeerError::close)?;
                        me.attach(stream, None, ctx)
                    })
                }));
            }
            None => {}
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        // Stopped by the system (node shutdown) rather than by `close`.
        if !self.closed {
            self.proto.stopped();
            self.tcp.abort();
        }
    }
}

impl<P: Protocol> Handler<Inbound> for Conn<P> {
    type Result = ();

    fn handle(&mut self, msg: Inbound, ctx: &mut Context<Self>) {
        self.buf.extend_from_slice(&msg.0);
        self.guarded(ctx, |me, _| me.process());
    }
}

impl<P: Protocol> Handler<Resume> for Conn<P> {
    type Result = ();

    fn handle(&mut self, _: Resume, ctx: &mut Context<Self>) {
        self.guarded(ctx, |me, _| me.process());
    }
}

impl<P: Protocol> Handler<SocketEnded> for Conn<P> {
    type Result = ();

    fn handle(&mut self, msg: SocketEnded, ctx: &mut Context<Self>) {
        self.close(&PeerError::close(msg.0), false, ctx);
    }
}

impl<P: Protocol> Handler<Command<P::Cmd>> for Conn<P> {
    type Result = ();

    fn handle(&mut self, cmd: Command<P::Cmd>, ctx: &mut Context<Self>) {
        self.guarded(ctx, |me, _| me.proto.command(me.session.as_mut(), cmd.0));
    }
}
