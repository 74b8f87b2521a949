//! The block download scheduler, sans I/O: which block to ask which ready peer for, when a
//! request has stalled, and which downloaded blocks are next in order. Time comes in as an
//! argument; the caller sends the requests [`Downloader::poll`] returns, checks each block
//! ([`crate::wire::btc::block`]) and hands the checked ones back with [`Downloader::deliver`].
//!
//! - A window of heights ahead of the next one to index is spread over the ready peers, each
//!   with at most its *share* of requests in flight (16 at most, Core's
//!   `MAX_BLOCKS_IN_TRANSIT_PER_PEER`). Downloaded blocks wait in memory for the ones below them,
//!   within a byte budget; the next height is always asked for, so the budget never blocks it.
//! - A request unanswered within the stall timeout is taken back and asked of another peer;
//!   the peer that stalled loses half its share (at least one remains), and each block it then
//!   delivers wins one back.
//! - A block a peer was asked for and delivered after the request moved on is *late* (ignored);
//!   one it was never asked for is *unrequested* (the caller discourages the peer).
//! - Blocks whose hash is no longer the best chain's at their height (a reorganisation) are
//!   dropped, in flight or waiting.

use bitcoin::{Block, BlockHash};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The scheduler's limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Heights ahead of the next one that may be in flight or waiting.
    pub window: u32,
    /// Most requests in flight per peer (its full share).
    pub per_peer: usize,
    /// Bytes of downloaded blocks that may wait for a lower one.
    pub max_buffered: usize,
    /// A request unanswered this long has stalled.
    pub stall: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            window: 256,
            per_peer: 16,
            max_buffered: 64 << 20,
            stall: Duration::from_secs(10),
        }
    }
}

struct Flight {
    height: u32,
    peer: u64,
    since: Instant,
}

struct PeerSlot {
    share: usize,
    in_flight: usize,
    /// The last hashes asked of this peer (to tell a late block from an unrequested one).
    asked: VecDeque<BlockHash>,
}

/// What a block that arrived from a peer is to the scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// Asked of this peer and still wanted: check it, then [`Downloader::deliver`] it (or
    /// [`Downloader::failed`] if it fails).
    Expected(u32),
    /// Asked of this peer once, no longer wanted from it (stalled, reorganised, or delivered).
    Late,
    /// Never asked of this peer.
    Unrequested,
}

/// Requests to send: `getdata` for these hashes to this peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Poll {
    /// (peer, hashes to ask for).
    pub requests: Vec<(u64, Vec<BlockHash>)>,
    /// (peer, height) of each request that stalled in this poll.
    pub stalled: Vec<(u64, u32)>,
}

/// The scheduler.
pub struct Downloader {
    limits: Limits,
    next: u32,
    inflight: HashMap<BlockHash, Flight>,
    ready: BTreeMap<u32, (BlockHash, Block, usize)>,
    buffered: usize,
    peers: BTreeMap<u64, PeerSlot>,
    /// Height -> the peer that last stalled or failed on it (asked of another when possible).
    avoid: HashMap<u32, u64>,
}

impl Downloader {
    /// A scheduler whose next block is at `next`.
    pub fn new(limits: Limits, next: u32) -> Downloader {
        Downloader {
            limits,
            next,
            inflight: HashMap::new(),
            ready: BTreeMap::new(),
            buffered: 0,
            peers: BTreeMap::new(),
            avoid: HashMap::new(),
        }
    }

    /// The height of the next block to hand out.
    pub fn next(&self) -> u32 {
        self.next
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// Blocks downloaded and waiting for a lower one, and their bytes.
    pub fn waiting(&self) -> (usize, usize) {
        (self.ready.len(), self.buffered)
    }

    /// A peer's current share (`None` for an unknown peer).
    pub fn share(&self, peer: u64) -> Option<usize> {
        self.peers.get(&peer).map(|p| p.share)
    }

    /// A ready peer to download from.
    pub fn add_peer(&mut self, peer: u64) {
        let share = self.limits.per_peer.max(1);
        self.peers.entry(peer).or_insert(PeerSlot {
            share,
            in_flight: 0,
            asked: VecDeque::new(),
        });
    }

    /// A peer is gone: what it had in flight is asked of others.
    pub fn remove_peer(&mut self, peer: u64) {
        self.peers.remove(&peer);
        self.inflight.retain(|_, f| f.peer != peer);
        self.avoid.retain(|_, p| *p != peer);
    }

    /// The best chain now forks below `height`: blocks from there are asked again (those still
    /// on the best chain stay; [`Downloader::poll`] drops the others).
    pub fn rewind(&mut self, height: u32) {
        self.next = self.next.min(height);
    }

    /// Sets the next height (the index moved without us, e.g. the range start was set).
    pub fn reset(&mut self, next: u32) {
        self.next = next;
        self.ready.clear();
        self.buffered = 0;
        let peers = &mut self.peers;
        for f in self.inflight.values() {
            if let Some(p) = peers.get_mut(&f.peer) {
                p.in_flight = p.in_flight.saturating_sub(1);
            }
        }
        self.inflight.clear();
    }

    fn take_flight(&mut self, hash: &BlockHash) -> Option<Flight> {
        let f = self.inflight.remove(hash)?;
        if let Some(p) = self.peers.get_mut(&f.peer) {
            p.in_flight = p.in_flight.saturating_sub(1);
        }
        Some(f)
    }

    /// Drops what left the best chain, takes back stalled requests, and hands out the missing
    /// heights of the window (up to `tip`) to peers with room in their share.
    pub fn poll(
        &mut self,
        now: Instant,
        tip: u32,
        hash_at: impl Fn(u32) -> Option<BlockHash>,
    ) -> Poll {
        let mut out = Poll::default();
        // Reorganised away (or below the next height after a reset).
        let next = self.next;
        let stale: Vec<u32> = self
            .ready
            .iter()
            .filter(|(h, (hash, _, _))| **h < next || hash_at(**h) != Some(*hash))
            .map(|(h, _)| *h)
            .collect();
        for h in stale {
            if let Some((_, _, size)) = self.ready.remove(&h) {
                self.buffered -= size;
            }
        }
        let gone: Vec<BlockHash> = self
            .inflight
            .iter()
            .filter(|(hash, f)| f.height < next || hash_at(f.height) != Some(**hash))
            .map(|(hash, _)| *hash)
            .collect();
        for hash in gone {
            self.take_flight(&hash);
        }
        // Stalls.
        let stall = self.limits.stall;
        let stalled: Vec<BlockHash> = self
            .inflight
            .iter()
            .filter(|(_, f)| now.saturating_duration_since(f.since) >= stall)
            .map(|(hash, _)| *hash)
            .collect();
        let mut stallers = std::collections::BTreeSet::new();
        for hash in stalled {
            if let Some(f) = self.take_flight(&hash) {
                stallers.insert(f.peer);
                self.avoid.insert(f.height, f.peer);
                out.stalled.push((f.peer, f.height));
            }
        }
        // Once per poll, however many of its requests stalled.
        for peer in stallers {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.share = (p.share / 2).max(1);
            }
        }
        out.stalled.sort_unstable();
        // Assignments.
        let last = tip.min(
            self.next
                .saturating_add(self.limits.window.saturating_sub(1)),
        );
        let mut asks: BTreeMap<u64, Vec<BlockHash>> = BTreeMap::new();
        let mut h = self.next;
        while h <= last {
            let Some(hash) = hash_at(h) else { break };
            if self.ready.contains_key(&h) || self.inflight.contains_key(&hash) {
                h += 1;
                continue;
            }
            if h != self.next && self.buffered >= self.limits.max_buffered {
                break;
            }
            let avoid = self.avoid.get(&h).copied();
            let free = |(id, p): (&u64, &PeerSlot)| (p.in_flight < p.share).then_some(*id);
            let pick = |skip: Option<u64>| {
                self.peers
                    .iter()
                    .filter(|(id, _)| Some(**id) != skip)
                    .filter_map(free)
                    .min_by_key(|id| (self.peers[id].in_flight, *id))
            };
            let Some(peer) = pick(avoid).or_else(|| pick(None)) else {
                break;
            };
            let slot = self.peers.get_mut(&peer).expect("picked from peers");
            slot.in_flight += 1;
            slot.asked.push_back(hash);
            let keep = self.limits.per_peer.max(1) * 4;
            while slot.asked.len() > keep {
                slot.asked.pop_front();
            }
            self.inflight.insert(
                hash,
                Flight {
                    height: h,
                    peer,
                    since: now,
                },
            );
            asks.entry(peer).or_default().push(hash);
            h += 1;
        }
        out.requests = asks.into_iter().collect();
        out
    }

    /// A block with `hash` arrived from `peer`.
    pub fn received(&mut self, peer: u64, hash: &BlockHash) -> Arrival {
        match self.inflight.get(hash) {
            Some(f) if f.peer == peer => {
                let f = self.take_flight(hash).expect("just seen");
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.share = (p.share + 1).min(self.limits.per_peer.max(1));
                }
                Arrival::Expected(f.height)
            }
            _ => {
                let asked = self
                    .peers
                    .get(&peer)
                    .is_some_and(|p| p.asked.contains(hash));
                if asked {
                    Arrival::Late
                } else {
                    Arrival::Unrequested
                }
            }
        }
    }

    /// The peer does not have `hash`: asked of another.
    pub fn not_found(&mut self, peer: u64, hash: &BlockHash) {
        if self.inflight.get(hash).is_some_and(|f| f.peer == peer) {
            let f = self.take_flight(hash).expect("just seen");
            self.avoid.insert(f.height, peer);
        }
    }

    /// The block at `height` from `peer` failed its checks: asked of another.
    pub fn failed(&mut self, peer: u64, height: u32) {
        self.avoid.insert(height, peer);
    }

    /// A checked block for `height` (`size` bytes), from an [`Arrival::Expected`].
    pub fn deliver(&mut self, height: u32, block: Block, size: usize) {
        if height < self.next || self.ready.contains_key(&height) {
            return;
        }
        self.avoid.remove(&height);
        self.buffered += size;
        self.ready.insert(height, (block.block_hash(), block, size));
    }

    /// The next block in order, if it is here and still on the best chain.
    pub fn pop(&mut self, hash_at: impl Fn(u32) -> Option<BlockHash>) -> Option<(u32, Block)> {
        let (h, (hash, _, _)) = self.ready.first_key_value()?;
        if *h != self.next || hash_at(*h) != Some(*hash) {
            return None;
        }
        let (h, (_, block, size)) = self.ready.pop_first().expect("just seen");
        self.buffered -= size;
        self.next = h + 1;
        Some((h, block))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::blockdata::constants::genesis_block;
    use bitcoin::Network;

    /// A chain of distinct fake blocks (only their hashes matter to the scheduler).
    fn chain(n: u32) -> Vec<Block> {
        (0..n)
            .map(|i| {
                let mut b = genesis_block(Network::Regtest);
                b.header.nonce = i;
                b
            })
            .collect()
    }

    fn at(c: &[Block]) -> impl Fn(u32) -> Option<BlockHash> + '_ {
        move |h| c.get(h as usize).map(|b| b.block_hash())
    }

    fn limits() -> Limits {
        Limits {
            window: 32,
            per_peer: 4,
            max_buffered: 1 << 20,
            stall: Duration::from_millis(2_000),
        }
    }

    fn height_of(c: &[Block], hash: &BlockHash) -> u32 {
        c.iter().position(|b| b.block_hash() == *hash).unwrap() as u32
    }

    /// `peer` delivers `hash`, which must be expected of it; its height.
    fn arrives(d: &mut Downloader, c: &[Block], peer: u64, hash: &BlockHash, size: usize) -> u32 {
        let h = match d.received(peer, hash) {
            Arrival::Expected(h) => h,
            other => panic!("{other:?}"),
        };
        d.deliver(h, c[h as usize].clone(), size);
        h
    }

    #[test]
    fn spreads_the_window_over_peers_and_pops_in_order() {
        let c = chain(20);
        let t0 = Instant::now();
        let mut d = Downloader::new(limits(), 1);
        d.add_peer(1);
        d.add_peer(2);
        let p = d.poll(t0, 19, at(&c));
        let asked: usize = p.requests.iter().map(|(_, h)| h.len()).sum();
        assert_eq!(asked, 8, "two peers, four each");
        assert_eq!(p.requests.len(), 2);
        // Deliver in reverse order: nothing pops until height 1 is in.
        let mut all: Vec<(u64, BlockHash)> = p
            .requests
            .iter()
            .flat_map(|(peer, hs)| hs.iter().map(move |h| (*peer, *h)))
            .collect();
        all.sort_by_key(|(_, h)| std::cmp::Reverse(height_of(&c, h)));
        for (peer, hash) in &all {
            let height = arrives(&mut d, &c, *peer, hash, 100);
            if height != 1 {
                assert!(d.pop(at(&c)).is_none());
            }
        }
        let popped: Vec<u32> = std::iter::from_fn(|| d.pop(at(&c)).map(|(h, _)| h)).collect();
        assert_eq!(popped, (1..=8).collect::<Vec<_>>());
        assert_eq!(d.next(), 9);
        assert_eq!(d.waiting(), (0, 0));
    }

    #[test]
    fn a_stalled_request_moves_and_the_staller_loses_its_share() {
        let c = chain(10);
        let t0 = Instant::now();
        let mut d = Downloader::new(limits(), 1);
        d.add_peer(1);
        let first = d.poll(t0, 9, at(&c));
        assert_eq!(
            first.requests,
            vec![(1, c[1..5].iter().map(|b| b.block_hash()).collect())]
        );
        d.add_peer(2);
        // Peer 2 gets the next four; after the stall timeout peer 1's four move to peer 2 as
        // its room allows, and peer 1's share halves.
        let p = d.poll(t0 + Duration::from_millis(100), 9, at(&c));
        assert_eq!(p.requests[0].0, 2);
        for hash in &p.requests[0].1 {
            arrives(&mut d, &c, 2, hash, 10);
        }
        let p = d.poll(t0 + Duration::from_millis(2_000), 9, at(&c));
        assert_eq!(p.stalled.len(), 4);
        assert!(p.stalled.iter().all(|(peer, _)| *peer == 1));
        assert_eq!(d.share(1), Some(2));
        let to_2: Vec<u32> = p
            .requests
            .iter()
            .filter(|(peer, _)| *peer == 2)
            .flat_map(|(_, hs)| hs.iter().map(|h| height_of(&c, h)))
            .collect();
        assert_eq!(
            to_2,
            vec![1, 2, 3, 4],
            "the stalled heights go to the other peer"
        );
        // Peer 1's late delivery is ignored, not counted as unrequested.
        assert_eq!(d.received(1, &c[1].block_hash()), Arrival::Late);
        let stranger = genesis_block(Network::Bitcoin).block_hash();
        assert_eq!(d.received(1, &stranger), Arrival::Unrequested);
    }

    #[test]
    fn share_recovers_one_block_at_a_time() {
        let c = chain(40);
        let t0 = Instant::now();
        let mut d = Downloader::new(limits(), 1);
        d.add_peer(1);
        d.poll(t0, 39, at(&c));
        let p = d.poll(t0 + Duration::from_secs(3), 39, at(&c));
        assert_eq!(d.share(1), Some(2));
        // With one peer the stalled heights go back to it (there is no other).
        let asked: Vec<BlockHash> = p.requests.iter().flat_map(|(_, h)| h.clone()).collect();
        assert_eq!(asked.len(), 2);
        arrives(&mut d, &c, 1, &asked[0], 10);
        assert_eq!(d.share(1), Some(3));
    }

    #[test]
    fn a_gone_peer_s_requests_are_asked_again() {
        let c = chain(10);
        let t0 = Instant::now();
        let mut d = Downloader::new(limits(), 1);
        d.add_peer(1);
        d.poll(t0, 9, at(&c));
        assert_eq!(d.in_flight(), 4);
        d.remove_peer(1);
        assert_eq!(d.in_flight(), 0);
        d.add_peer(2);
        let p = d.poll(t0, 9, at(&c));
        assert_eq!(p.requests[0].1[0], c[1].block_hash());
    }

    #[test]
    fn not_found_and_failed_blocks_go_elsewhere() {
        let c = chain(4);
        let t0 = Instant::now();
        let mut d = Downloader::new(limits(), 1);
        d.add_peer(1);
        d.add_peer(2);
        let p = d.poll(t0, 3, at(&c));
        let (peer, hashes) = p.requests[0].clone();
        let other = if peer == 1 { 2 } else { 1 };
        d.not_found(peer, &hashes[0]);
        let h0 = height_of(&c, &hashes[0]);
        let again = d.poll(t0, 3, at(&c));
        assert_eq!(again.requests, vec![(other, vec![hashes[0]])]);
        // It fails its checks at `other`: back to `peer`, the only other one.
        assert_eq!(d.received(other, &hashes[0]), Arrival::Expected(h0));
        d.failed(other, h0);
        d.remove_peer(other);
        let third = d.poll(t0, 3, at(&c));
        // Height 2 was in flight with the peer that is gone.
        assert_eq!(
            third.requests,
            vec![(peer, vec![hashes[0], c[2].block_hash()])]
        );
    }

    #[test]
    fn a_reorganisation_drops_waiting_and_in_flight_blocks_of_the_old_branch() {
        let c = chain(10);
        let t0 = Instant::now();
        let mut d = Downloader::new(limits(), 1);
        d.add_peer(1);
        let p = d.poll(t0, 9, at(&c));
        for hash in &p.requests[0].1[1..] {
            arrives(&mut d, &c, 1, hash, 10);
        }
        assert_eq!(d.waiting().0, 3);
        // A new branch from height 3: blocks 3.. differ.
        let mut fork = c[..3].to_vec();
        for i in 3..12 {
            let mut b = genesis_block(Network::Regtest);
            b.header.nonce = 1000 + i;
            fork.push(b);
        }
        d.rewind(3);
        let p = d.poll(t0, 11, at(&fork));
        assert_eq!(d.waiting().0, 1, "height 2 is on both branches");
        let asked: Vec<u32> = p.requests[0]
            .1
            .iter()
            .map(|h| height_of(&fork, h))
            .collect();
        assert_eq!(
            asked,
            vec![3, 4, 5],
            "height 1 still in flight, three more of the new branch"
        );
        assert!(d.pop(at(&fork)).is_none(), "height 1 is not in yet");
        assert_eq!(d.received(1, &c[1].block_hash()), Arrival::Expected(1));
        d.deliver(1, c[1].clone(), 10);
        let popped: Vec<u32> = std::iter::from_fn(|| d.pop(at(&fork)).map(|(h, _)| h)).collect();
        assert_eq!(popped, vec![1, 2]);
    }

    #[test]
    fn the_byte_budget_holds_back_all_but_the_next_height() {
        let c = chain(10);
        let t0 = Instant::now();
        let mut d = Downloader::new(
            Limits {
                max_buffered: 25,
                ..limits()
            },
            1,
        );
        d.add_peer(1);
        let p = d.poll(t0, 9, at(&c));
        for hash in &p.requests[0].1[1..] {
            arrives(&mut d, &c, 1, hash, 10);
        }
        // 30 bytes wait; height 1 is still in flight, nothing more is asked.
        let p = d.poll(t0, 9, at(&c));
        assert!(p.requests.is_empty());
        // Height 1 stalls: it is asked again although the budget is spent.
        let p = d.poll(t0 + Duration::from_secs(2), 9, at(&c));
        assert_eq!(p.requests, vec![(1, vec![c[1].block_hash()])]);
    }

    #[test]
    fn nothing_past_the_tip_or_without_peers() {
        let c = chain(3);
        let t0 = Instant::now();
        let mut d = Downloader::new(limits(), 1);
        assert_eq!(d.poll(t0, 2, at(&c)), Poll::default());
        d.add_peer(7);
        let p = d.poll(t0, 2, at(&c));
        assert_eq!(
            p.requests,
            vec![(7, vec![c[1].block_hash(), c[2].block_hash()])]
        );
        let p = d.poll(t0, 2, at(&c));
        assert!(p.requests.is_empty(), "no request twice");
    }
}
