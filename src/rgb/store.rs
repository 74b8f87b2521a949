//! [`Contracts`]: a stock of RGB contracts kept in a [`Storage`] (the embedded database of the
//! RGB node, or a Storm node's STORE over its RPC), shared by `containerd`'s workers.
//!
//! The stock is rgbstd's in-memory stock (stash, state, index). It is kept as a snapshot of
//! those three parts plus a journal of what came after, in three tables per owner and network
//! (`rgb.<owner>.<network>.head`, `.chunks`, `.journal`; the owner is the RGB node, by the
//! first 8 bytes of its id in hex, so that several RGB nodes may keep their stocks in one
//! Storm node's STORE):
//!
//! - `journal`: a ring of 2 × [`JOURNAL_MAX`] slots (key = slot number, big-endian in the last 8 bytes);
//!   entry `seq` goes to slot `seq % ring` and holds `seq` (u64 BE) ‖ the consignment that was
//!   imported (tag 0 ‖ bytes; tag 1 ‖ strict list of chunk ids when it is above a STORE
//!   value). One durable `put` per import or issue, **before** the stock in memory changes: a
//!   reply says "imported" only after that commit.
//! - `chunks`: the snapshot's three strict-encoded parts, cut into content-addressed chunks
//!   (and the pieces of journal entries above a STORE value).
//! - `head`: key 0 → the manifest (version 1 ‖ u64 first journal entry not in the snapshot ‖
//!   the chunk ids of stash, state and index). Writing it is the snapshot's commit point.
//!
//! Before an entry would make the journal longer than [`JOURNAL_MAX`], a snapshot is written:
//! chunks, then the head; then the chunks no longer used are deleted (left-overs of a crash in
//! between stay until the next snapshot). The entries it covers need no delete: their slots
//! are overwritten later (the ring has room for twice the journal), and an entry older than the
//! head's first is ignored. A snapshot that cannot be written fails the import that needed it,
//! so no slot is ever overwritten before a snapshot covers it. Opening loads the snapshot and
//! validates and imports the entries after it, in order: at most [`JOURNAL_MAX`] validations
//! (~1.2 ms each).
//!
//! Validation ([`Validator::check`]) runs without the lock; the lock covers the journal write
//! and the import into memory, and reads.

use super::{
    binary, err, parse_id, Checked, NiaIssue, NiaState, NoWitnesses, Rgb, RgbError, Validator,
};
use crate::storage::{Storage, StoreError};
use crate::wire::api::storm::Key;
use crate::wire::limits::{CONTAINER_CHUNK, MAX_VALUE};
use crate::wire::storm::container::ChunkId;
use rgbstd::containers::ConsignmentExt;
use rgbstd::persistence::{MemIndex, MemStash, MemState, Stock};
use rgbstd::ContractId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use strict_encoding::{StrictDecode, StrictReader, StrictSerialize};

/// Journal entries between two snapshots: bounds the validations of an open (our own choice;
/// at ~1.2 ms each, a third of a second).
pub const JOURNAL_MAX: u64 = 256;

/// Upper bound of a stock part (rgbstd's file limit, u32).
const PART_MAX: usize = u32::MAX as usize;

const HEAD_KEY: Key = [0; 32];
const MANIFEST_VERSION: u8 = 1;
const INLINE: u8 = 0;
const CHUNKED: u8 = 1;

/// The table names of one owner's stock on one network.
#[derive(Clone, Debug)]
pub struct Tables {
    head: String,
    chunks: String,
    journal: String,
}

impl Tables {
    /// The tables of `owner` (16 hex digits, say) on `network`: `rgb.<owner>.regtest.head`, ….
    pub fn of(owner: &str, network: bitcoin::Network) -> Tables {
        let p = format!("rgb.{owner}.{network}");
        Tables {
            head: format!("{p}.head"),
            chunks: format!("{p}.chunks"),
            journal: format!("{p}.journal"),
        }
    }
}

/// A persistent stock of RGB contracts.
pub struct Contracts {
    storage: Arc<dyn Storage>,
    /// [`JOURNAL_MAX`] (smaller in tests); the ring has twice as many slots.
    journal_max: u64,
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
    snapshot: Vec<ChunkId>,
    /// Chunk ids of the journal entries after the snapshot (deleted by the next one).
    journal_chunks: Vec<ChunkId>,
}

fn seq_key(seq: u64) -> Key {
    let mut k = [0u8; 32];
    k[24..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn store_err(e: StoreError) -> RgbError {
    err(format!("{}{e}", super::STORE_FAILED))
}

/// The manifest in `head`.
struct Manifest {
    journal_from: u64,
    parts: [Vec<ChunkId>; 3],
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
            <Vec<ChunkId> as crate::wire::strict::Strict>::strict_decode(&mut r)
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
    /// Opens the stock of `network` kept in `storage` under `tables`: its snapshot and
    /// journal, or an empty stock knowing the NIA schema.
    pub fn open(
        network: bitcoin::Network,
        tables: Tables,
        storage: Arc<dyn Storage>,
    ) -> Result<Contracts, RgbError> {
        Contracts::open_with(network, tables, storage, JOURNAL_MAX)
    }

    /// [`Contracts::open`] with another journal length (tests: many snapshots and a ring
    /// that wraps, with few contracts).
    pub fn open_with(
        network: bitcoin::Network,
        tables: Tables,
        storage: Arc<dyn Storage>,
        journal_max: u64,
    ) -> Result<Contracts, RgbError> {
        let validator = Validator::new(network);
        let head = storage.get(&tables.head, &HEAD_KEY).map_err(store_err)?;
        let (rgb, journal_from, snapshot) = match head {
            None => (Rgb::empty(validator.clone())?, 0, Vec::new()),
            Some(bytes) => {
                let m = Manifest::decode(&bytes)?;
                let part = |ids: &[ChunkId]| read_chunks(&*storage, &tables, ids, "the snapshot");
                let stash: MemStash = decode_part(&part(&m.parts[0])?, "stash")?;
                let state: MemState = decode_part(&part(&m.parts[1])?, "state")?;
                let index: MemIndex = decode_part(&part(&m.parts[2])?, "index")?;
                let rgb = Rgb {
                    stock: Stock::with(stash, state, index),
                    validator: validator.clone(),
                };
                (rgb, m.journal_from, m.parts.concat())
            }
        };
        let me = Contracts {
            storage,
            journal_max: journal_max.max(1),
            count: AtomicU64::new(0),
            tables,
            validator,
            inner: Mutex::new(Inner {
                rgb,
                next_seq: journal_from,
                journal_from,
                snapshot,
                journal_chunks: Vec::new(),
            }),
        };
        me.replay()?;
        me.recount();
        Ok(me)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        crate::sync::lock(&self.inner)
    }

    /// Imports the journal entries after the snapshot, in order (older ones in the ring are
    /// ignored), and snapshots when they are many.
    fn replay(&self) -> Result<(), RgbError> {
        let mut inner = self.lock();
        let (slots, _) = self
            .storage
            .list_ids(&self.tables.journal, None, self.ring() as usize)
            .map_err(store_err)?;
        let mut live = Vec::new();
        for slot in &slots {
            let (seq, body) = self.read_entry(slot)?;
            if seq >= inner.journal_from {
                live.push((seq, body));
            }
        }
        live.sort_by_key(|(seq, _)| *seq);
        for (seq, body) in live {
            let (bytes, chunks) = self.entry_bytes(&body)?;
            inner.journal_chunks.extend(chunks);
            match self.validator.check(&bytes, &NoWitnesses) {
                Ok(c) => inner.rgb.accept(c.contract)?,
                Err(e) => tracing::warn!(
                    "journal entry {seq} of {} no longer validates, left out: {e}",
                    self.tables.journal
                ),
            }
            inner.next_seq = seq + 1;
        }
        if inner.next_seq - inner.journal_from >= self.journal_max {
            self.snapshot(&mut inner)?;
        }
        Ok(())
    }

    fn ring(&self) -> u64 {
        2 * self.journal_max
    }

    /// The entry in `slot`: its sequence number and body.
    fn read_entry(&self, slot: &Key) -> Result<(u64, Vec<u8>), RgbError> {
        let value = self
            .storage
            .get(&self.tables.journal, slot)
            .map_err(store_err)?
            .ok_or_else(|| err("a journal entry vanished"))?;
        if value.len() < 9 {
            return Err(err("a journal entry is damaged"));
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&value[..8]);
        Ok((u64::from_be_bytes(seq), value[8..].to_vec()))
    }

    /// The consignment of an entry's body, and the chunks it was cut into (if any).
    fn entry_bytes(&self, body: &[u8]) -> Result<(Vec<u8>, Vec<ChunkId>), RgbError> {
        match body.split_first() {
            Some((&INLINE, bytes)) => Ok((bytes.to_vec(), Vec::new())),
            Some((&CHUNKED, list)) => {
                let ids: Vec<ChunkId> =
                    crate::wire::strict::deserialize(list).map_err(|e| err(e.to_string()))?;
                let bytes = read_chunks(&*self.storage, &self.tables, &ids, "a journal entry")?;
                Ok((bytes, ids))
            }
            _ => Err(err("a journal entry is damaged")),
        }
    }

    /// Writes entry `seq` holding `bytes` (committed when it returns); the chunks it was cut
    /// into, if any.
    fn write_entry(&self, seq: u64, bytes: &[u8]) -> Result<Vec<ChunkId>, RgbError> {
        let mut value = seq.to_be_bytes().to_vec();
        let mut chunks = Vec::new();
        if bytes.len() + 9 <= MAX_VALUE {
            value.push(INLINE);
            value.extend_from_slice(bytes);
        } else {
            chunks = self.store_chunks(bytes)?;
            value.push(CHUNKED);
            value.extend(crate::wire::strict::serialize(&chunks).map_err(err)?);
        }
        self.storage
            .put(&self.tables.journal, &seq_key(seq % self.ring()), &value)
            .map_err(store_err)?;
        Ok(chunks)
    }

    fn store_chunks(&self, bytes: &[u8]) -> Result<Vec<ChunkId>, RgbError> {
        bytes
            .chunks(CONTAINER_CHUNK)
            .map(|c| {
                self.storage
                    .store_chunk(&self.tables.chunks, c)
                    .map_err(store_err)
            })
            .collect()
    }

    /// Writes a snapshot of the stock (its head covers the journal so far) and deletes the
    /// chunks no longer used.
    fn snapshot(&self, inner: &mut Inner) -> Result<(), RgbError> {
        let stock = &inner.rgb.stock;
        let parts = [
            encode_part(stock.as_stash_provider())?,
            encode_part(stock.as_state_provider())?,
            encode_part(stock.as_index_provider())?,
        ];
        let mut ids: [Vec<ChunkId>; 3] = Default::default();
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
        // Committed: what follows only frees space.
        let kept = m.parts.concat();
        let old = inner.snapshot.iter().chain(&inner.journal_chunks);
        for id in old.filter(|id| !kept.contains(id)) {
            self.storage
                .delete(&self.tables.chunks, id.as_bytes())
                .map_err(store_err)?;
        }
        inner.journal_from = m.journal_from;
        inner.snapshot = kept;
        inner.journal_chunks.clear();
        Ok(())
    }

    /// Journals `bytes` (the consignment of `contract`), then imports it (a snapshot first when
    /// the journal is full). An import that fails after its entry was written leaves the entry:
    /// an open tries it again and leaves it out with a warning if it fails there too.
    fn commit(
        &self,
        inner: &mut Inner,
        bytes: &[u8],
        contract: rgbstd::containers::ValidContract,
    ) -> Result<(), RgbError> {
        if inner.next_seq - inner.journal_from >= self.journal_max {
            // A full journal: the snapshot first, or no import (a slot must not be reused
            // before a snapshot covers it).
            self.snapshot(inner)?;
        }
        let seq = inner.next_seq;
        let new = !inner.rgb.has(contract.contract_id());
        let chunks = self.write_entry(seq, bytes)?;
        inner.next_seq += 1;
        inner.journal_chunks.extend(chunks);
        inner.rgb.accept(contract)?;
        if new {
            self.count.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Counts the contracts (each id is a hash of its genesis: done once, at open; commits
    /// count the new ones).
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
        Ok(id)
    }

    /// Issues a NIA contract; its id once it is committed.
    pub fn issue(&self, p: &NiaIssue) -> Result<ContractId, RgbError> {
        let mut inner = self.lock();
        let contract = inner.rgb.build_nia(p)?;
        let id = contract.contract_id();
        let bytes = binary(&contract)?;
        self.commit(&mut inner, &bytes, contract)?;
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

/// The bytes of the chunks `ids` of `tables`, in order (`what` they belong to, for errors).
fn read_chunks(
    storage: &dyn Storage,
    tables: &Tables,
    ids: &[ChunkId],
    what: &str,
) -> Result<Vec<u8>, RgbError> {
    let mut out = Vec::new();
    for id in ids {
        match storage
            .retrieve_chunk(&tables.chunks, id)
            .map_err(store_err)?
        {
            Some(c) => out.extend_from_slice(&c),
            None => return Err(err(format!("a chunk of {what} of the stock is missing"))),
        }
    }
    Ok(out)
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
    fn contracts_survive_reopens_through_snapshots_and_a_ring_that_wraps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rgb.redb");
        let net = bitcoin::Network::Regtest;
        let t = Tables::of("00ff", net);
        // A journal of 4 (a ring of 8 slots): 30 contracts wrap it three times over.
        let open =
            |s: &Arc<dyn Storage>| Contracts::open_with(net, t.clone(), s.clone(), 4).unwrap();
        let mut ids = Vec::new();
        for round in 0..3u64 {
            let s: Arc<dyn Storage> = Arc::new(RedbStorage::open(&path).unwrap());
            let c = open(&s);
            let mut got = c.contracts().unwrap();
            got.sort();
            assert_eq!(got, ids, "after reopen {round}");
            assert_eq!(c.count(), ids.len() as u64);
            for i in 0..10 {
                ids.push(issue(&c, round * 10 + i));
            }
            ids.sort();
            assert!(s.get(&t.head, &HEAD_KEY).unwrap().is_some());
            assert!(s.count(&t.journal).unwrap() <= 8, "the ring is bounded");
        }
        let s: Arc<dyn Storage> = Arc::new(RedbStorage::open(&path).unwrap());
        let c = open(&s);
        let mut got = c.contracts().unwrap();
        got.sort();
        assert_eq!(got, ids);
        let st = c.state(&ids[0].to_string()).unwrap();
        assert_eq!(st.ticker, "TEST");
        // Another network's tables are apart, and another owner's.
        let t4 = bitcoin::Network::Testnet4;
        let c2 = Contracts::open(t4, Tables::of("00ff", t4), s.clone()).unwrap();
        assert!(c2.contracts().unwrap().is_empty());
        let c3 = Contracts::open(net, Tables::of("11ee", net), s).unwrap();
        assert!(c3.contracts().unwrap().is_empty());
    }
}
