//! What the BP node's services share: the header chain with its store (`chain-<network>.redb`
//! on the [`Storage`] interface, with the signer's next address indexes),
//! the block download and transaction index ([`super::chain`]), the Bitcoin peers, the BLOCKS
//! subscribers, blocks asked for by clients, and transactions to announce. It outlives restarts
//! of `bpd` and of any `wired`.
//!
//! Locks: `blocks` may take `chain` (through `hash_at`), never the other way round; `inner` is
//! taken last and alone.

use super::chain::Wanted;
use super::chain::{Blocks, Indexed, Left};
use super::watch::{self, Hit, HitKind, Watches};
use super::wired::{Wire, Wired, WiredCmd};
use super::BpConfig;
use crate::actors::admission::{self, Slot, Verdict};
use crate::actors::clock::unix_now;
use crate::actors::conn::{Command, Origin};
use crate::actors::limits::{DISCOURAGE_FOR, MAX_SUBSCRIBERS, MAX_TXS};
use crate::bus::{Bus, Subscriber, Subscribers};
use crate::lograte;
use crate::storage::{RedbStorage, Storage, Write};
use crate::sync::lock;
use crate::wire::api::bp::{
    AccountBalance, BlockRef, BpMsg, BtcPeerInfo, TxInfo, TxStatus, WalletTx, WalletUtxo, WatchHit,
    WatchInfo, WatchSynced, WatchTarget,
};
use crate::wire::api::{code, Detail, Envelope, Msg, ServiceId};
use crate::wire::btc::block::check_block;
use crate::wire::btc::headers::{Accepted, Block as ChainBlock, Change, HeaderChain};
use crate::wire::session::PeerError;
use actix::prelude::*;
use bitcoin::block::Header;
use bitcoin::consensus::encode;
use bitcoin::hashes::Hash;
use bitcoin::p2p::message_blockdata::Inventory;
use bitcoin::{Block, BlockHash, Transaction, Txid, Wtxid};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The best chain by height, key height u32 BE 0-padded, value the 80-byte header (height 0,
/// genesis, is not stored).
const HEADERS: &str = "bp.headers";
/// The signer's next unused receive index per account kind: key the kind (0 P2WPKH, 1 P2TR)
/// 0-padded, value u32 LE. It never goes back (an address is never handed out twice).
const NEXT_ADDRESS: &str = "bp.next_address";
/// The same two in the store of earlier versions (`headers-<network>.redb`, redb tables),
/// migrated once at start.
const LEGACY_BEST: TableDefinition<u32, &[u8]> = TableDefinition::new("best_chain");
const LEGACY_NEXT_ADDRESS: TableDefinition<u8, u32> = TableDefinition::new("signer_next_address");

fn height_key(h: u32) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..4].copy_from_slice(&h.to_be_bytes());
    k
}

fn kind_key(kind: u8) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[0] = kind;
    k
}

/// Reads the store of earlier versions at `path`: its best chain (height, header bytes) and
/// next address indexes.
type Legacy = (Vec<(u32, Vec<u8>)>, Vec<(u8, u32)>);
fn read_legacy(path: &Path) -> Result<Legacy, String> {
    let shown = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let db = Database::open(path).map_err(|e| shown(&e))?;
    let tx = db.begin_read().map_err(|e| shown(&e))?;
    let mut headers = Vec::new();
    match tx.open_table(LEGACY_BEST) {
        Ok(t) => {
            for row in t.iter().map_err(|e| shown(&e))? {
                let (h, v) = row.map_err(|e| shown(&e))?;
                headers.push((h.value(), v.value().to_vec()));
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(shown(&e)),
    }
    let mut next = Vec::new();
    match tx.open_table(LEGACY_NEXT_ADDRESS) {
        Ok(t) => {
            for row in t.iter().map_err(|e| shown(&e))? {
                let (k, v) = row.map_err(|e| shown(&e))?;
                next.push((k.value(), v.value()));
            }
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(shown(&e)),
    }
    Ok((headers, next))
}

/// Opens `chain-<network>.redb` in `data_dir`, migrating the store of earlier versions into it
/// first if there is one: its contents are committed here in one transaction (a next address
/// index only ever rises), then the old file is renamed `….migrated`. A crash in between
/// migrates again, to the same result.
fn open_chain_store(data_dir: &Path, network: bitcoin::Network) -> Result<RedbStorage, String> {
    let path = data_dir.join(format!("chain-{network}.redb"));
    let store = RedbStorage::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let legacy = data_dir.join(format!("headers-{network}.redb"));
    if legacy.exists() {
        let (headers, next) = read_legacy(&legacy)?;
        let mut writes: Vec<Write> = headers
            .iter()
            .map(|(h, v)| Write::Put {
                table: HEADERS.into(),
                key: height_key(*h),
                value: v.clone(),
            })
            .collect();
        for (kind, index) in &next {
            let ours = read_u32(&store, NEXT_ADDRESS, &kind_key(*kind))
                .map_err(|e| format!("{}: {e}", path.display()))?
                .unwrap_or(0);
            writes.push(Write::Put {
                table: NEXT_ADDRESS.into(),
                key: kind_key(*kind),
                value: (*index).max(ours).to_le_bytes().to_vec(),
            });
        }
        store
            .apply(&mut writes.iter())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let done = legacy.with_extension("redb.migrated");
        std::fs::rename(&legacy, &done).map_err(|e| format!("{}: {e}", legacy.display()))?;
        tracing::info!(headers = headers.len(), from = %legacy.display(), to = %path.display(),
            "the header store of an earlier version migrated (the old file is kept as .migrated)");
    }
    Ok(store)
}

fn read_u32(
    store: &dyn Storage,
    table: &str,
    key: &[u8; 32],
) -> Result<Option<u32>, crate::storage::StoreError> {
    Ok(store
        .get(table, key)?
        .and_then(|v| Some(u32::from_le_bytes(v.get(..4)?.try_into().ok()?))))
}

struct Peer {
    actor: Addr<Wired>,
    addr: String,
    outbound: bool,
    ready: Option<(String, u32, u32)>,
    rtt_us: Option<u64>,
    /// The remote IP (inbound), for the per-address caps.
    ip: Option<IpAddr>,
    opened: Instant,
    /// Whether it came through an `onion_inbound` listener.
    onion: bool,
    /// Whether it was evicted and is being closed: no longer counted by admission.
    closing: bool,
    counters: Arc<crate::actors::tcp::Counters>,
    /// Its BIP133 `feefilter`, sat/kvB.
    feefilter: Option<u64>,
}

/// A client waiting for a block from a peer: for the block, or for one of its transactions.
#[derive(Clone)]
pub enum Waiter {
    /// `get_block`: answered with `block_data`.
    Block(Bus, Envelope),
    /// `get_tx` of a mined transaction: answered with `tx_info`, the transaction at `pos` of
    /// the block as its body (or none if no peer gives the block).
    Tx(Bus, Envelope, TxInfo, u32),
}

struct Inner {
    next_conn: u64,
    peers: BTreeMap<u64, Peer>,
    subscribers: Subscribers,
    /// Subscribers of watch events, with the owner they follow and whether they take the
    /// filtered-block feed.
    watchers: Subscribers<(String, bool)>,
    /// Blocks asked for: hash -> requests waiting.
    wanted: HashMap<BlockHash, Vec<Waiter>>,
    txs: HashMap<Wtxid, Transaction>,
    /// Unconfirmed transactions relayed by peers (unvalidated), oldest first, within
    /// [`MEMPOOL_BYTES`].
    mempool: HashMap<Txid, Transaction>,
    mempool_order: std::collections::VecDeque<(Txid, usize)>,
    mempool_bytes: usize,
    /// Transactions asked of peers lately (txid or wtxid), oldest first: not asked twice.
    asked: std::collections::HashSet<[u8; 32]>,
    asked_order: std::collections::VecDeque<[u8; 32]>,
    discouraged: HashMap<IpAddr, Instant>,
    listening: Vec<(SocketAddr, actix_rt::task::JoinHandle<()>)>,
}

/// The shared state.
pub struct BpState {
    /// Settings.
    pub config: BpConfig,
    chain: Mutex<HeaderChain>,
    blocks: Mutex<Blocks>,
    /// The signer (signd's keys and policy), which signs what the wallet builds.
    signer: std::sync::OnceLock<Arc<super::signd::Signer>>,
    /// The header chain's store and the signer's next address indexes (the lock makes a
    /// read-and-raise of an index one step).
    store: Mutex<Box<dyn Storage>>,
    inner: Mutex<Inner>,
}

/// A header and its place, for the API.
pub fn block_ref(height: u32, header: &Header) -> BlockRef {
    let mut raw = [0u8; 80];
    raw.copy_from_slice(&encode::serialize(header));
    BlockRef {
        height,
        hash: header.block_hash().to_byte_array(),
        header: raw,
    }
}

impl BpState {
    /// Opens (or creates) the store in `data_dir` and restores the stored best chain.
    pub fn open(config: BpConfig, data_dir: &Path) -> Result<Arc<BpState>, String> {
        let store = open_chain_store(data_dir, config.network)?;
        let path = store.path().to_path_buf();
        let mut chain = HeaderChain::new(config.network);
        let stored: Vec<Header> = {
            let shown = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
            let mut v = Vec::new();
            let mut after = None;
            loop {
                let (keys, more) = store
                    .list_ids(HEADERS, after, crate::wire::limits::MAX_IDS)
                    .map_err(|e| shown(&e))?;
                for k in &keys {
                    let bytes = store
                        .get(HEADERS, k)
                        .map_err(|e| shown(&e))?
                        .ok_or_else(|| shown(&"a header went missing"))?;
                    v.push(encode::deserialize(&bytes).map_err(|e| shown(&e))?);
                }
                after = keys.last().copied();
                if !more {
                    break;
                }
            }
            v
        };
        let restored = chain.restore(stored.iter().copied());
        if restored != stored.len() {
            tracing::warn!(
                restored,
                stored = stored.len(),
                "the header store breaks off; the rest will be fetched again"
            );
        }
        let (height, hash) = chain.tip();
        tracing::info!(restored, height, %hash, store = %path.display(), "header chain restored");
        let mut blocks = Blocks::open(
            data_dir,
            config.network,
            config.index_from,
            unix_now(),
            &config.accounts,
            &|h| chain.hash_at(h),
        )?;
        blocks.track_mined = config.relay_txs;
        // Every address the signer handed out is tracked (a crash between handing one out and
        // the wallet's commit would otherwise leave it unwatched beyond the gap limit).
        for kind in crate::signer::AccountKind::ALL {
            let next = read_u32(&store, NEXT_ADDRESS, &kind_key(kind as u8))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if let Some(last) = next.and_then(|n| n.checked_sub(1)) {
                let writes = blocks
                    .wallets
                    .reveal_to(kind, last)
                    .map_err(|e| e.to_string())?;
                blocks
                    .index
                    .store()
                    .apply(&mut writes.iter())
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(Arc::new(BpState {
            config,
            chain: Mutex::new(chain),
            blocks: Mutex::new(blocks),
            signer: std::sync::OnceLock::new(),
            store: Mutex::new(Box::new(store)),
            inner: Mutex::new(Inner {
                next_conn: 0,
                peers: BTreeMap::new(),
                subscribers: Subscribers::new("subscribers", MAX_SUBSCRIBERS),
                watchers: Subscribers::new("watch subscribers", MAX_SUBSCRIBERS),
                wanted: HashMap::new(),
                txs: HashMap::new(),
                mempool: HashMap::new(),
                mempool_order: std::collections::VecDeque::new(),
                mempool_bytes: 0,
                asked: std::collections::HashSet::new(),
                asked_order: std::collections::VecDeque::new(),
                discouraged: HashMap::new(),
                listening: Vec::new(),
            }),
        }))
    }

    /// Height and hash of the best tip.
    pub fn tip(&self) -> (u32, BlockHash) {
        lock(&self.chain).tip()
    }

    /// A locator of the best chain.
    pub fn locator(&self) -> Vec<BlockHash> {
        lock(&self.chain).locator()
    }

    /// Up to `max` best-chain headers after the first locator hash on the best chain.
    pub fn headers_after(&self, locator: &[BlockHash], stop: BlockHash, max: usize) -> Vec<Header> {
        let c = lock(&self.chain);
        let start = locator
            .iter()
            .find(|h| c.is_best(h))
            .and_then(|h| c.get(h))
            .map(|e| e.height + 1)
            .unwrap_or(1);
        let mut out = Vec::new();
        let mut h = start;
        while out.len() < max {
            let Some(hash) = c.hash_at(h) else { break };
            out.push(c.get(&hash).expect("best chain entry").header);
            if hash == stop {
                break;
            }
            h += 1;
        }
        out
    }

    /// The best chain's hash at `height`.
    pub fn hash_at(&self, height: u32) -> Option<BlockHash> {
        lock(&self.chain).hash_at(height)
    }

    fn header_at(&self, height: u32) -> Option<Header> {
        let c = lock(&self.chain);
        c.hash_at(height).and_then(|h| c.get(&h)).map(|e| e.header)
    }

    /// Offers headers from a peer; stores and publishes the best-chain change, then brings the
    /// index onto the new best chain and asks for the new blocks.
    pub fn accept_headers(&self, headers: &[Header]) -> Accepted {
        let accepted = self.accept_headers_only(headers);
        if !accepted.change.connected.is_empty() {
            if !accepted.change.disconnected.is_empty() {
                let mut b = lock(&self.blocks);
                match b.follow_chain(&|h| self.hash_at(h)) {
                    Ok(left) => self.publish_left(&b.watches, &left),
                    Err(e) => {
                        tracing::error!(
                            "the transaction index cannot follow the reorganisation: {e}"
                        );
                        b.error = Some(e.to_string());
                    }
                }
            }
            let tip = self.tip().0;
            lock(&self.blocks).resolve_from(tip, &|h| self.header_at(h));
            self.drive();
        }
        accepted
    }

    fn accept_headers_only(&self, headers: &[Header]) -> Accepted {
        let now = unix_now() as u32;
        let mut chain = lock(&self.chain);
        let accepted = chain.accept(headers, now);
        if !accepted.change.connected.is_empty() {
            if let Err(e) = self.store(&accepted.change) {
                tracing::error!("cannot store headers: {e}");
            }
            let (height, hash) = chain.tip();
            let left = accepted.change.disconnected.len();
            if left > 0 {
                tracing::warn!(height, %hash, disconnected = left, "reorganisation");
            }
            tracing::info!(height, %hash, headers = chain.known(), "new tip");
            self.publish(&accepted.change);
        }
        accepted
    }

    /// Hands out the next unused receive index of account `kind` (0 P2WPKH, 1 P2TR) and
    /// stores the one after it (committed before it is returned: an index is never handed
    /// out twice, even across a crash).
    pub fn take_address_index(&self, kind: u8) -> Result<u32, String> {
        let run = || -> Result<u32, crate::storage::StoreError> {
            let store = lock(&self.store);
            let index = read_u32(store.as_ref(), NEXT_ADDRESS, &kind_key(kind))?.unwrap_or(0);
            let next = index.saturating_add(1).to_le_bytes();
            store.put(NEXT_ADDRESS, &kind_key(kind), &next)?;
            Ok(index)
        };
        let index = run().map_err(|e| format!("the address index cannot be stored: {e}"))?;
        // The wallet tracks it (and the gap limit beyond it) before anyone can pay it.
        let kind = crate::signer::AccountKind::from_tag(kind).ok_or("no such account")?;
        let mut b = lock(&self.blocks);
        let writes = b
            .wallets
            .reveal_to(kind, index)
            .map_err(|e| format!("the wallet cannot track the address: {e}"))?;
        b.index
            .store()
            .apply(&mut writes.iter())
            .map_err(|e| format!("the wallet cannot track the address: {e}"))?;
        Ok(index)
    }

    // --- the wallet ---

    /// `wallet_balance`.
    pub fn wallet_balance(&self) -> Vec<AccountBalance> {
        lock(&self.blocks)
            .wallets
            .balances()
            .into_iter()
            .map(|(kind, b)| AccountBalance {
                kind: kind as u8,
                confirmed: b.confirmed.to_sat(),
                trusted_pending: b.trusted_pending.to_sat(),
                untrusted_pending: b.untrusted_pending.to_sat(),
                immature: b.immature.to_sat(),
            })
            .collect()
    }

    /// `wallet_utxos` (at most [`crate::wire::limits::MAX_LIST`], largest first per account).
    pub fn wallet_utxos(&self) -> Vec<WalletUtxo> {
        use bdk_wallet::chain::ChainPosition;
        let network = self.config.network;
        lock(&self.blocks)
            .wallets
            .utxos()
            .into_iter()
            .take(crate::wire::limits::MAX_LIST)
            .map(|u| WalletUtxo {
                kind: u.kind as u8,
                txid: u.output.outpoint.txid.to_byte_array(),
                vout: u.output.outpoint.vout,
                value: u.output.txout.value.to_sat(),
                address: bitcoin::Address::from_script(&u.output.txout.script_pubkey, network)
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
                chain: match u.output.keychain {
                    bdk_wallet::KeychainKind::External => 0,
                    bdk_wallet::KeychainKind::Internal => 1,
                },
                index: u.output.derivation_index,
                height: match u.output.chain_position {
                    ChainPosition::Confirmed { anchor, .. } => Some(anchor.block_id.height),
                    ChainPosition::Unconfirmed { .. } => None,
                },
            })
            .collect()
    }

    /// The signer the wallet's transactions are signed by (set once, at start).
    pub fn set_signer(&self, signer: Arc<super::signd::Signer>) {
        let _ = self.signer.set(signer);
    }

    /// A transaction paying `outputs`, funded by one account (P2WPKH first, then P2TR),
    /// change to its change chain, signed by the signer under its policy. Unless `dry_run`,
    /// the wallet counts it as sent (its inputs spent, its change pending) before it returns,
    /// durably; with `broadcast`, it is announced to the ready peers.
    pub fn wallet_fund(
        &self,
        outputs: &[(bitcoin::ScriptBuf, bitcoin::Amount)],
        fee_rate: Option<u64>,
        dry_run: bool,
        broadcast: bool,
    ) -> Result<crate::wire::api::bp::WalletSent, crate::wire::api::ApiError> {
        use crate::wire::api::ApiError;
        let rate = fee_rate.unwrap_or_else(|| self.default_fee_rate());
        if !(1..=MAX_FEE_RATE).contains(&rate) {
            return Err(ApiError::new(
                code::INVALID_ARGUMENT,
                format!("a fee rate of {rate} sat/vB is outside 1..={MAX_FEE_RATE}"),
            ));
        }
        if outputs.is_empty() {
            return Err(ApiError::new(code::INVALID_ARGUMENT, "no outputs"));
        }
        let signer = self
            .signer
            .get()
            .ok_or_else(|| ApiError::new(code::SERVICE_FAILED, "the signer is not loaded"))?;
        let fee_rate = bitcoin::FeeRate::from_sat_per_vb(rate).expect("bounded above");
        let mut b = lock(&self.blocks);
        let mut reasons = Vec::new();
        let mut built = None;
        for a in &mut b.wallets.accounts {
            let mut tb = a.wallet.build_tx();
            for (script, amount) in outputs {
                tb.add_recipient(script.clone(), *amount);
            }
            tb.fee_rate(fee_rate);
            match tb.finish() {
                Ok(psbt) => {
                    built = Some((a.kind, psbt));
                    break;
                }
                Err(e) => reasons.push(format!("{}: {e}", a.kind.name())),
            }
        }
        let Some((kind, psbt)) = built else {
            return Err(ApiError::new(
                code::REFUSED,
                format!(
                    "the wallet cannot fund it from one account ({})",
                    reasons.join("; ")
                ),
            ));
        };
        let signed =
            crate::signer::sign_psbt(&signer.keychain, &signer.policy, &psbt.serialize(), true)
                .map_err(|e| {
                    ApiError::new(code::SERVICE_FAILED, format!("the signer refused: {e}"))
                })?;
        let tx = signed.tx.ok_or_else(|| {
            ApiError::new(
                code::SERVICE_FAILED,
                format!("inputs {:?} could not be finalized", signed.not_final),
            )
        })?;
        let txid = tx.compute_txid();
        if !dry_run {
            let a = b
                .wallets
                .accounts
                .iter_mut()
                .find(|a| a.kind == kind)
                .expect("the account that built it");
            a.wallet.apply_unconfirmed_txs([(tx.clone(), unix_now())]);
        }
        // Also for a dry run: the change address it revealed stays revealed.
        let writes = b.wallets.staged_writes()?;
        b.index.store().apply(&mut writes.iter())?;
        drop(b);
        let peers = if broadcast && !dry_run {
            let wtxid = self
                .add_tx(tx.clone())
                .map_err(|e| ApiError::new(code::BUSY, e))?;
            let (t, w) = (txid.to_byte_array(), wtxid.to_byte_array());
            let n = self.to_ready_peers(|| WiredCmd::AnnounceTx(t, w));
            tracing::info!(%txid, fee = signed.fee, peers = n, "wallet transaction broadcast");
            Some(u32::try_from(n).unwrap_or(u32::MAX))
        } else {
            None
        };
        Ok(crate::wire::api::bp::WalletSent {
            txid: txid.to_byte_array(),
            tx: encode::serialize(&tx),
            fee: signed.fee,
            kind: kind as u8,
            peers,
        })
    }

    /// `wallet_history` (the newest [`crate::wire::limits::MAX_LIST`]).
    pub fn wallet_history(&self) -> Vec<WalletTx> {
        lock(&self.blocks)
            .wallets
            .history()
            .into_iter()
            .take(crate::wire::limits::MAX_LIST)
            .map(|h| WalletTx {
                kind: h.kind as u8,
                txid: h.txid.to_byte_array(),
                delta: h.delta,
                fee: h.fee,
                height: h.confirmed.map(|c| c.0),
                time: h.confirmed.map(|c| c.1),
            })
            .collect()
    }

    fn store(&self, change: &Change) -> Result<(), crate::storage::StoreError> {
        let writes: Vec<Write> = change
            .disconnected
            .iter()
            .map(|b| Write::Delete {
                table: HEADERS.into(),
                key: height_key(b.height),
            })
            .chain(change.connected.iter().map(|b| Write::Put {
                table: HEADERS.into(),
                key: height_key(b.height),
                value: encode::serialize(&b.header),
            }))
            .collect();
        lock(&self.store).apply(&mut writes.iter())?;
        Ok(())
    }

    fn publish(&self, change: &Change) {
        let t = lock(&self.inner);
        let event = |b: &ChainBlock, connected: bool| {
            let r = block_ref(b.height, &b.header);
            if connected {
                Msg::Bp(BpMsg::BlockConnected(r))
            } else {
                Msg::Bp(BpMsg::BlockDisconnected(r))
            }
        };
        let events = change
            .disconnected
            .iter()
            .map(|b| event(b, false))
            .chain(change.connected.iter().map(|b| event(b, true)));
        for msg in events {
            t.subscribers.notify(&ServiceId::Bpd, msg);
        }
    }

    /// A header by height (best chain) or hash (any known).
    pub fn header(&self, query: crate::wire::api::bp::BlockQuery) -> Option<BlockRef> {
        let c = lock(&self.chain);
        let hash = match query {
            crate::wire::api::bp::BlockQuery::Height(h) => c.hash_at(h)?,
            crate::wire::api::bp::BlockQuery::Hash(h) => BlockHash::from_byte_array(h),
        };
        let e = c.get(&hash)?;
        Some(block_ref(e.height, &e.header))
    }

    /// `info` details.
    pub fn details(&self) -> Vec<(String, Detail)> {
        let (height, hash, known) = {
            let c = lock(&self.chain);
            let (h, hash) = c.tip();
            (h, hash, c.known())
        };
        let indexed = lock(&self.blocks).details(height);
        let t = lock(&self.inner);
        let ready: Vec<&Peer> = t.peers.values().filter(|p| p.ready.is_some()).collect();
        let best_seen = ready
            .iter()
            .filter_map(|p| p.ready.as_ref().map(|r| r.2))
            .max()
            .unwrap_or(0)
            .max(height);
        let progress = if best_seen == 0 {
            100.0
        } else {
            height as f64 * 100.0 / best_seen as f64
        };
        let mut v = vec![
            ("tip_height".into(), Detail::U64(height as u64)),
            ("tip_hash".into(), Detail::Text(hash.to_string())),
            ("headers".into(), Detail::U64(known as u64)),
            ("sync".into(), Detail::Text(format!("{progress:.1}%"))),
            ("peers".into(), Detail::U64(ready.len() as u64)),
            (
                "listening".into(),
                Detail::List(t.listening.iter().map(|(a, _)| a.to_string()).collect()),
            ),
        ];
        v.extend(indexed);
        v
    }

    // --- peers ---

    /// Starts a connection.
    pub fn spawn(self: &Arc<Self>, origin: Origin, onion: bool, reply: Option<(Bus, Envelope)>) {
        let (addr, outbound, ip) = match &origin {
            Origin::Inbound(_, a) => (a.to_string(), false, Some(a.ip())),
            Origin::Outbound(addr) => (addr.clone(), true, None),
        };
        let mut t = lock(&self.inner);
        let conn = t.next_conn;
        t.next_conn += 1;
        let wired = Wired::new(Wire::new(conn, self.clone(), reply), origin);
        let counters = wired.counters();
        let actor = wired.start();
        t.peers.insert(
            conn,
            Peer {
                actor,
                addr,
                outbound,
                ready: None,
                rtt_us: None,
                ip,
                opened: Instant::now(),
                onion,
                closing: false,
                counters,
                feefilter: None,
            },
        );
    }

    /// Connects to `addr` (answering `reply` when ready or failed). An address already
    /// connected is not connected twice.
    pub fn connect(self: &Arc<Self>, addr: String, reply: Option<(Bus, Envelope)>) {
        let dup = lock(&self.inner)
            .peers
            .values()
            .any(|p| p.outbound && p.addr == addr);
        if dup {
            if let Some((bus, env)) = reply {
                let text = format!("already connected to {addr}");
                bus.send(env.reply(Msg::Success(Some(text))));
            }
            return;
        }
        self.spawn(Origin::Outbound(addr), false, reply);
    }

    /// Accepts an inbound connection unless over the cap or discouraged.
    fn accepted(self: &Arc<Self>, stream: tokio::net::TcpStream, addr: SocketAddr) {
        let cfg = &self.config.admission;
        let onion = cfg.is_onion(stream.local_addr().ok());
        let newcomer = admission::Newcomer {
            ip: addr.ip(),
            onion,
        };
        let verdict = {
            let mut t = lock(&self.inner);
            t.discouraged
                .retain(|_, since| since.elapsed() < DISCOURAGE_FOR);
            if t.discouraged.contains_key(&addr.ip()) {
                None
            } else {
                let slots = t
                    .peers
                    .iter()
                    .filter(|(_, p)| !p.closing)
                    .map(|(conn, p)| Slot {
                        conn: *conn,
                        ip: p.ip,
                        inbound: !p.outbound,
                        ready: p.ready.is_some(),
                        opened: p.opened,
                        bytes_in: p
                            .counters
                            .bytes_in
                            .load(std::sync::atomic::Ordering::Relaxed),
                        onion: p.onion,
                    });
                Some(admission::admit(cfg, newcomer, Instant::now(), slots))
            }
        };
        let ip = addr.ip().to_string();
        match verdict {
            None => {
                if lograte::REFUSED_CONNECTIONS.allow(&ip) {
                    tracing::warn!(from = %addr, "refusing a connection: discouraged");
                }
            }
            Some(Verdict::Refuse(why)) => {
                if lograte::REFUSED_CONNECTIONS.allow(&ip) {
                    tracing::warn!(from = %addr, "refusing a connection: too many {}", why.as_str());
                }
            }
            Some(Verdict::Evict(conn)) => {
                let victim = lock(&self.inner).peers.get_mut(&conn).map(|p| {
                    p.closing = true;
                    (p.actor.clone(), p.addr.clone(), p.ip)
                });
                if let Some((actor, from, vip)) = victim {
                    let vip = vip.map(|ip| ip.to_string()).unwrap_or_default();
                    if lograte::EVICTED_HANDSHAKES.allow(&vip) {
                        tracing::warn!(%from, newcomer = %addr,
                            "evicting the slowest pending handshake for a newcomer");
                    }
                    actor.do_send(Command(WiredCmd::Disconnect(
                        "evicted: the slowest handshake, for a newcomer".into(),
                    )));
                }
                self.spawn(Origin::Inbound(stream, addr), onion, None);
            }
            Some(Verdict::Admit) => self.spawn(Origin::Inbound(stream, addr), onion, None),
        }
    }

    /// The remote IP of connection `conn` if it is inbound and not ready (its close is then a
    /// bad-peer event for the rate-limited log).
    pub fn pending_inbound_ip(&self, conn: u64) -> Option<IpAddr> {
        let t = lock(&self.inner);
        let p = t.peers.get(&conn)?;
        if !p.outbound && p.ready.is_none() {
            p.ip
        } else {
            None
        }
    }

    /// Binds `addr` and accepts Bitcoin peers on it.
    pub fn bind(self: &Arc<Self>, addr: &str) -> Result<SocketAddr, String> {
        let me = self.clone();
        let (local, task) =
            crate::actors::tcp::listen(addr, "Bitcoin peers", move |stream, from| {
                me.accepted(stream, from)
            })?;
        lock(&self.inner).listening.push((local, task));
        Ok(local)
    }

    /// A peer completed the handshake: it joins the block download.
    pub fn ready(&self, conn: u64, user_agent: String, version: u32, start_height: u32) {
        if let Some(p) = lock(&self.inner).peers.get_mut(&conn) {
            p.ready = Some((user_agent, version, start_height));
        }
        lock(&self.blocks).add_peer(conn);
        self.drive();
    }

    /// The socket address of an outbound connection is known.
    pub fn set_addr(&self, conn: u64, addr: String) {
        if let Some(p) = lock(&self.inner).peers.get_mut(&conn) {
            p.addr = addr;
        }
    }

    /// A peer's BIP133 `feefilter` (sat/kvB; negative or above 21 million bitcoin is no filter).
    pub fn set_feefilter(&self, conn: u64, sat_per_kvb: i64) {
        let v = u64::try_from(sat_per_kvb)
            .ok()
            .filter(|v| *v <= bitcoin::Amount::MAX_MONEY.to_sat());
        if let Some(p) = lock(&self.inner).peers.get_mut(&conn) {
            p.feefilter = v;
        }
    }

    /// The fee rate per target of `[fees]`, each raised to the highest `feefilter` of the ready
    /// peers, with where it came from.
    pub fn fees(&self) -> Vec<crate::wire::api::bp::FeeRate> {
        let floor = {
            let t = lock(&self.inner);
            t.peers
                .values()
                .filter(|p| p.ready.is_some())
                .filter_map(|p| Some((p.feefilter?.div_ceil(1000), p.addr.clone())))
                .max_by_key(|f| f.0)
        };
        self.config
            .fees
            .iter()
            .map(|(target, rate)| match &floor {
                Some((f, addr)) if *f > *rate => crate::wire::api::bp::FeeRate {
                    target: *target,
                    sat_per_vb: *f,
                    source: format!("feefilter of {addr} (config: {rate})"),
                },
                _ => crate::wire::api::bp::FeeRate {
                    target: *target,
                    sat_per_vb: *rate,
                    source: "config".into(),
                },
            })
            .collect()
    }

    /// The fee rate of a wallet transaction without one: `[fees] default_target`'s.
    fn default_fee_rate(&self) -> u64 {
        let target = self.config.default_target;
        self.fees()
            .into_iter()
            .find(|f| f.target == target)
            .map(|f| f.sat_per_vb)
            .unwrap_or(2)
    }

    /// A ping was answered.
    pub fn rtt(&self, conn: u64, us: u64) {
        if let Some(p) = lock(&self.inner).peers.get_mut(&conn) {
            p.rtt_us = Some(us);
        }
    }

    /// A connection ended: what it had in flight is asked of the others.
    pub fn remove(&self, conn: u64) {
        let was = lock(&self.inner).peers.remove(&conn).is_some();
        lock(&self.blocks).remove_peer(conn);
        if was {
            self.drive();
        }
    }

    /// Refuses `ip` for [`DISCOURAGE_FOR`].
    pub fn discourage(&self, ip: IpAddr) {
        lock(&self.inner).discouraged.insert(ip, Instant::now());
    }

    /// Ready peers.
    pub fn list(&self) -> Vec<BtcPeerInfo> {
        lock(&self.inner)
            .peers
            .values()
            .filter_map(|p| {
                let (ua, version, start) = p.ready.clone()?;
                Some(BtcPeerInfo {
                    addr: p.addr.clone(),
                    outbound: p.outbound,
                    user_agent: ua,
                    version,
                    start_height: start,
                    ping_rtt_us: p.rtt_us,
                })
            })
            .collect()
    }

    /// Sends `cmd` to every ready peer; returns how many.
    pub fn to_ready_peers(&self, cmd: impl Fn() -> WiredCmd) -> usize {
        let t = lock(&self.inner);
        let mut n = 0;
        for p in t.peers.values().filter(|p| p.ready.is_some()) {
            if p.actor.try_send(Command(cmd())).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// The actor of a peer by service name (`wired-<n>`).
    pub fn find_service(&self, name: &str) -> Option<Addr<Wired>> {
        let conn: u64 = name.strip_prefix("wired-")?.parse().ok()?;
        lock(&self.inner).peers.get(&conn).map(|p| p.actor.clone())
    }

    // --- blocks, transactions, subscribers ---

    /// Asks a ready peer for a block and answers `waiter` when it comes.
    pub fn want_block(&self, hash: BlockHash, height: u32, waiter: Waiter) {
        let mut t = lock(&self.inner);
        let first = !t.wanted.contains_key(&hash);
        t.wanted.entry(hash).or_default().push(waiter);
        if first {
            // Prefer the peer that announced the highest start height.
            let peer = t
                .peers
                .values()
                .filter(|p| p.ready.as_ref().is_some_and(|r| r.2 >= height))
                .chain(t.peers.values().filter(|p| p.ready.is_some()))
                .next()
                .map(|p| p.actor.clone());
            match peer.map(|a| a.try_send(Command(WiredCmd::GetBlock(hash)))) {
                Some(Ok(())) => {}
                _ => {
                    let waiting = t.wanted.remove(&hash).unwrap_or_default();
                    drop(t);
                    fail_waiters(
                        waiting,
                        code::PEER_FAILED,
                        "no ready peer to fetch the block from",
                    );
                }
            }
        }
    }

    /// A block arrived from connection `conn` (`size` bytes on the wire). A block for the
    /// download or for a client is checked first; a block that fails, or that nobody asked this
    /// peer for, is the peer's misbehaviour.
    pub fn on_block(&self, conn: u64, block: Block, size: usize) -> Result<(), PeerError> {
        let hash = block.block_hash();
        let for_client = lock(&self.inner).wanted.contains_key(&hash);
        let arrival = lock(&self.blocks).arrival(conn, &hash);
        let expected = match arrival {
            Wanted::Index(_) | Wanted::Rescan(_) => Some(arrival),
            Wanted::Late if !for_client => {
                tracing::debug!(conn, %hash, "late block ignored (asked of another peer since)");
                return Ok(());
            }
            Wanted::Unrequested if !for_client => {
                return Err(PeerError::discourage(format!(
                    "sent block {hash}, which we did not ask for"
                )));
            }
            Wanted::Late | Wanted::Unrequested => None,
        };
        if let Err(e) = check_block(&block, hash) {
            if let Some(w) = expected {
                lock(&self.blocks).failed(conn, w);
            }
            let waiting = lock(&self.inner).wanted.remove(&hash).unwrap_or_default();
            let why = format!("block {hash} refused: {e}");
            fail_waiters(waiting, code::PEER_FAILED, &why);
            self.drive();
            return Err(PeerError::discourage(why));
        }
        if for_client {
            self.answer_waiters(&block);
            if expected.is_none() {
                lock(&self.blocks).remember(Arc::new(block.clone()), size);
            }
        }
        if let Some(Wanted::Rescan(height)) = expected {
            let tip = self.tip().0;
            {
                let mut b = lock(&self.blocks);
                match b.deliver_rescan(height, block, size, &|h| self.hash_at(h)) {
                    Ok(hits) => {
                        let t = lock(&self.inner);
                        for (hit, block, tx) in hits {
                            if let Some((owner, msg)) =
                                hit_msg(b.watch_info(&hit.watch), &hit, block, tx, tip)
                            {
                                t.watchers
                                    .notify_if(&ServiceId::Bpd, &msg, |(o, _)| *o == owner);
                            }
                        }
                    }
                    Err(e) => tracing::error!("a rescan cannot be written: {e}"),
                }
            }
            self.drive();
        } else if let Some(Wanted::Index(height)) = expected {
            let tip = self.tip().0;
            {
                // Events go out under the lock, so that a subscriber's replay and its live
                // events never overlap.
                let mut b = lock(&self.blocks);
                let done = b.deliver(height, block, size, tip, &|h| self.hash_at(h));
                self.indexed(&b, &done, tip);
            }
            self.drive();
        }
        Ok(())
    }

    fn answer_waiters(&self, block: &Block) {
        let hash = block.block_hash();
        let waiting = lock(&self.inner).wanted.remove(&hash).unwrap_or_default();
        if waiting.is_empty() {
            return;
        }
        let height = lock(&self.chain).get(&hash).map(|e| e.height).unwrap_or(0);
        let mut raw = None;
        for w in waiting {
            match w {
                Waiter::Block(bus, env) => {
                    let raw = raw.get_or_insert_with(|| encode::serialize(block)).clone();
                    bus.send(env.reply(Msg::Bp(BpMsg::BlockData {
                        height,
                        hash: hash.to_byte_array(),
                        raw,
                    })))
                }
                Waiter::Tx(bus, env, mut info, pos) => {
                    info.tx = tx_body(block, pos, &info.txid);
                    bus.send(env.reply(Msg::Bp(BpMsg::TxInfo(info))))
                }
            }
        }
    }

    /// A peer does not have a block we asked it for.
    pub fn block_not_found(&self, conn: u64, hash: BlockHash) {
        lock(&self.blocks).not_found(conn, &hash);
        let waiting = lock(&self.inner).wanted.remove(&hash).unwrap_or_default();
        fail_waiters(
            waiting,
            code::NOT_FOUND,
            &format!("the peer does not have block {hash}"),
        );
        self.drive();
    }

    fn indexed(&self, b: &Blocks, done: &Indexed, tip: u32) {
        self.publish_hits(&b.watches, done, tip);
        if !done.mined.is_empty() {
            let mut t = lock(&self.inner);
            for txid in &done.mined {
                if let Some(tx) = t.mempool.remove(txid) {
                    let size = tx.total_size();
                    t.mempool_bytes -= size;
                }
            }
            let Inner {
                mempool,
                mempool_order,
                ..
            } = &mut *t;
            mempool_order.retain(|(id, _)| mempool.contains_key(id));
        }
        if let (true, Some((h, hash))) = (done.blocks > 0, done.tip) {
            let txs = b.index.len();
            if h == tip {
                tracing::info!(height = h, %hash, txs, "indexed to the tip");
            } else {
                tracing::debug!(height = h, %hash, txs, blocks = done.blocks, "indexed");
            }
        }
    }

    /// Commits the blocks waiting in order if a commit is due (the once-a-second clock).
    pub fn tick(&self) {
        let tip = self.tip().0;
        {
            let mut b = lock(&self.blocks);
            let done = b.flush(tip, false, &|h| self.hash_at(h));
            self.indexed(&b, &done, tip);
        }
        self.drive();
    }

    /// Asks the ready peers for the blocks the download wants now, and takes back stalled
    /// requests. Called on every change and once a second.
    pub fn drive(&self) {
        let tip = self.tip().0;
        let poll = lock(&self.blocks).poll(Instant::now(), tip, &|h| self.hash_at(h));
        for (conn, height) in &poll.stalled {
            tracing::warn!(peer = %format!("wired-{conn}"), height,
                "block request stalled; asked of another peer, and this one's share halves");
        }
        if poll.requests.is_empty() {
            return;
        }
        let t = lock(&self.inner);
        for (conn, hashes) in poll.requests {
            if let Some(p) = t.peers.get(&conn) {
                // A full mailbox: the request stalls and moves on like an unanswered one.
                let _ = p.actor.try_send(Command(WiredCmd::GetBlocks(hashes)));
            }
        }
    }

    // --- watches ---

    fn publish_hits(&self, watches: &Watches, done: &Indexed, tip: u32) {
        let t = lock(&self.inner);
        if t.watchers.is_empty() {
            return;
        }
        let filtered: Vec<String> = t
            .watchers
            .iter()
            .filter(|(_, (_, f))| *f)
            .map(|(_, (o, _))| o.clone())
            .collect();
        let mut hits = done.hits.iter().peekable();
        for (height, header) in &done.committed {
            let mut txs_of: HashMap<String, Vec<(u32, Vec<u8>)>> = HashMap::new();
            while let Some((hit, block, tx)) = hits.next_if(|(h, _, _)| h.height == *height) {
                if let Some((owner, msg)) =
                    hit_msg(watches.get(&hit.watch), hit, *block, tx.clone(), tip)
                {
                    t.watchers
                        .notify_if(&ServiceId::Bpd, &msg, |(o, _)| *o == owner);
                    let txs = txs_of.entry(owner).or_default();
                    if txs.last().is_none_or(|(p, _)| *p != hit.pos) {
                        txs.push((hit.pos, tx.clone()));
                    }
                }
            }
            for owner in &filtered {
                let msg = Msg::Bp(BpMsg::FilteredBlock(crate::wire::api::bp::FilteredBlock {
                    block: block_ref(*height, header),
                    txs: txs_of.get(owner).cloned().unwrap_or_default(),
                }));
                t.watchers
                    .notify_if(&ServiceId::Bpd, &msg, |(o, f)| *f && o == owner);
            }
        }
    }

    fn publish_left(&self, watches: &Watches, left: &Left) {
        // The headers first: `inner` is taken last and alone.
        let refs: Vec<Option<BlockRef>> = left
            .blocks
            .iter()
            .map(|(h, hash)| self.known_block_ref(hash, *h))
            .collect();
        let t = lock(&self.inner);
        let mut hits = left.hits.iter().peekable();
        for ((_, hash), r) in left.blocks.iter().zip(refs) {
            while let Some((hit, block)) = hits.next_if(|(_, b)| b == hash) {
                if let Some((owner, msg)) = unconfirmed_msg(watches, hit, *block) {
                    t.watchers
                        .notify_if(&ServiceId::Bpd, &msg, |(o, _)| *o == owner);
                }
            }
            if let Some(r) = r {
                let msg = Msg::Bp(BpMsg::BlockDisconnected(r));
                t.watchers.notify_if(&ServiceId::Bpd, &msg, |(_, f)| *f);
            }
        }
    }

    /// The `block_ref` of a known header (on the best chain or not).
    fn known_block_ref(&self, hash: &BlockHash, height: u32) -> Option<BlockRef> {
        let c = lock(&self.chain);
        c.get(hash).map(|e| block_ref(height, &e.header))
    }

    /// `add_watch`: the watch from the index's next height.
    pub fn add_watch(
        &self,
        owner: String,
        id: String,
        target: WatchTarget,
        from: Option<u32>,
    ) -> Result<WatchInfo, crate::wire::api::ApiError> {
        use crate::wire::api::ApiError;
        for (what, name) in [("owner", &owner), ("id", &id)] {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ApiError::new(
                    code::INVALID_ARGUMENT,
                    format!("a watch's {what} is 1 to 64 printable ASCII characters"),
                ));
            }
        }
        if matches!(&target, WatchTarget::Script(s) if s.is_empty()) {
            return Err(ApiError::new(code::INVALID_ARGUMENT, "an empty script"));
        }
        let peers: Vec<u64> = lock(&self.inner)
            .peers
            .iter()
            .filter(|(_, p)| p.ready.is_some())
            .map(|(c, _)| *c)
            .collect();
        let mut b = lock(&self.blocks);
        let next = b.index.next().unwrap_or(0);
        let range_start = b.index.from().unwrap_or(next);
        if let Some(f) = from.filter(|f| *f < range_start) {
            return Err(ApiError::new(
                code::INVALID_ARGUMENT,
                format!("height {f} is below the indexed range (it starts at {range_start})"),
            ));
        }
        let key = watch::watch_key(&owner, &id);
        if let Some(w) = b.rescan.as_ref().and_then(|_| b.watch_info(&key)) {
            if b.watches.get(&key).is_none() {
                // Being rescanned: the same watch again is no change.
                return if w.target == target {
                    Ok(w.clone())
                } else {
                    Err(ApiError::new(
                        code::INVALID_ARGUMENT,
                        format!("{owner} already has a watch `{id}` on something else"),
                    ))
                };
            }
        }
        let from_height = from.unwrap_or(next).min(next);
        let info = WatchInfo {
            owner,
            id,
            target,
            from_height,
        };
        let Blocks { index, watches, .. } = &mut *b;
        let existed = watches.get(&key).is_some();
        let added = watches.add(index.store(), info)?;
        if !existed && added.from_height < next {
            b.start_rescan(key, added.from_height, &peers)?;
            tracing::info!(owner = %added.owner, id = %added.id, from = added.from_height,
                to = next, "watch kept; rescanning the blocks already indexed");
        } else {
            tracing::info!(owner = %added.owner, id = %added.id, from = added.from_height,
                "watch kept");
        }
        drop(b);
        self.drive();
        Ok(added)
    }

    /// `remove_watch`.
    pub fn remove_watch(&self, owner: &str, id: &str) -> Result<bool, crate::storage::StoreError> {
        let mut b = lock(&self.blocks);
        let key = watch::watch_key(owner, id);
        let Blocks {
            index,
            watches,
            rescan,
            ..
        } = &mut *b;
        if let Some(r) = rescan {
            if let Some(info) = r.take(&key) {
                // Back into the live set for its removal to be stored there.
                watches.insert_stored(key, info);
                index
                    .store()
                    .apply(&mut [watch::rescan_done(&key)].iter())?;
            }
        }
        watches.remove(index.store(), owner, id)
    }

    /// `list_watches`.
    pub fn list_watches(&self, owner: &str) -> Vec<WatchInfo> {
        let b = lock(&self.blocks);
        let mut v = b.watches.of(owner);
        if let Some(r) = &b.rescan {
            v.extend(r.watches().of(owner));
            v.sort_by(|a, b| a.id.cmp(&b.id));
        }
        v
    }

    /// `subscribe_watches`: answers `watch_synced`, then replays `owner`'s events after the
    /// block `since` (tx_unconfirmed for the hits of blocks that left the best chain since,
    /// then the hits of the blocks after it, in order), and subscribes the sender unless more
    /// remain to replay.
    pub fn subscribe_watches(
        &self,
        bus: &Bus,
        env: &Envelope,
        owner: &str,
        since: Option<[u8; 32]>,
        filtered: bool,
    ) -> Result<(), crate::wire::api::ApiError> {
        use crate::wire::api::ApiError;
        let b = lock(&self.blocks);
        let store = b.index.store();
        let (tip_h, tip_hash) = match b.index.tip() {
            Some(t) => t,
            None => (0, self.hash_at(0).unwrap_or(BlockHash::all_zeros())),
        };
        let best = |hash: &[u8; 32]| {
            let c = lock(&self.chain);
            let h = BlockHash::from_byte_array(*hash);
            c.is_best(&h).then(|| c.get(&h).map(|e| e.height)).flatten()
        };
        let mut events = Vec::new();
        let mut from = tip_h + 1;
        if let Some(s) = since {
            let mut cur = s;
            let mut steps = 0;
            from = loop {
                if let Some(h) = best(&cur) {
                    break h + 1;
                }
                let g = watch::gone(store, &cur)?.ok_or_else(|| {
                    ApiError::new(
                        code::NOT_FOUND,
                        format!(
                            "block {} is neither on the best chain nor one that left it: \
                             subscribe without `since`",
                            BlockHash::from_byte_array(cur)
                        ),
                    )
                })?;
                let hash = BlockHash::from_byte_array(cur);
                for hit in g.hits.iter().rev() {
                    if let Some((o, msg)) = unconfirmed_msg(&b.watches, hit, hash) {
                        if o == owner {
                            events.push(msg);
                        }
                    }
                }
                if filtered {
                    if let Some(r) = self.known_block_ref(&hash, g.height) {
                        events.push(Msg::Bp(BpMsg::BlockDisconnected(r)));
                    }
                }
                cur = g.prev;
                steps += 1;
                if steps > super::index::UNDO_DEPTH {
                    return Err(ApiError::new(
                        code::NOT_FOUND,
                        "the subscriber's block is too far from the best chain",
                    ));
                }
            };
        }
        let mut last = (tip_h, tip_hash);
        let mut more = false;
        if from <= tip_h {
            // This owner's hits by height; with the filtered feed every height counts.
            let mut by_height: BTreeMap<u32, Vec<Hit>> = BTreeMap::new();
            for hit in watch::hits_at(store, from, tip_h)? {
                if b.watch_info(&hit.watch).is_some_and(|w| w.owner == owner) {
                    by_height.entry(hit.height).or_default().push(hit);
                }
            }
            let heights: Vec<u32> = if filtered {
                (from..=tip_h).collect()
            } else {
                by_height.keys().copied().collect()
            };
            let tip = self.tip().0;
            let mut done: Option<(u32, BlockHash)> = None;
            for h in heights {
                if let (Some(d), true) = (done, events.len() >= MAX_REPLAY) {
                    last = d;
                    more = true;
                    break;
                }
                let r = b.index.block(h)?.ok_or_else(|| {
                    ApiError::new(code::SERVICE_FAILED, "the index lacks a block record")
                })?;
                let mut txs: Vec<(u32, Vec<u8>)> = Vec::new();
                for hit in by_height.get(&h).into_iter().flatten() {
                    let tx = watch::hit_tx(store, hit.height, hit.pos)?;
                    if txs.last().is_none_or(|(p, _)| *p != hit.pos) {
                        txs.push((hit.pos, tx.clone()));
                    }
                    if let Some((_, msg)) = hit_msg(b.watch_info(&hit.watch), hit, r.hash, tx, tip)
                    {
                        events.push(msg);
                    }
                }
                if filtered {
                    let header = self.header_at(h).ok_or_else(|| {
                        ApiError::new(code::SERVICE_FAILED, "the header chain lacks a block")
                    })?;
                    events.push(Msg::Bp(BpMsg::FilteredBlock(
                        crate::wire::api::bp::FilteredBlock {
                            block: block_ref(h, &header),
                            txs,
                        },
                    )));
                }
                done = Some((h, r.hash));
            }
        }
        let synced = WatchSynced {
            events: events.len() as u32,
            height: last.0,
            hash: last.1.to_byte_array(),
            more,
        };
        bus.send(env.reply(Msg::Bp(BpMsg::WatchSynced(synced))));
        let sub = Subscriber::of(bus, env);
        for msg in events {
            sub.notify(&ServiceId::Bpd, msg);
        }
        if !more {
            lock(&self.inner)
                .watchers
                .add(sub, (owner.to_string(), filtered))
                .map_err(|e| ApiError::new(code::BUSY, e))?;
        }
        Ok(())
    }

    // --- relayed transactions ---

    /// The transactions of an `inv` worth asking for: unknown, not asked lately (at most
    /// [`MAX_ASK`] per `inv`).
    pub fn wanted_txs(&self, items: &[Inventory]) -> Vec<Inventory> {
        if !self.config.relay_txs {
            return Vec::new();
        }
        let mut t = lock(&self.inner);
        let mut want = Vec::new();
        for i in items {
            let (id, ask) = match i {
                Inventory::Transaction(t) => (t.to_byte_array(), Inventory::WitnessTransaction(*t)),
                Inventory::WTx(w) => (w.to_byte_array(), Inventory::WTx(*w)),
                _ => continue,
            };
            let known = t.asked.contains(&id) || t.mempool.contains_key(&Txid::from_byte_array(id));
            if known {
                continue;
            }
            t.asked.insert(id);
            t.asked_order.push_back(id);
            while t.asked_order.len() > MAX_ASKED {
                if let Some(old) = t.asked_order.pop_front() {
                    t.asked.remove(&old);
                }
            }
            want.push(ask);
            if want.len() >= MAX_ASK {
                break;
            }
        }
        want
    }

    /// A transaction relayed by a peer: kept in the mempool (unvalidated: there is no UTXO set),
    /// reported to the watches it touches (`tx_seen`), and given to the wallet (an incoming
    /// payment shows as unconfirmed).
    pub fn on_relayed_tx(&self, tx: Transaction) {
        if !self.config.relay_txs {
            return;
        }
        let txid = tx.compute_txid();
        let size = tx.total_size();
        {
            let mut t = lock(&self.inner);
            if t.mempool.contains_key(&txid) || size > MEMPOOL_BYTES {
                return;
            }
            t.mempool_bytes += size;
            t.mempool_order.push_back((txid, size));
            t.mempool.insert(txid, tx.clone());
            while t.mempool_bytes > MEMPOOL_BYTES {
                let Some((old, s)) = t.mempool_order.pop_front() else {
                    break;
                };
                if t.mempool.remove(&old).is_some() {
                    t.mempool_bytes -= s;
                }
            }
        }
        let mut b = lock(&self.blocks);
        if b.index.get(&txid).ok().flatten().is_some() {
            return; // mined already
        }
        let keys = b.watches.match_tx(&tx);
        if !keys.is_empty() {
            let raw = encode::serialize(&tx);
            let t = lock(&self.inner);
            for k in keys {
                if let Some(w) = b.watches.get(&k) {
                    let msg = Msg::Bp(BpMsg::TxSeen {
                        id: w.id.clone(),
                        txid: txid.to_byte_array(),
                        tx: raw.clone(),
                    });
                    let owner = w.owner.clone();
                    t.watchers
                        .notify_if(&ServiceId::Bpd, &msg, |(o, _)| *o == owner);
                }
            }
        }
        // The wallet keeps it with the next block's commit (an unconfirmed payment lost in a
        // crash is seen again when it is mined).
        for a in &mut b.wallets.accounts {
            a.wallet.apply_unconfirmed_txs([(tx.clone(), unix_now())]);
        }
    }

    /// `get_tx`: the status of `txid`; for a mined one, the body comes from a peer's copy of
    /// its block (`None` returned: `reply` is answered when it arrives).
    pub fn get_tx(&self, txid: Txid, reply: (Bus, Envelope)) -> Option<Msg> {
        let found = {
            let b = lock(&self.blocks);
            b.index.get(&txid).map(|m| {
                let recent = m.and_then(|m| b.recent(&m.hash));
                (m, b.index.from(), b.index.tip(), recent)
            })
        };
        let (mined, from, itip, recent) = match found {
            Ok(f) => f,
            Err(e) => return Some(Msg::failure(code::SERVICE_FAILED, e.to_string())),
        };
        let id = txid.to_byte_array();
        if let Some(m) = mined {
            let tip = self.tip().0;
            let info = TxInfo {
                txid: id,
                status: TxStatus::Mined {
                    height: m.height,
                    hash: m.hash.to_byte_array(),
                    time: m.time,
                    pos: m.pos,
                    confirmations: tip.saturating_sub(m.height) + 1,
                },
                tx: None,
            };
            if let Some(block) = recent {
                let mut info = info;
                info.tx = tx_body(&block, m.pos, &id);
                return Some(Msg::Bp(BpMsg::TxInfo(info)));
            }
            let (bus, env) = reply;
            self.want_block(m.hash, m.height, Waiter::Tx(bus, env, info, m.pos));
            return None;
        }
        let relayed = lock(&self.inner).mempool.get(&txid).cloned();
        if let Some(tx) = self.tx(&id).or(relayed) {
            return Some(Msg::Bp(BpMsg::TxInfo(TxInfo {
                txid: id,
                status: TxStatus::Mempool,
                tx: Some(encode::serialize(&tx)),
            })));
        }
        let indexed = match (from, itip) {
            (Some(f), Some((t, _))) => Some((f, t)),
            _ => None,
        };
        Some(Msg::Bp(BpMsg::TxInfo(TxInfo {
            txid: id,
            status: TxStatus::Unknown { indexed },
            tx: None,
        })))
    }

    /// Keeps a transaction to answer `getdata`; returns its wtxid.
    pub fn add_tx(&self, tx: Transaction) -> Result<Wtxid, String> {
        let mut t = lock(&self.inner);
        if t.txs.len() >= MAX_TXS {
            return Err(format!(
                "{MAX_TXS} transactions are being announced already"
            ));
        }
        let id = tx.compute_wtxid();
        t.txs.insert(id, tx);
        Ok(id)
    }

    /// A transaction we announced, by txid or wtxid.
    pub fn tx(&self, hash: &[u8; 32]) -> Option<Transaction> {
        let t = lock(&self.inner);
        t.txs
            .iter()
            .find(|(w, tx)| {
                w.to_byte_array() == *hash || tx.compute_txid().to_byte_array() == *hash
            })
            .map(|(_, tx)| tx.clone())
    }

    /// Adds a BLOCKS subscriber.
    pub fn subscribe(&self, bus: Bus, env: &Envelope) -> Result<(), String> {
        lock(&self.inner)
            .subscribers
            .add(Subscriber::of(&bus, env), ())
    }

    /// A subscriber is gone.
    pub fn unsubscribe(&self, service: &ServiceId) {
        let mut t = lock(&self.inner);
        t.subscribers.remove(service);
        t.watchers.remove(service);
    }
}

/// Fails every waiter with `code` and `why`; a `get_tx` waiter still gets its status, without
/// the transaction's body.
fn fail_waiters(waiting: Vec<Waiter>, code: crate::wire::api::Code, why: &str) {
    for w in waiting {
        match w {
            Waiter::Block(bus, env) => bus.send(env.reply(Msg::failure(code, why.to_string()))),
            Waiter::Tx(bus, env, info, _) => {
                tracing::debug!("a transaction's block could not be fetched: {why}");
                bus.send(env.reply(Msg::Bp(BpMsg::TxInfo(info))))
            }
        }
    }
}

/// The serialized transaction at `pos` of `block`, if its txid is `txid`.
fn tx_body(block: &Block, pos: u32, txid: &[u8; 32]) -> Option<Vec<u8>> {
    block
        .txdata
        .get(pos as usize)
        .filter(|t| t.compute_txid().to_byte_array() == *txid)
        .map(encode::serialize)
}

/// Most events one `subscribe_watches` replays (whole blocks: the last block may add more);
/// the rest comes with the next one. A subscriber reads them before it subscribes again, so
/// the bus's queue (1,000) is not overrun.
const MAX_REPLAY: usize = 500;

/// The event of a hit, for its owner.
fn hit_msg(
    watch: Option<&WatchInfo>,
    hit: &Hit,
    block: BlockHash,
    tx: Vec<u8>,
    tip: u32,
) -> Option<(String, Msg)> {
    let w = watch?;
    let mut event = WatchHit {
        id: w.id.clone(),
        txid: hit.txid.to_byte_array(),
        height: hit.height,
        block: block.to_byte_array(),
        pos: hit.pos,
        confirmations: tip.saturating_sub(hit.height) + 1,
        vout: None,
        spent: None,
        tx,
    };
    let msg = match hit.kind {
        HitKind::Tx => BpMsg::TxConfirmed(event),
        HitKind::Output(v) => {
            event.vout = Some(v);
            BpMsg::TxConfirmed(event)
        }
        HitKind::Spend(op, vin) => {
            event.spent = Some((op.txid.to_byte_array(), op.vout, vin));
            BpMsg::OutpointSpent(event)
        }
    };
    Some((w.owner.clone(), Msg::Bp(msg)))
}

/// `tx_unconfirmed` for a hit whose block left the best chain.
fn unconfirmed_msg(watches: &Watches, hit: &Hit, block: BlockHash) -> Option<(String, Msg)> {
    let w = watches.get(&hit.watch)?;
    Some((
        w.owner.clone(),
        Msg::Bp(BpMsg::TxUnconfirmed {
            id: w.id.clone(),
            txid: hit.txid.to_byte_array(),
            height: hit.height,
            block: block.to_byte_array(),
        }),
    ))
}

/// The highest fee rate a wallet transaction may ask for, sat/vB (a typo guard).
pub const MAX_FEE_RATE: u64 = 10_000;

/// Bytes of relayed unconfirmed transactions kept (oldest dropped beyond): 64 MiB. Our own
/// choice: Core keeps 300 MB, validated; ours is unvalidated and only answers `get_tx` and
/// feeds watches and the wallet.
pub const MEMPOOL_BYTES: usize = 64 << 20;
/// Transactions asked of a peer per `inv` (Core: `MAX_PEER_TX_ANNOUNCEMENTS` per peer, 5,000).
const MAX_ASK: usize = 1_000;
/// Transaction ids remembered as asked (not asked again while remembered).
const MAX_ASKED: usize = 100_000;
