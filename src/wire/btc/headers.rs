//! The header chain as pure code: proof of work against the required target, difficulty
//! retargeting of each network (mainnet, testnet3 with its 20-minute rule, testnet4 with BIP94,
//! signet, regtest), the timestamp rules (above the median of the last 11, at most 2 h ahead of
//! the clock passed in), the best chain by cumulative work and reorganisation to a heavier
//! branch. No I/O; the caller stores what [`Change`] reports.

use bitcoin::block::Header;
use bitcoin::consensus::Params;
use bitcoin::pow::{CompactTarget, Work};
use bitcoin::{BlockHash, Network};
use std::collections::HashMap;
use std::fmt;

/// Headers may be at most this far ahead of the local clock (Core `MAX_FUTURE_BLOCK_TIME`).
pub const MAX_FUTURE_SECS: u32 = 2 * 60 * 60;
/// BIP94 (testnet4): the first block of a period may not be older than its parent by more.
pub const MAX_TIMEWARP_SECS: u32 = 600;
/// Blocks in the median-time-past window.
const MTP_WINDOW: usize = 11;
pub use crate::wire::limits::MAX_HEADERS_KNOWN;

/// Why a header was refused, with what the peer that sent it deserves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Its parent is unknown (Core counts these: a peer may be ahead or on a fork).
    Unconnected {
        /// The header's hash.
        hash: BlockHash,
    },
    /// Its `bits` are not the ones the rules require at its height.
    BadBits {
        /// Hash.
        hash: BlockHash,
        /// Required.
        expected: u32,
        /// Found.
        got: u32,
    },
    /// Its hash does not meet its target.
    BadPow {
        /// Hash.
        hash: BlockHash,
    },
    /// Its time is not above the median of the previous 11 (or breaks BIP94's timewarp rule).
    TimeTooOld {
        /// Hash.
        hash: BlockHash,
    },
    /// Its time is more than 2 h ahead of ours: not invalid for good, just not now.
    TimeTooNew {
        /// Hash.
        hash: BlockHash,
    },
    /// The headers of one message do not follow each other.
    NotContinuous,
    /// The index is full.
    Full,
}

impl HeaderError {
    /// Whether the sender broke a consensus rule (Core: discourage and disconnect) rather than
    /// being early, on a fork, or ahead of our clock.
    pub fn is_misbehaviour(&self) -> bool {
        matches!(
            self,
            HeaderError::BadBits { .. }
                | HeaderError::BadPow { .. }
                | HeaderError::TimeTooOld { .. }
                | HeaderError::NotContinuous
        )
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Unconnected { hash } => write!(f, "header {hash} does not connect"),
            HeaderError::BadBits {
                hash,
                expected,
                got,
            } => write!(
                f,
                "header {hash} has bits {got:#010x}, the rules require {expected:#010x}"
            ),
            HeaderError::BadPow { hash } => write!(f, "header {hash} does not meet its target"),
            HeaderError::TimeTooOld { hash } => {
                write!(f, "header {hash} is not above the median time past")
            }
            HeaderError::TimeTooNew { hash } => {
                write!(f, "header {hash} is more than 2 h in the future")
            }
            HeaderError::NotContinuous => f.write_str("headers do not follow each other"),
            HeaderError::Full => f.write_str("the header index is full"),
        }
    }
}

impl std::error::Error for HeaderError {}

/// One known header.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The header.
    pub header: Header,
    /// Its height.
    pub height: u32,
    /// Cumulative work up to and including it.
    pub chainwork: Work,
    /// The bits testnet's min-difficulty walk-back would find from here: the last block at or
    /// below this one that is a retarget boundary or not at the limit. Kept per entry so the
    /// walk is O(1) instead of up to 2,016 steps per header.
    pub last_real_bits: CompactTarget,
}

/// A block that joined or left the best chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// Height.
    pub height: u32,
    /// Hash.
    pub hash: BlockHash,
    /// Header.
    pub header: Header,
}

/// How the best chain changed: blocks that left it (tip first), then blocks that joined it
/// (lowest first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Blocks that left the best chain, from the old tip down.
    pub disconnected: Vec<Block>,
    /// Blocks that joined, from the fork point up to the new tip.
    pub connected: Vec<Block>,
}

/// The result of offering headers.
#[derive(Debug, Default)]
pub struct Accepted {
    /// Headers that were new to the index.
    pub new: usize,
    /// The best-chain change they caused.
    pub change: Change,
    /// The first refused header's error (the headers before it were kept).
    pub error: Option<HeaderError>,
}

/// The header index and best chain of one network.
pub struct HeaderChain {
    network: Network,
    params: Params,
    entries: HashMap<BlockHash, Entry>,
    /// Best chain, by height.
    best: Vec<BlockHash>,
}

impl HeaderChain {
    /// A chain holding only the genesis block of `network`.
    pub fn new(network: Network) -> HeaderChain {
        let params = Params::new(network);
        let genesis = bitcoin::blockdata::constants::genesis_block(&params).header;
        let hash = genesis.block_hash();
        let mut entries = HashMap::new();
        entries.insert(
            hash,
            Entry {
                header: genesis,
                height: 0,
                chainwork: genesis.work(),
                last_real_bits: genesis.bits,
            },
        );
        HeaderChain {
            network,
            params,
            entries,
            best: vec![hash],
        }
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.network
    }

    /// Height and hash of the best tip.
    pub fn tip(&self) -> (u32, BlockHash) {
        (
            (self.best.len() - 1) as u32,
            *self.best.last().expect("genesis"),
        )
    }

    /// Headers known (best chain and side branches).
    pub fn known(&self) -> usize {
        self.entries.len()
    }

    /// An entry by hash.
    pub fn get(&self, hash: &BlockHash) -> Option<&Entry> {
        self.entries.get(hash)
    }

    /// The best-chain hash at `height`.
    pub fn hash_at(&self, height: u32) -> Option<BlockHash> {
        self.best.get(height as usize).copied()
    }

    /// Whether `hash` is on the best chain.
    pub fn is_best(&self, hash: &BlockHash) -> bool {
        self.entries
            .get(hash)
            .is_some_and(|e| self.hash_at(e.height) == Some(*hash))
    }

    /// A block locator of the best chain: the last 10 hashes, then doubling steps, and genesis.
    pub fn locator(&self) -> Vec<BlockHash> {
        let mut out = Vec::new();
        let mut h = self.best.len() as i64 - 1;
        let mut step = 1;
        while h > 0 {
            out.push(self.best[h as usize]);
            if out.len() >= 10 {
                step *= 2;
            }
            h -= step;
        }
        out.push(self.best[0]);
        out
    }

    fn ancestor<'a>(&'a self, from: &'a Entry, height: u32) -> &'a Entry {
        let mut e = from;
        while e.height > height {
            e = &self.entries[&e.header.prev_blockhash];
        }
        e
    }

    fn median_time_past(&self, prev: &Entry) -> u32 {
        let mut times = Vec::with_capacity(MTP_WINDOW);
        let mut e = Some(prev);
        while let Some(x) = e.filter(|_| times.len() < MTP_WINDOW) {
            times.push(x.header.time);
            e = (x.height > 0).then(|| &self.entries[&x.header.prev_blockhash]);
        }
        times.sort_unstable();
        times[times.len() / 2]
    }

    /// The `bits` a header at `prev.height + 1` with time `time` must have (Core's
    /// `GetNextWorkRequired`).
    pub fn required_bits(&self, prev: &Entry, time: u32) -> CompactTarget {
        let p = &self.params;
        let interval = p.difficulty_adjustment_interval() as u32;
        let height = prev.height + 1;
        let pow_limit = p.max_attainable_target.to_compact_lossy();
        if !height.is_multiple_of(interval) {
            if p.allow_min_difficulty_blocks {
                // testnet3/4: a block more than 20 minutes after its parent may be at the limit.
                if time as u64 > prev.header.time as u64 + 2 * p.pow_target_spacing {
                    return pow_limit;
                }
                return prev.last_real_bits;
            }
            return prev.header.bits;
        }
        if p.no_pow_retargeting {
            return prev.header.bits;
        }
        let first = self.ancestor(prev, height - interval);
        let timespan = prev.header.time.saturating_sub(first.header.time) as u64;
        // BIP94 (testnet4): retarget from the period's first block, not the last, so a
        // min-difficulty block at the end cannot drag the next period down.
        let base = if self.network == Network::Testnet4 {
            first.header.bits
        } else {
            prev.header.bits
        };
        CompactTarget::from_next_work_required(base, timespan, p)
    }

    fn entry(&self, prev: &Entry, header: Header) -> Entry {
        let height = prev.height + 1;
        let interval = self.params.difficulty_adjustment_interval() as u32;
        let pow_limit = self.params.max_attainable_target.to_compact_lossy();
        let last_real_bits = if height.is_multiple_of(interval) || header.bits != pow_limit {
            header.bits
        } else {
            prev.last_real_bits
        };
        Entry {
            header,
            height,
            chainwork: prev.chainwork + header.work(),
            last_real_bits,
        }
    }

    fn check(
        &self,
        prev: &Entry,
        h: &Header,
        hash: BlockHash,
        now: u32,
    ) -> Result<(), HeaderError> {
        let expected = self.required_bits(prev, h.time);
        if h.bits != expected {
            return Err(HeaderError::BadBits {
                hash,
                expected: expected.to_consensus(),
                got: h.bits.to_consensus(),
            });
        }
        if !h.target().is_met_by(hash) {
            return Err(HeaderError::BadPow { hash });
        }
        if h.time <= self.median_time_past(prev) {
            return Err(HeaderError::TimeTooOld { hash });
        }
        let interval = self.params.difficulty_adjustment_interval() as u32;
        if self.network == Network::Testnet4
            && (prev.height + 1).is_multiple_of(interval)
            && h.time < prev.header.time.saturating_sub(MAX_TIMEWARP_SECS)
        {
            return Err(HeaderError::TimeTooOld { hash });
        }
        if h.time > now.saturating_add(MAX_FUTURE_SECS) {
            return Err(HeaderError::TimeTooNew { hash });
        }
        Ok(())
    }

    /// Offers headers (in order, each the child of the previous or of a known header). `now`
    /// is the local Unix time. Stops at the first refused header.
    pub fn accept(&mut self, headers: &[Header], now: u32) -> Accepted {
        let mut out = Accepted::default();
        let old_tip = self.tip().1;
        let mut best_new: Option<BlockHash> = None;
        let mut last_hash: Option<BlockHash> = None;
        for h in headers {
            let hash = h.block_hash();
            if last_hash.is_some_and(|l| l != h.prev_blockhash) {
                out.error = Some(HeaderError::NotContinuous);
                break;
            }
            last_hash = Some(hash);
            if self.entries.contains_key(&hash) {
                continue;
            }
            let Some(prev) = self.entries.get(&h.prev_blockhash) else {
                out.error = Some(HeaderError::Unconnected { hash });
                break;
            };
            if let Err(e) = self.check(prev, h, hash, now) {
                out.error = Some(e);
                break;
            }
            if self.entries.len() >= MAX_HEADERS_KNOWN {
                out.error = Some(HeaderError::Full);
                break;
            }
            let entry = self.entry(prev, *h);
            let heavier =
                |e: &Entry, than: Option<&Entry>| than.is_none_or(|t| e.chainwork > t.chainwork);
            let current = best_new
                .or(Some(old_tip))
                .and_then(|b| self.entries.get(&b));
            if heavier(&entry, current) {
                best_new = Some(hash);
            }
            self.entries.insert(hash, entry);
            out.new += 1;
        }
        if let Some(new_tip) = best_new {
            out.change = self.reorganise(new_tip);
        }
        out
    }

    /// Makes `new_tip` the best tip; returns what left and joined the best chain.
    fn reorganise(&mut self, new_tip: BlockHash) -> Change {
        let mut joining = Vec::new();
        let mut e = &self.entries[&new_tip];
        while self.hash_at(e.height) != Some(e.header.block_hash()) {
            joining.push(Block {
                height: e.height,
                hash: e.header.block_hash(),
                header: e.header,
            });
            e = &self.entries[&e.header.prev_blockhash];
        }
        let fork = e.height;
        let mut change = Change::default();
        for height in (fork + 1..self.best.len() as u32).rev() {
            let hash = self.best[height as usize];
            change.disconnected.push(Block {
                height,
                hash,
                header: self.entries[&hash].header,
            });
        }
        self.best.truncate(fork as usize + 1);
        joining.reverse();
        for b in &joining {
            self.best.push(b.hash);
        }
        change.connected = joining;
        change
    }

    /// Restores a stored best chain (each header the child of the previous, from height 1) without
    /// checking the rules again: the store only ever held checked headers. Stops at the first
    /// header that does not link.
    pub fn restore(&mut self, headers: impl IntoIterator<Item = Header>) -> usize {
        let mut n = 0;
        for h in headers {
            let tip = self.best.last().expect("genesis");
            if h.prev_blockhash != *tip {
                break;
            }
            let entry = self.entry(&self.entries[tip], h);
            let hash = h.block_hash();
            self.entries.insert(hash, entry);
            self.best.push(hash);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    //! Hand-checked vectors: the first mainnet retarget (block 32256: 0x1d00ffff and a span of
    //! 1,022,578 s between blocks 30240 and 32255 give 0x1d00d86a, checked by hand:
    //! 0xffff * 2^208 * 1022578 / 1209600 = 0xd86a... * 2^208); synthetic regtest chains mined
    //! here for the timestamp, fork and reorg rules.
    use super::*;
    use bitcoin::block::Version;
    use bitcoin::hashes::Hash;
    use bitcoin::TxMerkleNode;

    fn mine(prev: &Header, time: u32, bits: CompactTarget, salt: u32) -> Header {
        let mut h = Header {
            version: Version::from_consensus(0x2000_0000),
            prev_blockhash: prev.block_hash(),
            merkle_root: TxMerkleNode::from_byte_array([salt as u8; 32]),
            time,
            bits,
            nonce: 0,
        };
        while !h.target().is_met_by(h.block_hash()) {
            h.nonce += 1;
        }
        h
    }

    fn regtest_branch(from: &Header, n: u32, t0: u32, salt: u32) -> Vec<Header> {
        let bits = from.bits;
        let mut out: Vec<Header> = Vec::new();
        for i in 0..n {
            let prev = out.last().unwrap_or(from);
            out.push(mine(prev, t0 + i * 600, bits, salt));
        }
        out
    }

    const NOW: u32 = 1_800_000_000;

    #[test]
    fn first_mainnet_retarget() {
        let got = CompactTarget::from_next_work_required(
            CompactTarget::from_consensus(0x1d00ffff),
            1_262_152_739 - 1_261_130_161,
            Params::new(Network::Bitcoin),
        );
        assert_eq!(got.to_consensus(), 0x1d00d86a);
        // The retarget clamps to x4 either way.
        let fast = CompactTarget::from_next_work_required(
            CompactTarget::from_consensus(0x1b0404cb),
            1,
            Params::new(Network::Bitcoin),
        );
        assert_eq!(fast.to_consensus(), 0x1b01_0132);
    }

    #[test]
    fn regtest_chain_extends_and_times_are_checked() {
        let mut c = HeaderChain::new(Network::Regtest);
        let genesis = c.get(&c.tip().1).unwrap().header;
        let t0 = genesis.time + 600;
        let branch = regtest_branch(&genesis, 20, t0, 1);
        let a = c.accept(&branch, NOW);
        assert_eq!((a.new, a.error.clone()), (20, None));
        assert_eq!(a.change.connected.len(), 20);
        assert_eq!(c.tip(), (20, branch[19].block_hash()));
        // At or below the median of the last 11: refused, and that is misbehaviour.
        let tip = branch[19];
        let mtp = branch[14].time; // median of heights 10..=20
        let old = mine(&tip, mtp, tip.bits, 2);
        let err = c.accept(&[old], NOW).error.unwrap();
        assert!(matches!(err, HeaderError::TimeTooOld { .. }) && err.is_misbehaviour());
        let ok = mine(&tip, mtp + 1, tip.bits, 2);
        assert_eq!(c.accept(&[ok], NOW).error, None);
        // More than 2 h ahead of the clock: refused, not misbehaviour.
        let ahead = mine(&ok, NOW + MAX_FUTURE_SECS + 1, ok.bits, 3);
        let err = c.accept(&[ahead], NOW).error.unwrap();
        assert!(matches!(err, HeaderError::TimeTooNew { .. }) && !err.is_misbehaviour());
        let at_limit = mine(&ok, NOW + MAX_FUTURE_SECS, ok.bits, 3);
        assert_eq!(c.accept(&[at_limit], NOW).error, None);
    }

    #[test]
    fn bad_bits_bad_pow_unconnected_and_not_continuous() {
        let mut c = HeaderChain::new(Network::Regtest);
        let genesis = c.get(&c.tip().1).unwrap().header;
        let good = regtest_branch(&genesis, 2, genesis.time + 600, 1);
        let mut harder = good[0];
        harder.bits = CompactTarget::from_consensus(0x1d00ffff);
        assert!(matches!(
            c.accept(&[harder], NOW).error,
            Some(HeaderError::BadBits {
                expected: 0x207fffff,
                got: 0x1d00ffff,
                ..
            })
        ));
        let mut bad_pow = good[0];
        while bad_pow.target().is_met_by(bad_pow.block_hash()) {
            bad_pow.nonce += 1;
        }
        assert!(matches!(
            c.accept(&[bad_pow], NOW).error,
            Some(HeaderError::BadPow { .. })
        ));
        let err = c.accept(&[good[1]], NOW).error.unwrap();
        assert!(matches!(err, HeaderError::Unconnected { .. }) && !err.is_misbehaviour());
        assert_eq!(c.tip().0, 0);
        // good[0] is kept; the repeated one does not follow it.
        let err = c.accept(&[good[0], good[0]], NOW).error.unwrap();
        assert_eq!(err, HeaderError::NotContinuous);
        assert_eq!(c.tip().0, 1);
    }

    #[test]
    fn heavier_branch_reorganises_in_order() {
        let mut c = HeaderChain::new(Network::Regtest);
        let genesis = c.get(&c.tip().1).unwrap().header;
        let t0 = genesis.time + 600;
        let main = regtest_branch(&genesis, 10, t0, 1);
        c.accept(&main, NOW);
        // A fork from height 7 that is longer (4 blocks on 7 -> height 11).
        let fork = regtest_branch(&main[6], 3, t0 + 100_000, 2);
        let a = c.accept(&fork, NOW);
        assert!(
            a.change.connected.is_empty(),
            "equal work: first seen stays"
        );
        assert_eq!(c.tip().1, main[9].block_hash());
        let more = regtest_branch(&fork[2], 1, t0 + 200_000, 2);
        let a = c.accept(&more, NOW);
        let left: Vec<u32> = a.change.disconnected.iter().map(|b| b.height).collect();
        let joined: Vec<u32> = a.change.connected.iter().map(|b| b.height).collect();
        assert_eq!(left, vec![10, 9, 8]);
        assert_eq!(joined, vec![8, 9, 10, 11]);
        assert_eq!(c.tip(), (11, more[0].block_hash()));
        assert_eq!(c.hash_at(8), Some(fork[0].block_hash()));
        assert!(!c.is_best(&main[9].block_hash()));
        let loc = c.locator();
        assert_eq!(loc[0], more[0].block_hash());
        assert_eq!(*loc.last().unwrap(), genesis.block_hash());
    }

    #[test]
    fn testnet_twenty_minute_rule_and_walk_back() {
        // testnet3 parameters on a synthetic chain: build entries by hand (no real PoW needed
        // for required_bits).
        let mut c = HeaderChain::new(Network::Testnet);
        let genesis = c.get(&c.tip().1).unwrap().clone();
        let limit = c.params.max_attainable_target.to_compact_lossy();
        let normal = CompactTarget::from_consensus(0x1c00ffff);
        let mk = |c: &HeaderChain, prev: &Entry, time: u32, bits: CompactTarget| {
            let header = Header {
                version: Version::from_consensus(1),
                prev_blockhash: prev.header.block_hash(),
                merkle_root: TxMerkleNode::all_zeros(),
                time,
                bits,
                nonce: prev.height,
            };
            c.entry(prev, header)
        };
        let a = mk(&c, &genesis, genesis.header.time + 600, normal);
        let b = mk(&c, &a, a.header.time + 600, limit);
        let b2 = mk(&c, &b, b.header.time + 600, limit);
        for e in [&a, &b, &b2] {
            c.entries.insert(e.header.block_hash(), e.clone());
        }
        // 20 minutes + 1 s after b: the limit is allowed.
        assert_eq!(c.required_bits(&b, b.header.time + 1201), limit);
        // Sooner: walk back over min-difficulty blocks to the last real one (a).
        assert_eq!(c.required_bits(&b, b.header.time + 1200), normal);
        assert_eq!(
            c.required_bits(&b2, b2.header.time + 1),
            normal,
            "two steps back"
        );
        // Mainnet has no such rule.
        let m = HeaderChain::new(Network::Bitcoin);
        let g = m.get(&m.tip().1).unwrap().clone();
        assert_eq!(
            m.required_bits(&g, g.header.time + 100_000).to_consensus(),
            0x1d00ffff
        );
    }

    /// A synthetic chain (no PoW needed for `required_bits`) of `n` entries after genesis,
    /// 600 s apart, with `bits_at(height)`.
    fn synthetic(c: &mut HeaderChain, n: u32, bits_at: impl Fn(u32) -> u32) -> Entry {
        let mut prev = c.get(&c.tip().1).unwrap().clone();
        for height in 1..=n {
            let header = Header {
                version: Version::from_consensus(1),
                prev_blockhash: prev.header.block_hash(),
                merkle_root: TxMerkleNode::all_zeros(),
                time: prev.header.time + 600,
                bits: CompactTarget::from_consensus(bits_at(height)),
                nonce: height,
            };
            let e = c.entry(&prev, header);
            c.entries.insert(header.block_hash(), e.clone());
            prev = e;
        }
        prev
    }

    #[test]
    fn testnet4_retargets_from_the_first_block_of_the_period_bip94() {
        // Second period (2016..=4031): its first block at 0x1c00ffff, its last one a
        // min-difficulty block at the limit (0x1d00ffff), exactly two weeks of 600 s blocks.
        let bits = |h: u32| if h == 4031 { 0x1d00ffff } else { 0x1c00ffff };
        let mut t4 = HeaderChain::new(Network::Testnet4);
        let last = synthetic(&mut t4, 4031, bits);
        let two_weeks = 2015 * 600;
        let expect4 = CompactTarget::from_next_work_required(
            CompactTarget::from_consensus(0x1c00ffff),
            two_weeks,
            Params::new(Network::Testnet4),
        );
        assert_eq!(t4.required_bits(&last, last.header.time + 600), expect4);
        // testnet3 retargets from the last block: the min-difficulty block drags it down.
        let mut t3 = HeaderChain::new(Network::Testnet);
        let last = synthetic(&mut t3, 4031, bits);
        let expect3 = CompactTarget::from_next_work_required(
            CompactTarget::from_consensus(0x1d00ffff),
            two_weeks,
            Params::new(Network::Testnet),
        );
        assert_eq!(t3.required_bits(&last, last.header.time + 600), expect3);
        assert_ne!(expect3, expect4);
        // Signet: no min-difficulty rule, the previous bits inside a period.
        let mut sig = HeaderChain::new(Network::Signet);
        let prev = synthetic(&mut sig, 3, |_| 0x1e0377ae);
        assert_eq!(
            sig.required_bits(&prev, prev.header.time + 100_000)
                .to_consensus(),
            0x1e0377ae
        );
    }

    #[test]
    fn restore_links_or_stops() {
        let mut c = HeaderChain::new(Network::Regtest);
        let genesis = c.get(&c.tip().1).unwrap().header;
        let main = regtest_branch(&genesis, 5, genesis.time + 600, 1);
        let mut fresh = HeaderChain::new(Network::Regtest);
        assert_eq!(fresh.restore(main.clone()), 5);
        assert_eq!(fresh.tip().1, main[4].block_hash());
        assert_eq!(c.restore(main[1..].to_vec()), 0);
    }
}
