//! The BP node's chain concern beyond headers: the block download ([`Downloader`]) and the
//! transaction index ([`TxIndex`]) it feeds, kept on the best header chain. The header chain
//! itself stays in [`super::state::BpState`]; this part reads it through `hash_at` closures,
//! so its lock is never held while the index commits.
//!
//! The range starts at `[chain] index_from`: a height, or by default (-1) the first block whose
//! time is at most two hours before the index was created (regtest: height 0, genesis included,
//! which no peer sends: it is indexed from the network's constants).

use super::index::TxIndex;
use super::wallet::Wallets;
use super::watch::{self, Hit, WatchKey, Watches};
use crate::actors::limits::RECENT_BLOCKS_BYTES;
use crate::storage::{RedbStorage, StoreError};
use crate::wire::btc::download::{Arrival, Downloader, Limits, Poll};
use bitcoin::block::Header;
use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash, Network};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Seconds before the index's creation that the default range start reaches back (Core's
/// `MAX_FUTURE_BLOCK_TIME`: a block's time may be that far off the clock).
const FROM_SLACK_SECS: u64 = 2 * 60 * 60;
/// Most blocks indexed in one commit.
const MAX_BATCH: usize = 128;
/// Most bytes of blocks waiting for one commit.
const MAX_BATCH_BYTES: usize = 32 << 20;
/// A commit is due at least this often while blocks wait.
const COMMIT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Download and index.
pub struct Blocks {
    /// The index.
    pub index: TxIndex,
    /// The watches (their tables are in the index's store).
    pub watches: Watches,
    /// The signer's accounts' wallets (their change sets are in the index's store).
    pub wallets: Wallets,
    download: Downloader,
    /// Why indexing stopped, if it did (shown in `info`).
    pub error: Option<String>,
    /// Recent blocks (indexed, or fetched for a client), newest last, within
    /// [`RECENT_BLOCKS_BYTES`].
    recent: VecDeque<(BlockHash, Arc<Block>, usize)>,
    recent_bytes: usize,
    /// The rescan under way, if any.
    pub rescan: Option<Rescan>,
    /// Whether [`Indexed::mined`] is filled (the node keeps a relayed mempool).
    pub track_mined: bool,
    /// Blocks in order, checked, waiting for the next commit (height, block, bytes).
    pending: Vec<(u32, Block, usize)>,
    pending_bytes: usize,
    last_commit: Instant,
}

/// What indexing a delivered block did.
#[derive(Debug, Default)]
pub struct Indexed {
    /// Blocks committed.
    pub blocks: usize,
    /// The index's tip after the commit.
    pub tip: Option<(u32, BlockHash)>,
    /// The watches' hits in the committed blocks, in order: (hit, block hash, transaction).
    pub hits: Vec<(Hit, BlockHash, Vec<u8>)>,
    /// The committed blocks' heights and headers, in order.
    pub committed: Vec<(u32, Header)>,
    /// The txids of the committed blocks (they leave the relayed mempool).
    pub mined: Vec<bitcoin::Txid>,
}

/// A rescan: watches added with a start below the index's tip, matched against the blocks
/// already indexed (downloaded again: the index keeps no bodies) until they catch up with the
/// tip, and only then matched live (so that no spend of an output the rescan has not reached
/// yet is missed).
pub struct Rescan {
    download: Downloader,
    watches: Watches,
    /// The lowest start of its watches (where a reorganisation restarts it).
    from: u32,
}

impl Rescan {
    /// Its watches.
    pub fn watches(&self) -> &Watches {
        &self.watches
    }

    /// Takes watch `key` out of it.
    pub fn take(&mut self, key: &WatchKey) -> Option<crate::wire::api::bp::WatchInfo> {
        self.watches.take(key)
    }
}

/// Which download a block belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// The index's, at this height.
    Index(u32),
    /// A rescan's, at this height.
    Rescan(u32),
    /// Asked of this peer once, no longer wanted.
    Late,
    /// Never asked of this peer.
    Unrequested,
}

/// What left the index in a reorganisation, newest first.
#[derive(Debug, Default)]
pub struct Left {
    /// The watches' hits, with their block's hash.
    pub hits: Vec<(Hit, BlockHash)>,
    /// The blocks (height, hash).
    pub blocks: Vec<(u32, BlockHash)>,
}

impl Blocks {
    /// Opens `index-<network>.redb` in `data_dir` and brings it onto the best chain.
    pub fn open(
        data_dir: &Path,
        network: Network,
        index_from: Option<u32>,
        now: u64,
        accounts: &[(crate::signer::AccountKind, String, String)],
        hash_at: &dyn Fn(u32) -> Option<BlockHash>,
    ) -> Result<Blocks, String> {
        let path = data_dir.join(format!("index-{network}.redb"));
        let shown = |e: StoreError| format!("{}: {e}", path.display());
        let store = RedbStorage::open(&path).map_err(shown)?;
        let from = index_from.or((network == Network::Regtest).then_some(0));
        let index = TxIndex::open(Box::new(store), from, now).map_err(shown)?;
        let watches = Watches::load(index.store()).map_err(shown)?;
        let (wallets, writes) = Wallets::open(index.store(), accounts, network).map_err(shown)?;
        index.store().apply(&mut writes.iter()).map_err(shown)?;
        let next = index.next().unwrap_or(0);
        let mut b = Blocks {
            index,
            watches,
            wallets,
            download: Downloader::new(Limits::default(), next),
            error: None,
            recent: VecDeque::new(),
            recent_bytes: 0,
            rescan: None,
            track_mined: false,
            pending: Vec::new(),
            pending_bytes: 0,
            last_commit: Instant::now(),
        };
        b.follow_chain(hash_at).map_err(shown)?;
        // Rescans that were under way go on from where they were.
        let kept = watch::rescans(b.index.store()).map_err(shown)?;
        if !kept.is_empty() {
            let mut set = Watches::default();
            let (mut next, mut from) = (u32::MAX, u32::MAX);
            for (key, n, f) in kept {
                if let Some(info) = b.watches.take(&key) {
                    set.insert_stored(key, info);
                    next = next.min(n);
                    from = from.min(f);
                }
            }
            if !set.is_empty() {
                b.rescan = Some(Rescan {
                    download: Downloader::new(Limits::default(), next),
                    watches: set,
                    from,
                });
            }
        }
        if b.index.next() == Some(0) {
            let genesis = bitcoin::blockdata::constants::genesis_block(network);
            let (_, writes) = b.watches.match_block(0, &genesis);
            b.index.connect(&[(0, &genesis)], writes).map_err(shown)?;
            b.download.reset(1);
        }
        match (b.index.from(), b.index.tip()) {
            (Some(from), Some((h, hash))) => {
                tracing::info!(from, height = h, %hash, txs = b.index.len(),
                    index = %path.display(), "transaction index opened")
            }
            (Some(from), None) => {
                tracing::info!(from, index = %path.display(), "transaction index empty")
            }
            (None, _) => tracing::info!(index = %path.display(),
                "transaction index: the range starts at the chain's tip when headers reach it"),
        }
        Ok(b)
    }

    /// Undoes indexed blocks that left the best chain (a reorganisation, here or while the node
    /// was down); the download goes on from the fork. Returns the watches' hits that left, newest
    /// first, with their block's hash.
    pub fn follow_chain(
        &mut self,
        hash_at: &dyn Fn(u32) -> Option<BlockHash>,
    ) -> Result<Left, StoreError> {
        let mut undone = 0;
        let mut left = Left::default();
        while let Some((h, hash)) = self.index.tip() {
            if hash_at(h) == Some(hash) {
                break;
            }
            let prev = match h.checked_sub(1).map(|p| self.index.block(p)) {
                Some(r) => r?.map(|r| r.hash.to_byte_array()).unwrap_or([0; 32]),
                None => [0; 32],
            };
            let (hits, writes) =
                self.watches
                    .unmatch_block(self.index.store(), h, hash.to_byte_array(), prev)?;
            self.index.disconnect_tip(writes)?;
            left.hits
                .extend(hits.into_iter().rev().map(|hit| (hit, hash)));
            left.blocks.push((h, hash));
            undone += 1;
        }
        // Blocks waiting for a commit that left the best chain, and those above them.
        let kept = self
            .pending
            .iter()
            .position(|(h, b, _)| hash_at(*h) != Some(b.block_hash()))
            .unwrap_or(self.pending.len());
        let trimmed = kept < self.pending.len();
        self.pending.truncate(kept);
        self.pending_bytes = self.pending.iter().map(|(_, _, s)| s).sum();
        if let Some(next) = self.index.next() {
            if undone > 0 || trimmed {
                self.download.rewind(next + self.pending.len() as u32);
            }
            // A rescan past the fork starts over from its start (its hits above the fork left
            // with the index's; the outputs it found there must be found again or not at all).
            if let Some(r) = &mut self.rescan {
                if undone > 0 && r.download.next() > next {
                    let mut set = Watches::default();
                    for (k, i) in r.watches.infos() {
                        set.insert_stored(*k, i.clone());
                    }
                    r.watches = set;
                    r.download.reset(r.from);
                }
            }
        }
        Ok(left)
    }

    /// Sets the range start once the header chain reaches the index's creation time.
    pub fn resolve_from(&mut self, tip: u32, header_at: &dyn Fn(u32) -> Option<Header>) {
        if self.index.from().is_some() {
            return;
        }
        let since = self.index.created().saturating_sub(FROM_SLACK_SECS);
        let recent = |h: u32| header_at(h).is_some_and(|hd| hd.time as u64 >= since);
        if !recent(tip) {
            return;
        }
        let mut from = tip;
        while from > 0 && recent(from - 1) {
            from -= 1;
        }
        match self.index.set_from(from) {
            Ok(()) => {
                tracing::info!(from, "transaction index: the range starts here");
                self.download.reset(from);
            }
            Err(e) => self.error = Some(format!("cannot store the range start: {e}")),
        }
    }

    /// A ready peer to download from.
    pub fn add_peer(&mut self, conn: u64) {
        self.download.add_peer(conn);
        if let Some(r) = &mut self.rescan {
            r.download.add_peer(conn);
        }
    }

    /// A peer is gone.
    pub fn remove_peer(&mut self, conn: u64) {
        self.download.remove_peer(conn);
        if let Some(r) = &mut self.rescan {
            r.download.remove_peer(conn);
        }
    }

    /// Starts (or widens) a rescan for watch `key` (stored already) from `from`; the write
    /// that records it is committed here. Its events come as the rescan finds them.
    pub fn start_rescan(
        &mut self,
        key: WatchKey,
        from: u32,
        peers: &[u64],
    ) -> Result<(), StoreError> {
        let Some(info) = self.watches.take(&key) else {
            return Ok(());
        };
        let mut set = Watches::default();
        let mut start = from;
        if let Some(old) = self.rescan.take() {
            // Start over from the lowest start: hits are written under fixed keys, so blocks
            // scanned twice give the same records (their events may come twice).
            start = start.min(old.from);
            for (k, i) in old.watches.infos() {
                set.insert_stored(*k, i.clone());
            }
        }
        set.insert_stored(key, info);
        let writes: Vec<_> = set
            .infos()
            .map(|(k, i)| watch::rescan_write(k, start, i.from_height))
            .collect();
        self.index.store().apply(&mut writes.iter())?;
        let mut download = Downloader::new(Limits::default(), start);
        for p in peers {
            download.add_peer(*p);
        }
        self.rescan = Some(Rescan {
            download,
            watches: set,
            from: start,
        });
        Ok(())
    }

    /// A watch, live or being rescanned.
    pub fn watch_info(&self, key: &WatchKey) -> Option<&crate::wire::api::bp::WatchInfo> {
        self.watches
            .get(key)
            .or_else(|| self.rescan.as_ref().and_then(|r| r.watches.get(key)))
    }

    /// Takes a rescan that reached the index's tip into the live watches (in one commit).
    fn finish_rescan(&mut self) -> Result<(), StoreError> {
        let (Some(r), Some(next)) = (&self.rescan, self.index.next()) else {
            return Ok(());
        };
        if r.download.next() < next {
            return Ok(());
        }
        let r = self.rescan.take().expect("just seen");
        let writes: Vec<_> = r
            .watches
            .infos()
            .map(|(k, _)| watch::rescan_done(k))
            .collect();
        self.index.store().apply(&mut writes.iter())?;
        tracing::info!(
            watches = r.watches.len(),
            "rescan done: the watches are live"
        );
        self.watches.absorb(r.watches);
        Ok(())
    }

    /// A checked block of the rescan: the blocks now in order are matched against the
    /// rescan's watches and their hits committed; returns them (hit, block hash, transaction).
    pub fn deliver_rescan(
        &mut self,
        height: u32,
        block: Block,
        size: usize,
        hash_at: &dyn Fn(u32) -> Option<BlockHash>,
    ) -> Result<Vec<(Hit, BlockHash, Vec<u8>)>, StoreError> {
        let Some(r) = &mut self.rescan else {
            return Ok(Vec::new());
        };
        r.download.deliver(height, block, size);
        let mut out = Vec::new();
        let mut writes = Vec::new();
        let limit = self.index.next().unwrap_or(0);
        while r.download.next() < limit {
            let Some((h, b)) = r.download.pop(hash_at) else {
                break;
            };
            let (hits, w) = r.watches.match_block(h, &b);
            writes.extend(w);
            let hash = b.block_hash();
            out.extend(hits.into_iter().map(|hit| {
                let tx = bitcoin::consensus::serialize(&b.txdata[hit.pos as usize]);
                (hit, hash, tx)
            }));
        }
        let next = r.download.next();
        writes.extend(
            r.watches
                .infos()
                .map(|(k, i)| watch::rescan_write(k, next, i.from_height)),
        );
        self.index.store().apply(&mut writes.iter())?;
        self.finish_rescan()?;
        Ok(out)
    }

    /// What to ask which peer for now.
    pub fn poll(
        &mut self,
        now: Instant,
        tip: u32,
        hash_at: &dyn Fn(u32) -> Option<BlockHash>,
    ) -> Poll {
        if self.error.is_some() || self.index.next().is_none() {
            return Poll::default();
        }
        let _ = self.finish_rescan();
        let mut p = self.download.poll(now, tip, hash_at);
        if let (Some(r), Some((indexed, _))) = (&mut self.rescan, self.index.tip()) {
            let more = r.download.poll(now, indexed, hash_at);
            p.requests.extend(more.requests);
            p.stalled.extend(more.stalled);
        }
        p
    }

    /// A block arrived from `conn`: whose it is.
    pub fn arrival(&mut self, conn: u64, hash: &BlockHash) -> Wanted {
        let main = self.download.received(conn, hash);
        if let Arrival::Expected(h) = main {
            return Wanted::Index(h);
        }
        let rescan = self
            .rescan
            .as_mut()
            .map(|r| r.download.received(conn, hash));
        match (main, rescan) {
            (_, Some(Arrival::Expected(h))) => Wanted::Rescan(h),
            (Arrival::Late, _) | (_, Some(Arrival::Late)) => Wanted::Late,
            _ => Wanted::Unrequested,
        }
    }

    /// `conn` does not have `hash`.
    pub fn not_found(&mut self, conn: u64, hash: &BlockHash) {
        self.download.not_found(conn, hash);
        if let Some(r) = &mut self.rescan {
            r.download.not_found(conn, hash);
        }
    }

    /// The block at `height` from `conn` failed its checks.
    pub fn failed(&mut self, conn: u64, wanted: Wanted) {
        match (wanted, &mut self.rescan) {
            (Wanted::Index(h), _) => self.download.failed(conn, h),
            (Wanted::Rescan(h), Some(r)) => r.download.failed(conn, h),
            _ => {}
        }
    }

    /// A checked block: it waits for the ones below it; the blocks now in order are indexed
    /// when a commit is due ([`Blocks::flush`]).
    pub fn deliver(
        &mut self,
        height: u32,
        block: Block,
        size: usize,
        tip: u32,
        hash_at: &dyn Fn(u32) -> Option<BlockHash>,
    ) -> Indexed {
        self.download.deliver(height, block, size);
        self.flush(tip, false, hash_at)
    }

    /// Indexes the blocks now in order, in durable commits of up to [`MAX_BATCH`] blocks, when
    /// a commit is due: `force`, a full batch, the header tip reached, nothing else in flight,
    /// or [`COMMIT_EVERY`] since the last commit. One commit per block would cost a sync to
    /// disk per block; this way a download commits a few times a second and a new block at the
    /// tip at once.
    pub fn flush(
        &mut self,
        tip: u32,
        force: bool,
        hash_at: &dyn Fn(u32) -> Option<BlockHash>,
    ) -> Indexed {
        while let Some((h, b)) = self.download.pop(hash_at) {
            let size = b.total_size();
            self.pending_bytes += size;
            self.pending.push((h, b, size));
        }
        let mut done = Indexed {
            blocks: 0,
            tip: self.index.tip(),
            hits: Vec::new(),
            committed: Vec::new(),
            mined: Vec::new(),
        };
        let Some(&(last, _, _)) = self.pending.last() else {
            return done;
        };
        let due = force
            || self.pending.len() >= MAX_BATCH
            || self.pending_bytes >= MAX_BATCH_BYTES
            || last >= tip
            || self.download.in_flight() == 0
            || self.last_commit.elapsed() >= COMMIT_EVERY;
        if !due || self.error.is_some() {
            return done;
        }
        let pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        self.last_commit = Instant::now();
        for chunk in pending.chunks(MAX_BATCH) {
            let refs: Vec<(u32, &Block)> = chunk.iter().map(|(h, b, _)| (*h, b)).collect();
            let mut hits = Vec::new();
            let mut writes = Vec::new();
            let mut wallet_error = None;
            for (h, b) in &refs {
                if let Err(e) = self.wallets.apply_block(*h, b) {
                    wallet_error = Some(e);
                    break;
                }
                let (found, w) = self.watches.match_block(*h, b);
                let hash = b.block_hash();
                hits.extend(found.into_iter().map(|hit| {
                    let tx = bitcoin::consensus::serialize(&b.txdata[hit.pos as usize]);
                    (hit, hash, tx)
                }));
                writes.extend(w);
            }
            let staged = self.wallets.staged_writes();
            let outcome = match (wallet_error, staged) {
                (Some(e), _) => Err(StoreError::Failed(e)),
                (None, Err(e)) => Err(e),
                (None, Ok(w)) => {
                    writes.extend(w);
                    self.index.connect(&refs, writes)
                }
            };
            if let Err(e) = outcome {
                tracing::error!("the transaction index cannot be written, indexing stops: {e}");
                self.error = Some(e.to_string());
                break;
            }
            done.blocks += chunk.len();
            done.hits.extend(hits);
            done.committed
                .extend(chunk.iter().map(|(h, b, _)| (*h, b.header)));
            if self.track_mined {
                for (_, b, _) in chunk {
                    done.mined.extend(b.txdata.iter().map(|t| t.compute_txid()));
                }
            }
        }
        for (_, b, size) in pending {
            self.remember(Arc::new(b), size);
        }
        done.tip = self.index.tip();
        done
    }

    /// Keeps `block` among the recent ones (dropping the oldest beyond the byte budget).
    pub fn remember(&mut self, block: Arc<Block>, size: usize) {
        let hash = block.block_hash();
        if size > RECENT_BLOCKS_BYTES || self.recent.iter().any(|(h, _, _)| *h == hash) {
            return;
        }
        self.recent_bytes += size;
        self.recent.push_back((hash, block, size));
        while self.recent_bytes > RECENT_BLOCKS_BYTES {
            let Some((_, _, s)) = self.recent.pop_front() else {
                break;
            };
            self.recent_bytes -= s;
        }
    }

    /// A recent block by hash.
    pub fn recent(&self, hash: &BlockHash) -> Option<Arc<Block>> {
        self.recent
            .iter()
            .rev()
            .find(|(h, _, _)| h == hash)
            .map(|(_, b, _)| b.clone())
    }

    /// `info` lines: the indexed range and the download.
    pub fn details(&self, tip: u32) -> Vec<(String, crate::wire::api::Detail)> {
        use crate::wire::api::Detail;
        let range = match (self.index.from(), self.index.tip()) {
            (Some(f), Some((t, _))) => format!("{f}..={t}"),
            (Some(f), None) => format!("none yet (from {f})"),
            (None, _) => "none yet (starts at the tip once headers reach it)".into(),
        };
        let (waiting, bytes) = self.download.waiting();
        let download = match &self.error {
            Some(e) => format!("stopped: {e}"),
            None => {
                let next = self.index.next().unwrap_or(0);
                let left = (tip + 1).saturating_sub(next);
                format!(
                    "{left} blocks to go, {} in flight, {waiting} waiting ({} KiB)",
                    self.download.in_flight(),
                    bytes / 1024
                )
            }
        };
        vec![
            ("indexed".into(), Detail::Text(range)),
            ("indexed_txs".into(), Detail::U64(self.index.len())),
            ("download".into(), Detail::Text(download)),
        ]
    }
}
