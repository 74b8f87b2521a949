//! `wired`: one actor per Bitcoin peer connection, the connection driver
//! ([`crate::actors::conn`]) over the Bitcoin protocol [`Wire`]. The protocol is in [`Session`]
//! (handshake, pings, framing rules) and [`crate::wire::btc::headers`] (the chain); [`Wire`] drives
//! headers-first sync from every good peer, fetches blocks for clients, answers `getdata` for
//! what we announced, and enforces each error's action (disconnect or discourage).
//! A failure (error or panic) drops only this connection.

use super::state::BpState;
use crate::actors::clock::{random_u64, unix_now};
use crate::actors::conn::{Conn, Protocol};
use crate::actors::limits::MAX_UNCONNECTING;
use crate::bus::Bus;
use crate::wire::api::{code, Envelope, Msg};
use crate::wire::btc::headers::HeaderError;
use crate::wire::btc::peer::{Event, Session};
use crate::wire::btc::stream::MAX_HEADERS;
use crate::wire::session::{PeerAction, PeerError};
use bitcoin::hashes::Hash;
use bitcoin::p2p::message::NetworkMessage;
use bitcoin::p2p::message_blockdata::{GetHeadersMessage, Inventory};
use bitcoin::BlockHash;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Commands from `bpd`.
pub enum WiredCmd {
    /// Ask the peer for a block.
    GetBlock(BlockHash),
    /// Ask the peer for blocks (the download).
    GetBlocks(Vec<BlockHash>),
    /// Announce a transaction: (txid, wtxid).
    AnnounceTx([u8; 32], [u8; 32]),
    /// Panic (fault injection).
    Crash(String),
    /// Close the connection with this reason (e.g. evicted for a newcomer).
    Disconnect(String),
}

/// The Bitcoin protocol of one connection.
pub struct Wire {
    conn: u64,
    state: Arc<BpState>,
    remote: Option<SocketAddr>,
    connect_reply: Option<(Bus, Envelope)>,
    /// Consecutive `headers` messages that did not connect.
    unconnecting: u32,
}

/// One Bitcoin peer connection: the driver over [`Wire`].
pub type Wired = Conn<Wire>;

impl Wire {
    /// The protocol of connection `conn` (registered by the caller), answering `connect_reply`
    /// when ready or failed.
    pub fn new(conn: u64, state: Arc<BpState>, connect_reply: Option<(Bus, Envelope)>) -> Wire {
        Wire {
            conn,
            state,
            remote: None,
            connect_reply,
            unconnecting: 0,
        }
    }

    fn getheaders(&mut self, s: &mut Session) {
        let locator = self.state.locator();
        s.send(NetworkMessage::GetHeaders(GetHeadersMessage::new(
            locator,
            BlockHash::all_zeros(),
        )));
    }

    fn message(&mut self, s: &mut Session, m: NetworkMessage) -> Result<(), PeerError> {
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
                        self.getheaders(s);
                    }
                    Some(e) => return Err(PeerError::ignore(format!("headers: {e}"))),
                    None => {
                        self.unconnecting = 0;
                        if full {
                            self.getheaders(s);
                        } else if accepted.new > 0 {
                            let (height, hash) = self.state.tip();
                            tracing::info!(peer = %self.name(), height, %hash, "headers synced");
                        }
                    }
                }
            }
            NetworkMessage::Tx(tx) => self.state.on_relayed_tx(tx),
            NetworkMessage::Inv(items) => {
                let want = self.state.wanted_txs(&items);
                if !want.is_empty() {
                    s.send(NetworkMessage::GetData(want));
                }
                let unknown_block = items.iter().any(|i| match i {
                    Inventory::Block(h) | Inventory::WitnessBlock(h) => self
                        .state
                        .header(crate::wire::api::bp::BlockQuery::Hash(h.to_byte_array()))
                        .is_none(),
                    _ => false,
                });
                if unknown_block {
                    self.getheaders(s);
                }
            }
            NetworkMessage::GetHeaders(req) => {
                let headers =
                    self.state
                        .headers_after(&req.locator_hashes, req.stop_hash, MAX_HEADERS);
                s.send(NetworkMessage::Headers(headers));
            }
            NetworkMessage::Block(block) => {
                let size = block.total_size();
                self.state.on_block(self.conn, block, size)?;
            }
            NetworkMessage::FeeFilter(rate) => self.state.set_feefilter(self.conn, rate),
            NetworkMessage::NotFound(items) => {
                for i in items {
                    if let Inventory::Block(h) | Inventory::WitnessBlock(h) = i {
                        self.state.block_not_found(self.conn, h);
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
                        Some(tx) => {
                            tracing::debug!(peer = %self.name(), txid = %tx.compute_txid(),
                                "transaction sent on getdata");
                            s.send(NetworkMessage::Tx(tx))
                        }
                        None => missing.push(i),
                    }
                }
                if !missing.is_empty() {
                    s.send(NetworkMessage::NotFound(missing));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Protocol for Wire {
    type Session = Session;
    type Cmd = WiredCmd;

    fn name(&self) -> String {
        format!("wired-{}", self.conn)
    }

    fn dial_timeout(&self) -> Duration {
        self.state.config.timers.handshake
    }

    fn dialing(&mut self, addr: &str) {
        if let Some((bus, env)) = &self.connect_reply {
            bus.send(env.reply(Msg::Progress(format!("connecting to {addr}"))));
        }
    }

    fn connected(
        &mut self,
        peer: Option<SocketAddr>,
        outbound: bool,
    ) -> Result<Session, PeerError> {
        self.remote = peer;
        if outbound {
            if let Some(a) = peer {
                self.state.set_addr(self.conn, a.to_string());
            }
        }
        Ok(Session::new(
            self.state.config.magic,
            self.state.config.timers.clone(),
            outbound,
            self.remote,
            random_u64(),
            self.state.tip().0,
            unix_now() as i64,
            Instant::now(),
            self.state.config.relay_txs,
        ))
    }

    fn context(&self) -> &() {
        &()
    }

    fn event(&mut self, s: &mut Session, ev: Event) -> Result<(), PeerError> {
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
                self.getheaders(s);
            }
            Event::Pong { rtt } => self.state.rtt(self.conn, rtt.as_micros() as u64),
            Event::Note(text) => tracing::debug!(peer = %self.name(), "{text}"),
            Event::Message(m) => self.message(s, m)?,
        }
        Ok(())
    }

    fn command(&mut self, session: Option<&mut Session>, cmd: WiredCmd) -> Result<(), PeerError> {
        let Some(s) = session else {
            match cmd {
                WiredCmd::Crash(by) => panic!("debug crash of {} requested by {by}", self.name()),
                WiredCmd::Disconnect(why) => return Err(PeerError::close(why)),
                _ => return Ok(()),
            }
        };
        match cmd {
            WiredCmd::GetBlock(hash) => {
                s.send(NetworkMessage::GetData(vec![Inventory::WitnessBlock(hash)]))
            }
            WiredCmd::GetBlocks(hashes) => s.send(NetworkMessage::GetData(
                hashes.into_iter().map(Inventory::WitnessBlock).collect(),
            )),
            WiredCmd::AnnounceTx(txid, wtxid) => {
                let inv = if s.wtxid_relay() {
                    Inventory::WTx(bitcoin::Wtxid::from_byte_array(wtxid))
                } else {
                    Inventory::Transaction(bitcoin::Txid::from_byte_array(txid))
                };
                tracing::debug!(peer = %self.name(), ?inv, "transaction announced");
                s.send(NetworkMessage::Inv(vec![inv]))
            }
            WiredCmd::Crash(by) => panic!("debug crash of {} requested by {by}", self.name()),
            WiredCmd::Disconnect(why) => return Err(PeerError::close(why)),
        }
        Ok(())
    }

    fn closed(&mut self, e: &PeerError, failure: bool) {
        let name = self.name();
        let addr = self.remote.map(|a| a.to_string()).unwrap_or_default();
        // A stranger's handshake that went nowhere is logged at most a few times per address.
        let logged = match self.state.pending_inbound_ip(self.conn) {
            Some(ip) => crate::lograte::FAILED_HANDSHAKES.allow(&ip.to_string()),
            None => true,
        };
        if !logged {
            // Counted; the summary line tells.
        } else if e.action == PeerAction::Discourage {
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
    }

    fn discourage(&mut self) {
        if let Some(a) = self.remote {
            self.state.discourage(a.ip());
        }
    }

    fn stopped(&mut self) {
        self.state.remove(self.conn);
    }
}
