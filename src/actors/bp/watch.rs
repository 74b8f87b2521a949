//! Watches: named scripts, outpoints and txids of an owner (a service, or a client that names
//! itself), matched against every block the index takes in, in the same durable commit. What
//! they match (hits) is kept, so a subscriber that comes back after a crash names the last
//! block it saw and gets every event since, in order; a reorganisation takes hits out and keeps
//! what it took (so a subscriber that saw the old branch hears that those are unconfirmed).
//!
//! | table      | key                                         | value                        |
//! |------------|---------------------------------------------|------------------------------|
//! | `bp.watch` | sha256(owner, 0, id)                        | the `watch_info` (strict)    |
//! | `bp.hit`   | height BE, pos BE, slot BE, watch key[..20] | kind, txid, output or spend  |
//! | `bp.hittx` | height BE, pos BE, 0-padded                 | the transaction              |
//! | `bp.wout`  | sha256(txid, vout, watch key)               | txid, vout, watch key        |
//! | `bp.gone`  | block hash                                  | height, prev hash, its hits  |
//!
//! A script watch reports each output paying the script (`tx_confirmed` with `vout`) and keeps
//! that output (`bp.wout`), so its spend is reported too (`outpoint_spent`), as an outpoint
//! watch's is. A watch starts at the index's next height, or lower with a rescan
//! ([`super::chain::Rescan`]: the blocks downloaded again, since the index keeps no bodies;
//! `bp.rescan` keeps its progress).

use crate::storage::{Storage, StoreError, Write};
use crate::wire::api::bp::{WatchInfo, WatchTarget};
use crate::wire::strict::{deserialize, serialize};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::{Block, OutPoint, Txid};
use std::collections::HashMap;

const WATCH: &str = "bp.watch";
const HIT: &str = "bp.hit";
const HITTX: &str = "bp.hittx";
const WOUT: &str = "bp.wout";
const GONE: &str = "bp.gone";
/// Watches being rescanned: key the watch key, value next height u32 LE, from height u32 LE.
const RESCAN: &str = "bp.rescan";

/// Most watches in all (each costs a map entry, and a script watch one more per output found).
pub const MAX_WATCHES: usize = 100_000;

/// Most watches of one owner (`list_watches` answers them all in one list).
pub const MAX_PER_OWNER: usize = crate::wire::limits::MAX_LIST;

/// A watch's key.
pub type WatchKey = [u8; 32];

/// The key of `owner`'s watch `id`.
pub fn watch_key(owner: &str, id: &str) -> WatchKey {
    let mut b = owner.as_bytes().to_vec();
    b.push(0);
    b.extend_from_slice(id.as_bytes());
    sha256::Hash::hash(&b).to_byte_array()
}

fn failed(what: &str) -> StoreError {
    StoreError::Failed(format!("the watch store is damaged: {what}"))
}

/// What a hit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HitKind {
    /// The watched txid.
    Tx,
    /// An output paying a watched script.
    Output(u32),
    /// A spend of a watched outpoint: (outpoint, input).
    Spend(OutPoint, u32),
}

/// One match of a watch in a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The watch.
    pub watch: WatchKey,
    /// Height.
    pub height: u32,
    /// Position in the block.
    pub pos: u32,
    /// The transaction.
    pub txid: Txid,
    /// What matched.
    pub kind: HitKind,
}

impl Hit {
    fn key(&self) -> [u8; 32] {
        let slot = match self.kind {
            HitKind::Tx => u32::MAX,
            HitKind::Output(v) => v & 0x7fff_ffff,
            HitKind::Spend(_, vin) => 0x8000_0000 | (vin & 0x7fff_ffff),
        };
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&self.height.to_be_bytes());
        k[4..8].copy_from_slice(&self.pos.to_be_bytes());
        k[8..12].copy_from_slice(&slot.to_be_bytes());
        k[12..].copy_from_slice(&self.watch[..20]);
        k
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = self.watch.to_vec();
        v.extend_from_slice(&self.height.to_le_bytes());
        v.extend_from_slice(&self.pos.to_le_bytes());
        v.extend_from_slice(&self.txid.to_byte_array());
        match self.kind {
            HitKind::Tx => v.push(0),
            HitKind::Output(vout) => {
                v.push(1);
                v.extend_from_slice(&vout.to_le_bytes());
            }
            HitKind::Spend(op, vin) => {
                v.push(2);
                v.extend_from_slice(&op.txid.to_byte_array());
                v.extend_from_slice(&op.vout.to_le_bytes());
                v.extend_from_slice(&vin.to_le_bytes());
            }
        }
        v
    }

    fn decode(b: &[u8]) -> Option<Hit> {
        let arr = |at: usize| -> Option<[u8; 32]> { b.get(at..at + 32)?.try_into().ok() };
        let u32_at = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
        };
        let kind = match *b.get(72)? {
            0 => HitKind::Tx,
            1 => HitKind::Output(u32_at(73)?),
            2 => HitKind::Spend(
                OutPoint {
                    txid: Txid::from_byte_array(arr(73)?),
                    vout: u32_at(105)?,
                },
                u32_at(109)?,
            ),
            _ => return None,
        };
        Some(Hit {
            watch: arr(0)?,
            height: u32_at(32)?,
            pos: u32_at(36)?,
            txid: Txid::from_byte_array(arr(40)?),
            kind,
        })
    }
}

fn tx_key(height: u32, pos: u32) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..4].copy_from_slice(&height.to_be_bytes());
    k[4..8].copy_from_slice(&pos.to_be_bytes());
    k
}

fn wout_key(op: &OutPoint, watch: &WatchKey) -> [u8; 32] {
    let mut b = op.txid.to_byte_array().to_vec();
    b.extend_from_slice(&op.vout.to_le_bytes());
    b.extend_from_slice(watch);
    sha256::Hash::hash(&b).to_byte_array()
}

/// A block that left the best chain, as its hits remember it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gone {
    /// Its height.
    pub height: u32,
    /// Its parent.
    pub prev: [u8; 32],
    /// The hits it had.
    pub hits: Vec<Hit>,
}

/// The watches, in memory for matching (their store is the index's).
#[derive(Default)]
pub struct Watches {
    watches: HashMap<WatchKey, WatchInfo>,
    scripts: HashMap<Vec<u8>, Vec<WatchKey>>,
    outpoints: HashMap<OutPoint, Vec<WatchKey>>,
    txids: HashMap<Txid, Vec<WatchKey>>,
}

/// Every key of `table`, in pages.
fn all_keys(store: &dyn Storage, table: &str) -> Result<Vec<[u8; 32]>, StoreError> {
    let mut keys = Vec::new();
    let mut after = None;
    loop {
        let (page, more) = store.list_ids(table, after, crate::wire::limits::MAX_IDS)?;
        after = page.last().copied();
        keys.extend(page);
        if !more {
            return Ok(keys);
        }
    }
}

impl Watches {
    /// The watches kept in `store`.
    pub fn load(store: &dyn Storage) -> Result<Watches, StoreError> {
        let mut w = Watches::default();
        for k in all_keys(store, WATCH)? {
            let v = store.get(WATCH, &k)?.ok_or_else(|| failed("watch"))?;
            let info: WatchInfo = deserialize(&v).map_err(|_| failed("watch"))?;
            w.insert(k, info);
        }
        for k in all_keys(store, WOUT)? {
            let v = store.get(WOUT, &k)?.ok_or_else(|| failed("output"))?;
            let (op, watch) = decode_wout(&v).ok_or_else(|| failed("output"))?;
            if w.watches.contains_key(&watch) {
                w.outpoints.entry(op).or_default().push(watch);
            }
        }
        Ok(w)
    }

    /// Takes in `other`'s watches and the outputs they found (a rescan that caught up).
    pub fn absorb(&mut self, other: Watches) {
        for (key, info) in other.watches {
            self.insert(key, info);
        }
        for (op, keys) in other.outpoints {
            let mine = self.outpoints.entry(op).or_default();
            for k in keys {
                if !mine.contains(&k) {
                    mine.push(k);
                }
            }
        }
    }

    /// Moves watch `key` out (into a rescan's set), without its found outputs.
    pub fn take(&mut self, key: &WatchKey) -> Option<WatchInfo> {
        let info = self.watches.remove(key)?;
        let drop_key = |m: &mut Vec<WatchKey>| m.retain(|k| k != key);
        self.scripts.values_mut().for_each(drop_key);
        self.outpoints.values_mut().for_each(drop_key);
        self.txids.values_mut().for_each(drop_key);
        self.scripts.retain(|_, v| !v.is_empty());
        self.outpoints.retain(|_, v| !v.is_empty());
        self.txids.retain(|_, v| !v.is_empty());
        Some(info)
    }

    /// Its watches' keys and infos.
    pub fn infos(&self) -> impl Iterator<Item = (&WatchKey, &WatchInfo)> {
        self.watches.iter()
    }

    /// A watch, in memory only (it is stored already).
    pub fn insert_stored(&mut self, key: WatchKey, info: WatchInfo) {
        self.insert(key, info);
    }

    fn insert(&mut self, key: WatchKey, info: WatchInfo) {
        match &info.target {
            WatchTarget::Script(s) => self.scripts.entry(s.clone()).or_default().push(key),
            WatchTarget::Outpoint(t, v) => self
                .outpoints
                .entry(OutPoint {
                    txid: Txid::from_byte_array(*t),
                    vout: *v,
                })
                .or_default()
                .push(key),
            WatchTarget::Txid(t) => self
                .txids
                .entry(Txid::from_byte_array(*t))
                .or_default()
                .push(key),
        }
        self.watches.insert(key, info);
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.watches.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.watches.is_empty()
    }

    /// A watch by key.
    pub fn get(&self, key: &WatchKey) -> Option<&WatchInfo> {
        self.watches.get(key)
    }

    /// The watches of `owner`, by id.
    pub fn of(&self, owner: &str) -> Vec<WatchInfo> {
        let mut v: Vec<WatchInfo> = self
            .watches
            .values()
            .filter(|w| w.owner == owner)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Adds `info` (stored before it counts). The same watch again is no change; the same
    /// name with another target is refused.
    pub fn add(&mut self, store: &dyn Storage, info: WatchInfo) -> Result<WatchInfo, StoreError> {
        let key = watch_key(&info.owner, &info.id);
        if let Some(w) = self.watches.get(&key) {
            if w.target == info.target {
                return Ok(w.clone());
            }
            return Err(StoreError::Invalid(format!(
                "{} already has a watch `{}` on something else: remove it first",
                info.owner, info.id
            )));
        }
        if self.watches.len() >= MAX_WATCHES {
            return Err(StoreError::Busy(format!("{MAX_WATCHES} watches already")));
        }
        let mine = self
            .watches
            .values()
            .filter(|w| w.owner == info.owner)
            .count();
        if mine >= MAX_PER_OWNER {
            return Err(StoreError::Busy(format!(
                "{} has {MAX_PER_OWNER} watches already",
                info.owner
            )));
        }
        let value = serialize(&info).map_err(|e| StoreError::Invalid(e.to_string()))?;
        store.put(WATCH, &key, &value)?;
        self.insert(key, info.clone());
        Ok(info)
    }

    /// Removes `owner`'s watch `id` (and the outputs it found); whether it was there.
    pub fn remove(
        &mut self,
        store: &dyn Storage,
        owner: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let key = watch_key(owner, id);
        let Some(info) = self.watches.get(&key).cloned() else {
            return Ok(false);
        };
        let mut writes = vec![Write::Delete {
            table: WATCH.into(),
            key,
        }];
        for (op, keys) in &self.outpoints {
            if keys.contains(&key) && !matches!(info.target, WatchTarget::Outpoint(..)) {
                writes.push(Write::Delete {
                    table: WOUT.into(),
                    key: wout_key(op, &key),
                });
            }
        }
        store.apply(&mut writes.iter())?;
        self.take(&key);
        Ok(true)
    }

    /// The watches an unconfirmed `tx` touches (its txid, an output to a watched script, a
    /// spend of a watched or found outpoint), each once.
    pub fn match_tx(&self, tx: &bitcoin::Transaction) -> Vec<WatchKey> {
        let mut keys: Vec<WatchKey> = Vec::new();
        if self.watches.is_empty() {
            return keys;
        }
        let txid = tx.compute_txid();
        keys.extend(self.txids.get(&txid).into_iter().flatten());
        for i in &tx.input {
            keys.extend(self.outpoints.get(&i.previous_output).into_iter().flatten());
        }
        for o in &tx.output {
            keys.extend(
                self.scripts
                    .get(o.script_pubkey.as_bytes())
                    .into_iter()
                    .flatten(),
            );
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// The hits of `block` at `height`, and the writes that keep them (to be committed with
    /// the block). Outputs found for script watches count at once, for later transactions of
    /// the same block too.
    pub fn match_block(&mut self, height: u32, block: &Block) -> (Vec<Hit>, Vec<Write>) {
        let mut hits = Vec::new();
        let mut writes = Vec::new();
        if self.watches.is_empty() {
            return (hits, writes);
        }
        for (pos, tx) in block.txdata.iter().enumerate() {
            let pos = pos as u32;
            let txid = tx.compute_txid();
            let before = hits.len();
            let hit = |watch: WatchKey, kind: HitKind| Hit {
                watch,
                height,
                pos,
                txid,
                kind,
            };
            if let Some(keys) = self.txids.get(&txid) {
                hits.extend(keys.iter().map(|k| hit(*k, HitKind::Tx)));
            }
            if !tx.is_coinbase() {
                for (vin, input) in tx.input.iter().enumerate() {
                    if let Some(keys) = self.outpoints.get(&input.previous_output) {
                        let kind = HitKind::Spend(input.previous_output, vin as u32);
                        hits.extend(keys.iter().map(|k| hit(*k, kind)));
                    }
                }
            }
            for (vout, out) in tx.output.iter().enumerate() {
                let Some(keys) = self.scripts.get(out.script_pubkey.as_bytes()) else {
                    continue;
                };
                let op = OutPoint {
                    txid,
                    vout: vout as u32,
                };
                for k in keys.clone() {
                    hits.push(hit(k, HitKind::Output(vout as u32)));
                    let mut v = txid.to_byte_array().to_vec();
                    v.extend_from_slice(&(vout as u32).to_le_bytes());
                    v.extend_from_slice(&k);
                    writes.push(Write::Put {
                        table: WOUT.into(),
                        key: wout_key(&op, &k),
                        value: v,
                    });
                    self.outpoints.entry(op).or_default().push(k);
                }
            }
            if hits.len() > before {
                writes.push(Write::Put {
                    table: HITTX.into(),
                    key: tx_key(height, pos),
                    value: bitcoin::consensus::serialize(tx),
                });
            }
        }
        for h in &hits {
            writes.push(Write::Put {
                table: HIT.into(),
                key: h.key(),
                value: h.encode(),
            });
        }
        (hits, writes)
    }

    /// The block at `height` (`hash`, on `prev`) leaves the best chain: its hits, and the
    /// writes that take them out and keep them as gone (to be committed with the undo).
    pub fn unmatch_block(
        &mut self,
        store: &dyn Storage,
        height: u32,
        hash: [u8; 32],
        prev: [u8; 32],
    ) -> Result<(Vec<Hit>, Vec<Write>), StoreError> {
        let hits = hits_at(store, height, height)?;
        let mut writes = Vec::new();
        let mut gone = height.to_le_bytes().to_vec();
        gone.extend_from_slice(&prev);
        for h in &hits {
            writes.push(Write::Delete {
                table: HIT.into(),
                key: h.key(),
            });
            writes.push(Write::Delete {
                table: HITTX.into(),
                key: tx_key(h.height, h.pos),
            });
            if let HitKind::Output(vout) = h.kind {
                let op = OutPoint { txid: h.txid, vout };
                writes.push(Write::Delete {
                    table: WOUT.into(),
                    key: wout_key(&op, &h.watch),
                });
                if let Some(v) = self.outpoints.get_mut(&op) {
                    v.retain(|k| *k != h.watch);
                    if v.is_empty() {
                        self.outpoints.remove(&op);
                    }
                }
            }
            gone.extend_from_slice(&h.encode_sized());
        }
        writes.push(Write::Put {
            table: GONE.into(),
            key: hash,
            value: gone,
        });
        Ok((hits, writes))
    }
}

impl Hit {
    fn encode_sized(&self) -> Vec<u8> {
        let e = self.encode();
        let mut v = vec![e.len() as u8];
        v.extend_from_slice(&e);
        v
    }
}

fn decode_wout(v: &[u8]) -> Option<(OutPoint, WatchKey)> {
    let txid = Txid::from_byte_array(v.get(..32)?.try_into().ok()?);
    let vout = u32::from_le_bytes(v.get(32..36)?.try_into().ok()?);
    let watch = v.get(36..68)?.try_into().ok()?;
    Some((OutPoint { txid, vout }, watch))
}

/// The hits of heights `from..=to`, in block order.
pub fn hits_at(store: &dyn Storage, from: u32, to: u32) -> Result<Vec<Hit>, StoreError> {
    let mut after = from.checked_sub(1).map(|h| {
        let mut k = [0xffu8; 32];
        k[..4].copy_from_slice(&h.to_be_bytes());
        k
    });
    let mut out = Vec::new();
    loop {
        let (page, more) = store.list_ids(HIT, after, 1024)?;
        for k in &page {
            let h = u32::from_be_bytes(k[..4].try_into().expect("4 bytes"));
            if h > to {
                return Ok(out);
            }
            let v = store.get(HIT, k)?.ok_or_else(|| failed("hit"))?;
            out.push(Hit::decode(&v).ok_or_else(|| failed("hit"))?);
        }
        after = page.last().copied();
        if !more {
            return Ok(out);
        }
    }
}

/// The rescans kept: (watch key, next height, from height).
pub fn rescans(store: &dyn Storage) -> Result<Vec<(WatchKey, u32, u32)>, StoreError> {
    let mut v = Vec::new();
    for k in all_keys(store, RESCAN)? {
        let r = store.get(RESCAN, &k)?.ok_or_else(|| failed("rescan"))?;
        let next = u32::from_le_bytes(
            r.get(..4)
                .ok_or_else(|| failed("rescan"))?
                .try_into()
                .expect("4"),
        );
        let from = u32::from_le_bytes(
            r.get(4..8)
                .ok_or_else(|| failed("rescan"))?
                .try_into()
                .expect("4"),
        );
        v.push((k, next, from));
    }
    Ok(v)
}

/// The write that records watch `key`'s rescan at `next` (from `from`).
pub fn rescan_write(key: &WatchKey, next: u32, from: u32) -> Write {
    let mut value = next.to_le_bytes().to_vec();
    value.extend_from_slice(&from.to_le_bytes());
    Write::Put {
        table: RESCAN.into(),
        key: *key,
        value,
    }
}

/// The write that ends watch `key`'s rescan.
pub fn rescan_done(key: &WatchKey) -> Write {
    Write::Delete {
        table: RESCAN.into(),
        key: *key,
    }
}

/// The transaction of a hit.
pub fn hit_tx(store: &dyn Storage, height: u32, pos: u32) -> Result<Vec<u8>, StoreError> {
    store
        .get(HITTX, &tx_key(height, pos))?
        .ok_or_else(|| failed("hit transaction"))
}

/// A block that left the best chain, if its hits were kept.
pub fn gone(store: &dyn Storage, hash: &[u8; 32]) -> Result<Option<Gone>, StoreError> {
    let Some(v) = store.get(GONE, hash)? else {
        return Ok(None);
    };
    let height = u32::from_le_bytes(
        v.get(..4)
            .ok_or_else(|| failed("gone"))?
            .try_into()
            .expect("4"),
    );
    let prev = v
        .get(4..36)
        .ok_or_else(|| failed("gone"))?
        .try_into()
        .expect("32");
    let mut hits = Vec::new();
    let mut at = 36;
    while at < v.len() {
        let n = v[at] as usize;
        let h = v
            .get(at + 1..at + 1 + n)
            .and_then(Hit::decode)
            .ok_or_else(|| failed("gone"))?;
        hits.push(h);
        at += 1 + n;
    }
    Ok(Some(Gone { height, prev, hits }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RedbStorage;
    use bitcoin::blockdata::constants::genesis_block;
    use bitcoin::{Amount, Network, ScriptBuf, TxOut};

    fn store() -> (tempfile::TempDir, RedbStorage) {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStorage::open(&dir.path().join("w.redb")).unwrap();
        (dir, s)
    }

    fn info(id: &str, target: WatchTarget) -> WatchInfo {
        WatchInfo {
            owner: "svc".into(),
            id: id.into(),
            target,
            from_height: 1,
        }
    }

    #[test]
    fn script_output_then_its_spend_in_the_same_block_and_undo() {
        let (_d, s) = store();
        let mut w = Watches::default();
        let script = ScriptBuf::from_bytes(vec![0x51, 0x52]);
        w.add(&s, info("pay", WatchTarget::Script(script.to_bytes())))
            .unwrap();
        let mut b = genesis_block(Network::Regtest);
        let mut pay = b.txdata[0].clone();
        pay.input[0].previous_output.vout = 7;
        pay.output.push(TxOut {
            value: Amount::from_sat(5),
            script_pubkey: script.clone(),
        });
        let paid = OutPoint {
            txid: pay.compute_txid(),
            vout: 1,
        };
        let mut spend = pay.clone();
        spend.output.truncate(1);
        spend.input[0].previous_output = paid;
        b.txdata.push(pay);
        b.txdata.push(spend.clone());
        let (hits, writes) = w.match_block(5, &b);
        assert_eq!(
            hits.iter().map(|h| h.kind).collect::<Vec<_>>(),
            vec![HitKind::Output(1), HitKind::Spend(paid, 0)]
        );
        s.apply(&mut writes.iter()).unwrap();
        assert_eq!(hits_at(&s, 5, 5).unwrap(), hits);
        assert_eq!(
            hit_tx(&s, 5, 2).unwrap(),
            bitcoin::consensus::serialize(&spend)
        );
        // Reloaded: the found output is watched.
        let mut again = Watches::load(&s).unwrap();
        assert!(again.outpoints.contains_key(&paid));
        let (undone, writes) = again.unmatch_block(&s, 5, [1; 32], [2; 32]).unwrap();
        assert_eq!(undone, hits);
        s.apply(&mut writes.iter()).unwrap();
        assert!(hits_at(&s, 0, 100).unwrap().is_empty());
        assert!(!again.outpoints.contains_key(&paid));
        let g = gone(&s, &[1; 32]).unwrap().unwrap();
        assert_eq!((g.height, g.prev, g.hits), (5, [2; 32], hits));
        assert!(Watches::load(&s).unwrap().outpoints.is_empty());
    }

    #[test]
    fn txid_and_outpoint_watches_names_and_removal() {
        let (_d, s) = store();
        let mut w = Watches::default();
        let b = genesis_block(Network::Regtest);
        let txid = b.txdata[0].compute_txid();
        w.add(&s, info("t", WatchTarget::Txid(txid.to_byte_array())))
            .unwrap();
        assert!(w.add(&s, info("t", WatchTarget::Txid([0; 32]))).is_err());
        assert_eq!(
            w.add(&s, info("t", WatchTarget::Txid(txid.to_byte_array())))
                .unwrap()
                .id,
            "t"
        );
        let (hits, _) = w.match_block(0, &b);
        assert_eq!(hits.len(), 1);
        assert_eq!(w.of("svc").len(), 1);
        assert!(w.remove(&s, "svc", "t").unwrap());
        assert!(!w.remove(&s, "svc", "t").unwrap());
        assert!(w.match_block(0, &b).0.is_empty());
        assert!(Watches::load(&s).unwrap().is_empty());
    }

    #[test]
    fn hit_records_round_trip() {
        for kind in [
            HitKind::Tx,
            HitKind::Output(3),
            HitKind::Spend(
                OutPoint {
                    txid: Txid::from_byte_array([4; 32]),
                    vout: 9,
                },
                2,
            ),
        ] {
            let h = Hit {
                watch: [7; 32],
                height: 100,
                pos: 3,
                txid: Txid::from_byte_array([5; 32]),
                kind,
            };
            assert_eq!(Hit::decode(&h.encode()), Some(h));
        }
        assert_eq!(Hit::decode(&[0; 10]), None);
    }
}
