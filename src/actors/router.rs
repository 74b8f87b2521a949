//! The router service of a bus. The routing table itself ([`Bus`]) is shared so that local
//! services deliver into each other's mailboxes without an extra hop; this service owns what
//! needs a clock: it answers requests past their deadline, and logs the bus counters.

use super::service::{Service, ServiceActor};
use crate::bus::Bus;
use actix::prelude::*;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often deadlines are checked: a request fails at most this late after its deadline.
const TICK: Duration = Duration::from_millis(100);
/// How often the counters are logged (debug level).
const STATS_EVERY: Duration = Duration::from_secs(60);

/// The router service of one bus.
pub struct Router {
    bus: Bus,
}

impl Router {
    /// The router of `bus`.
    pub fn new(bus: Bus) -> Router {
        Router { bus }
    }
}

impl Service for Router {
    fn start(&mut self, ctx: &mut Context<ServiceActor<Self>>) -> Result<(), String> {
        let bus = self.bus.clone();
        ctx.run_interval(TICK, move |_, _| {
            bus.expire(Instant::now());
            // Summaries of rate-limited log lines whose window is over (src/lograte.rs).
            crate::lograte::flush_all();
        });
        let bus = self.bus.clone();
        ctx.run_interval(STATS_EVERY, move |_, _| {
            let s = bus.stats();
            tracing::debug!(
                bus = bus.name(),
                delivered = s.delivered.load(Ordering::Relaxed),
                bounced = s.bounced.load(Ordering::Relaxed),
                timeouts = s.timeouts.load(Ordering::Relaxed),
                late_replies = s.late_replies.load(Ordering::Relaxed),
                dropped = s.dropped.load(Ordering::Relaxed),
                pending = bus.pending(),
                "bus counters"
            );
        });
        Ok(())
    }
}
