//! Admission of inbound peer connections, shared by every P2P listener (Lightning, Bifrost,
//! Bitcoin): the caps on connections and handshakes, per source address, and what happens when
//! the handshake table is full.
//!
//! A full handshake table does not lock newcomers out (one attacker with 100 slow sockets
//! would otherwise keep a node off the network): the pending inbound handshake that made the
//! least progress for its age is evicted instead. An honest handshake completes in
//! milliseconds, so it wins against any number of slow ones. Connections that completed their
//! handshake are never evicted for a newcomer, nor are outbound ones, nor handshakes younger
//! than [`EVICTION_GRACE`], nor trusted addresses.

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A pending handshake younger than this is never evicted: its first bytes may still be on
/// the way. Our own choice: an honest act 1 arrives in one round trip; the attacks this is
/// for hold a slot for seconds.
pub const EVICTION_GRACE: Duration = Duration::from_secs(1);

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
        Ok(AdmissionConfig {
            max_peers: n("max_peers", self.max_peers)?,
            max_handshakes: n("max_handshakes", self.max_handshakes)?,
            max_handshakes_per_ip: n("max_handshakes_per_ip", self.max_handshakes_per_ip)?,
            max_peers_per_ip: n("max_peers_per_ip", self.max_peers_per_ip)?,
            trusted,
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
    /// `max_handshakes_per_ip` pending handshakes from its address already.
    HandshakesPerIp,
    /// `max_peers_per_ip` connections from its address already.
    PeersPerIp,
    /// `max_peers` connections, none of them an evictable handshake.
    Full,
    /// `max_handshakes` pending, none of them evictable (all young, trusted or outbound).
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

/// Decides on a newcomer from `ip` at `now`, given the existing connections.
pub fn admit(
    cfg: &AdmissionConfig,
    ip: IpAddr,
    now: Instant,
    slots: impl IntoIterator<Item = Slot>,
) -> Verdict {
    let trusted = |ip: Option<IpAddr>| ip.is_some_and(|ip| cfg.trusted.contains(&ip));
    let (mut total, mut pending, mut from_ip, mut pending_from_ip) = (0, 0, 0, 0);
    // The evictable handshake with the least bytes per second of age.
    let mut victim: Option<(f64, u64)> = None;
    for s in slots {
        total += 1;
        let same = s.ip == Some(ip);
        from_ip += usize::from(same);
        if s.ready {
            continue;
        }
        pending += 1;
        pending_from_ip += usize::from(same);
        let age = now.saturating_duration_since(s.opened);
        if s.inbound && !trusted(s.ip) && age >= EVICTION_GRACE {
            let rate = s.bytes_in as f64 / age.as_secs_f64();
            if victim.is_none_or(|(r, _)| rate < r) {
                victim = Some((rate, s.conn));
            }
        }
    }
    if !trusted(Some(ip)) {
        if pending_from_ip >= cfg.max_handshakes_per_ip {
            return Verdict::Refuse(Refusal::HandshakesPerIp);
        }
        if from_ip >= cfg.max_peers_per_ip {
            return Verdict::Refuse(Refusal::PeersPerIp);
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

    fn cfg() -> AdmissionConfig {
        AdmissionConfig {
            max_peers: 5,
            max_handshakes: 3,
            max_handshakes_per_ip: 2,
            max_peers_per_ip: 4,
            trusted: vec!["10.0.0.9".parse().unwrap()],
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
        }
    }

    #[test]
    fn slow_handshakes_make_room_and_ready_peers_never_do() {
        let now = Instant::now() + Duration::from_secs(10);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Three pending from three addresses: the table is full. The one with the fewest bytes
        // per second of age goes (2 bytes in 4 s beats 5 bytes in 2 s).
        let pending = [
            slot(1, "10.0.0.1", false, 2_000, 5, now),
            slot(2, "10.0.0.2", false, 4_000, 2, now),
            slot(3, "10.0.0.3", false, 3_000, 50, now),
        ];
        assert_eq!(
            admit(&cfg(), ip("10.0.0.4"), now, pending),
            Verdict::Evict(2)
        );
        // Young ones are not evicted: the newcomer is refused instead.
        let young = [
            slot(1, "10.0.0.1", false, 10, 0, now),
            slot(2, "10.0.0.2", false, 20, 0, now),
            slot(3, "10.0.0.3", false, 30, 0, now),
        ];
        assert_eq!(
            admit(&cfg(), ip("10.0.0.4"), now, young),
            Verdict::Refuse(Refusal::Handshakes)
        );
        // Five ready peers: full, and none of them is evicted.
        let ready: Vec<Slot> = (0..5)
            .map(|i| slot(i, &format!("10.0.1.{i}"), true, 60_000, 0, now))
            .collect();
        assert_eq!(
            admit(&cfg(), ip("10.0.0.4"), now, ready.clone()),
            Verdict::Refuse(Refusal::Full)
        );
        // Four ready and one slow handshake: the handshake goes.
        let mut mixed = ready[..4].to_vec();
        mixed.push(slot(9, "10.0.0.1", false, 5_000, 1, now));
        assert_eq!(admit(&cfg(), ip("10.0.0.4"), now, mixed), Verdict::Evict(9));
        // Outbound and trusted handshakes are not evicted.
        let mut kept = young;
        kept[0].opened = now - Duration::from_secs(9);
        kept[0].inbound = false;
        kept[1].opened = now - Duration::from_secs(9);
        kept[1].ip = Some(ip("10.0.0.9"));
        assert_eq!(
            admit(&cfg(), ip("10.0.0.4"), now, kept),
            Verdict::Refuse(Refusal::Handshakes)
        );
    }

    #[test]
    fn per_address_caps_hold_except_for_trusted_addresses() {
        let now = Instant::now() + Duration::from_secs(10);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let two = [
            slot(1, "10.0.0.1", false, 100, 0, now),
            slot(2, "10.0.0.1", false, 100, 0, now),
        ];
        assert_eq!(
            admit(&cfg(), ip("10.0.0.1"), now, two),
            Verdict::Refuse(Refusal::HandshakesPerIp)
        );
        assert_eq!(admit(&cfg(), ip("10.0.0.2"), now, two), Verdict::Admit);
        let four: Vec<Slot> = (0..4)
            .map(|i| slot(i, "10.0.0.1", true, 100, 0, now))
            .collect();
        assert_eq!(
            admit(&cfg(), ip("10.0.0.1"), now, four.clone()),
            Verdict::Refuse(Refusal::PeersPerIp)
        );
        let trusted: Vec<Slot> = (0..4)
            .map(|i| slot(i, "10.0.0.9", true, 100, 0, now))
            .collect();
        assert_eq!(admit(&cfg(), ip("10.0.0.9"), now, trusted), Verdict::Admit);
    }
}
