//! One Bifrost peer connection, sans-I/O: the BOLT-8 handshake with Brontozaur framing (a
//! 3-byte little-endian length), `init` both ways, pings with their round trip, app messages,
//! the even/odd rule, an act and `init` deadline, an idle ping, and a receive limit
//! ([`BIFROST_MAX_MESSAGE`]) checked on each packet's decrypted length before its body is read.
//!
//! The driver (`actors::conn`) feeds it bytes and time; an error closes the connection, after
//! a Bifrost `error` telling the peer why when the handshake is done. The handshake and the
//! timers are the Lightning session's ([`crate::wire::ln::handshake`],
//! [`crate::wire::ln::keepalive`]).

use super::msg::{BifrostMsg, Tlvs};
use crate::wire::limits::BIFROST_MAX_MESSAGE;
use crate::wire::ln::bolt8::{Framing, Transport};
use crate::wire::ln::handshake::{Handshake, Progress};
use crate::wire::ln::keepalive::{Answered, Due, Keepalive};
use crate::wire::session::{PeerError, PeerSession};
use bitcoin::secp256k1::{PublicKey, SecretKey};
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

/// What the session reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed (inbound: now we know the peer's node id).
    Authenticated {
        /// The peer's static key.
        remote: PublicKey,
    },
    /// The connection is ready: the peer's `init` arrived, or (a peer we dialled that sends
    /// none, as original lnp-node listeners) it answered our first ping. A peer made ready by
    /// its pong may still send its `init` later: then this comes again, with `init` true.
    Ready {
        /// Protocols it speaks (none known without its `init`).
        protocols: String,
        /// Its asset ids.
        assets: Vec<[u8; 32]>,
        /// Whether its `init` arrived.
        init: bool,
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
    /// The BOLT-8 handshake (Brontozaur framing).
    Handshake(Handshake),
    /// Handshake done, waiting for the peer's `init`.
    AwaitInit(Transport),
    /// `init` exchanged (or, outbound, our first ping answered instead).
    Ready(Transport),
    /// Ended; nothing more is read or written.
    Closed,
}

/// One Bifrost connection.
pub struct Session {
    config: BifrostConfig,
    phase: Phase,
    out: Vec<u8>,
    /// The act or `init` deadline, the idle ping and the pongs awaited.
    timers: Keepalive,
    /// Whether we dialled: then a peer that sends no `init` is ready once it answers our ping.
    outbound: bool,
    /// Whether the peer's `init` arrived.
    init_seen: bool,
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
        let mut out = Vec::new();
        let hs = Handshake::initiate(local, remote, ephemeral, Framing::Brontozaur, &mut out);
        let mut s = Session::new(config, hs, now);
        s.out = out;
        s.outbound = true;
        s
    }

    /// An inbound connection: waits for act one.
    pub fn inbound(
        config: BifrostConfig,
        local: SecretKey,
        ephemeral: SecretKey,
        now: Instant,
    ) -> Session {
        let hs = Handshake::respond(local, ephemeral, Framing::Brontozaur);
        Session::new(config, hs, now)
    }

    fn new(config: BifrostConfig, hs: Handshake, now: Instant) -> Session {
        Session {
            timers: Keepalive::new(
                config.act_timeout,
                config.ping_interval,
                config.pong_timeout,
                now,
            ),
            config,
            phase: Phase::Handshake(hs),
            out: Vec::new(),
            outbound: false,
            init_seen: false,
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
    ) -> Result<(), PeerError> {
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
    ) -> Result<(), PeerError> {
        loop {
            if self.out.len() >= max_out {
                return Ok(());
            }
            let phase = std::mem::replace(&mut self.phase, Phase::Closed);
            self.phase = match phase {
                Phase::Closed => return Err(PeerError::close("the connection is closed")),
                Phase::Handshake(hs) => match hs
                    .feed(buf, &mut self.out)
                    .map_err(|e| PeerError::close(format!("handshake failed: {e}")))?
                {
                    Progress::Wait(hs) => {
                        self.phase = Phase::Handshake(hs);
                        return Ok(());
                    }
                    Progress::Next(hs) => {
                        self.timers.expect(now);
                        Phase::Handshake(hs)
                    }
                    Progress::Done { transport, learnt } => {
                        if let Some(remote) = learnt {
                            events.push(Event::Authenticated { remote });
                        }
                        self.authenticated(transport, now)?
                    }
                },
                Phase::AwaitInit(mut t) => match self.next(&mut t, buf)? {
                    None => {
                        self.phase = Phase::AwaitInit(t);
                        return Ok(());
                    }
                    Some(bytes) => {
                        self.timers.heard(now);
                        match BifrostMsg::decode(&bytes) {
                            Ok(BifrostMsg::Init {
                                protocols, assets, ..
                            }) => {
                                self.timers.ready();
                                self.init_seen = true;
                                events.push(Event::Ready {
                                    protocols,
                                    assets,
                                    init: true,
                                });
                                Phase::Ready(t)
                            }
                            // A listener we dialled that sends no init (original lnp-node):
                            // its pong to our first ping makes it ready; its pings are
                            // answered meanwhile.
                            Ok(BifrostMsg::Pong(ignored)) if self.outbound => {
                                match self.timers.pong(ignored.len(), now) {
                                    Some(Answered { rtt, requested }) => {
                                        self.timers.ready();
                                        events.push(Event::Ready {
                                            protocols: String::new(),
                                            assets: Vec::new(),
                                            init: false,
                                        });
                                        events.push(Event::Pong { rtt, requested });
                                        Phase::Ready(t)
                                    }
                                    None => {
                                        let why =
                                            "a pong that answers no ping of ours, before init";
                                        return Err(self.tell(&mut t, why.into()));
                                    }
                                }
                            }
                            Ok(BifrostMsg::Ping { pong_size, .. }) if self.outbound => {
                                self.send_on(
                                    &mut t,
                                    &BifrostMsg::Pong(vec![0; pong_size as usize]),
                                )?;
                                Phase::AwaitInit(t)
                            }
                            Ok(other) => {
                                let why = format!(
                                    "first message is of type {:#06x}, not init",
                                    other.type_id()
                                );
                                return Err(self.tell(&mut t, why));
                            }
                            Err(e) => return Err(self.tell(&mut t, format!("{e}"))),
                        }
                    }
                },
                Phase::Ready(mut t) => match self.next(&mut t, buf)? {
                    None => {
                        self.phase = Phase::Ready(t);
                        return Ok(());
                    }
                    Some(bytes) => {
                        self.timers.heard(now);
                        self.message(&mut t, &bytes, now, events)?;
                        Phase::Ready(t)
                    }
                },
            };
        }
    }

    /// The next packet's plaintext, if complete.
    fn next(&mut self, t: &mut Transport, buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, PeerError> {
        t.decrypt(buf)
            .map_err(|e| PeerError::close(format!("transport: {e}")))
    }

    fn authenticated(&mut self, mut t: Transport, now: Instant) -> Result<Phase, PeerError> {
        t.set_max_receive(BIFROST_MAX_MESSAGE);
        let init = BifrostMsg::Init {
            protocols: self.config.protocols.clone(),
            assets: Vec::new(),
            tlvs: Tlvs::new(),
        };
        self.send_on(&mut t, &init)?;
        self.timers.expect(now);
        if self.outbound {
            // Its init, or (a listener that sends none) its pong, makes it ready.
            self.send_on(
                &mut t,
                &BifrostMsg::Ping {
                    ignored: Vec::new(),
                    pong_size: 0,
                },
            )?;
            self.timers.pinged(0, now, false);
        }
        Ok(Phase::AwaitInit(t))
    }

    fn send_on(&mut self, t: &mut Transport, m: &BifrostMsg) -> Result<(), PeerError> {
        let bytes = m
            .encode()
            .map_err(|e| PeerError::close(format!("cannot encode: {e}")))?;
        t.encrypt_into(&bytes, &mut self.out)
            .map_err(|e| PeerError::close(format!("transport: {e}")))
    }

    /// Queues an `error` with `reason`; the error that closes the connection after it (or at
    /// once, if it could not be queued).
    fn tell(&mut self, t: &mut Transport, reason: String) -> PeerError {
        let err = BifrostMsg::Error {
            channel_id: None,
            errno: 1,
            message: Some(reason.clone()),
            tlvs: Tlvs::new(),
        };
        match self.send_on(t, &err) {
            Ok(()) => PeerError::warned(reason),
            Err(_) => PeerError::close(reason),
        }
    }

    fn message(
        &mut self,
        t: &mut Transport,
        bytes: &[u8],
        now: Instant,
        events: &mut Vec<Event>,
    ) -> Result<(), PeerError> {
        let msg = match BifrostMsg::decode(bytes) {
            Ok(m) => m,
            Err(e) => return Err(self.tell(t, e.to_string())),
        };
        match msg {
            BifrostMsg::Ping { pong_size, .. } => {
                self.send_on(t, &BifrostMsg::Pong(vec![0; pong_size as usize]))?
            }
            BifrostMsg::Pong(ignored) => match self.timers.pong(ignored.len(), now) {
                Some(Answered { rtt, requested }) => events.push(Event::Pong { rtt, requested }),
                None => events.push(Event::Note(format!(
                    "ignored an unsolicited pong of {} bytes",
                    ignored.len()
                ))),
            },
            BifrostMsg::Msg { app, payload } => events.push(Event::App { app, payload }),
            BifrostMsg::Error { errno, message, .. } => {
                events.push(Event::PeerError { errno, message })
            }
            // The init of a peer made ready by its pong: late, but its first.
            BifrostMsg::Init {
                protocols, assets, ..
            } if !self.init_seen => {
                self.init_seen = true;
                events.push(Event::Ready {
                    protocols,
                    assets,
                    init: true,
                });
            }
            BifrostMsg::Init { .. } => return Err(self.tell(t, "a second init".into())),
            BifrostMsg::Unknown { type_id, .. } => events.push(Event::Note(format!(
                "ignored an unknown odd message of type {type_id:#06x}"
            ))),
        }
        Ok(())
    }

    /// Sends `m` on a ready connection.
    fn send_ready(&mut self, m: &BifrostMsg) -> Result<(), PeerError> {
        let mut phase = std::mem::replace(&mut self.phase, Phase::Closed);
        let r = match &mut phase {
            Phase::Ready(t) => self.send_on(t, m),
            _ => Err(PeerError::close(
                "the peer is not ready (no init exchanged)",
            )),
        };
        self.phase = phase;
        r
    }

    /// Sends a ping asking `pong_size` bytes; its pong comes back as [`Event::Pong`].
    pub fn ping(&mut self, pong_size: u16, now: Instant) -> Result<(), PeerError> {
        self.send_ping(pong_size, now, true)
    }

    fn send_ping(&mut self, len: u16, now: Instant, requested: bool) -> Result<(), PeerError> {
        self.timers.may_ping().map_err(PeerError::close)?;
        self.send_ready(&BifrostMsg::Ping {
            ignored: Vec::new(),
            pong_size: len,
        })?;
        self.timers.pinged(len, now, requested);
        Ok(())
    }

    /// Sends an app message.
    pub fn send_app(&mut self, app: u16, payload: Vec<u8>) -> Result<(), PeerError> {
        self.send_ready(&BifrostMsg::Msg { app, payload })
    }

    /// Sends an `error` (e.g. an app message nobody takes) without closing.
    pub fn send_error(&mut self, errno: u64, message: String) -> Result<(), PeerError> {
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
        self.timers.next_deadline(self.is_ready())
    }

    /// Runs the timers: an act or `init` past its deadline, a ping past the pong timeout end
    /// the session; a quiet peer gets a ping.
    pub fn tick(&mut self, now: Instant) -> Result<(), PeerError> {
        if matches!(self.phase, Phase::Closed) {
            return Err(PeerError::close("the connection is closed"));
        }
        let reason = match self.timers.due(now, self.is_ready()) {
            Due::Nothing => return Ok(()),
            Due::Ping => return self.send_ping(0, now, false),
            Due::Late => format!(
                "the handshake or init did not arrive within {} ms",
                self.timers.act_timeout().as_millis()
            ),
            Due::NoPong => format!(
                "no pong within {} ms",
                self.timers.pong_timeout().as_millis()
            ),
        };
        self.phase = Phase::Closed;
        Err(PeerError::close(reason))
    }
}

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
        Session::receive(self, buf, now, events, max_out)
    }
    fn tick(&mut self, now: Instant, _: u64) -> Result<(), PeerError> {
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
        // b's init made a ready; our first ping (sent with our init) was answered too.
        assert!(
            matches!(&ea[..], [Event::Ready { protocols, init: true, .. }, Event::Pong { requested: false, .. }]
                if protocols == "storm"),
            "{ea:?}"
        );
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
        assert!(
            e.action == crate::wire::session::PeerAction::CloseAfterWarning
                && e.reason.contains("unknown even"),
            "{e:?}"
        );
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

    /// A listener driven by hand that never sends `init` (an original lnp-node 0.9 listener
    /// runs with `connect = false`): the handshake, then it only answers pings.
    struct Silent(Transport, Vec<u8>);

    impl Silent {
        fn accept(a: &mut Session, now: Instant) -> Silent {
            use crate::wire::ln::bolt8::Responder;
            let act1 = a.take_output();
            let (act2, next) = Responder::new(key(2), key(4), Framing::Brontozaur)
                .act_one(&act1)
                .unwrap();
            let mut buf = act2.to_vec();
            a.receive(&mut buf, now, &mut Vec::new(), usize::MAX)
                .unwrap();
            let out = a.take_output();
            let (t, _) = next.act_three(&out[..66]).unwrap();
            let mut s = Silent(t, out[66..].to_vec());
            s.1.extend(a.take_output());
            s
        }

        /// What `a` sent, decoded.
        fn read(&mut self, a: &mut Session) -> Vec<BifrostMsg> {
            self.1.extend(a.take_output());
            let mut got = Vec::new();
            while let Some(m) = self.0.decrypt(&mut self.1).unwrap() {
                got.push(BifrostMsg::decode(&m).unwrap());
            }
            got
        }

        fn send(&mut self, a: &mut Session, m: &BifrostMsg, now: Instant) -> Vec<Event> {
            let mut bytes = self.0.encrypt(&m.encode().unwrap()).unwrap();
            let mut ev = Vec::new();
            a.receive(&mut bytes, now, &mut ev, usize::MAX).unwrap();
            ev
        }
    }

    #[test]
    fn a_listener_that_sends_no_init_is_ready_once_it_answers_our_ping() {
        let t0 = Instant::now();
        let secp = Secp256k1::new();
        let b_pub = PublicKey::from_secret_key(&secp, &key(2));
        let mut a = Session::outbound(config(), key(1), b_pub, key(3), t0);
        let mut b = Silent::accept(&mut a, t0);
        // Our init, then a ping, right after the handshake.
        let sent = b.read(&mut a);
        assert!(
            matches!(
                &sent[..],
                [BifrostMsg::Init { .. }, BifrostMsg::Ping { .. }]
            ),
            "{sent:?}"
        );
        assert!(!a.is_ready());
        // Its ping before any init is answered; it is not ready yet.
        let ping = BifrostMsg::Ping {
            ignored: vec![],
            pong_size: 3,
        };
        assert!(b.send(&mut a, &ping, t0).is_empty());
        assert_eq!(b.read(&mut a), vec![BifrostMsg::Pong(vec![0; 3])]);
        // Its pong: ready, without init.
        let later = t0 + Duration::from_millis(7);
        let ev = b.send(&mut a, &BifrostMsg::Pong(vec![]), later);
        assert_eq!(
            ev,
            vec![
                Event::Ready {
                    protocols: String::new(),
                    assets: vec![],
                    init: false
                },
                Event::Pong {
                    rtt: Duration::from_millis(7),
                    requested: false
                },
            ]
        );
        assert!(a.is_ready());
        // Pinged and app messages as any ready peer.
        a.ping(2, later).unwrap();
        assert!(matches!(
            &b.read(&mut a)[..],
            [BifrostMsg::Ping { pong_size: 2, .. }]
        ));
        let ev = b.send(&mut a, &BifrostMsg::Pong(vec![0; 2]), later);
        assert!(matches!(
            &ev[..],
            [Event::Pong {
                requested: true,
                ..
            }]
        ));
        a.send_app(1, b"hi".to_vec()).unwrap();
        assert_eq!(
            b.read(&mut a),
            vec![BifrostMsg::Msg {
                app: 1,
                payload: b"hi".to_vec()
            }]
        );
        // An init that comes late is taken (once).
        let init = BifrostMsg::Init {
            protocols: "storm".into(),
            assets: vec![],
            tlvs: Tlvs::new(),
        };
        let ev = b.send(&mut a, &init, later);
        assert!(
            matches!(&ev[..], [Event::Ready { init: true, .. }]),
            "{ev:?}"
        );
        let mut bytes = b.0.encrypt(&init.encode().unwrap()).unwrap();
        assert!(a
            .receive(&mut bytes, later, &mut Vec::new(), usize::MAX)
            .is_err());
    }

    #[test]
    fn without_init_nor_pong_an_outbound_session_times_out_and_an_inbound_one_wants_init_first() {
        let t0 = Instant::now();
        let secp = Secp256k1::new();
        let b_pub = PublicKey::from_secret_key(&secp, &key(2));
        let mut a = Session::outbound(config(), key(1), b_pub, key(3), t0);
        let mut b = Silent::accept(&mut a, t0);
        let _ = b.read(&mut a);
        let e = a.tick(t0 + config().act_timeout).unwrap_err();
        assert!(e.reason.contains("did not arrive"), "{e:?}");
        // A pong answering nothing before init: refused.
        let mut a = Session::outbound(config(), key(1), b_pub, key(3), t0);
        let mut b = Silent::accept(&mut a, t0);
        let _ = b.read(&mut a);
        let mut bytes =
            b.0.encrypt(&BifrostMsg::Pong(vec![0; 5]).encode().unwrap())
                .unwrap();
        assert!(a
            .receive(&mut bytes, t0, &mut Vec::new(), usize::MAX)
            .is_err());
        // A peer that dialled us and pings before its init is refused, as before.
        use crate::wire::ln::bolt8::Initiator;
        let mut inbound = Session::inbound(config(), key(2), key(4), t0);
        let (act1, next) = Initiator::new(key(1), b_pub, key(3)).act_one(Framing::Brontozaur);
        let mut buf = act1.to_vec();
        inbound
            .receive(&mut buf, t0, &mut Vec::new(), usize::MAX)
            .unwrap();
        let act2 = inbound.take_output();
        let (act3, mut t) = next.act_two(&act2[..50]).unwrap();
        let mut buf = act3.to_vec();
        let ping = BifrostMsg::Ping {
            ignored: vec![],
            pong_size: 0,
        };
        buf.extend(t.encrypt(&ping.encode().unwrap()).unwrap());
        let e = inbound
            .receive(&mut buf, t0, &mut Vec::new(), usize::MAX)
            .unwrap_err();
        assert!(e.reason.contains("not init"), "{e:?}");
    }
}
