//! [`RedbStorage`]: the embedded backend, one redb file. Each table of the interface is a redb
//! table of `[u8; 32] -> bytes`. Reads use their own read transaction (MVCC: they never wait
//! for a writer). Writes go through [`Storage::apply`], which commits a whole batch in one
//! durable transaction: `stored` uses it for group commit, the single-write methods of
//! [`Storage`] are batches of one.

use super::{check_ids, check_table, Storage, StoreError, TableInfo, Write, WriteDone};
use crate::wire::api::storm::Key;
use crate::wire::storm::container::ChunkId;
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableError,
    TableHandle,
};
use std::path::{Path, PathBuf};

fn def(name: &str) -> TableDefinition<'_, [u8; 32], &'static [u8]> {
    TableDefinition::new(name)
}

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(format!("database: {e}"))
}

/// The embedded backend.
pub struct RedbStorage {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for RedbStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedbStorage({})", self.path.display())
    }
}

impl RedbStorage {
    /// Opens (or creates) the database at `path`. After a crash redb checks and repairs the
    /// file here; an error means it cannot be opened at all.
    pub fn open(path: &Path) -> Result<RedbStorage, StoreError> {
        let db = Database::create(path)
            .map_err(|e| StoreError::Failed(format!("cannot open {}: {e}", path.display())))?;
        Ok(RedbStorage {
            db,
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commits one write (a batch of one).
    fn one(&self, w: Write) -> Result<WriteDone, StoreError> {
        self.apply(&mut std::iter::once(&w))?
            .pop()
            .ok_or_else(|| failed("a write without its outcome"))
    }

    /// Runs `f` on `table` in a read transaction; a table never written reads as `None`.
    fn read<T>(
        &self,
        table: &str,
        f: impl FnOnce(&redb::ReadOnlyTable<[u8; 32], &'static [u8]>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        check_table(table)?;
        let tx = self.db.begin_read().map_err(failed)?;
        match tx.open_table(def(table)) {
            Ok(t) => f(&t).map(Some),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }
}

impl Storage for RedbStorage {
    /// One durable transaction: all of the batch or, on error, none of it.
    fn apply(
        &self,
        writes: &mut dyn Iterator<Item = &Write>,
    ) -> Result<Vec<WriteDone>, StoreError> {
        let tx = self.db.begin_write().map_err(failed)?;
        let mut done = Vec::new();
        for w in writes {
            w.check()?;
            match w {
                Write::Put { table, key, value } => {
                    let mut t = tx.open_table(def(table)).map_err(failed)?;
                    t.insert(key, value.as_slice()).map_err(failed)?;
                    done.push(WriteDone::Stored);
                }
                Write::Delete { table, key } => {
                    let mut t = tx.open_table(def(table)).map_err(failed)?;
                    let existed = t.remove(key).map_err(failed)?.is_some();
                    done.push(WriteDone::Deleted(existed));
                }
                Write::Insert { table, ids } => {
                    let mut t = tx.open_table(def(table)).map_err(failed)?;
                    for id in ids {
                        if t.get(id).map_err(failed)?.is_none() {
                            t.insert(id, &[][..]).map_err(failed)?;
                        }
                    }
                    done.push(WriteDone::Stored);
                }
            }
        }
        tx.commit().map_err(failed)?;
        Ok(done)
    }

    fn tables(&self) -> Result<Vec<TableInfo>, StoreError> {
        let tx = self.db.begin_read().map_err(failed)?;
        let mut out = Vec::new();
        for handle in tx.list_tables().map_err(failed)? {
            let name = handle.name().to_string();
            let t = tx.open_table(def(&name)).map_err(failed)?;
            out.push(TableInfo {
                count: t.len().map_err(failed)?,
                name,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn count(&self, table: &str) -> Result<u64, StoreError> {
        Ok(self.read(table, |t| t.len().map_err(failed))?.unwrap_or(0))
    }

    fn get(&self, table: &str, key: &Key) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .read(table, |t| {
                Ok(t.get(key).map_err(failed)?.map(|v| v.value().to_vec()))
            })?
            .flatten())
    }

    fn put(&self, table: &str, key: &Key, value: &[u8]) -> Result<(), StoreError> {
        self.one(Write::Put {
            table: table.into(),
            key: *key,
            value: value.to_vec(),
        })
        .map(|_| ())
    }

    fn delete(&self, table: &str, key: &Key) -> Result<bool, StoreError> {
        let done = self.one(Write::Delete {
            table: table.into(),
            key: *key,
        })?;
        Ok(done == WriteDone::Deleted(true))
    }

    fn store_chunk(&self, table: &str, data: &[u8]) -> Result<ChunkId, StoreError> {
        let (id, w) = Write::chunk(table.into(), data.to_vec())?;
        self.one(w)?;
        Ok(id)
    }

    fn insert(&self, table: &str, ids: &[Key]) -> Result<(), StoreError> {
        self.one(Write::Insert {
            table: table.into(),
            ids: ids.to_vec(),
        })
        .map(|_| ())
    }

    fn list_ids(
        &self,
        table: &str,
        after: Option<Key>,
        limit: usize,
    ) -> Result<(Vec<Key>, bool), StoreError> {
        check_ids(limit)?;
        if limit == 0 {
            return Err(StoreError::Invalid("a page holds at least 1 id".into()));
        }
        Ok(self
            .read(table, |t| {
                let range = match after {
                    Some(a) => t.range::<[u8; 32]>((
                        std::ops::Bound::Excluded(a),
                        std::ops::Bound::Unbounded,
                    )),
                    None => t.range::<[u8; 32]>(..),
                }
                .map_err(failed)?;
                let mut ids = Vec::new();
                let mut more = false;
                for item in range {
                    let (k, _) = item.map_err(failed)?;
                    if ids.len() == limit {
                        more = true;
                        break;
                    }
                    ids.push(k.value());
                }
                Ok((ids, more))
            })?
            .unwrap_or_default())
    }

    fn check_unknown(&self, table: &str, ids: &[Key]) -> Result<Vec<Key>, StoreError> {
        check_ids(ids.len())?;
        Ok(self
            .read(table, |t| {
                let mut unknown = Vec::new();
                for id in ids {
                    if t.get(id).map_err(failed)?.is_none() {
                        unknown.push(*id);
                    }
                }
                Ok(unknown)
            })?
            .unwrap_or_else(|| ids.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::storm::container::chunk_id;

    #[test]
    fn tables_values_chunks_and_sets() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStorage::open(&dir.path().join("s.redb")).unwrap();
        assert_eq!(s.tables().unwrap(), vec![]);
        assert_eq!(s.get("kv", &[1; 32]).unwrap(), None);
        s.put("kv", &[1; 32], b"one").unwrap();
        assert_eq!(s.get("kv", &[1; 32]).unwrap().unwrap(), b"one");
        assert!(s.delete("kv", &[1; 32]).unwrap());
        assert!(!s.delete("kv", &[1; 32]).unwrap());
        let id = s.store_chunk("chunks", b"hello").unwrap();
        assert_eq!(id, chunk_id(b"hello"));
        assert_eq!(s.retrieve_chunk("chunks", &id).unwrap().unwrap(), b"hello");
        s.insert("set", &[[3; 32], [1; 32], [2; 32]]).unwrap();
        let (page, more) = s.list_ids("set", None, 2).unwrap();
        assert_eq!((page, more), (vec![[1; 32], [2; 32]], true));
        let (page, more) = s.list_ids("set", Some([2; 32]), 2).unwrap();
        assert_eq!((page, more), (vec![[3; 32]], false));
        assert_eq!(
            s.check_unknown("set", &[[2; 32], [9; 32]]).unwrap(),
            vec![[9; 32]]
        );
        assert_eq!(
            s.check_unknown("nothing", &[[2; 32]]).unwrap(),
            vec![[2; 32]]
        );
        let names: Vec<_> = s.tables().unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["chunks", "kv", "set"]);
        assert_eq!(s.count("set").unwrap(), 3);
        assert!(matches!(s.count("Bad"), Err(StoreError::Invalid(_))));
        assert!(matches!(
            s.put("kv", &[0; 32], &vec![0; crate::wire::limits::MAX_VALUE + 1]),
            Err(StoreError::TooLarge(_))
        ));
        drop(s);
        let s = RedbStorage::open(&dir.path().join("s.redb")).unwrap();
        assert_eq!(s.count("set").unwrap(), 3);
    }
}
