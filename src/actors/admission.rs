//! Admission of inbound peer connections, shared by every P2P listener (Lightning, Bifrost,
//! Bitcoin): the caps on connections and handshakes, per source address, and what happens when
//! a cap is reached.
//!
//! A full handshake table does not lock newcomers out (one attacker with 100 slow sockets
//! would otherwise keep a node off the network), and neither does a full per-address share
//! (every peer of a Tor hidden service comes from 127.0.0.1, attackers included): the pending
//! inbound handshake that made the least progress for its age is evicted instead, from the
//! newcomer's address when that address is at its cap. Progress counts a credit of
//! [`CREDIT_BYTES`] over [`CREDIT_SECS`] that every connection starts with, so a handshake is
//! evicted only if it received less than that rate on average, and a newcomer (who has the
//! credit alone) evicts only a handshake that did worse. An honest handshake completes in a
//! round trip or two, so it wins against any number of slow ones, and against a flood of
//! fresh connections: each newcomer evicts the oldest slow one, never the one that is on
//! schedule. Connections that completed their handshake are never evicted for a newcomer,
//! nor are outbound ones, nor trusted addresses.
//!
//! Listeners named in `onion_inbound` front a Tor hidden service: all their peers arrive from
//! the address Tor forwards from, so the per-address caps do not apply there (only the global
//! caps and eviction), and their connections do not count against that address elsewhere.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// The bytes of progress every connection is credited with at its start: about one handshake
/// act (BOLT-8 act one is 50 bytes, act three 66; a Bitcoin `version` message ~126).
pub const CREDIT_BYTES: f64 = 64.0;

/// The time over which that credit is spread: a pending handshake that received less than
/// [`CREDIT_BYTES`] per this on average since it opened has done worse than a newcomer.
pub const CREDIT_SECS: f64 = 1.0;

/// The caps (from a node's `[peers]` or `[wire]` section).
#[derive(Clone, Debug)]
pub struct AdmissionConfig {
    /// Most connections at once, in any state.
    pub max_peers: usize,
    /// Most connections still in their handshake.
    pub max_handshakes: usize,
    /// Most pending handshakes from one address.
    pub max_handshakes_per_ip: usize,
    /// Most connections from one address.
    pub max_peers_per_ip: usize,
    /// Addresses the per-address caps do not apply to, whose handshakes are never evicted.
    pub trusted: Vec<IpAddr>,
    /// Listener addresses that front a Tor hidden service (an unspecified IP: any address on
    /// that port).
    pub onion_inbound: Vec<SocketAddr>,
}

impl AdmissionConfig {
    /// Whether a connection accepted at local address `local` came through an
    /// `onion_inbound` listener.
    pub fn is_onion(&self, local: Option<SocketAddr>) -> bool {
        local.is_some_and(|l| {
            self.onion_inbound
                .iter()
                .any(|o| o.port() == l.port() && (o.ip().is_unspecified() || o.ip() == l.ip()))
        })
    }
}

/// The admission keys of a node's peer section, as written in the config (each node's section
/// struct has these fields and builds one).
#[derive(Debug)]
pub struct RawAdmission {
    /// `max_peers`.
    pub max_peers: u64,
    /// `max_handshakes`.
    pub max_handshakes: u64,
    /// `max_handshakes_per_ip`.
    pub max_handshakes_per_ip: u64,
    /// `max_peers_per_ip`.
    pub max_peers_per_ip: u64,
    /// `trusted`: IP addresses.
    pub trusted: Vec<String>,
    /// `onion_inbound`: listener addresses ("host:port").
    pub onion_inbound: Vec<String>,
}

impl RawAdmission {
    /// Validates the keys of section `sec` (`peers`, `wire`), naming a bad one and its origin.
    pub fn read(
        &self,
        s: &super::settings::Section<'_>,
        sec: &str,
    ) -> Result<AdmissionConfig, String> {
        let key = |k: &str| format!("{sec}.{k}");
        let n = |k: &str, v: u64| s.range(&key(k), v, 1, 100_000).map(|v| v as usize);
        let mut trusted = Vec::new();
        for t in &self.trusted {
            trusted.push(t.parse::<IpAddr>().map_err(|_| {
                let shown: String = t.chars().take(64).flat_map(char::escape_default).collect();
                s.bad(&key("trusted"), format!("`{shown}` is not an IP address"))
            })?);
        }
        let mut onion_inbound = Vec::new();
        for o in &self.onion_inbound {
            onion_inbound.push(o.parse::<SocketAddr>().map_err(|_| {
                let shown: String = o.chars().take(64).flat_map(char::escape_default).collect();
                s.bad(
                    &key("onion_inbound"),
                    format!("`{shown}` is not a listener address (IP:port)"),
                )
            })?);
        }
        Ok(AdmissionConfig {
            max_peers: n("max_peers", self.max_peers)?,
            max_handshakes: n("max_handshakes", self.max_handshakes)?,
            max_handshakes_per_ip: n("max_handshakes_per_ip", self.max_handshakes_per_ip)?,
            max_peers_per_ip: n("max_peers_per_ip", self.max_peers_per_ip)?,
            trusted,
            onion_inbound,
        })
    }
}

/// One existing connection, as admission sees it.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    /// The connection's number in its registry.
    pub conn: u64,
    /// Its remote address (none for an outbound connection not yet connected).
    pub ip: Option<IpAddr>,
    /// Whether the peer connected to us.
    pub inbound: bool,
    /// Whether its handshake is done.
    pub ready: bool,
    /// When it was opened.
    pub opened: Instant,
    /// Bytes received so far.
    pub bytes_in: u64,
    /// Whether it came through an `onion_inbound` listener (exempt from per-address caps).
    pub onion: bool,
}

impl Slot {
    /// Its progress: bytes received, with the starting credit, per second of age with its
    /// credit. A newcomer's is `CREDIT_BYTES / CREDIT_SECS`.
    fn progress(&self, now: Instant) -> f64 {
        let age = now.saturating_duration_since(self.opened).as_secs_f64();
        (self.bytes_in as f64 + CREDIT_BYTES) / (age + CREDIT_SECS)
    }
}

/// The newcomer's progress: its credit alone.
const NEWCOMER: f64 = CREDIT_BYTES / CREDIT_SECS;

/// Who knocks: the remote address, and whether it came through an `onion_inbound` listener.
#[derive(Clone, Copy, Debug)]
pub struct Newcomer {
    /// Its remote IP.
    pub ip: IpAddr,
    /// Whether its listener fronts a Tor hidden service.
    pub onion: bool,
}

/// What to do with a newcomer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let it in.
    Admit,
    /// Let it in after closing connection `conn` (a pending handshake that made the least
    /// progress for its age).
    Evict(u64),
    /// Close it: the reason (its kind, for the counters and the rate-limited log).
    Refuse(Refusal),
}

/// Why a newcomer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `max_handshakes_per_ip` pending handshakes from its address already, all of them
    /// making more progress than a newcomer.
    HandshakesPerIp,
    /// `max_peers_per_ip` connections from its address already.
    PeersPerIp,
    /// `max_peers` connections, none of them an evictable handshake.
    Full,
    /// `max_handshakes` pending, none of them evictable (all on schedule, trusted or
    /// outbound).
    Handshakes,
}

impl Refusal {
    /// What the log and `info` call it.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::HandshakesPerIp => "handshakes from this address (max_handshakes_per_ip)",
            Refusal::PeersPerIp => "connections from this address (max_peers_per_ip)",
            Refusal::Full => "connections (max_peers)",
            Refusal::Handshakes => "handshakes in progress (max_handshakes)",
        }
    }
}

/// Decides on `newcomer` at `now`, given the existing connections (those already being
/// closed left out).
pub fn admit(
    cfg: &AdmissionConfig,
    newcomer: Newcomer,
    now: Instant,
    slots: impl IntoIterator<Item = Slot>,
) -> Verdict {
    let trusted = |ip: Option<IpAddr>| ip.is_some_and(|ip| cfg.trusted.contains(&ip));
    let capped = !newcomer.onion && !trusted(Some(newcomer.ip));
    let (mut total, mut pending, mut from_ip, mut pending_from_ip) = (0, 0, 0, 0);
    // The evictable handshakes with the least progress: of all, and of the newcomer's
    // address (its per-address share: not through an onion listener).
    let mut victim: Option<(f64, u64)> = None;
    let mut victim_from_ip: Option<(f64, u64)> = None;
    let lower = |v: &Option<(f64, u64)>, p: f64| v.is_none_or(|(q, _)| p < q);
    for s in slots {
        total += 1;
        let same = !s.onion && s.ip == Some(newcomer.ip);
        from_ip += usize::from(same);
        if s.ready {
            continue;
        }
        pending += 1;
        pending_from_ip += usize::from(same);
        if !s.inbound || trusted(s.ip) {
            continue;
        }
        let p = s.progress(now);
        if p >= NEWCOMER {
            continue;
        }
        if lower(&victim, p) {
            victim = Some((p, s.conn));
        }
        if same && lower(&victim_from_ip, p) {
            victim_from_ip = Some((p, s.conn));
        }
    }
    if capped {
        // The newcomer takes the place of its address's slowest handshake: the counts stay.
        if pending_from_ip >= cfg.max_handshakes_per_ip {
            return match victim_from_ip {
                Some((_, conn)) => Verdict::Evict(conn),
                None => Verdict::Refuse(Refusal::HandshakesPerIp),
            };
        }
        if from_ip >= cfg.max_peers_per_ip {
            return match victim_from_ip {
                Some((_, conn)) => Verdict::Evict(conn),
                None => Verdict::Refuse(Refusal::PeersPerIp),
            };
        }
    }
    if total >= cfg.max_peers || pending >= cfg.max_handshakes {
        return match victim {
            Some((_, conn)) => Verdict::Evict(conn),
            None if total >= cfg.max_peers => Verdict::Refuse(Refusal::Full),
            None => Verdict::Refuse(Refusal::Handshakes),
        };
    }
    Verdict::Admit
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg() -> AdmissionConfig {
        AdmissionConfig {
            max_peers: 5,
            max_handshakes: 3,
            max_handshakes_per_ip: 2,
            max_peers_per_ip: 4,
            trusted: vec!["10.0.0.9".parse().unwrap()],
            onion_inbound: vec![],
        }
    }

    fn slot(conn: u64, ip: &str, ready: bool, age_ms: u64, bytes: u64, now: Instant) -> Slot {
        Slot {
            conn,
            ip: Some(ip.parse().unwrap()),
            inbound: true,
            ready,
            opened: now - Duration::from_millis(age_ms),
            bytes_in: bytes,
            onion: false,
        }
    }

    fn from(ip: &str) -> Newcomer {
        Newcomer {
            ip: ip.parse().unwrap(),
            onion: false,
        }
    }

    fn onion(ip: &str) -> Newcomer {
        Newcomer {
            onion: true,
            ..from(ip)
        }
    }

    #[test]
    fn slow_handshakes_make_room_and_ready_peers_never_do() {
        let now = Instant::now() + Duration::from_secs(10);
        // Three pending from three addresses: the table is full. The one with the least
        // progress for its age goes (2 bytes in 4 s is worse than 5 in 2 s).
        let pending = [
            slot(1, "10.0.0.1", false, 2_000, 5, now),
            slot(2, "10.0.0.2", false, 4_000, 2, now),
            slot(3, "10.0.0.3", false, 3_000, 50, now),
        ];
        assert_eq!(
            admit(&cfg(), from("10.0.0.4"), now, pending),
            Verdict::Evict(2)
        );
        // Handshakes on schedule (an act in, a few ms old) are not evicted: the newcomer is
        // refused instead, however many arrive.
        let on_time = [
            slot(1, "10.0.0.1", false, 3, 50, now),
            slot(2, "10.0.0.2", false, 5, 50, now),
            slot(3, "10.0.0.3", false, 400, 50, now),
        ];
        assert_eq!(
            admit(&cfg(), from("10.0.0.4"), now, on_time),
            Verdict::Refuse(Refusal::Handshakes)
        );
        // Silent ones all made less progress than a newcomer: the oldest goes first, so a
        // flood of fresh connections churns through its own and not through younger ones.
        let silent = [
            slot(1, "10.0.0.1", false, 30, 0, now),
            slot(2, "10.0.0.2", false, 10, 0, now),
            slot(3, "10.0.0.3", false, 20, 0, now),
        ];
        assert_eq!(
            admit(&cfg(), from("10.0.0.4"), now, silent),
            Verdict::Evict(1)
        );
        // One with its act in, among silent older ones, is the last to go.
        let mixed = [
            slot(1, "10.0.0.1", false, 2, 50, now),
            slot(2, "10.0.0.2", false, 10, 0, now),
            slot(3, "10.0.0.3", false, 900, 60, now),
        ];
        assert_eq!(
            admit(&cfg(), from("10.0.0.4"), now, mixed),
            Verdict::Evict(2)
        );
        // Five ready peers: full, and none of them is evicted.
        let ready: Vec<Slot> = (0..5)
            .map(|i| slot(i, &format!("10.0.1.{i}"), true, 60_000, 0, now))
            .collect();
        assert_eq!(
            admit(&cfg(), from("10.0.0.4"), now, ready.clone()),
            Verdict::Refuse(Refusal::Full)
        );
        // Four ready and one slow handshake: the handshake goes.
        let mut four = ready[..4].to_vec();
        four.push(slot(9, "10.0.0.1", false, 5_000, 1, now));
        assert_eq!(
            admit(&cfg(), from("10.0.0.4"), now, four),
            Verdict::Evict(9)
        );
        // Outbound and trusted handshakes are not evicted.
        let mut kept = silent;
        kept[0].inbound = false;
        kept[1].ip = Some("10.0.0.9".parse().unwrap());
        kept[2].bytes_in = 50;
        assert_eq!(
            admit(&cfg(), from("10.0.0.4"), now, kept),
            Verdict::Refuse(Refusal::Handshakes)
        );
    }

    #[test]
    fn at_its_cap_an_address_evicts_its_own_slowest_handshake() {
        let now = Instant::now() + Duration::from_secs(10);
        // Two pending from 10.0.0.1 (its cap): a newcomer from it takes the place of the one
        // with the least progress, not of another address's slower one.
        let two = [
            slot(1, "10.0.0.1", false, 100, 50, now),
            slot(2, "10.0.0.1", false, 3_000, 3, now),
            slot(3, "10.0.0.2", false, 9_000, 0, now),
        ];
        assert_eq!(admit(&cfg(), from("10.0.0.1"), now, two), Verdict::Evict(2));
        // Both on schedule: refused.
        let busy = [
            slot(1, "10.0.0.1", false, 2, 50, now),
            slot(2, "10.0.0.1", false, 1, 50, now),
        ];
        assert_eq!(
            admit(&cfg(), from("10.0.0.1"), now, busy),
            Verdict::Refuse(Refusal::HandshakesPerIp)
        );
        assert_eq!(admit(&cfg(), from("10.0.0.2"), now, busy), Verdict::Admit);
        // Four connections from 10.0.0.1 (its cap), one of them a slow handshake: it goes.
        let mut four: Vec<Slot> = (0..3)
            .map(|i| slot(i, "10.0.0.1", true, 100, 0, now))
            .collect();
        four.push(slot(7, "10.0.0.1", false, 2_000, 1, now));
        assert_eq!(
            admit(&cfg(), from("10.0.0.1"), now, four.clone()),
            Verdict::Evict(7)
        );
        four[3].ready = true;
        assert_eq!(
            admit(&cfg(), from("10.0.0.1"), now, four),
            Verdict::Refuse(Refusal::PeersPerIp)
        );
    }

    #[test]
    fn onion_listeners_and_trusted_addresses_skip_the_per_address_caps() {
        let now = Instant::now() + Duration::from_secs(10);
        let ready = |n: u64, onion: bool| -> Vec<Slot> {
            (0..n)
                .map(|i| Slot {
                    onion,
                    ..slot(i, "127.0.0.1", true, 100, 0, now)
                })
                .collect()
        };
        // Four ready from 127.0.0.1 through the onion listener: a fifth connects there ...
        let big = AdmissionConfig {
            max_peers: 100,
            ..cfg()
        };
        assert_eq!(
            admit(&big, onion("127.0.0.1"), now, ready(4, true)),
            Verdict::Admit
        );
        // ... and they do not count against 127.0.0.1 on a plain listener.
        assert_eq!(
            admit(&big, from("127.0.0.1"), now, ready(4, true)),
            Verdict::Admit
        );
        assert_eq!(
            admit(&big, from("127.0.0.1"), now, ready(4, false)),
            Verdict::Refuse(Refusal::PeersPerIp)
        );
        // Pending onion handshakes are held to the global cap, and evicted under it.
        let mut pending: Vec<Slot> = ready(3, true);
        for s in &mut pending {
            s.ready = false;
        }
        pending[1].opened = now - Duration::from_secs(3);
        assert_eq!(
            admit(&big, onion("127.0.0.1"), now, pending),
            Verdict::Evict(1)
        );
        // The global cap holds for onion peers too.
        assert_eq!(
            admit(&cfg(), onion("127.0.0.1"), now, ready(5, true)),
            Verdict::Refuse(Refusal::Full)
        );
        // Trusted addresses skip the per-address caps.
        let trusted: Vec<Slot> = (0..4)
            .map(|i| slot(i, "10.0.0.9", true, 100, 0, now))
            .collect();
        assert_eq!(
            admit(&cfg(), from("10.0.0.9"), now, trusted),
            Verdict::Admit
        );
    }
}
