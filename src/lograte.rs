//! Log lines that cannot be flooded. Each kind of repeated event that a stranger can cause
//! (a refused or evicted connection, a bad bus frame, a stray reply, a refused source id) has
//! a [`Limiter`]: per window of [`WINDOW`], at most [`PER_SOURCE`] lines per source and
//! [`PER_KIND`] lines in all are written; the rest are counted, and one summary line per kind
//! closes the window ("1,234 connections refused in the last 10 s (1,229 not logged), top
//! sources: …"). Every event is counted for `info` whether it was logged or not.
//!
//! A source is what the caller can tell apart: a remote IP address for connections, a bus
//! and routing id for frames (not the `src` a frame claims, which costs nothing to change).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Length of a window.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Lines per source and kind in a window.
pub const PER_SOURCE: u32 = 5;
/// Lines per kind in a window, all sources together.
pub const PER_KIND: u32 = 200;
/// Sources remembered per window (beyond, they are counted as "others").
const MAX_SOURCES: usize = 4096;

struct Window {
    start: Instant,
    lines: u32,
    events: u64,
    by_source: HashMap<String, (u32, u64)>,
    others: u64,
}

/// One kind of event.
pub struct Limiter {
    kind: &'static str,
    total: AtomicU64,
    window: Mutex<Option<Window>>,
}

impl Limiter {
    /// A limiter for events described as `kind` ("connections refused").
    pub const fn new(kind: &'static str) -> Limiter {
        Limiter {
            kind,
            total: AtomicU64::new(0),
            window: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Window>> {
        crate::sync::lock(&self.window)
    }

    /// Counts one event from `source`; true if its own line should be written.
    pub fn allow(&self, source: &str) -> bool {
        self.total.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut w = self.lock();
        if w.as_ref().is_some_and(|w| now >= w.start + WINDOW) {
            if let Some(old) = w.take() {
                self.summarize(&old);
            }
        }
        let w = w.get_or_insert_with(|| Window {
            start: now,
            lines: 0,
            events: 0,
            by_source: HashMap::new(),
            others: 0,
        });
        w.events += 1;
        let allowed = w.lines < PER_KIND;
        let room = w.by_source.len() < MAX_SOURCES;
        let entry = match w.by_source.get_mut(source) {
            Some(e) => e,
            None if room => w.by_source.entry(source.to_string()).or_default(),
            None => {
                w.others += 1;
                return false;
            }
        };
        entry.1 += 1;
        if allowed && entry.0 < PER_SOURCE {
            entry.0 += 1;
            w.lines += 1;
            true
        } else {
            false
        }
    }

    /// Closes the window if it is over (called periodically, so that a flood that stopped
    /// still gets its summary).
    pub fn flush(&self) {
        let mut w = self.lock();
        if w.as_ref()
            .is_some_and(|w| Instant::now() >= w.start + WINDOW)
        {
            if let Some(old) = w.take() {
                self.summarize(&old);
            }
        }
    }

    /// Events counted since the node started.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    fn summarize(&self, w: &Window) {
        let unlogged = w.events - u64::from(w.lines);
        if unlogged == 0 {
            return;
        }
        let mut top: Vec<(&String, u64)> = w.by_source.iter().map(|(s, c)| (s, c.1)).collect();
        top.sort_unstable_by_key(|t| std::cmp::Reverse(t.1));
        let mut shown: Vec<String> = top
            .iter()
            .take(3)
            .map(|(s, n)| format!("{s} ({n})"))
            .collect();
        if top.len() > 3 {
            shown.push(format!("{} more", top.len() - 3));
        }
        if w.others > 0 {
            shown.push(format!("{} events from sources not tracked", w.others));
        }
        tracing::warn!(
            "{} {} in the last {} s ({} not logged), top sources: {}",
            w.events,
            self.kind,
            WINDOW.as_secs(),
            unlogged,
            shown.join(", ")
        );
    }
}

/// Inbound peer connections refused (caps), and encrypted TCP sessions refused (a client key
/// not on the allow-list).
pub static REFUSED_CONNECTIONS: Limiter = Limiter::new("connections refused");
/// Pending handshakes evicted for a newcomer.
pub static EVICTED_HANDSHAKES: Limiter = Limiter::new("slow handshakes evicted");
/// Inbound connections closed before their handshake completed (failed, timed out, evicted),
/// and encrypted TCP sessions that ended (on a TCP bus, each message after its session ended
/// is a failed act one: it counts once more).
pub static FAILED_HANDSHAKES: Limiter = Limiter::new("inbound handshakes failed or timed out");
/// Bus or API frames that did not decode.
pub static BAD_FRAMES: Limiter = Limiter::new("bad bus frames");
/// Reply-type messages from outside that answered no request.
pub static STRAY_REPLIES: Limiter = Limiter::new("stray replies dropped");
/// Messages from outside with a source id the node keeps.
pub static REFUSED_SOURCES: Limiter = Limiter::new("messages with a kept source id refused");

/// Storm messages from Bifrost peers refused or dropped (not shared, not asked for, bad data,
/// offers beyond their bounds).
pub static STORM_REFUSED: Limiter = Limiter::new("Storm peer messages refused");

/// RGB consignments refused by validation (imports from clients, contracts from peers).
pub static RGB_REFUSED: Limiter = Limiter::new("RGB consignments refused");

/// Which nodes count a kind of event: `info` shows a node the counters of its scopes only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every node: its buses (frames, replies, source ids) and their encrypted TCP sessions.
    Every,
    /// Nodes that admit inbound peers (LNP, BP).
    Peers,
    /// The Storm node.
    Storm,
    /// The RGB node.
    Rgb,
}

/// Every limiter, with the key `info` shows its count under and who counts it.
pub static ALL: [(&str, &Limiter, Scope); 8] = [
    ("refused_connections", &REFUSED_CONNECTIONS, Scope::Every),
    ("evicted_handshakes", &EVICTED_HANDSHAKES, Scope::Peers),
    ("failed_handshakes", &FAILED_HANDSHAKES, Scope::Every),
    ("bad_frames", &BAD_FRAMES, Scope::Every),
    ("stray_replies", &STRAY_REPLIES, Scope::Every),
    ("refused_sources", &REFUSED_SOURCES, Scope::Every),
    ("storm_refused", &STORM_REFUSED, Scope::Storm),
    ("rgb_refused", &RGB_REFUSED, Scope::Rgb),
];

/// Closes every window that is over.
pub fn flush_all() {
    for (_, l, _) in &ALL {
        l.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_source_and_per_kind_caps_and_every_event_counted() {
        let l = Limiter::new("test events");
        let logged = (0..100).filter(|_| l.allow("a")).count();
        assert_eq!(logged, PER_SOURCE as usize);
        assert!(l.allow("b"), "another source still gets its lines");
        let many = (0..1000).filter(|i| l.allow(&format!("s{i}"))).count();
        assert_eq!(many as u32, PER_KIND - PER_SOURCE - 1);
        assert_eq!(l.total(), 1101);
        // No summary before the window ends; flush is harmless.
        l.flush();
        assert!(l.lock().is_some());
    }
}
