//! One Bifrost peer connection, sans-I/O: the BOLT-8 handshake with Brontozaur framing (a
//! 3-byte little-endian length), `init` both ways, pings with their round trip, app messages,
//! the even/odd rule, an act and `init` deadline, an idle ping, and a receive limit
//! ([`BIFROST_MAX_MESSAGE`]) checked on each packet's decrypted length before its body is read.
//!
//! The driver (`actors::conn`) feeds it bytes and time; an error closes the connection, after
//! a Bifrost `error` telling the peer why when the handshake is done.

use crate::wire::bifrost::msg::{BifrostMsg, Tlvs};
use crate::wire::limits::{BIFROST_MAX_MESSAGE, LN_MAX_PINGS_IN_FLIGHT};
use crate::wire::ln::bolt8::{
    AwaitingActThree, AwaitingActTwo, Framing, Responder, Transport, ACT_ONE_LEN, ACT_THREE_LEN,
    ACT_TWO_LEN,
};
use crate::wire::session::{PeerSession, SessionError};
use bitcoin::secp256k1::{PublicKey, SecretKey};
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// Settings of a Bifrost session.
#[derive(Clone, Debug)]
pub struct BifrostConfig {
    /// Protocols we announce in `init` (space-separated, e.g. "storm").
    pub protocols: String,
    /// Each handshake act, and the peer's `init`, must arrive within this.
    pub act_timeout: Duration,
    /// A peer quiet this long gets a ping.
    pub ping_interval: Duration,
    /// A ping unanswered this long ends the connection.
    pub pong_timeout: Duration,
}

/// Why a Bifrost session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BifrostError {
    /// What happened.
    pub reason: String,
    /// Whether an `error` telling the peer why was queued.
    pub told: bool,
}

impl fmt::Display for BifrostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl SessionError for BifrostError {
    fn disconnect(reason: String) -> Self {
        BifrostError {
            reason,
            told: false,
        }
    }
    fn reason(&self) -> &str {
        &self.reason
    }
}

fn fail<T>(reason: impl Into<String>) -> Result<T, BifrostError> {
    Err(BifrostError::disconnect(reason.into()))
}

/// What the session reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed (inbound: now we know the peer's node id).
    Authenticated {
        /// The peer's static key.
        remote: PublicKey,
    },
    /// The peer's `init` arrived: the connection is ready.
    Ready {
        /// Protocols it speaks.
        protocols: String,
        /// Its asset ids.
        assets: Vec<[u8; 32]>,
    },
    /// One of our pings was answered.
    Pong {
        /// Round trip.
        rtt: Duration,
        /// Asked through [`Session::ping`] (not the idle timer).
        requested: bool,
    },
    /// An app message.
    App {
        /// The app.
        app: u16,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// The peer sent an `error`.
    PeerError {
        /// Its number.
        errno: u64,
        /// Its text.
        message: Option<String>,
    },
    /// For the log only (an odd message we do not know, an unsolicited pong).
    Note(String),
}

enum Phase {
    ActOne(Responder),
    ActTwo(AwaitingActTwo),
    ActThree(AwaitingActThree),
    AwaitInit(Transport),
    Ready(Transport),
    Closed,
}

/// One Bifrost connection.
pub struct Session {
    config: BifrostConfig,
    phase: Phase,
    out: Vec<u8>,
    deadline: Option<Instant>,
    last_heard: Instant,
    pings: VecDeque<(u16, Instant, bool)>,
}

impl Session {
    /// An outbound connection to `remote`; act one is queued.
    pub fn outbound(
        config: BifrostConfig,
        local: SecretKey,
        remote: PublicKey,
        ephemeral: SecretKey,
        now: Instant,
    ) -> Session {
        let (act, next) = crate::wire::ln::bolt8::Initiator::new(local, remote, ephemeral)
            .act_one(Framing::Brontozaur);
        let mut s = Session::new(config, Phase::ActTwo(next), now);
        s.out.extend_from_slice(&act);
        s
    }

    /// An inbound connection: waits for act one.
    pub fn inbound(
        config: BifrostConfig,
        local: SecretKey,
        ephemeral: SecretKey,
        now: Instant,
    ) -> Session {
        let phase = Phase::ActOne(Responder::new(local, ephemeral, Framing::Brontozaur));
        Session::new(config, phase, now)
    }

    fn new(config: BifrostConfig, phase: Phase, now: Instant) -> Session {
        Session {
            deadline: Some(now + config.act_timeout),
            config,
            phase,
            out: Vec::new(),
            last_heard: now,
            pings: VecDeque::new(),
        }
    }

    /// Whether `init` has been exchanged.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready(_))
    }

    /// Consumes complete packets from the front of `buf` while fewer than `max_out` bytes
    /// wait in the output.
    pub fn receive(
        &mut self,
        buf: &mut Vec<u8>,
        now: Instant,
        events: &mut Vec<Event>,
        max_out: usize,
    ) -> Result<(), BifrostError> {
        let r = self.receive_inner(buf, now, events, max_out);
        if r.is_err() {
            self.phase = Phase::Closed;
        }
        r
    }

    fn receive_inner(
        &mut self,
        buf: &mut Vec<u8>,
        now: Instant,
        events: &mut Vec<Event>,
        max_out: usize,
    ) -> Result<(), BifrostError> {
        let hs = |e: crate::wire::ln::bolt8::HandshakeError| {
            BifrostError::disconnect(format!("handshake failed: {e}"))
        };
        loop {
            if self.out.len() >= max_out {
                return Ok(());
            }
            let phase = std::mem::replace(&mut self.phase, Phase::Closed);
            self.phase = match phase {
                Phase::Closed => return fail("the connection is closed"),
                Phase::ActOne(r) if buf.len() >= ACT_ONE_LEN => {
                    let act: Vec<u8> = buf.drain(..ACT_ONE_LEN).collect();
                    let (reply, next) = r.act_one(&act).map_err(hs)?;
                    self.out.extend_from_slice(&reply);
                    self.deadline = Some(now + self.config.act_timeout);
                    Phase::ActThree(next)
                }
                Phase::ActTwo(i) if buf.len() >= ACT_TWO_LEN => {
                    let act: Vec<u8> = buf.drain(..ACT_TWO_LEN).collect();
                    let (reply, t) = i.act_two(&act).map_err(hs)?;
                    self.out.extend_from_slice(&reply);
                    self.authenticated(t, now)?
                }
                Phase::ActThree(r) if buf.len() >= ACT_THREE_LEN => {
                    let act: Vec<u8> = buf.drain(..ACT_THREE_LEN).collect();
                    let (t, remote) = r.act_three(&act).map_err(hs)?;
                    events.push(Event::Authenticated { remote });
                    self.authenticated(t, now)?
                }
                Phase::AwaitInit(mut t) => match self.next(&mut t, buf)? {
                    None => {
                        self.phase = Phase::AwaitInit(t);
                        return Ok(());
                    }
                    Some(bytes) => {
                        self.last_heard = now;
                        match BifrostMsg::decode(&bytes) {
                            Ok(BifrostMsg::Init {
                                protocols, assets, ..
                            }) => {
                                self.deadline = None;
                                events.push(Event::Ready { protocols, assets });
                                Phase::Ready(t)
                            }
                            Ok(other) => {
                                let why = format!(
                                    "first message is of type {:#06x}, not init",
                                    other.type_id()
                                );
                                return self.tell_and_fail(&mut t, why);
                            }
                            Err(e) => return self.tell_and_fail(&mut t, format!("{e}")),
                        }
                    }
                },
                Phase::Ready(mut t) => match self.next(&mut t, buf)? {
                    None => {
                        self.phase = Phase::Ready(t);
                        return Ok(());
                    }
                    Some(bytes) => {
                        self.last_heard = now;
                        self.message(&mut t, &bytes, now, events)?;
                        Phase::Ready(t)
                    }
                },
                waiting => {
                    self.phase = waiting;
                    return Ok(());
                }
            };
        }
    }

    /// The next packet's plaintext, if complete.
    fn next(
        &mut self,
        t: &mut Transport,
        buf: &mut Vec<u8>,
    ) -> Result<Option<Vec<u8>>, BifrostError> {
        t.decrypt(buf)
            .map_err(|e| BifrostError::disconnect(format!("transport: {e}")))
    }

    fn authenticated(&mut self, mut t: Transport, now: Instant) -> Result<Phase, BifrostError> {
        t.set_max_receive(BIFROST_MAX_MESSAGE);
        let init = BifrostMsg::Init {
            protocols: self.config.protocols.clone(),
            assets: Vec::new(),
            tlvs: Tlvs::new(),
        };
        self.send_on(&mut t, &init)?;
        self.deadline = Some(now + self.config.act_timeout);
        Ok(Phase::AwaitInit(t))
    }

    fn send_on(&mut self, t: &mut Transport, m: &BifrostMsg) -> Result<(), BifrostError> {
        let bytes = m
            .encode()
            .map_err(|e| BifrostError::disconnect(format!("cannot encode: {e}")))?;
        t.encrypt_into(&bytes, &mut self.out)
            .map_err(|e| BifrostError::disconnect(format!("transport: {e}")))
    }

    /// Queues an `error` with `reason` and fails.
    fn tell_and_fail<T>(&mut self, t: &mut Transport, reason: String) -> Result<T, BifrostError> {
        let err = BifrostMsg::Error {
            channel_id: None,
            errno: 1,
            message: Some(reason.clone()),
            tlvs: Tlvs::new(),
        };
        let told = self.send_on(t, &err).is_ok();
        Err(BifrostError { reason, told })
    }

    fn message(
        &mut self,
        t: &mut Transport,
        bytes: &[u8],
        now: Instant,
        events: &mut Vec<Event>,
    ) -> Result<(), BifrostError> {
        let msg = match BifrostMsg::decode(bytes) {
            Ok(m) => m,
            Err(e) => return self.tell_and_fail(t, e.to_string()),
        };
        match msg {
            BifrostMsg::Ping { pong_size, .. } => {
                self.send_on(t, &BifrostMsg::Pong(vec![0; pong_size as usize]))?
            }
            BifrostMsg::Pong(ignored) => match self.pings.front() {
                Some((len, sent, requested)) if *len as usize == ignored.len() => {
                    events.push(Event::Pong {
                        rtt: now.saturating_duration_since(*sent),
                        requested: *requested,
                    });
                    self.pings.pop_front();
                }
                _ => events.push(Event::Note(format!(
                    "ignored an unsolicited pong of {} bytes",
                    ignored.len()
                ))),
            },
            BifrostMsg::Msg { app, payload } => events.push(Event::App { app, payload }),
            BifrostMsg::Error { errno, message, .. } => {
                events.push(Event::PeerError { errno, message })
            }
            BifrostMsg::Init { .. } => {
                return self.tell_and_fail(t, "a second init".into());
            }
            BifrostMsg::Unknown { type_id, .. } => events.push(Event::Note(format!(
                "ignored an unknown odd message of type {type_id:#06x}"
            ))),
        }
        Ok(())
    }

    /// Sends `m` on a ready connection.
    fn send_ready(&mut self, m: &BifrostMsg) -> Result<(), BifrostError> {
        let mut phase = std::mem::replace(&mut self.phase, Phase::Closed);
        let r = match &mut phase {
            Phase::Ready(t) => self.send_on(t, m),
            _ => fail("the peer is not ready (no init exchanged)"),
        };
        self.phase = phase;
        r
    }

    /// Sends a ping asking `pong_size` bytes; its pong comes back as [`Event::Pong`].
    pub fn ping(&mut self, pong_size: u16, now: Instant) -> Result<(), BifrostError> {
        self.send_ping(pong_size, now, true)
    }

    fn send_ping(&mut self, len: u16, now: Instant, requested: bool) -> Result<(), BifrostError> {
        if self.pings.len() >= LN_MAX_PINGS_IN_FLIGHT {
            return fail(format!("{LN_MAX_PINGS_IN_FLIGHT} pings already unanswered"));
        }
        self.send_ready(&BifrostMsg::Ping {
            ignored: Vec::new(),
            pong_size: len,
        })?;
        self.pings.push_back((len, now, requested));
        Ok(())
    }

    /// Sends an app message.
    pub fn send_app(&mut self, app: u16, payload: Vec<u8>) -> Result<(), BifrostError> {
        self.send_ready(&BifrostMsg::Msg { app, payload })
    }

    /// Sends an `error` (e.g. an app message nobody takes) without closing.
    pub fn send_error(&mut self, errno: u64, message: String) -> Result<(), BifrostError> {
        self.send_ready(&BifrostMsg::Error {
            channel_id: None,
            errno,
            message: Some(message),
            tlvs: Tlvs::new(),
        })
    }

    /// When [`Session::tick`] acts next.
    pub fn next_deadline(&self) -> Option<Instant> {
        if matches!(self.phase, Phase::Closed) {
            return None;
        }
        let timer = match self.pings.front() {
            Some((_, sent, _)) => Some(*sent + self.config.pong_timeout),
            None if self.is_ready() => Some(self.last_heard + self.config.ping_interval),
            None => None,
        };
        match (self.deadline, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the timers: an act or `init` past its deadline, a ping past the pong timeout end
    /// the session; a quiet peer gets a ping.
    pub fn tick(&mut self, now: Instant) -> Result<(), BifrostError> {
        if matches!(self.phase, Phase::Closed) {
            return fail("the connection is closed");
        }
        if self.deadline.is_some_and(|d| now >= d) {
            self.phase = Phase::Closed;
            return fail(format!(
                "the handshake or init did not arrive within {} ms",
                self.config.act_timeout.as_millis()
            ));
        }
        if let Some((_, sent, _)) = self.pings.front() {
            if now.saturating_duration_since(*sent) >= self.config.pong_timeout {
                self.phase = Phase::Closed;
                return fail(format!(
                    "no pong within {} ms",
                    self.config.pong_timeout.as_millis()
                ));
            }
        } else if self.is_ready()
            && now.saturating_duration_since(self.last_heard) >= self.config.ping_interval
        {
            self.send_ping(0, now, false)?;
        }
        Ok(())
    }
}

impl PeerSession for Session {
    type Event = Event;
    type Error = BifrostError;
    type Context = ();

    fn receive(
        &mut self,
        buf: &mut Vec<u8>,
        now: Instant,
        _: &(),
        max_out: usize,
        events: &mut Vec<Event>,
    ) -> Result<(), BifrostError> {
        Session::receive(self, buf, now, events, max_out)
    }
    fn tick(&mut self, now: Instant, _: u64) -> Result<(), BifrostError> {
        Session::tick(self, now)
    }
    fn next_deadline(&self) -> Option<Instant> {
        Session::next_deadline(self)
    }
    fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
    fn pending_output(&self) -> usize {
        self.out.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::session::PeerSession;
    use bitcoin::secp256k1::Secp256k1;

    fn key(b: u8) -> SecretKey {
        SecretKey::from_slice(&[b; 32]).unwrap()
    }

    fn config() -> BifrostConfig {
        BifrostConfig {
            protocols: "storm".into(),
            act_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(60),
            pong_timeout: Duration::from_secs(30),
        }
    }

    fn pump(a: &mut Session, b: &mut Session, now: Instant) -> (Vec<Event>, Vec<Event>) {
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        loop {
            let (mut to_b, mut to_a) = (a.take_output(), b.take_output());
            if to_a.is_empty() && to_b.is_empty() {
                return (ea, eb);
            }
            b.receive(&mut to_b, now, &mut eb, usize::MAX).unwrap();
            a.receive(&mut to_a, now, &mut ea, usize::MAX).unwrap();
        }
    }

    fn pair(now: Instant) -> (Session, Session) {
        let secp = Secp256k1::new();
        let b_pub = PublicKey::from_secret_key(&secp, &key(2));
        let mut a = Session::outbound(config(), key(1), b_pub, key(3), now);
        let mut b = Session::inbound(config(), key(2), key(4), now);
        let (ea, eb) = pump(&mut a, &mut b, now);
        assert!(a.is_ready() && b.is_ready());
        assert!(matches!(&ea[..], [Event::Ready { protocols, .. }] if protocols == "storm"));
        let a_pub = PublicKey::from_secret_key(&secp, &key(1));
        assert_eq!(eb[0], Event::Authenticated { remote: a_pub });
        (a, b)
    }

    #[test]
    fn handshake_init_ping_and_app_messages() {
        let t0 = Instant::now();
        let (mut a, mut b) = pair(t0);
        a.ping(8, t0).unwrap();
        let later = t0 + Duration::from_millis(3);
        let (ea, _) = pump(&mut a, &mut b, later);
        assert_eq!(
            ea,
            vec![Event::Pong {
                rtt: Duration::from_millis(3),
                requested: true
            }]
        );
        a.send_app(1, b"hi".to_vec()).unwrap();
        let (_, eb) = pump(&mut a, &mut b, later);
        assert_eq!(
            eb,
            vec![Event::App {
                app: 1,
                payload: b"hi".to_vec()
            }]
        );
        b.send_error(7, "nobody takes app 9".into()).unwrap();
        let (ea, _) = pump(&mut a, &mut b, later);
        assert!(matches!(&ea[..], [Event::PeerError { errno: 7, .. }]));
    }

    #[test]
    fn unknown_even_types_and_long_packets_end_the_session() {
        let t0 = Instant::now();
        let (mut a, mut b) = pair(t0);
        // An unknown even type: b tells a why and closes.
        let Phase::Ready(t) = &mut a.phase else {
            panic!()
        };
        let mut bytes = t.encrypt(&[0x20, 0x00]).unwrap();
        let e = b
            .receive(&mut bytes, t0, &mut Vec::new(), usize::MAX)
            .unwrap_err();
        assert!(e.told && e.reason.contains("unknown even"), "{e:?}");
        // A packet announcing more than the limit is refused on its header alone.
        let (mut a, mut b) = pair(t0);
        let Phase::Ready(t) = &mut a.phase else {
            panic!()
        };
        let mut bytes = t.encrypt(&vec![0x13; BIFROST_MAX_MESSAGE + 1]).unwrap();
        bytes.truncate(19); // only the header has arrived
        let e = b
            .receive(&mut bytes, t0, &mut Vec::new(), usize::MAX)
            .unwrap_err();
        assert!(e.reason.contains("we take"), "{e:?}");
        // An odd unknown type is only noted.
        let (mut a, mut b) = pair(t0);
        let Phase::Ready(t) = &mut a.phase else {
            panic!()
        };
        let mut bytes = t.encrypt(&[0x21, 0x00, 1, 2]).unwrap();
        let mut ev = Vec::new();
        b.receive(&mut bytes, t0, &mut ev, usize::MAX).unwrap();
        assert!(matches!(&ev[..], [Event::Note(_)]));
    }

    #[test]
    fn deadlines_act_then_idle_ping_then_pong() {
        let t0 = Instant::now();
        let b = Session::inbound(config(), key(2), key(4), t0);
        assert_eq!(b.next_deadline(), Some(t0 + config().act_timeout));
        let mut silent = Session::inbound(config(), key(2), key(4), t0);
        assert!(
            silent.tick(t0 + Duration::from_secs(5)).is_err(),
            "act timeout"
        );
        let (mut a, _) = pair(t0);
        let idle = t0 + config().ping_interval;
        assert_eq!(a.next_deadline(), Some(idle));
        a.tick(idle).unwrap();
        assert_eq!(a.next_deadline(), Some(idle + config().pong_timeout));
        assert!(a.tick(idle + config().pong_timeout).is_err());
    }
}
