//! The storage module: one small interface ([`Storage`]) for tables of 32-byte keys to values,
//! content-addressed chunks and sets of ids, with two implementations:
//!
//! - [`RedbStorage`], embedded: a redb database file, every write committed durably before it
//!   returns. `stored` (the Storm node's STORE service) serves one over the STORE bus, and any
//!   service may embed its own.
//! - [`RemoteStorage`], the same interface over the STORE RPC of a Storm node (`-S ENDPOINT`).
//!
//! Beside it, [`storm::StormClient`]: a Storm node's containers and transfers for its clients
//! (`nodectl storm`, the RGB node).
//!
//! A third backend (PostgreSQL, for a store shared by many machines) would be one more
//! implementation of [`Storage`]; docs/ARCHITECTURE.md says where it plugs in.
//!
//! Layering: `actors -> storage -> bus -> wire`.

mod embedded;
mod remote;
pub mod storm;

pub use embedded::RedbStorage;
pub use remote::{stored_id, RemoteStorage};

use crate::wire::api::storm::Key;
pub use crate::wire::api::storm::TableInfo;
use crate::wire::api::{code, Code};
use crate::wire::limits::{MAX_CHUNK, MAX_IDS, MAX_TABLE_NAME, MAX_VALUE};
use crate::wire::storm::container::{chunk_id, ChunkId};

/// Why a storage call failed; [`StoreError::code`] is its failure code on the bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// A table name, a limit or a page size is not allowed.
    Invalid(String),
    /// A value or chunk is above its limit.
    TooLarge(String),
    /// The write queue is full; retry.
    Busy(String),
    /// The database failed (I/O, corruption): the operation did not happen.
    Failed(String),
    /// A remote STORE answered with a failure, or could not be reached.
    Remote {
        /// Failure code.
        code: Code,
        /// Its message.
        message: String,
    },
}

impl StoreError {
    /// The failure code a bus client gets for this error (docs/API.md, "Storm requests").
    pub fn code(&self) -> Code {
        match self {
            StoreError::Invalid(_) => code::INVALID_ARGUMENT,
            StoreError::TooLarge(_) => code::TOO_LARGE,
            StoreError::Busy(_) => code::BUSY,
            StoreError::Failed(_) => code::SERVICE_FAILED,
            StoreError::Remote { code, .. } => *code,
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Invalid(m)
            | StoreError::TooLarge(m)
            | StoreError::Busy(m)
            | StoreError::Failed(m) => f.write_str(m),
            StoreError::Remote { code, message } => write!(f, "failure {code:#06x}: {message}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for crate::wire::api::ApiError {
    /// The failure a request that needed the store ends with.
    fn from(e: StoreError) -> Self {
        crate::wire::api::ApiError::new(e.code(), e.to_string())
    }
}

/// Checks a table name: 1 to 64 bytes of `a-z`, `0-9`, `_`, `-`, `.` (docs/API.md).
pub fn check_table(name: &str) -> Result<(), StoreError> {
    let ok_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b);
    if name.is_empty() || name.len() > MAX_TABLE_NAME || !name.bytes().all(ok_char) {
        let shown: String = name
            .chars()
            .take(MAX_TABLE_NAME)
            .flat_map(char::escape_default)
            .collect();
        return Err(StoreError::Invalid(format!(
            "bad table name `{shown}`: 1 to {MAX_TABLE_NAME} bytes of a-z 0-9 _ - ."
        )));
    }
    Ok(())
}

/// Checks a value's size against [`MAX_VALUE`].
pub fn check_value(value: &[u8]) -> Result<(), StoreError> {
    check_size("value", value.len(), MAX_VALUE)
}

/// Checks a chunk's size against [`MAX_CHUNK`].
pub fn check_chunk(data: &[u8]) -> Result<(), StoreError> {
    check_size("chunk", data.len(), MAX_CHUNK)
}

fn check_size(what: &str, len: usize, max: usize) -> Result<(), StoreError> {
    if len > max {
        return Err(StoreError::TooLarge(format!(
            "{what} of {len} bytes is above the limit of {max}"
        )));
    }
    Ok(())
}

/// Checks a number of ids (or a page size) against [`MAX_IDS`].
pub fn check_ids(n: usize) -> Result<(), StoreError> {
    if n > MAX_IDS {
        return Err(StoreError::TooLarge(format!(
            "{n} ids are above the limit of {MAX_IDS}"
        )));
    }
    Ok(())
}

/// One write of a batch (validated by [`Write::check`] before it is queued).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Store `value` under `key`.
    Put {
        /// Table.
        table: String,
        /// Key.
        key: Key,
        /// Value.
        value: Vec<u8>,
    },
    /// Remove `key`.
    Delete {
        /// Table.
        table: String,
        /// Key.
        key: Key,
    },
    /// Add ids to a set.
    Insert {
        /// Table.
        table: String,
        /// Ids.
        ids: Vec<Key>,
    },
}

impl Write {
    /// A chunk write: the chunk (at most `MAX_CHUNK` bytes) under its id. Like every write,
    /// it is checked by [`Write::check`] before it is applied.
    pub fn chunk(table: String, data: Vec<u8>) -> Result<(ChunkId, Write), StoreError> {
        check_chunk(&data)?;
        let id = chunk_id(&data);
        Ok((
            id,
            Write::Put {
                table,
                key: id.0,
                value: data,
            },
        ))
    }

    /// Checks the table name and the sizes.
    pub fn check(&self) -> Result<(), StoreError> {
        match self {
            Write::Put { table, value, .. } => {
                check_table(table)?;
                check_value(value)
            }
            Write::Delete { table, .. } => check_table(table),
            Write::Insert { table, ids } => {
                check_table(table)?;
                check_ids(ids.len())
            }
        }
    }
}

/// What a committed write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteDone {
    /// Stored.
    Stored,
    /// Removed (`true`) or there was nothing to remove (`false`).
    Deleted(bool),
}

/// Tables of 32-byte keys to values, chunks and sets. Every write returns only after it is
/// committed durably. A table that was never written reads as empty.
pub trait Storage: Send + Sync {
    /// Commits `writes` in order; what each did, once committed. [`RedbStorage`] commits the
    /// batch in one durable transaction, all of it or (on error) none. [`RemoteStorage`] sends
    /// one request per write, each committed before the next is sent, and stops at the first
    /// failure, so a failed batch may have been applied in part: batch there only writes that
    /// stand on their own (chunks under their ids, puts that a retry repeats).
    fn apply(&self, writes: &mut dyn Iterator<Item = &Write>)
        -> Result<Vec<WriteDone>, StoreError>;
    /// Every table with its number of keys, by name.
    fn tables(&self) -> Result<Vec<TableInfo>, StoreError>;
    /// Number of keys in `table`.
    fn count(&self, table: &str) -> Result<u64, StoreError>;
    /// The value under `key`.
    fn get(&self, table: &str, key: &Key) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores `value` under `key`, replacing any.
    fn put(&self, table: &str, key: &Key, value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key`; whether it was there.
    fn delete(&self, table: &str, key: &Key) -> Result<bool, StoreError>;
    /// Stores a chunk under its chunk id (`wire::storm::container::chunk_id`) and returns it.
    fn store_chunk(&self, table: &str, data: &[u8]) -> Result<ChunkId, StoreError>;
    /// The chunk with id `id` (as stored: the caller checks its hash when it matters).
    fn retrieve_chunk(&self, table: &str, id: &ChunkId) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(table, id.as_bytes())
    }
    /// Adds ids to a set (a table with empty values); ids already present keep their value.
    fn insert(&self, table: &str, ids: &[Key]) -> Result<(), StoreError>;
    /// Up to `limit` keys after `after`, ascending, and whether more follow.
    fn list_ids(
        &self,
        table: &str,
        after: Option<Key>,
        limit: usize,
    ) -> Result<(Vec<Key>, bool), StoreError>;
    /// The ids of `ids` that are not keys of `table`, in the order given.
    fn check_unknown(&self, table: &str, ids: &[Key]) -> Result<Vec<Key>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        for good in ["chunks", "a", "rgb.stash-2_x", &"a".repeat(64)] {
            assert!(check_table(good).is_ok(), "{good}");
        }
        for bad in ["", "A", "a b", "é", "a/b", &"a".repeat(65), "tab\0"] {
            assert_eq!(check_table(bad).unwrap_err().code(), code::INVALID_ARGUMENT);
        }
    }
}
