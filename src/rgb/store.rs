//! [`Contracts`]: a stock of RGB contracts kept in a [`Storage`] (the embedded database of the
//! RGB node, or a Storm node's STORE over its RPC), shared by `containerd`'s workers.
//!
//! The stock is rgbstd's in-memory stock (stash, state, index). It is kept as a snapshot of
//! those three parts plus a journal of what came after, in three tables per network
//! (`rgb.<network>.head`, `.chunks`, `.journal`):
//!
//! - `journal`: key = sequence number (u64 big-endian in the last 8 bytes) → the consignment
//!   that was imported (tag 0 ‖ bytes; tag 1 ‖ strict list of chunk ids when it is above a
//!   STORE value). One durable `put` per import or issue, **before** the stock in memory
//!   changes: a reply says "imported" only after that commit.
//! - `chunks`: the snapshot's three strict-encoded parts, cut into content-addressed chunks.
//! - `head`: key 0 → the manifest (version 1 ‖ u64 first journal entry not in the snapshot ‖
//!   the chunk ids of stash, state and index). Writing it is the snapshot's commit point.
//!
//! Every [`JOURNAL_MAX`] entries a snapshot is written: chunks, then the head, then the journal
//! entries it covers and the chunks no longer used are deleted (left-overs of a crash in
//! between are deleted at the next open). Opening loads the snapshot and validates and imports
//! the journal entries after it, in order: at most [`JOURNAL_MAX`] validations (~1.3 ms each).
//!
//! Validation ([`Validator::check`]) runs without the lock; the lock covers the journal write
//! and the import into memory, and reads.

use super::{
    binary, err, parse_id, Checked, NiaIssue, NiaState, NoWitnesses, Rgb, RgbError, Validator,
};
use crate::storage::{Storage, StoreError};
use crate::wire::limits::{CONTAINER_CHUNK, MAX_IDS, MAX_VALUE};
use crate::wire::storm::Id32;
use rgbstd::containers::ConsignmentExt;
use rgbstd::persistence::{MemIndex, MemStash, MemState, Stock};
use rgbstd::ContractId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use strict_encoding::{StrictDecode, StrictReader, StrictSerialize};

/// Journal entries between two snapshots: bounds the validations of an open (our own choice;
/// at ~1.3 ms each, a third of a second).
pub const JOURNAL_MAX: u64 = 256;

/// Upper bound of a stock part (rgbstd's file limit, u32).
const PART_MAX: usize = u32::MAX as usize;

const HEAD_KEY: Id32 = [0; 32];
const MANIFEST_VERSION: u8 = 1;
const INLINE: u8 = 0;
const CHUNKED: u8 = 1;

/// The table names of one network.
#[derive(Clone, Debug)]
pub struct Tables {
    head: String,
    chunks: String,
    journal: String,
}

impl Tables {
    /// The tables of `network` (`rgb.regtest.head`, …).
    pub fn of(network: bitcoin::Network) -> Tables {
        let net = network.to_string();
        Tables {
            head: format!("rgb.{net}.head"),
            chunks: format!("rgb.{net}.chunks"),
            journal: format!("rgb.{net}.journal"),
        }
    }
}

/// A persistent stock of RGB contracts.
pub struct Contracts {
    storage: Arc<dyn Storage>,
    /// Number of contracts (for `info`, without the lock).
    count: AtomicU64,
    tables: Tables,
    validator: Validator,
    inner: Mutex<Inner>,
}

struct Inner {
    rgb: Rgb,
    /// Key of the next journal entry.
    next_seq: u64,
    /// First journal entry not in the snapshot.
    journal_from: u64,
    /// Chunk ids of the snapshot.
    snapshot: Vec<Id32>,
}

fn seq_key(seq: u64) -> Id32 {
    let mut k = [0u8; 32];
    k[24..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn key_seq(k: &Id32) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&k[24..]);
    u64::from_be_bytes(b)
}

fn store_err(e: StoreError) -> RgbError {
    err(format!("{}{e}", super::STORE_FAILED))
}

/// The manifest in `head`.
struct Manifest {
    journal_from: u64,
    parts: [Vec<Id32>; 3],
}

impl Manifest {
    fn encode(&self) -> Result<Vec<u8>, RgbError> {
        use crate::wire::strict::Strict;
        let mut out = vec![MANIFEST_VERSION];
        self.journal_from.strict_encode(&mut out).map_err(err)?;
        for p in &self.parts {
            p.strict_encode(&mut out).map_err(err)?;
        }
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<Manifest, RgbError> {
        use crate::wire::strict::Reader;
        let damaged = |e: String| err(format!("the stock's manifest is damaged: {e}"));
        let (&v, rest) = bytes.split_first().ok_or_else(|| damaged("empty".into()))?;
        if v != MANIFEST_VERSION {
            return Err(damaged(format!("version {v}")));
        }
        let mut r = Reader::new(rest);
        let journal_from = <u64 as crate::wire::strict::Strict>::strict_decode(&mut r)
            .map_err(|e| damaged(e.to_string()))?;
        let mut part = || {
            <Vec<Id32> as crate::wire::strict::Strict>::strict_decode(&mut r)
                .map_err(|e| damaged(e.to_string()))
        };
        let parts = [part()?, part()?, part()?];
        r.finish().map_err(|e| damaged(e.to_string()))?;
        Ok(Manifest {
            journal_from,
            parts,
        })
    }
}

impl Contracts {
    /// Opens the stock of `network` kept in `storage`: its snapshot and journal, or an empty
    /// stock knowing the NIA schema.
    pub fn open(
        network: bitcoin::Network,
        storage: Arc<dyn Storage>,
    ) -> Result<Contracts, RgbError> {
        let validator = Validator::new(network);
        let tables = Tables::of(network);
        let head = storage.get(&tables.head, &HEAD_KEY).map_err(store_err)?;
        let (rgb, journal_from, snapshot) = match head {
            None => (Rgb::with(validator.clone(), None)?, 0, Vec::new()),
            Some(bytes) => {
                let m = Manifest::decode(&bytes)?;
                let part = |ids: &[Id32]| -> Result<Vec<u8>, RgbError> {
                    let mut out = Vec::new();
                    for id in ids {
                        match storage.get(&tables.chunks, id).map_err(store_err)? {
                            Some(c) => out.extend_from_slice(&c),
                            None => return Err(err("a chunk of the stock's snapshot is missing")),
                        }
                    }
                    Ok(out)
                };
                let stash: MemStash = decode_part(&part(&m.parts[0])?, "stash")?;
                let state: MemState = decode_part(&part(&m.parts[1])?, "state")?;
                let index: MemIndex = decode_part(&part(&m.parts[2])?, "index")?;
                let stock = Stock::with(stash, state, index);
                let all = m.parts.concat();
                (
                    Rgb::with(validator.clone(), Some(stock))?,
                    m.journal_from,
                    all,
                )
            }
        };
        let me = Contracts {
            storage,
            count: AtomicU64::new(0),
            tables,
            validator,
            inner: Mutex::new(Inner {
                rgb,
                next_seq: journal_from,
                journal_from,
                snapshot,
            }),
        };
        me.replay()?;
        me.recount();
        Ok(me)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Imports the journal entries after the snapshot (deleting those before it, left by a
    /// crash during a snapshot), and snapshots when they are many.
    fn replay(&self) -> Result<(), RgbError> {
        let mut inner = self.lock();
        let mut after = None;
        let mut replayed = 0u64;
        loop {
            let (ids, more) = self
                .storage
                .list_ids(&self.tables.journal, after, MAX_IDS)
                .map_err(store_err)?;
            for key in &ids {
                let seq = key_seq(key);
                if seq < inner.journal_from {
                    self.storage
                        .delete(&self.tables.journal, key)
                        .map_err(store_err)?;
                    continue;
                }
                let bytes = self.read_entry(key)?;
                match self.validator.check(&bytes, &NoWitnesses) {
                    Ok(c) => inner.rgb.accept(c.contract)?,
                    Err(e) => tracing::warn!(
                        "journal entry {seq} of {} no longer validates, left out: {e}",
                        self.tables.journal
                    ),
                }
                inner.next_seq = seq + 1;
                replayed += 1;
            }
            match (more, ids.last()) {
                (true, Some(last)) => after = Some(*last),
                _ => break,
            }
        }
        if replayed >= JOURNAL_MAX {
            self.snapshot(&mut inner)?;
        }
        Ok(())
    }

    fn read_entry(&self, key: &Id32) -> Result<Vec<u8>, RgbError> {
        let t = &self.tables;
        let value = self
            .storage
            .get(&t.journal, key)
            .map_err(store_err)?
            .ok_or_else(|| err("a journal entry vanished"))?;
        match value.split_first() {
            Some((&INLINE, bytes)) => Ok(bytes.to_vec()),
            Some((&CHUNKED, list)) => {
                let ids: Vec<Id32> =
                    crate::wire::strict::deserialize(list).map_err(|e| err(e.to_string()))?;
                let mut out = Vec::new();
                for id in &ids {
                    let chunk = self
                        .storage
                        .get(&t.chunks, id)
                        .map_err(store_err)?
                        .ok_or_else(|| err("a chunk of a journal entry is missing"))?;
                    out.extend_from_slice(&chunk);
                }
                Ok(out)
            }
            _ => Err(err("a journal entry is damaged")),
        }
    }

    /// Writes a journal entry holding `bytes` under `seq` (committed when it returns).
    fn write_entry(&self, seq: u64, bytes: &[u8]) -> Result<(), RgbError> {
        let t = &self.tables;
        let value = if bytes.len() < MAX_VALUE {
            let mut v = Vec::with_capacity(1 + bytes.len());
            v.push(INLINE);
            v.extend_from_slice(bytes);
            v
        } else {
            let ids = self.store_chunks(bytes)?;
            let mut v = vec![CHUNKED];
            v.extend(crate::wire::strict::serialize(&ids).map_err(err)?);
            v
        };
        self.storage
            .put(&t.journal, &seq_key(seq), &value)
            .map_err(store_err)
    }

    fn store_chunks(&self, bytes: &[u8]) -> Result<Vec<Id32>, RgbError> {
        bytes
            .chunks(CONTAINER_CHUNK)
            .map(|c| {
                self.storage
                    .store_chunk(&self.tables.chunks, c)
                    .map_err(store_err)
            })
            .collect()
    }

    /// Writes a snapshot of the stock and drops the journal entries it covers.
    fn snapshot(&self, inner: &mut Inner) -> Result<(), RgbError> {
        let stock = &inner.rgb.stock;
        let parts = [
            encode_part(stock.as_stash_provider())?,
            encode_part(stock.as_state_provider())?,
            encode_part(stock.as_index_provider())?,
        ];
        let mut ids: [Vec<Id32>; 3] = Default::default();
        for (i, p) in parts.iter().enumerate() {
            ids[i] = self.store_chunks(p)?;
        }
        let m = Manifest {
            journal_from: inner.next_seq,
            parts: ids,
        };
        self.storage
            .put(&self.tables.head, &HEAD_KEY, &m.encode()?)
            .map_err(store_err)?;
        // Committed: what follows only frees space (redone at the next open if cut short).
        for seq in inner.journal_from..inner.next_seq {
            self.storage
                .delete(&self.tables.journal, &seq_key(seq))
                .map_err(store_err)?;
        }
        let kept = m.parts.concat();
        for id in inner.snapshot.iter().filter(|id| !kept.contains(id)) {
            self.storage
                .delete(&self.tables.chunks, id)
                .map_err(store_err)?;
        }
        inner.journal_from = m.journal_from;
        inner.snapshot = kept;
        Ok(())
    }

    /// Journals `bytes` (the consignment of `contract`), then imports it; snapshots when the
    /// journal is long.
    fn commit(
        &self,
        inner: &mut Inner,
        bytes: &[u8],
        contract: rgbstd::containers::ValidContract,
    ) -> Result<(), RgbError> {
        let seq = inner.next_seq;
        self.write_entry(seq, bytes)?;
        inner.next_seq += 1;
        if let Err(e) = inner.rgb.accept(contract) {
            // Not in the stock: not in the journal either (best effort; an open would only
            // fail to import it again).
            let _ = self.storage.delete(&self.tables.journal, &seq_key(seq));
            return Err(e);
        }
        if inner.next_seq - inner.journal_from >= JOURNAL_MAX {
            if let Err(e) = self.snapshot(inner) {
                // The import stands (it is journaled); the next import tries again.
                tracing::warn!("snapshot of the RGB stock failed: {e}");
            }
        }
        Ok(())
    }

    fn recount(&self) {
        let n = self.lock().rgb.contracts().map_or(0, |c| c.len() as u64);
        self.count.store(n, Ordering::Release);
    }

    /// Number of contracts (as of the last change).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// The validator (no lock: workers validate in parallel).
    pub fn validator(&self) -> &Validator {
        &self.validator
    }

    /// Imports a checked consignment (its bytes as received are what is journaled).
    pub fn import(&self, bytes: &[u8], checked: Checked) -> Result<ContractId, RgbError> {
        let mut inner = self.lock();
        let id = checked.id;
        self.commit(&mut inner, bytes, checked.contract)?;
        drop(inner);
        self.recount();
        Ok(id)
    }

    /// Issues a NIA contract; its id once it is committed.
    pub fn issue(&self, p: &NiaIssue) -> Result<ContractId, RgbError> {
        let mut inner = self.lock();
        let contract = inner.rgb.build_nia(p)?;
        let id = contract.contract_id();
        let bytes = binary(&contract)?;
        self.commit(&mut inner, &bytes, contract)?;
        drop(inner);
        self.recount();
        Ok(id)
    }

    /// The ids of every contract.
    pub fn contracts(&self) -> Result<Vec<ContractId>, RgbError> {
        self.lock().rgb.contracts()
    }

    /// The state of NIA contract `id` (text).
    pub fn state(&self, id: &str) -> Result<NiaState, RgbError> {
        let id = parse_id(id)?;
        self.lock().rgb.nia_state(id)
    }

    /// The consignment of contract `id` (text).
    pub fn export(&self, id: &str, armored: bool) -> Result<Vec<u8>, RgbError> {
        let id = parse_id(id)?;
        self.lock().rgb.export(id, armored)
    }
}

fn encode_part(part: &impl StrictSerialize) -> Result<Vec<u8>, RgbError> {
    Ok(part
        .to_strict_serialized::<PART_MAX>()
        .map_err(|e| err(format!("serializing the stock: {e}")))?
        .release())
}

fn decode_part<T: StrictDecode>(bytes: &[u8], what: &str) -> Result<T, RgbError> {
    let mut reader = StrictReader::in_memory::<PART_MAX>(bytes);
    T::strict_decode(&mut reader).map_err(|e| err(format!("the stock's {what} is damaged: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RedbStorage;
    use std::str::FromStr;

    fn issue(c: &Contracts, n: u64) -> ContractId {
        c.issue(&NiaIssue {
            ticker: "TEST".into(),
            name: "Test asset".into(),
            precision: 0,
            supply: 1_000 + n,
            seal: bitcoin::OutPoint::from_str(
                "14295d5bb1a191cdb6286dc0944df938421e3dfcbf0811353ccac4100c2068c5:1",
            )
            .unwrap(),
            blinding: n,
            timestamp: 1_713_261_744,
        })
        .unwrap()
    }

    #[test]
    fn contracts_survive_a_reopen_through_journal_and_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rgb.redb");
        let net = bitcoin::Network::Regtest;
        let n = JOURNAL_MAX + 10;
        let mut ids = Vec::new();
        {
            let s: Arc<dyn Storage> = Arc::new(RedbStorage::open(&path).unwrap());
            let c = Contracts::open(net, s.clone()).unwrap();
            for i in 0..n {
                ids.push(issue(&c, i));
            }
            // One snapshot was written; the journal holds what came after it.
            let t = Tables::of(net);
            assert!(s.get(&t.head, &HEAD_KEY).unwrap().is_some());
            assert_eq!(s.count(&t.journal).unwrap(), n - JOURNAL_MAX);
        }
        let s: Arc<dyn Storage> = Arc::new(RedbStorage::open(&path).unwrap());
        let c = Contracts::open(net, s).unwrap();
        let mut got = c.contracts().unwrap();
        got.sort();
        ids.sort();
        assert_eq!(got, ids);
        let st = c.state(&ids[0].to_string()).unwrap();
        assert_eq!(st.ticker, "TEST");
        // Another network's tables are apart.
        let dir2 = tempfile::tempdir().unwrap();
        let s2: Arc<dyn Storage> = Arc::new(RedbStorage::open(&dir2.path().join("x")).unwrap());
        let c2 = Contracts::open(bitcoin::Network::Testnet4, s2).unwrap();
        assert!(c2.contracts().unwrap().is_empty());
    }
}
