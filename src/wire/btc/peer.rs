//! One Bitcoin peer connection as a sans-I/O state machine: the version/verack handshake (with
//! `wtxidrelay` and `sendaddrv2` between them), `sendheaders`, ping/pong with RTT, the
//! handshake and inactivity timeouts, and Core's framing rules (bad magic or oversize length:
//! disconnect before the payload; bad checksum: drop the message; oversized collections:
//! discourage). Everything else comes out as [`Event::Message`] for the chain logic.

use crate::wire::btc::stream::{oversized, Codec, Frame, StreamError, PROTOCOL_VERSION};
use crate::wire::session::{PeerError, PeerSession};
use bitcoin::p2p::address::Address;
use bitcoin::p2p::message::NetworkMessage;
use bitcoin::p2p::message_network::VersionMessage;
use bitcoin::p2p::{Magic, ServiceFlags};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Our user agent.
pub const USER_AGENT: &str = concat!("/nodectl:", env!("CARGO_PKG_VERSION"), "/");

impl PeerSession for Session {
    type Event = Event;
    type Context = ();

    fn receive(
        &mut self,
        buf: &mut Vec<u8>,
        now: Instant,
        _: &(),
        max_out: usize,
        events: &mut Vec<Event>,
    ) -> Result<(), PeerError> {
        Session::receive(self, buf, now, max_out, events)
    }
    fn tick(&mut self, now: Instant, nonce: u64) -> Result<(), PeerError> {
        Session::tick(self, now, nonce)
    }
    fn next_deadline(&self) -> Option<Instant> {
        Some(Session::next_deadline(self))
    }
    fn take_output(&mut self) -> Vec<u8> {
        Session::take_output(self)
    }
    fn pending_output(&self) -> usize {
        Session::pending_output(self)
    }
}

/// Timers of a session.
#[derive(Clone, Debug)]
pub struct Timers {
    /// The handshake must complete within this (Core: 60 s).
    pub handshake: Duration,
    /// A peer silent this long is dropped (Core: 20 min).
    pub inactivity: Duration,
    /// We ping after this long without a ping of ours (Core: 2 min).
    pub ping_interval: Duration,
}

/// What the session reports.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Both verack seen: the peer is ready.
    Ready {
        /// Its version message.
        version: Box<VersionMessage>,
    },
    /// A message for the node's logic (headers, inv, block, getdata, tx, unknown, ...).
    Message(NetworkMessage),
    /// Our ping was answered.
    Pong {
        /// Round trip.
        rtt: Duration,
    },
    /// Something dropped or ignored, for the log.
    Note(String),
}

enum Phase {
    /// Waiting for their version (and our verack).
    Handshake {
        their_version: Option<Box<VersionMessage>>,
        got_verack: bool,
    },
    Ready,
}

/// One connection.
pub struct Session {
    codec: Codec,
    timers: Timers,
    phase: Phase,
    out: Vec<u8>,
    started: Instant,
    last_heard: Instant,
    /// Our outstanding ping: nonce and when.
    ping: Option<(u64, Instant)>,
    last_ping: Instant,
    our_nonce: u64,
    /// Our version, until sent.
    version: Option<VersionMessage>,
    /// The peer sent `wtxidrelay` (BIP339): announce transactions to it by wtxid.
    wtxid_relay: bool,
}

fn address(addr: Option<SocketAddr>) -> Address {
    let a = addr.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    Address::new(&a, ServiceFlags::NONE)
}

impl Session {
    /// A session; `outbound` sends our version at once (the inbound side answers theirs).
    /// `nonce` detects connections to ourselves; `start_height` is our tip; `relay` asks the
    /// peer to announce its transactions (BIP37's version flag).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        magic: Magic,
        timers: Timers,
        outbound: bool,
        remote: Option<SocketAddr>,
        nonce: u64,
        start_height: u32,
        unix_now: i64,
        now: Instant,
        relay: bool,
    ) -> Session {
        let mut s = Session {
            codec: Codec::new(magic),
            timers,
            phase: Phase::Handshake {
                their_version: None,
                got_verack: false,
            },
            out: Vec::new(),
            started: now,
            last_heard: now,
            ping: None,
            last_ping: now,
            our_nonce: nonce,
            version: None,
            wtxid_relay: false,
        };
        let version = VersionMessage {
            version: PROTOCOL_VERSION,
            services: ServiceFlags::NONE,
            timestamp: unix_now,
            receiver: address(remote),
            sender: address(None),
            nonce,
            user_agent: USER_AGENT.to_string(),
            start_height: start_height as i32,
            relay,
        };
        s.version = Some(version);
        if outbound {
            s.send_version();
        }
        s
    }

    /// Queues a message.
    pub fn send(&mut self, msg: NetworkMessage) {
        self.codec.encode(msg, &mut self.out);
    }

    /// The bytes to write.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Bytes waiting in the output.
    pub fn pending_output(&self) -> usize {
        self.out.len()
    }

    /// Whether the peer asked for transactions by wtxid (BIP339).
    pub fn wtxid_relay(&self) -> bool {
        self.wtxid_relay
    }

    /// Whether the handshake is complete.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready)
    }

    /// Consumes complete messages from `buf` while the output holds less than `max_out`.
    pub fn receive(
        &mut self,
        buf: &mut Vec<u8>,
        now: Instant,
        max_out: usize,
        events: &mut Vec<Event>,
    ) -> Result<(), PeerError> {
        while self.out.len() < max_out {
            let frame = match self.codec.decode(buf) {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(e @ StreamError::BadMagic(_)) | Err(e @ StreamError::TooLarge(_)) => {
                    return Err(PeerError::close(e.to_string()))
                }
            };
            self.last_heard = now;
            match frame {
                Frame::BadChecksum { command } => events.push(Event::Note(format!(
                    "dropped a `{command}` message with a bad checksum"
                ))),
                Frame::Undecodable { command, reason } => events.push(Event::Note(format!(
                    "dropped an undecodable `{command}` message: {reason}"
                ))),
                Frame::Message(m) => {
                    if let Some(why) = oversized(&m) {
                        return Err(PeerError::discourage(why));
                    }
                    self.message(m, now, events)?;
                }
            }
        }
        Ok(())
    }

    fn message(
        &mut self,
        m: NetworkMessage,
        now: Instant,
        events: &mut Vec<Event>,
    ) -> Result<(), PeerError> {
        match (&mut self.phase, m) {
            (Phase::Handshake { their_version, .. }, NetworkMessage::Version(v)) => {
                if their_version.is_some() {
                    events.push(Event::Note("ignored a second version".into()));
                    return Ok(());
                }
                if v.nonce == self.our_nonce && v.nonce != 0 {
                    return Err(PeerError::close("connected to ourselves"));
                }
                if v.version < 70_012 {
                    return Err(PeerError::close(format!(
                        "protocol version {} is below 70012 (no sendheaders)",
                        v.version
                    )));
                }
                *their_version = Some(Box::new(v));
                if self.version.is_some() {
                    self.send_version();
                }
                // BIP339 and BIP155: only between version and verack.
                self.send(NetworkMessage::WtxidRelay);
                self.send(NetworkMessage::SendAddrV2);
                self.send(NetworkMessage::Verack);
            }
            (
                Phase::Handshake {
                    their_version,
                    got_verack,
                },
                NetworkMessage::Verack,
            ) => {
                *got_verack = true;
                if let Some(v) = their_version.take() {
                    self.phase = Phase::Ready;
                    self.send(NetworkMessage::SendHeaders);
                    events.push(Event::Ready { version: v });
                }
            }
            (Phase::Handshake { .. }, NetworkMessage::WtxidRelay) => self.wtxid_relay = true,
            (Phase::Handshake { .. }, NetworkMessage::SendAddrV2) => {}
            (Phase::Handshake { .. }, other) => events.push(Event::Note(format!(
                "ignored `{}` before the handshake completed",
                other.cmd()
            ))),
            (Phase::Ready, NetworkMessage::Version(_)) => {
                events.push(Event::Note("ignored a duplicate version".into()))
            }
            (Phase::Ready, NetworkMessage::Verack | NetworkMessage::SendHeaders) => {}
            (Phase::Ready, NetworkMessage::WtxidRelay | NetworkMessage::SendAddrV2) => events.push(
                Event::Note("ignored wtxidrelay/sendaddrv2 after verack".into()),
            ),
            (Phase::Ready, NetworkMessage::Ping(nonce)) => self.send(NetworkMessage::Pong(nonce)),
            (Phase::Ready, NetworkMessage::Pong(nonce)) => match self.ping {
                Some((n, sent)) if n == nonce => {
                    self.ping = None;
                    events.push(Event::Pong {
                        rtt: now.saturating_duration_since(sent),
                    });
                }
                _ => events.push(Event::Note("ignored an unsolicited pong".into())),
            },
            (Phase::Ready, other) => events.push(Event::Message(other)),
        }
        Ok(())
    }

    /// Our version, kept until it is sent (inbound sessions answer the peer's first).
    fn send_version(&mut self) {
        if let Some(v) = self.version.take() {
            self.send(NetworkMessage::Version(v));
        }
    }

    /// When [`Session::tick`] acts next: the handshake deadline, the inactivity deadline, or
    /// the next ping.
    pub fn next_deadline(&self) -> Instant {
        let mut next = self.last_heard + self.timers.inactivity;
        if !self.is_ready() {
            next = next.min(self.started + self.timers.handshake);
        } else if self.ping.is_none() {
            next = next.min(self.last_ping + self.timers.ping_interval);
        }
        next
    }

    /// Runs the timers: handshake deadline, inactivity, periodic ping with `nonce`.
    pub fn tick(&mut self, now: Instant, nonce: u64) -> Result<(), PeerError> {
        if !self.is_ready() && now.saturating_duration_since(self.started) >= self.timers.handshake
        {
            return Err(PeerError::close(format!(
                "no handshake within {} s",
                self.timers.handshake.as_secs_f64()
            )));
        }
        if now.saturating_duration_since(self.last_heard) >= self.timers.inactivity {
            return Err(PeerError::close(format!(
                "silent for {} s",
                self.timers.inactivity.as_secs_f64()
            )));
        }
        if self.is_ready()
            && self.ping.is_none()
            && now.saturating_duration_since(self.last_ping) >= self.timers.ping_interval
        {
            self.send(NetworkMessage::Ping(nonce));
            self.ping = Some((nonce, now));
            self.last_ping = now;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::session::PeerAction;
    use bitcoin::hashes::Hash;
    use bitcoin::p2p::message_blockdata::Inventory;

    fn timers() -> Timers {
        Timers {
            handshake: Duration::from_secs(60),
            inactivity: Duration::from_secs(1200),
            ping_interval: Duration::from_secs(120),
        }
    }

    fn session(outbound: bool, nonce: u64, now: Instant) -> Session {
        Session::new(
            Magic::REGTEST,
            timers(),
            outbound,
            None,
            nonce,
            7,
            0,
            now,
            false,
        )
    }

    fn pump(a: &mut Session, b: &mut Session, now: Instant) -> (Vec<Event>, Vec<Event>) {
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        loop {
            let (mut to_b, mut to_a) = (a.take_output(), b.take_output());
            if to_a.is_empty() && to_b.is_empty() {
                return (ea, eb);
            }
            b.receive(&mut to_b, now, usize::MAX, &mut eb).unwrap();
            a.receive(&mut to_a, now, usize::MAX, &mut ea).unwrap();
        }
    }

    #[test]
    fn the_next_deadline_is_the_handshake_then_the_ping_or_the_silence() {
        let t0 = Instant::now();
        let s = session(true, 1, t0);
        assert_eq!(s.next_deadline(), t0 + timers().handshake);
        assert!(s.next_deadline() < t0 + timers().inactivity);
    }

    #[test]
    fn handshake_both_ways_then_ping() {
        let t0 = Instant::now();
        let (mut a, mut b) = (session(true, 1, t0), session(false, 2, t0));
        let (ea, eb) = pump(&mut a, &mut b, t0);
        assert!(a.is_ready() && b.is_ready());
        assert!(matches!(&ea[..], [Event::Ready { version }] if version.nonce == 2));
        assert!(matches!(&eb[..], [Event::Ready { version }] if version.user_agent == USER_AGENT));
        a.tick(t0 + Duration::from_secs(120), 99).unwrap();
        let later = t0 + Duration::from_millis(120_005);
        let (ea, _) = pump(&mut a, &mut b, later);
        assert_eq!(
            ea,
            vec![Event::Pong {
                rtt: Duration::from_millis(5)
            }]
        );
        // Messages for the node pass through.
        let inv = vec![Inventory::Block(bitcoin::BlockHash::from_byte_array(
            [3; 32],
        ))];
        b.send(NetworkMessage::Inv(inv.clone()));
        let (ea, _) = pump(&mut a, &mut b, later);
        assert_eq!(ea, vec![Event::Message(NetworkMessage::Inv(inv))]);
    }

    #[test]
    fn self_connection_and_old_versions_are_refused() {
        let t0 = Instant::now();
        let (mut a, mut b) = (session(true, 5, t0), session(false, 5, t0));
        let mut bytes = a.take_output();
        let err = b
            .receive(&mut bytes, t0, usize::MAX, &mut Vec::new())
            .unwrap_err();
        assert!(err.reason.contains("ourselves"));
    }

    #[test]
    fn framing_rules_and_collections() {
        let t0 = Instant::now();
        let (mut a, mut b) = (session(true, 1, t0), session(false, 2, t0));
        pump(&mut a, &mut b, t0);
        let mut bad = Vec::new();
        Codec::new(Magic::BITCOIN).encode(NetworkMessage::Ping(1), &mut bad);
        let err = b
            .receive(&mut bad, t0, usize::MAX, &mut Vec::new())
            .unwrap_err();
        assert_eq!(err.action, PeerAction::Close);
        let (mut a, mut b) = (session(true, 1, t0), session(false, 2, t0));
        pump(&mut a, &mut b, t0);
        a.send(NetworkMessage::Inv(vec![Inventory::Error; 50_001]));
        let mut bytes = a.take_output();
        let err = b
            .receive(&mut bytes, t0, usize::MAX, &mut Vec::new())
            .unwrap_err();
        assert_eq!(err.action, PeerAction::Discourage);
        assert!(err.reason.contains("inv with 50001 items"));
    }

    #[test]
    fn handshake_and_inactivity_timeouts() {
        let t0 = Instant::now();
        let mut b = session(false, 2, t0);
        b.tick(t0 + Duration::from_secs(59), 1).unwrap();
        assert!(b.tick(t0 + Duration::from_secs(60), 1).is_err());
        let (mut a, mut b) = (session(true, 1, t0), session(false, 2, t0));
        pump(&mut a, &mut b, t0);
        let err = a.tick(t0 + Duration::from_secs(1200), 1).unwrap_err();
        assert!(err.reason.contains("silent"));
    }
}
