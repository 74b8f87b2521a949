//! [`RemoteStorage`]: the [`Storage`] interface over the STORE RPC of a Storm node. Each call is
//! one request to `stored` with a deadline; a node that is not running fails the call at once
//! (IPC) or at the deadline (TCP), never hangs.

use super::{
    check_chunk, check_ids, check_table, check_value, Storage, StoreError, TableInfo, Write,
    WriteDone,
};
use crate::bus::client::{ClientError, Dial, SharedClient};
use crate::wire::api::storm::Key;
use crate::wire::api::storm::StormMsg;
use crate::wire::api::{code, Msg, ServiceId, ServiceName};
use crate::wire::storm::container::ChunkId;
use std::time::Duration;

/// The service id of `stored` on the STORE (and API) bus.
pub fn stored_id() -> ServiceId {
    const STORED: ServiceId = ServiceId::Other(ServiceName::fixed("stored"));
    STORED
}

/// A STORE client.
pub struct RemoteStorage {
    client: SharedClient,
}

impl std::fmt::Debug for RemoteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteStorage({})", self.client.endpoint())
    }
}

impl RemoteStorage {
    /// A client of the STORE at `dial` (a local endpoint, or a Storm node's encrypted TCP
    /// STORE bus); it connects on first use, and again after an error.
    pub fn new(zmq: zmq::Context, dial: Dial, timeout: Duration) -> RemoteStorage {
        RemoteStorage {
            client: SharedClient::new(zmq, dial, timeout),
        }
    }

    /// The STORE's endpoint.
    pub fn endpoint(&self) -> String {
        self.client.endpoint()
    }

    fn call(&self, msg: StormMsg) -> Result<Msg, StoreError> {
        self.client
            .request(&stored_id(), msg.into())
            .map_err(remote)
    }
}

impl RemoteStorage {
    /// A request answered by `value`, or `NOT_FOUND` for an absent key.
    fn value(&self, msg: StormMsg) -> Result<Option<Vec<u8>>, StoreError> {
        match self.call(msg) {
            Ok(Msg::Storm(StormMsg::Value(v))) => Ok(Some(v)),
            Ok(m) => Err(unexpected(m)),
            Err(e) => absent(e),
        }
    }
}

fn remote(e: ClientError) -> StoreError {
    match e {
        ClientError::Failure { code, message } => StoreError::Remote { code, message },
        ClientError::Timeout(_) => StoreError::Remote {
            code: code::TIMEOUT,
            message: e.to_string(),
        },
        other => StoreError::Remote {
            code: code::NO_ROUTE,
            message: other.to_string(),
        },
    }
}

fn unexpected(m: Msg) -> StoreError {
    StoreError::Failed(format!(
        "unexpected reply {:#06x} from the STORE",
        m.type_id()
    ))
}

fn absent(e: StoreError) -> Result<Option<Vec<u8>>, StoreError> {
    match e {
        StoreError::Remote {
            code: code::NOT_FOUND,
            ..
        } => Ok(None),
        e => Err(e),
    }
}

impl Storage for RemoteStorage {
    /// One request per write, each committed before the next goes; stops at the first failure
    /// (the writes before it stay applied).
    fn apply(
        &self,
        writes: &mut dyn Iterator<Item = &Write>,
    ) -> Result<Vec<WriteDone>, StoreError> {
        let mut done = Vec::new();
        for w in writes {
            w.check()?;
            done.push(match w {
                Write::Put { table, key, value } => {
                    self.put(table, key, value)?;
                    WriteDone::Stored
                }
                Write::Delete { table, key } => WriteDone::Deleted(self.delete(table, key)?),
                Write::Insert { table, ids } => {
                    self.insert(table, ids)?;
                    WriteDone::Stored
                }
            });
        }
        Ok(done)
    }

    fn tables(&self) -> Result<Vec<TableInfo>, StoreError> {
        match self.call(StormMsg::Tables)? {
            Msg::Storm(StormMsg::TableList(list)) => Ok(list),
            m => Err(unexpected(m)),
        }
    }

    fn count(&self, table: &str) -> Result<u64, StoreError> {
        check_table(table)?;
        match self.call(StormMsg::Count {
            table: table.into(),
        })? {
            Msg::Storm(StormMsg::Counted(n)) => Ok(n),
            m => Err(unexpected(m)),
        }
    }

    fn get(&self, table: &str, key: &Key) -> Result<Option<Vec<u8>>, StoreError> {
        check_table(table)?;
        self.value(StormMsg::Get {
            table: table.into(),
            key: *key,
        })
    }

    fn put(&self, table: &str, key: &Key, value: &[u8]) -> Result<(), StoreError> {
        check_table(table)?;
        check_value(value)?;
        self.call(StormMsg::Put {
            table: table.into(),
            key: *key,
            value: value.to_vec(),
        })
        .map(|_| ())
    }

    fn delete(&self, table: &str, key: &Key) -> Result<bool, StoreError> {
        check_table(table)?;
        match self.call(StormMsg::Delete {
            table: table.into(),
            key: *key,
        }) {
            Ok(_) => Ok(true),
            Err(e) => absent(e).map(|_| false),
        }
    }

    fn store_chunk(&self, table: &str, data: &[u8]) -> Result<ChunkId, StoreError> {
        check_table(table)?;
        check_chunk(data)?;
        match self.call(StormMsg::StoreChunk {
            table: table.into(),
            data: data.to_vec(),
        })? {
            Msg::Storm(StormMsg::ChunkStored(id)) => Ok(id),
            m => Err(unexpected(m)),
        }
    }

    fn retrieve_chunk(&self, table: &str, id: &ChunkId) -> Result<Option<Vec<u8>>, StoreError> {
        check_table(table)?;
        self.value(StormMsg::RetrieveChunk {
            table: table.into(),
            id: *id,
        })
    }

    fn insert(&self, table: &str, ids: &[Key]) -> Result<(), StoreError> {
        check_table(table)?;
        check_ids(ids.len())?;
        self.call(StormMsg::Insert {
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
        check_table(table)?;
        check_ids(limit)?;
        match self.call(StormMsg::ListIds {
            table: table.into(),
            after,
            limit: limit as u16,
        })? {
            Msg::Storm(StormMsg::IdList { ids, more }) => Ok((ids, more)),
            m => Err(unexpected(m)),
        }
    }

    fn check_unknown(&self, table: &str, ids: &[Key]) -> Result<Vec<Key>, StoreError> {
        check_table(table)?;
        check_ids(ids.len())?;
        match self.call(StormMsg::CheckUnknown {
            table: table.into(),
            ids: ids.to_vec(),
        })? {
            Msg::Storm(StormMsg::IdList { ids, .. }) => Ok(ids),
            m => Err(unexpected(m)),
        }
    }
}
