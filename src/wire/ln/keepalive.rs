//! The timers of a session that runs the BOLT-8 handshake and then BOLT-1-style pings (the
//! Lightning and the Bifrost peer): the deadline of the act or `init` awaited, the idle ping,
//! and the pong deadline of the oldest ping in flight. Time is passed in.

use crate::wire::limits::LN_MAX_PINGS_IN_FLIGHT;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One ping in flight.
struct Ping {
    /// Pong bytes asked.
    len: u16,
    /// When it was sent.
    sent: Instant,
    /// Asked by a client (not the idle timer).
    requested: bool,
}

/// What the timers say is due.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing.
    Nothing,
    /// The act or `init` awaited did not arrive in time.
    Late,
    /// The oldest ping was not answered in time.
    NoPong,
    /// The peer was quiet for the ping interval: ping it (asking 0 bytes).
    Ping,
}

/// A pong that answered one of our pings.
#[derive(Debug, PartialEq, Eq)]
pub struct Answered {
    /// Time since its ping was sent.
    pub rtt: Duration,
    /// Its ping was asked for by a client.
    pub requested: bool,
}

/// The timers of one session.
pub struct Keepalive {
    /// Each act, and `init`, must arrive within this.
    act_timeout: Duration,
    /// A peer quiet this long gets a ping.
    ping_interval: Duration,
    /// A ping unanswered this long ends the session.
    pong_timeout: Duration,
    /// The deadline of the act or `init` awaited (none once ready).
    deadline: Option<Instant>,
    /// When the peer last sent a whole message.
    last_heard: Instant,
    /// Our pings not answered yet, oldest first.
    pings: VecDeque<Ping>,
}

impl Keepalive {
    /// The timers of a session starting `now`: the first act is due within `act_timeout`.
    pub fn new(
        act_timeout: Duration,
        ping_interval: Duration,
        pong_timeout: Duration,
        now: Instant,
    ) -> Keepalive {
        Keepalive {
            act_timeout,
            ping_interval,
            pong_timeout,
            deadline: Some(now + act_timeout),
            last_heard: now,
            pings: VecDeque::new(),
        }
    }

    /// The act timeout (for messages).
    pub fn act_timeout(&self) -> Duration {
        self.act_timeout
    }

    /// The pong timeout (for messages).
    pub fn pong_timeout(&self) -> Duration {
        self.pong_timeout
    }

    /// The next act (or `init`) is due within the act timeout from `now`.
    pub fn expect(&mut self, now: Instant) {
        self.deadline = Some(now + self.act_timeout);
    }

    /// The session is ready: no more act deadline.
    pub fn ready(&mut self) {
        self.deadline = None;
    }

    /// A whole message arrived.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// Whether another ping may be sent (at most [`LN_MAX_PINGS_IN_FLIGHT`] in flight); the
    /// reason if not.
    pub fn may_ping(&self) -> Result<(), String> {
        if self.pings.len() >= LN_MAX_PINGS_IN_FLIGHT {
            return Err(format!("{LN_MAX_PINGS_IN_FLIGHT} pings already unanswered"));
        }
        Ok(())
    }

    /// A ping asking `len` bytes was sent.
    pub fn pinged(&mut self, len: u16, now: Instant, requested: bool) {
        self.pings.push_back(Ping {
            len,
            sent: now,
            requested,
        });
    }

    /// A pong of `len` bytes came: the oldest ping it answers, if it answers it.
    pub fn pong(&mut self, len: usize, now: Instant) -> Option<Answered> {
        let oldest = self.pings.front()?;
        if usize::from(oldest.len) != len {
            return None;
        }
        let answered = Answered {
            rtt: now.saturating_duration_since(oldest.sent),
            requested: oldest.requested,
        };
        self.pings.pop_front();
        Some(answered)
    }

    /// When [`Keepalive::due`] has something next: the act deadline, the pong deadline of the
    /// oldest ping, or (`ready`, nothing in flight) the next idle ping.
    pub fn next_deadline(&self, ready: bool) -> Option<Instant> {
        let timer = match self.pings.front() {
            Some(p) => Some(p.sent + self.pong_timeout),
            None if ready => Some(self.last_heard + self.ping_interval),
            None => None,
        };
        match (self.deadline, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What is due at `now`.
    pub fn due(&self, now: Instant, ready: bool) -> Due {
        if self.deadline.is_some_and(|d| now >= d) {
            return Due::Late;
        }
        match self.pings.front() {
            Some(p) if now.saturating_duration_since(p.sent) >= self.pong_timeout => Due::NoPong,
            Some(_) => Due::Nothing,
            None if ready
                && now.saturating_duration_since(self.last_heard) >= self.ping_interval =>
            {
                Due::Ping
            }
            None => Due::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_pings_and_pongs() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut k = Keepalive::new(ms(100), ms(1_000), ms(300), t0);
        assert_eq!(k.next_deadline(false), Some(t0 + ms(100)));
        assert_eq!(k.due(t0 + ms(99), false), Due::Nothing);
        assert_eq!(k.due(t0 + ms(100), false), Due::Late);
        k.expect(t0 + ms(50));
        k.ready();
        k.heard(t0 + ms(60));
        assert_eq!(k.next_deadline(true), Some(t0 + ms(1_060)));
        assert_eq!(k.due(t0 + ms(1_060), true), Due::Ping);
        k.pinged(0, t0 + ms(1_060), false);
        k.pinged(4, t0 + ms(1_070), true);
        assert_eq!(k.next_deadline(true), Some(t0 + ms(1_360)));
        assert_eq!(k.pong(4, t0 + ms(1_100)), None, "answers the oldest only");
        assert_eq!(
            k.pong(0, t0 + ms(1_100)),
            Some(Answered {
                rtt: ms(40),
                requested: false
            })
        );
        assert_eq!(k.due(t0 + ms(1_369), true), Due::Nothing);
        assert_eq!(k.due(t0 + ms(1_370), true), Due::NoPong);
        for _ in 1..LN_MAX_PINGS_IN_FLIGHT {
            assert!(k.may_ping().is_ok());
            k.pinged(0, t0, false);
        }
        assert!(k.may_ping().is_err());
    }
}
