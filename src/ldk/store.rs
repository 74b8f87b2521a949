//! LDK's key-value persistence ([`KVStoreSync`]) over our [`Storage`]: the `ChannelManager`,
//! every `ChannelMonitor` (through LDK's blanket `Persist` for a `KVStoreSync`), the output
//! sweeper and our payment records.
//!
//! An entry is named by LDK's three strings (primary and secondary namespace, key). Its record
//! in table [`ENTRIES`] sits under the SHA-256 of the name and holds the name (so that `list`
//! can answer) and the value, split in parts of at most [`PART`] bytes when it is larger (a
//! monitor grows with its channel's history): the first part in the record, the others in
//! [`PARTS`] under the SHA-256 of the name and the part's number. A write is one batch of
//! [`Storage::apply`], committed durably (all or nothing on redb) before it returns: LDK is
//! told a monitor update is complete only once it is on disk.

use crate::storage::{Storage, StoreError, Write};
use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::io;
use lightning::util::persist::KVStoreSync;
use std::sync::Arc;

/// The records (name, size, first part).
pub const ENTRIES: &str = "ln.kv";
/// The further parts of large values.
pub const PARTS: &str = "ln.kvpart";
/// The largest part (below the store's value limit, leaving room for the name).
pub const PART: usize = 512 * 1024;
/// The largest value accepted (a monitor this big means something is wrong).
pub const MAX_ENTRY: usize = 256 << 20;
/// LDK's namespaces and keys are at most 120 bytes each.
const MAX_NAME_PART: usize = 120;

/// LDK's store over ours.
pub struct Kv {
    store: Arc<dyn Storage>,
}

fn name(p: &str, s: &str, k: &str) -> Vec<u8> {
    let mut n = Vec::with_capacity(p.len() + s.len() + k.len() + 2);
    n.extend_from_slice(p.as_bytes());
    n.push(0);
    n.extend_from_slice(s.as_bytes());
    n.push(0);
    n.extend_from_slice(k.as_bytes());
    n
}

fn hash(name: &[u8], part: Option<u32>) -> [u8; 32] {
    let mut e = sha256::Hash::engine();
    e.input(name);
    if let Some(i) = part {
        e.input(&[0xff]);
        e.input(&i.to_be_bytes());
    }
    sha256::Hash::from_engine(e).to_byte_array()
}

fn io_err(e: StoreError) -> io::Error {
    io::Error::new(io::ErrorKind::Other, e.to_string())
}

fn bad(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

/// A record: `name_len: u16 BE`, name, `total: u32 BE`, `parts: u32 BE`, first part.
struct Record<'a> {
    name: &'a [u8],
    total: usize,
    parts: u32,
    first: &'a [u8],
}

fn parse(rec: &[u8]) -> Result<Record<'_>, io::Error> {
    let n = u16::from_be_bytes(
        rec.get(..2)
            .ok_or_else(|| bad("short record"))?
            .try_into()
            .unwrap(),
    ) as usize;
    let name = rec.get(2..2 + n).ok_or_else(|| bad("short record name"))?;
    let rest = &rec[2 + n..];
    if rest.len() < 8 {
        return Err(bad("short record header"));
    }
    let total = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
    let parts = u32::from_be_bytes(rest[4..8].try_into().unwrap());
    if total > MAX_ENTRY || parts as usize > MAX_ENTRY / PART + 1 {
        return Err(bad("record above the limits"));
    }
    Ok(Record {
        name,
        total,
        parts,
        first: &rest[8..],
    })
}

impl Kv {
    /// LDK's store in `store`.
    pub fn new(store: Arc<dyn Storage>) -> Kv {
        Kv { store }
    }

    fn check(p: &str, s: &str, k: &str) -> Result<(), io::Error> {
        if p.len() > MAX_NAME_PART || s.len() > MAX_NAME_PART || k.len() > MAX_NAME_PART {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "name above 120 bytes",
            ));
        }
        Ok(())
    }

    fn record(&self, name: &[u8]) -> Result<Option<Vec<u8>>, io::Error> {
        self.store.get(ENTRIES, &hash(name, None)).map_err(io_err)
    }

    /// The writes that remove the parts of a record beyond its first.
    fn drop_parts(name: &[u8], parts: u32, from: u32, w: &mut Vec<Write>) {
        for i in from.max(1)..parts {
            w.push(Write::Delete {
                table: PARTS.into(),
                key: hash(name, Some(i)),
            });
        }
    }
}

impl KVStoreSync for Kv {
    fn read(&self, p: &str, s: &str, k: &str) -> Result<Vec<u8>, io::Error> {
        Kv::check(p, s, k)?;
        let n = name(p, s, k);
        let rec = self
            .record(&n)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no {p}/{s}/{k}")))?;
        let r = parse(&rec)?;
        if r.name != n.as_slice() {
            return Err(bad("record of another name"));
        }
        let mut out = Vec::with_capacity(r.total);
        out.extend_from_slice(r.first);
        for i in 1..r.parts {
            let part = self
                .store
                .get(PARTS, &hash(&n, Some(i)))
                .map_err(io_err)?
                .ok_or_else(|| bad("a part is missing"))?;
            out.extend_from_slice(&part);
        }
        if out.len() != r.total {
            return Err(bad("parts do not add up"));
        }
        Ok(out)
    }

    fn write(&self, p: &str, s: &str, k: &str, buf: Vec<u8>) -> Result<(), io::Error> {
        Kv::check(p, s, k)?;
        if buf.len() > MAX_ENTRY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "value above 256 MiB",
            ));
        }
        let n = name(p, s, k);
        let old_parts = match self.record(&n)? {
            Some(rec) => parse(&rec).map(|r| r.parts).unwrap_or(0),
            None => 0,
        };
        let chunks: Vec<&[u8]> = if buf.is_empty() {
            vec![&[][..]]
        } else {
            buf.chunks(PART).collect()
        };
        let parts = chunks.len() as u32;
        let mut rec = Vec::with_capacity(2 + n.len() + 8 + chunks[0].len());
        rec.extend_from_slice(&(n.len() as u16).to_be_bytes());
        rec.extend_from_slice(&n);
        rec.extend_from_slice(&(buf.len() as u32).to_be_bytes());
        rec.extend_from_slice(&parts.to_be_bytes());
        rec.extend_from_slice(chunks[0]);
        let mut w = vec![Write::Put {
            table: ENTRIES.into(),
            key: hash(&n, None),
            value: rec,
        }];
        for (i, c) in chunks.iter().enumerate().skip(1) {
            w.push(Write::Put {
                table: PARTS.into(),
                key: hash(&n, Some(i as u32)),
                value: c.to_vec(),
            });
        }
        Kv::drop_parts(&n, old_parts, parts, &mut w);
        self.store.apply(&mut w.iter()).map_err(io_err)?;
        Ok(())
    }

    fn remove(&self, p: &str, s: &str, k: &str, _lazy: bool) -> Result<(), io::Error> {
        Kv::check(p, s, k)?;
        let n = name(p, s, k);
        let Some(rec) = self.record(&n)? else {
            return Ok(());
        };
        let parts = parse(&rec).map(|r| r.parts).unwrap_or(1);
        let mut w = vec![Write::Delete {
            table: ENTRIES.into(),
            key: hash(&n, None),
        }];
        Kv::drop_parts(&n, parts, 1, &mut w);
        self.store.apply(&mut w.iter()).map_err(io_err)?;
        Ok(())
    }

    fn list(&self, p: &str, s: &str) -> Result<Vec<String>, io::Error> {
        let prefix = name(p, s, "");
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let (ids, more) = self.store.list_ids(ENTRIES, after, 1024).map_err(io_err)?;
            for id in &ids {
                let Some(rec) = self.store.get(ENTRIES, id).map_err(io_err)? else {
                    continue;
                };
                let r = parse(&rec)?;
                if let Some(key) = r.name.strip_prefix(prefix.as_slice()) {
                    if !key.contains(&0) {
                        out.push(String::from_utf8_lossy(key).into_owned());
                    }
                }
            }
            match (more, ids.last()) {
                (true, Some(last)) => after = Some(*last),
                _ => break,
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RedbStorage;

    fn kv() -> (tempfile::TempDir, Kv) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStorage::open(&dir.path().join("kv.redb")).unwrap();
        (dir, Kv::new(Arc::new(store)))
    }

    #[test]
    fn small_and_large_values_round_trip_and_shrink() {
        let (_d, kv) = kv();
        kv.write("monitors", "", "a_0", vec![7; 10]).unwrap();
        let big: Vec<u8> = (0..PART * 2 + 5).map(|i| i as u8).collect();
        kv.write("monitors", "", "b_1", big.clone()).unwrap();
        kv.write("", "", "manager", vec![]).unwrap();
        assert_eq!(kv.read("monitors", "", "a_0").unwrap(), vec![7; 10]);
        assert_eq!(kv.read("monitors", "", "b_1").unwrap(), big);
        assert_eq!(kv.read("", "", "manager").unwrap(), Vec::<u8>::new());
        assert_eq!(
            kv.list("monitors", "").unwrap(),
            vec!["a_0".to_string(), "b_1".to_string()]
        );
        assert_eq!(kv.list("", "").unwrap(), vec!["manager".to_string()]);
        // Shrinking drops the parts beyond the new size.
        kv.write("monitors", "", "b_1", vec![1, 2, 3]).unwrap();
        assert_eq!(kv.read("monitors", "", "b_1").unwrap(), vec![1, 2, 3]);
        assert_eq!(kv.store.count(PARTS).unwrap(), 0);
        kv.remove("monitors", "", "a_0", false).unwrap();
        assert_eq!(
            kv.read("monitors", "", "a_0").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(kv.list("monitors", "").unwrap(), vec!["b_1".to_string()]);
    }

    #[test]
    fn a_corrupt_record_is_an_error_not_a_panic() {
        let (_d, kv) = kv();
        let n = name("monitors", "", "x");
        for rec in [vec![], vec![0, 200, 1], vec![0, 0, 0, 0, 0, 9, 0, 0, 0, 1]] {
            kv.store.put(ENTRIES, &hash(&n, None), &rec).unwrap();
            assert!(kv.read("monitors", "", "x").is_err());
        }
    }
}
