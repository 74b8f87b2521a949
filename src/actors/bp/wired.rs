//! `wired`: one actor per Bitcoin peer connection behind the TCP bridge. The protocol is in
//! [`Session`] (handshake, pings, framing rules) and [`crate::wire::headers`] (the chain); this
//! actor moves bytes, drives headers-first sync from every good peer, fetches blocks for
//! clients, answers `getdata` for what we announced, and enforces each error's action.
//! A failure (error or panic) drops only this connection.

use super::state::BpState;
use crate::actors::lnp::peers::unix_now;
use crate::actors::tcp::{Inbound, Resume, SocketEnded, TcpBridge};
use crate::bus::Bus;
use crate::guard::guard;
use crate::wire::btc::MAX_HEADERS;
use crate::wire::btc_peer::{Action, Event, PeerError, Session};
use crate::wire::headers::HeaderError;
use crate::wire::msg::{code, Envelope, Msg};
use actix::prelude::*;
use bitcoin::hashes::Hash;
use bitcoin::p2p::message::NetworkMessage;
use bitcoin::p2p::message_blockdata::{GetHeadersMessage, Inventory};
use bitcoin::BlockHash;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// `headers` messages in a row that do not connect: at this many the peer is discouraged
/// (Core's former `MAX_UNCONNECTING_HEADERS`, QUALITY.md row 12).
pub const MAX_UNCONNECTING: u32 = 10;
/// Timer period (handshake, inactivity, pings).
const TICK: Duration = Duration::from_millis(250);
/// Mailbox bound (the reader awaits room).
const MAILBOX: usize = 16;

/// Where a connection comes from.
pub enum Origin {
    /// Accepted by a listener.
    Inbound(TcpStream, SocketAddr),
    /// To dial.
    Outbound {
        /// `host:port`.
        addr: String,
        /// The `connect` request to answer, if any.
        reply: Option<Box<(Bus, Envelope)>>,
    },
}

/// Commands from `bpd`.
#[derive(Message)]
#[rtype(result = "()")]
pub enum WiredCmd {
    /// Ask the peer for a block.
    GetBlock(BlockHash),
    /// Announce a transaction: (txid, wtxid).
    AnnounceTx([u8; 32], [u8; 32]),
    /// Panic (fault injection).
    Crash(String),
}

/// One Bitcoin peer connection.
pub struct Wired {
    conn: u64,
    state: Arc<BpState>,
    session: Option<Session>,
    buf: Vec<u8>,
    tcp: TcpBridge,
    remote: Option<SocketAddr>,
    connect_reply: Option<(Bus, Envelope)>,
    /// Consecutive `headers` messages that did not connect.
    unconnecting: u32,
    closed: bool,
    origin: Option<Origin>,
}

impl Wired {
    /// A connection actor (registered by the caller).
    pub fn new(conn: u64, state: Arc<BpState>, origin: Origin) -> Wired {
        Wired {
            conn,
            state,
            session: None,
            buf: Vec::new(),
            tcp: TcpBridge::new(),
            remote: None,
            connect_reply: None,
            unconnecting: 0,
            closed: false,
            origin: Some(origin),
        }
    }

    fn name(&self) -> String {
        format!("wired-{}", self.conn)
    }

    fn start_session(&mut self, stream: TcpStream, outbound: bool, ctx: &mut Context<Self>) {
        self.remote = stream.peer_addr().ok();
        let s = Session::new(
            self.state.config.magic,
            self.state.config.timers.clone(),
            outbound,
            self.remote,
            rand_nonce(),
            self.state.tip().0,
            unix_now() as i64,
            Instant::now(),
        );
        self.session = Some(s);
        self.tcp.attach(stream, ctx.address());
    }

    fn flush(&mut self) {
        if let Some(s) = self.session.as_mut() {
            self.tcp.write(s.take_output());
        }
    }

    fn send(&mut self, msg: NetworkMessage) {
        if let Some(s) = self.session.as_mut() {
            s.send(msg);
        }
    }

    fn getheaders(&mut self) {
        let locator = self.state.locator();
        self.send(NetworkMessage::GetHeaders(GetHeadersMessage::new(
            locator,
            BlockHash::all_zeros(),
        )));
    }

    fn close(&mut self, e: &PeerError, failure: bool, ctx: &mut Context<Self>) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.flush();
        let name = self.name();
        let addr = self.remote.map(|a| a.to_string()).unwrap_or_default();
        if e.action == Action::Discourage {
            if let Some(a) = self.remote {
                self.state.discourage(a.ip());
            }
            tracing::warn!(peer = %name, %addr, "discouraged and disconnected: {}", e.reason);
        } else if failure {
            tracing::warn!(peer = %name, %addr, "connection dropped: {}", e.reason);
        } else {
            tracing::info!(peer = %name, %addr, "connection closed: {}", e.reason);
        }
        if let Some((bus, env)) = self.connect_reply.take() {
            bus.send(env.reply(Msg::failure(code::PEER_FAILED, e.reason.clone())));
        }
        self.state.remove(self.conn);
        self.tcp.close();
        ctx.stop();
    }

    fn guarded(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut Self, &mut Context<Self>) -> Result<(), PeerError>,
    ) {
        if self.closed {
            return;
        }
        match guard(|| Ok(f(self, ctx))) {
            Ok(Ok(())) => self.flush(),
            Ok(Err(e)) => self.close(&e, false, ctx),
            Err(panic) => {
                let e = PeerError::disconnect(format!("{} failed: {panic}", self.name()));
                self.close(&e, true, ctx);
            }
        }
    }

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
            let result =
                session.receive(&mut self.buf, Instant::now(), self.tcp.room(), &mut events);
            let pending = session.pending_output();
            let again = result.is_ok() && !self.buf.is_empty() && self.tcp.stall(queued, pending);
            for ev in events {
                self.event(ev)?;
            }
            result?;
            if !again {
                return Ok(());
            }
        }
    }

    fn event(&mut self, ev: Event) -> Result<(), PeerError> {
        match ev {
            Event::Ready { version } => {
                let start = version.start_height.max(0) as u32;
                tracing::info!(peer = %self.name(), addr = ?self.remote, agent = %version.user_agent,
                    start_height = start, "peer ready");
                self.state.ready(
                    self.conn,
                    version.user_agent.clone(),
                    version.version,
                    start,
                );
                if let Some((bus, env)) = self.connect_reply.take() {
                    let text = format!(
                        "connected to {} ({})",
                        self.remote.map(|a| a.to_string()).unwrap_or_default(),
                        version.user_agent
                    );
                    bus.send(env.reply(Msg::Success(Some(text))));
                }
                self.getheaders();
            }
            Event::Pong { rtt } => self.state.rtt(self.conn, rtt.as_micros() as u64),
            Event::Note(text) => tracing::debug!(peer = %self.name(), "{text}"),
            Event::Message(m) => self.message(m)?,
        }
        Ok(())
    }

    fn message(&mut self, m: NetworkMessage) -> Result<(), PeerError> {
        match m {
            NetworkMessage::Headers(headers) => {
                if headers.is_empty() {
                    return Ok(());
                }
                let full = headers.len() == MAX_HEADERS;
                let accepted = self.state.accept_headers(&headers);
                match accepted.error {
                    Some(e) if e.is_misbehaviour() => {
                        return Err(PeerError::discourage(e.to_string()));
                    }
                    Some(HeaderError::Unconnected { .. }) => {
                        self.unconnecting += 1;
                        if self.unconnecting >= MAX_UNCONNECTING {
                            return Err(PeerError::discourage(format!(
                                "{} headers messages in a row that do not connect",
                                self.unconnecting
                            )));
                        }
                        self.getheaders();
                    }
                    Some(e) => tracing::debug!(peer = %self.name(), "headers: {e}"),
                    None => {
                        self.unconnecting = 0;
                        if full {
                            self.getheaders();
                        } else if accepted.new > 0 {
                            let (height, hash) = self.state.tip();
                            tracing::info!(peer = %self.name(), height, %hash, "headers synced");
                        }
                    }
                }
            }
            NetworkMessage::Inv(items) => {
                let unknown_block = items.iter().any(|i| match i {
                    Inventory::Block(h) | Inventory::WitnessBlock(h) => self
                        .state
                        .header(crate::wire::bp_api::BlockQuery::Hash(h.to_byte_array()))
                        .is_none(),
                    _ => false,
                });
                if unknown_block {
                    self.getheaders();
                }
            }
            NetworkMessage::GetHeaders(req) => {
                let headers =
                    self.state
                        .headers_after(&req.locator_hashes, req.stop_hash, MAX_HEADERS);
                self.send(NetworkMessage::Headers(headers));
            }
            NetworkMessage::Block(block) if !self.state.got_block(&block) => {
                tracing::debug!(peer = %self.name(), "unrequested block dropped");
            }
            NetworkMessage::NotFound(items) => {
                for i in items {
                    if let Inventory::Block(h) | Inventory::WitnessBlock(h) = i {
                        self.state.block_not_found(h);
                    }
                }
            }
            NetworkMessage::GetData(items) => {
                let mut missing = Vec::new();
                for i in items {
                    let hash = match i {
                        Inventory::Transaction(t) | Inventory::WitnessTransaction(t) => {
                            t.to_byte_array()
                        }
                        Inventory::WTx(w) => w.to_byte_array(),
                        other => {
                            missing.push(other);
                            continue;
                        }
                    };
                    match self.state.tx(&hash) {
                        Some(tx) => self.send(NetworkMessage::Tx(tx)),
                        None => missing.push(i),
                    }
                }
                if !missing.is_empty() {
                    self.send(NetworkMessage::NotFound(missing));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn rand_nonce() -> u64 {
    use bitcoin::secp256k1::rand::RngCore;
    bitcoin::secp256k1::rand::thread_rng().next_u64()
}

impl Actor for Wired {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        match self.origin.take() {
            Some(Origin::Inbound(stream, _)) => self.start_session(stream, false, ctx),
            Some(Origin::Outbound { addr, reply }) => {
                if let Some(r) = &reply {
                    r.0.send(r.1.reply(Msg::Progress(format!("connecting to {addr}"))));
                }
                self.connect_reply = reply.map(|r| *r);
                let timeout = self.state.config.timers.handshake;
                let dial = crate::actors::tcp::dial(addr, timeout);
                ctx.spawn(dial.into_actor(self).map(|result, me, ctx| {
                    me.guarded(ctx, |me, ctx| {
                        let stream = result.map_err(PeerError::disconnect)?;
                        if let Ok(a) = stream.peer_addr() {
                            me.state.set_addr(me.conn, a.to_string());
                        }
                        me.start_session(stream, true, ctx);
                        Ok(())
                    })
                }));
            }
            None => {}
        }
        ctx.run_interval(TICK, |me, ctx| {
            me.guarded(ctx, |me, _| match me.session.as_mut() {
                Some(s) => s.tick(Instant::now(), rand_nonce()),
                None => Ok(()),
            })
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if !self.closed {
            self.state.remove(self.conn);
            self.tcp.abort();
        }
    }
}

impl Handler<Inbound> for Wired {
    type Result = ();
    fn handle(&mut self, msg: Inbound, ctx: &mut Context<Self>) {
        self.buf.extend_from_slice(&msg.0);
        self.guarded(ctx, |me, _| me.process());
    }
}

impl Handler<Resume> for Wired {
    type Result = ();
    fn handle(&mut self, _: Resume, ctx: &mut Context<Self>) {
        self.guarded(ctx, |me, _| me.process());
    }
}

impl Handler<SocketEnded> for Wired {
    type Result = ();
    fn handle(&mut self, msg: SocketEnded, ctx: &mut Context<Self>) {
        self.close(&PeerError::disconnect(msg.0), false, ctx);
    }
}

impl Handler<WiredCmd> for Wired {
    type Result = ();
    fn handle(&mut self, cmd: WiredCmd, ctx: &mut Context<Self>) {
        self.guarded(ctx, |me, _| {
            match cmd {
                WiredCmd::GetBlock(hash) => {
                    me.send(NetworkMessage::GetData(vec![Inventory::WitnessBlock(hash)]))
                }
                WiredCmd::AnnounceTx(txid, wtxid) => {
                    let by_wtxid = me.session.as_ref().is_some_and(|s| s.wtxid_relay());
                    let inv = if by_wtxid {
                        Inventory::WTx(bitcoin::Wtxid::from_byte_array(wtxid))
                    } else {
                        Inventory::Transaction(bitcoin::Txid::from_byte_array(txid))
                    };
                    me.send(NetworkMessage::Inv(vec![inv]))
                }
                WiredCmd::Crash(by) => panic!("debug crash of {} requested by {by}", me.name()),
            }
            Ok(())
        });
    }
}
