//! One Lightning peer connection as a sans-I/O state machine: the BOLT-8 handshake, then BOLT-1
//! (`init` first on both sides, `ping`/`pong`, `error`/`warning`, the even/odd rule). Bytes in
//! through [`Session::receive`], time in through [`Session::tick`]; bytes to write accumulate in
//! [`Session::take_output`] (each message's header and body together, so the bridge writes them
//! in one call). The bridge actor only moves bytes and enforces the [`PeerError`]'s action.
//!
//! The phases are an enum whose variants hold only the data valid in that phase; every
//! transition consumes the old phase. The handshake is the shared driver
//! ([`super::handshake`]), the timers the shared [`Keepalive`].

use super::bolt1::{ErrorMessage, Features, Init, Message, PONG_BYTES_IGNORED_FROM};
use super::bolt8::{Framing, HandshakeError, Transport, TransportError};
use super::handshake::{Handshake, Progress};
use super::keepalive::{Answered, Due, Keepalive};
use crate::wire::session::{PeerError, PeerSession};
use bitcoin::hex::DisplayHex;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use std::time::{Duration, Instant};

/// The even bit of every feature pair BOLT-9 assigns. A peer requiring one of these is not
/// disconnected by the transport layer: whether a channel can use it is for the channel
/// service to decide (and the features are shown in `peers`). An even bit outside this list
/// ends the connection, as BOLT-1 requires.
pub const KNOWN_FEATURES: &[usize] = &[
    0, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 34, 38, 42, 44, 46, 48, 50,
];

pub use crate::wire::limits::LN_MAX_PINGS_IN_FLIGHT as MAX_PINGS_IN_FLIGHT;

/// Timers and identity of a session (time itself is passed in).
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The chain hash we put in `networks` and require among the peer's, if it sends any.
    pub chain: [u8; 32],
    /// Our `init` features.
    pub features: Features,
    /// Each handshake act, and the peer's `init` after the handshake, must arrive within this.
    pub act_timeout: Duration,
    /// We ping a peer that sent nothing for this long.
    pub ping_interval: Duration,
    /// A ping not answered within this drops the peer.
    pub pong_timeout: Duration,
}

impl PeerSession for Session {
    type Event = Event;
    type Context = dyn Fn(u16) -> bool;

    fn receive(
        &mut self,
        buf: &mut Vec<u8>,
        now: Instant,
        wanted: &Self::Context,
        max_out: usize,
        events: &mut Vec<Event>,
    ) -> Result<(), PeerError> {
        self.receive_bounded(buf, now, wanted, events, max_out)
    }
    fn tick(&mut self, now: Instant, _: u64) -> Result<(), PeerError> {
        Session::tick(self, now)
    }
    fn next_deadline(&self) -> Option<Instant> {
        Session::next_deadline(self)
    }
    fn take_output(&mut self) -> Vec<u8> {
        Session::take_output(self)
    }
    fn pending_output(&self) -> usize {
        Session::pending_output(self)
    }
}

/// Something the bridge should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed; `remote` is the peer's node id.
    Authenticated {
        /// The peer's static key.
        remote: PublicKey,
    },
    /// The peer's `init` arrived and was accepted: the connection is ready.
    Ready {
        /// The peer's `init`.
        init: Init,
    },
    /// A `pong` answered one of our pings.
    Pong {
        /// Time since the matching ping was sent.
        rtt: Duration,
        /// Its ping was asked for through [`Session::ping`] (not the idle timer).
        requested: bool,
    },
    /// A message this session does not handle and that someone asked for.
    Forward {
        /// Type.
        type_id: u16,
        /// Payload after the type.
        payload: Vec<u8>,
    },
    /// Something received that changes nothing but belongs in the log (a peer's warning or
    /// error, an ignored ping, an unknown odd message, ...).
    Note(String),
}

enum Phase {
    /// The BOLT-8 handshake.
    Handshake(Handshake),
    /// Handshake done, waiting for the peer's `init`.
    AwaitInit(Transport),
    /// `init` exchanged.
    Ready(Transport),
    /// Ended (after an error); nothing more is read or written.
    Closed,
}

/// One peer connection.
pub struct Session {
    config: SessionConfig,
    phase: Phase,
    /// Bytes to write, in order.
    out: Vec<u8>,
    /// The act or `init` deadline, the idle ping and the pongs awaited.
    timers: Keepalive,
    /// The peer's address, as we put it in `remote_addr` of our `init` (BOLT-7 descriptor).
    remote_addr: Option<Vec<u8>>,
}

impl Session {
    /// An outbound connection to `remote`: returns the session and act one to send.
    pub fn outbound(
        config: SessionConfig,
        local: SecretKey,
        remote: PublicKey,
        ephemeral: SecretKey,
        now: Instant,
    ) -> Session {
        let mut out = Vec::new();
        let hs = Handshake::initiate(local, remote, ephemeral, Framing::Brontide, &mut out);
        let mut s = Session::new(config, hs, None, now);
        s.out = out;
        s
    }

    /// An inbound connection: waits for act one. `remote_addr` is how we see the peer (sent
    /// back in our `init`, BOLT-1 `remote_addr`).
    pub fn inbound(
        config: SessionConfig,
        local: SecretKey,
        ephemeral: SecretKey,
        remote_addr: Option<Vec<u8>>,
        now: Instant,
    ) -> Session {
        let hs = Handshake::respond(local, ephemeral, Framing::Brontide);
        Session::new(config, hs, remote_addr, now)
    }

    fn new(
        config: SessionConfig,
        hs: Handshake,
        remote_addr: Option<Vec<u8>>,
        now: Instant,
    ) -> Session {
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
            remote_addr,
        }
    }

    /// Whether `init` has been exchanged.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready(_))
    }

    /// Bytes waiting in the output.
    pub fn pending_output(&self) -> usize {
        self.out.len()
    }

    /// The bytes to write, taken out of the session.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Consumes what it can from the front of `buf` (bytes read from the socket). `wanted`
    /// says which message types another service asked for (forwarded, even if even).
    pub fn receive(
        &mut self,
        buf: &mut Vec<u8>,
        now: Instant,
        wanted: &dyn Fn(u16) -> bool,
        events: &mut Vec<Event>,
    ) -> Result<(), PeerError> {
        self.receive_bounded(buf, now, wanted, events, usize::MAX)
    }

    /// Like [`Session::receive`], but stops taking messages once `max_out` bytes wait in the
    /// output (the rest stays in `buf`): a peer's pings cannot make us queue unbounded pongs.
    pub fn receive_bounded(
        &mut self,
        buf: &mut Vec<u8>,
        now: Instant,
        wanted: &dyn Fn(u16) -> bool,
        events: &mut Vec<Event>,
        max_out: usize,
    ) -> Result<(), PeerError> {
        let result = self.receive_inner(buf, now, wanted, events, max_out);
        if result.is_err() {
            self.phase = Phase::Closed;
        }
        result
    }

    fn receive_inner(
        &mut self,
        buf: &mut Vec<u8>,
        now: Instant,
        wanted: &dyn Fn(u16) -> bool,
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
                Phase::Handshake(hs) => match hs.feed(buf, &mut self.out).map_err(handshake)? {
                    Progress::Wait(hs) => {
                        self.phase = Phase::Handshake(hs);
                        return Ok(());
                    }
                    Progress::Next(hs) => {
                        self.timers.expect(now);
                        Phase::Handshake(hs)
                    }
                    Progress::Done { transport, learnt } => {
                        // The initiator knew the key it dialled; the responder learnt it now.
                        if let Some(remote) = learnt {
                            events.push(Event::Authenticated { remote });
                        }
                        self.authenticated(transport, now)?
                    }
                },
                Phase::AwaitInit(mut t) => match t.decrypt(buf).map_err(transport)? {
                    None => {
                        self.phase = Phase::AwaitInit(t);
                        return Ok(());
                    }
                    Some(bytes) => {
                        self.timers.heard(now);
                        self.first_message(t, &bytes, events)?
                    }
                },
                Phase::Ready(mut t) => match t.decrypt(buf).map_err(transport)? {
                    None => {
                        self.phase = Phase::Ready(t);
                        return Ok(());
                    }
                    Some(bytes) => {
                        self.timers.heard(now);
                        self.message(&mut t, &bytes, now, wanted, events)?;
                        Phase::Ready(t)
                    }
                },
            };
        }
    }

    /// Handshake done: send our `init` first and wait for theirs.
    fn authenticated(&mut self, mut t: Transport, now: Instant) -> Result<Phase, PeerError> {
        let init = Message::Init(Init {
            global_features: Features::default(),
            features: self.config.features.clone(),
            networks: Some(vec![self.config.chain]),
            remote_addr: self.remote_addr.clone(),
            unknown_odd: Vec::new(),
        });
        t.encrypt_into(&init.encode(), &mut self.out)
            .map_err(transport)?;
        self.timers.expect(now);
        Ok(Phase::AwaitInit(t))
    }

    fn first_message(
        &mut self,
        mut t: Transport,
        bytes: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<Phase, PeerError> {
        let init = match Message::decode(bytes) {
            Ok(Message::Init(init)) => init,
            Ok(other) => {
                let why = format!(
                    "first message is of type {}, not init (BOLT-1: init comes first)",
                    other.type_id()
                );
                return Err(self.warn(&mut t, why));
            }
            Err(e) => return Err(self.warn(&mut t, format!("malformed init: {e}"))),
        };
        let all = init.global_features.or(&init.features);
        if let Some(bit) = all.unknown_required(KNOWN_FEATURES) {
            return Err(self.warn(&mut t, format!("unknown required feature bit {bit}")));
        }
        if let Some(chains) = &init.networks {
            if !chains.contains(&self.config.chain) {
                let why = format!(
                    "no common chain: we are on {}, the peer offers {} other chain(s)",
                    self.config.chain.to_lower_hex_string(),
                    chains.len()
                );
                return Err(self.warn(&mut t, why));
            }
        }
        self.timers.ready();
        events.push(Event::Ready { init });
        Ok(Phase::Ready(t))
    }

    fn message(
        &mut self,
        t: &mut Transport,
        bytes: &[u8],
        now: Instant,
        wanted: &dyn Fn(u16) -> bool,
        events: &mut Vec<Event>,
    ) -> Result<(), PeerError> {
        let msg = match Message::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                let type_id = bytes.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
                let why = format!("malformed message (type {type_id:?}): {e}");
                return Err(self.warn(t, why));
            }
        };
        match msg {
            Message::Ping {
                num_pong_bytes,
                ignored: _,
            } if num_pong_bytes >= PONG_BYTES_IGNORED_FROM => {
                events.push(Event::Note(format!(
                    "ignored a ping asking {num_pong_bytes} bytes (>= {PONG_BYTES_IGNORED_FROM})"
                )));
            }
            ping @ Message::Ping { .. } => {
                // Every ping below the limit above has its pong.
                if let Some(pong) = ping.pong_for() {
                    t.encrypt_into(&pong.encode(), &mut self.out)
                        .map_err(transport)?;
                }
            }
            Message::Pong { ignored } => match self.timers.pong(ignored.len(), now) {
                Some(Answered { rtt, requested }) => events.push(Event::Pong { rtt, requested }),
                None => events.push(Event::Note(format!(
                    "ignored an unsolicited pong of {} bytes",
                    ignored.len()
                ))),
            },
            Message::Init(_) => events.push(Event::Note("ignored a second init".into())),
            Message::Warning(w) => {
                events.push(Event::Note(format!("peer warning: {}", w.printable())));
            }
            Message::Error(e) => {
                events.push(Event::Note(format!("peer error: {}", e.printable())));
                // The channel service fails the channel it names (or all, for a zero id).
                if wanted(crate::wire::ln::bolt1::msg_type::ERROR) {
                    let payload = Message::Error(e).encode().split_off(2);
                    events.push(Event::Forward {
                        type_id: crate::wire::ln::bolt1::msg_type::ERROR,
                        payload,
                    });
                }
            }
            Message::Unknown { type_id, payload } if wanted(type_id) => {
                events.push(Event::Forward { type_id, payload });
            }
            m if m.must_understand() => {
                let why = format!("unknown even message type {} (BOLT-1: close)", m.type_id());
                return Err(self.warn(t, why));
            }
            m => events.push(Event::Note(format!(
                "ignored unknown odd message type {}",
                m.type_id()
            ))),
        }
        Ok(())
    }

    /// Queues a `warning` (all-zero channel id: about the connection); the error that closes
    /// the connection after it (or at once, if it could not be queued).
    fn warn(&mut self, t: &mut Transport, reason: String) -> PeerError {
        let warning = Message::Warning(ErrorMessage {
            channel_id: [0; 32],
            data: reason.as_bytes().to_vec(),
        });
        match t.encrypt_into(&warning.encode(), &mut self.out) {
            Ok(()) => PeerError::warned(reason),
            Err(_) => PeerError::close(reason),
        }
    }

    /// Sends a `ping` asking for `num_pong_bytes`; its `pong` comes back as [`Event::Pong`]
    /// with `requested` set.
    pub fn ping(&mut self, num_pong_bytes: u16, now: Instant) -> Result<(), PeerError> {
        if num_pong_bytes >= PONG_BYTES_IGNORED_FROM {
            return Err(PeerError::close(format!(
                "a ping asking {num_pong_bytes} bytes would never be answered"
            )));
        }
        self.send_ping(num_pong_bytes, now, true)
    }

    fn send_ping(&mut self, len: u16, now: Instant, requested: bool) -> Result<(), PeerError> {
        let Phase::Ready(t) = &mut self.phase else {
            return Err(PeerError::close(
                "the peer is not ready (no init exchanged)",
            ));
        };
        self.timers.may_ping().map_err(PeerError::close)?;
        let ping = Message::Ping {
            num_pong_bytes: len,
            ignored: Vec::new(),
        };
        t.encrypt_into(&ping.encode(), &mut self.out)
            .map_err(transport)?;
        self.timers.pinged(len, now, requested);
        Ok(())
    }

    /// Sends any message (for services on the MSG bus).
    pub fn send(&mut self, message: &Message) -> Result<(), PeerError> {
        let Phase::Ready(t) = &mut self.phase else {
            return Err(PeerError::close(
                "the peer is not ready (no init exchanged)",
            ));
        };
        t.encrypt_into(&message.encode(), &mut self.out)
            .map_err(transport)
    }

    /// When [`Session::tick`] acts next: the act or `init` deadline, the pong deadline of the
    /// oldest ping, or the next idle ping.
    pub fn next_deadline(&self) -> Option<Instant> {
        if matches!(self.phase, Phase::Closed) {
            return None;
        }
        self.timers.next_deadline(self.is_ready())
    }

    /// Runs the timers: a handshake act or `init` past its deadline, a ping past the pong
    /// timeout end the session; a peer quiet for the ping interval gets a ping.
    pub fn tick(&mut self, now: Instant) -> Result<(), PeerError> {
        let late = match &self.phase {
            Phase::Closed => return Err(PeerError::close("the connection is closed")),
            Phase::Handshake(hs) => format!("handshake {}", hs.awaited()),
            _ => "the peer's init".to_string(),
        };
        let reason = match self.timers.due(now, self.is_ready()) {
            Due::Nothing => return Ok(()),
            Due::Ping => return self.send_ping(0, now, false),
            Due::Late => format!(
                "{late} did not arrive within {} ms",
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

fn handshake(e: HandshakeError) -> PeerError {
    PeerError::close(format!("handshake failed: {e}"))
}

fn transport(e: TransportError) -> PeerError {
    PeerError::close(format!("transport: {e}"))
}

/// The BOLT-7 address descriptor of a socket address (for `remote_addr`).
pub fn address_descriptor(addr: &std::net::SocketAddr) -> Vec<u8> {
    let mut out = Vec::new();
    match addr {
        std::net::SocketAddr::V4(a) => {
            out.push(1);
            out.extend_from_slice(&a.ip().octets());
        }
        std::net::SocketAddr::V6(a) => {
            out.push(2);
            out.extend_from_slice(&a.ip().octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    //! Two sessions wired back to back, and hand-made bad peers, on a paused (passed-in) clock.
    use super::*;
    use crate::wire::ln::bolt1::ErrorMessage;
    use crate::wire::ln::bolt8::ACT_ONE_LEN;
    use crate::wire::session::PeerAction;
    use bitcoin::secp256k1::Secp256k1;

    fn key(b: u8) -> SecretKey {
        SecretKey::from_slice(&[b; 32]).unwrap()
    }

    fn config(chain: u8) -> SessionConfig {
        SessionConfig {
            chain: [chain; 32],
            features: Features::default(),
            act_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(60),
            pong_timeout: Duration::from_secs(30),
        }
    }

    fn none(_: u16) -> bool {
        false
    }

    /// Moves output between `a` and `b` until both are quiet; returns their events.
    fn pump(a: &mut Session, b: &mut Session, now: Instant) -> (Vec<Event>, Vec<Event>) {
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        loop {
            let (mut to_b, mut to_a) = (a.take_output(), b.take_output());
            if to_a.is_empty() && to_b.is_empty() {
                return (ea, eb);
            }
            b.receive(&mut to_b, now, &none, &mut eb).unwrap();
            a.receive(&mut to_a, now, &none, &mut ea).unwrap();
        }
    }

    fn pair(now: Instant) -> (Session, Session) {
        let secp = Secp256k1::new();
        let resp_pub = PublicKey::from_secret_key(&secp, &key(2));
        let mut a = Session::outbound(config(7), key(1), resp_pub, key(3), now);
        let mut b = Session::inbound(config(7), key(2), key(4), None, now);
        let (ea, eb) = pump(&mut a, &mut b, now);
        assert!(a.is_ready() && b.is_ready());
        assert!(matches!(ea.as_slice(), [Event::Ready { .. }]));
        let initiator = PublicKey::from_secret_key(&secp, &key(1));
        assert_eq!(eb[0], Event::Authenticated { remote: initiator });
        assert!(matches!(eb[1], Event::Ready { .. }));
        (a, b)
    }

    #[test]
    fn the_next_deadline_is_the_next_thing_tick_does() {
        let t0 = Instant::now();
        let secp = Secp256k1::new();
        let resp_pub = PublicKey::from_secret_key(&secp, &key(2));
        let c = config(7);
        let a = Session::outbound(c.clone(), key(1), resp_pub, key(3), t0);
        assert_eq!(
            a.next_deadline(),
            Some(t0 + c.act_timeout),
            "the act deadline"
        );
        let (mut a, _) = pair(t0);
        // Ready and quiet: the idle ping; tick at that instant sends it, and the pong deadline
        // follows.
        let idle = t0 + c.ping_interval;
        assert_eq!(a.next_deadline(), Some(idle));
        a.tick(idle).unwrap();
        assert!(a.pending_output() > 0, "the ping");
        assert_eq!(a.next_deadline(), Some(idle + c.pong_timeout));
        assert!(a.tick(idle + c.pong_timeout).is_err());
        assert_eq!(a.next_deadline(), None, "closed");
    }

    #[test]
    fn both_sides_send_init_and_ping_measures_rtt() {
        let t0 = Instant::now();
        let (mut a, mut b) = pair(t0);
        a.ping(10, t0).unwrap();
        let later = t0 + Duration::from_millis(7);
        let mut bytes = a.take_output();
        let mut eb = Vec::new();
        b.receive(&mut bytes, later, &none, &mut eb).unwrap();
        assert!(eb.is_empty());
        let mut pong = b.take_output();
        let mut ea = Vec::new();
        a.receive(&mut pong, later, &none, &mut ea).unwrap();
        assert_eq!(
            ea,
            vec![Event::Pong {
                rtt: Duration::from_millis(7),
                requested: true
            }]
        );
    }

    /// Sends raw BOLT-1 bytes from `a` (bypassing its rules) and returns `b`'s outcome.
    fn inject(a: &mut Session, b: &mut Session, msg: &[u8]) -> Result<Vec<Event>, PeerError> {
        let Phase::Ready(t) = &mut a.phase else {
            panic!("not ready")
        };
        let mut bytes = t.encrypt(msg).unwrap();
        let mut events = Vec::new();
        b.receive(&mut bytes, Instant::now(), &|t| t == 32_768, &mut events)
            .map(|()| events)
    }

    #[test]
    fn pings_at_and_above_the_limit() {
        let (mut a, mut b) = pair(Instant::now());
        let ping = |n: u16| {
            Message::Ping {
                num_pong_bytes: n,
                ignored: vec![],
            }
            .encode()
        };
        inject(&mut a, &mut b, &ping(65_531)).unwrap();
        let mut pong = b.take_output();
        let mut ea = Vec::new();
        a.receive(&mut pong, Instant::now(), &none, &mut ea)
            .unwrap();
        // Unsolicited (we never pinged): ignored, but it was 65,531 bytes long.
        assert_eq!(
            ea,
            vec![Event::Note(
                "ignored an unsolicited pong of 65531 bytes".into()
            )]
        );
        let ev = inject(&mut a, &mut b, &ping(65_532)).unwrap();
        assert!(matches!(&ev[..], [Event::Note(n)] if n.contains("65532")));
        assert!(b.take_output().is_empty(), "no pong for 65,532");
    }

    #[test]
    fn unknown_even_closes_with_a_warning_odd_is_ignored_wanted_is_forwarded() {
        let (mut a, mut b) = pair(Instant::now());
        let ev = inject(&mut a, &mut b, &[0x80, 0x01, 1, 2]).unwrap();
        assert!(matches!(&ev[..], [Event::Note(n)] if n.contains("32769")));
        let ev = inject(&mut a, &mut b, &[0x80, 0x00, 9]).unwrap();
        assert_eq!(
            ev,
            vec![Event::Forward {
                type_id: 32_768,
                payload: vec![9]
            }]
        );
        let err = inject(&mut a, &mut b, &[0x80, 0x02]).unwrap_err();
        assert!(
            err.action == PeerAction::CloseAfterWarning && err.reason.contains("32770"),
            "{err:?}"
        );
        let mut warning = b.take_output();
        let mut ea = Vec::new();
        a.receive(&mut warning, Instant::now(), &none, &mut ea)
            .unwrap();
        assert!(matches!(&ea[..], [Event::Note(n)] if n.contains("unknown even message type")));
        assert!(inject(&mut a, &mut b, &[0x80, 0x01]).is_err(), "closed");
    }

    #[test]
    fn bounded_receive_leaves_pings_unread_while_pongs_wait() {
        let (mut a, mut b) = pair(Instant::now());
        let Phase::Ready(t) = &mut a.phase else {
            panic!()
        };
        let mut bytes = Vec::new();
        for _ in 0..10 {
            let ping = Message::Ping {
                num_pong_bytes: 1000,
                ignored: vec![],
            };
            t.encrypt_into(&ping.encode(), &mut bytes).unwrap();
        }
        let total = bytes.len();
        b.receive_bounded(&mut bytes, Instant::now(), &none, &mut Vec::new(), 2500)
            .unwrap();
        // Three pongs (1,038 bytes each with framing) reach the bound; seven pings wait.
        assert_eq!(b.take_output().len(), 3 * 1038);
        assert_eq!(bytes.len(), total / 10 * 7);
        b.receive(&mut bytes, Instant::now(), &none, &mut Vec::new())
            .unwrap();
        assert!(bytes.is_empty());
        assert_eq!(b.take_output().len(), 7 * 1038);
    }

    #[test]
    fn malformed_known_message_closes() {
        let (mut a, mut b) = pair(Instant::now());
        let err = inject(&mut a, &mut b, &[0, 18, 0, 1, 0, 9]).unwrap_err();
        assert!(err.reason.contains("malformed"), "{err:?}");
    }

    fn handshaken(chain_b: u8) -> (Session, Transport) {
        // `a` is a raw initiator driven by hand so that it can send any first message.
        let secp = Secp256k1::new();
        let now = Instant::now();
        let resp_pub = PublicKey::from_secret_key(&secp, &key(2));
        let (act1, next) = crate::wire::ln::bolt8::Initiator::new(key(1), resp_pub, key(3))
            .act_one(Framing::Brontide);
        let mut b = Session::inbound(config(chain_b), key(2), key(4), None, now);
        let mut ev = Vec::new();
        b.receive(&mut act1.to_vec(), now, &none, &mut ev).unwrap();
        let (act3, t) = next.act_two(&b.take_output()).unwrap();
        b.receive(&mut act3.to_vec(), now, &none, &mut ev).unwrap();
        (b, t)
    }

    fn first(b: &mut Session, t: &mut Transport, msg: &Message) -> Result<(), PeerError> {
        let mut bytes = t.encrypt(&msg.encode()).unwrap();
        b.receive(&mut bytes, Instant::now(), &none, &mut Vec::new())
    }

    fn init(features: Features, networks: Option<Vec<[u8; 32]>>) -> Message {
        Message::Init(Init {
            global_features: Features::default(),
            features,
            networks,
            remote_addr: None,
            unknown_odd: vec![],
        })
    }

    #[test]
    fn first_message_must_be_init_with_a_common_chain_and_known_features() {
        let (mut b, mut t) = handshaken(7);
        let ping = Message::Ping {
            num_pong_bytes: 1,
            ignored: vec![],
        };
        let err = first(&mut b, &mut t, &ping).unwrap_err();
        assert!(
            err.action == PeerAction::CloseAfterWarning && err.reason.contains("not init"),
            "{err:?}"
        );

        let (mut b, mut t) = handshaken(7);
        let err = first(
            &mut b,
            &mut t,
            &init(Features::default(), Some(vec![[5; 32]])),
        );
        assert!(err.unwrap_err().reason.contains("no common chain"));

        let (mut b, mut t) = handshaken(7);
        let mut f = Features::default();
        f.set(100);
        let err = first(&mut b, &mut t, &init(f, None)).unwrap_err();
        assert!(err.reason.contains("feature bit 100"), "{err:?}");

        let (mut b, mut t) = handshaken(7);
        let mut f = Features::default();
        f.set(101); // odd: fine
        f.set(8); // var_onion_optin, assigned: fine
        first(&mut b, &mut t, &init(f, None)).unwrap();
        assert!(b.is_ready());
        // Our own init went out first, before theirs arrived.
        let mut ours = b.take_output();
        let mut plain = t.decrypt(&mut ours).unwrap().unwrap();
        let msg = Message::decode(&plain).unwrap();
        assert!(matches!(msg, Message::Init(i) if i.networks == Some(vec![[7; 32]])));
        plain.clear();
    }

    #[test]
    fn bad_acts_fail_without_writing() {
        let now = Instant::now();
        let mut b = Session::inbound(config(7), key(2), key(4), None, now);
        let mut garbage = vec![0xAB; ACT_ONE_LEN];
        let err = b
            .receive(&mut garbage, now, &none, &mut Vec::new())
            .unwrap_err();
        assert!(err.reason.contains("act 1"), "{err:?}");
        assert!(b.take_output().is_empty());
    }

    #[test]
    fn timers_drop_slow_handshakes_and_silent_peers() {
        let t0 = Instant::now();
        let mut b = Session::inbound(config(7), key(2), key(4), None, t0);
        let mut half = vec![0u8; 20];
        b.receive(&mut half, t0, &none, &mut Vec::new()).unwrap();
        b.tick(t0 + Duration::from_millis(4_999)).unwrap();
        let err = b.tick(t0 + Duration::from_secs(5)).unwrap_err();
        assert!(err.reason.contains("act one"), "{err:?}");

        let (mut a, _b) = pair(t0);
        a.tick(t0 + Duration::from_secs(59)).unwrap();
        assert!(a.take_output().is_empty());
        a.tick(t0 + Duration::from_secs(60)).unwrap();
        assert!(!a.take_output().is_empty(), "idle ping sent");
        a.tick(t0 + Duration::from_secs(89)).unwrap();
        let err = a.tick(t0 + Duration::from_secs(90)).unwrap_err();
        assert!(err.reason.contains("no pong"), "{err:?}");
    }

    #[test]
    fn peer_errors_and_warnings_are_noted() {
        let (mut a, mut b) = pair(Instant::now());
        let e = Message::Error(ErrorMessage {
            channel_id: [0; 32],
            data: b"bye".to_vec(),
        });
        let ev = inject(&mut a, &mut b, &e.encode()).unwrap();
        assert_eq!(ev, vec![Event::Note("peer error: bye".into())]);
    }

    #[test]
    fn remote_addr_descriptors() {
        let v4: std::net::SocketAddr = "127.0.0.1:9735".parse().unwrap();
        assert_eq!(address_descriptor(&v4), vec![1, 127, 0, 0, 1, 0x26, 0x07]);
        let v6: std::net::SocketAddr = "[::1]:1".parse().unwrap();
        assert_eq!(address_descriptor(&v6).len(), 1 + 16 + 2);
    }
}
