//! Storm chat (app `0x0001`): messages kept in the STORE table `chat`, and the services that
//! listen for new ones. Shared by `stormd` (requests) and the LNP link (messages from peers).
//!
//! A key is `SHA256(peer)[..8]` ‖ Unix time in ms (u64 BE) ‖ a counter (u64 BE) ‖ 8 zero bytes,
//! so the keys of one peer are contiguous and in time order: the history is one `list_ids`
//! walk. A value is the strict [`ChatEntry`].

use crate::actors::limits::MAX_LISTENERS;
use crate::bus::{Subscriber, Subscribers};
use crate::storage::Storage;
use crate::wire::api::storm::tables::CHAT;
use crate::wire::api::storm::Key;
use crate::wire::api::storm::{ChatEntry, StormMsg};
use crate::wire::api::ServiceId;
use crate::wire::node_id::NodeId;
use crate::wire::strict::{self, Reader, Strict};
use bitcoin::hashes::{sha256, Hash};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Most messages `chat_history` returns (the newest ones).
pub const MAX_HISTORY: usize = 1_000;

/// The chat of a Storm node.
pub struct Chat {
    storage: Arc<dyn Storage>,
    listeners: Mutex<Subscribers>,
    counter: AtomicU64,
}

fn prefix(peer: &NodeId) -> [u8; 8] {
    let h = sha256::Hash::hash(peer.as_bytes()).to_byte_array();
    h[..8].try_into().expect("8 bytes")
}

impl Chat {
    /// The chat kept in `storage`.
    pub fn new(storage: Arc<dyn Storage>) -> Chat {
        Chat {
            storage,
            listeners: Mutex::new(Subscribers::new("chat listeners", MAX_LISTENERS)),
            counter: AtomicU64::new(0),
        }
    }

    fn listeners(&self) -> MutexGuard<'_, Subscribers> {
        crate::sync::lock(&self.listeners)
    }

    /// Keeps `entry` (committed before this returns).
    pub fn record(&self, entry: &ChatEntry) -> Result<(), String> {
        let mut key: Key = [0; 32];
        key[..8].copy_from_slice(&prefix(&entry.peer));
        key[8..16].copy_from_slice(&entry.time_ms.to_be_bytes());
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        key[16..24].copy_from_slice(&n.to_be_bytes());
        let value = strict::serialize(entry).map_err(|e| e.to_string())?;
        self.storage
            .put(CHAT, &key, &value)
            .map_err(|e| format!("the chat cannot be stored: {e}"))
    }

    /// A message from a peer: kept, then sent to every listener.
    pub fn received(&self, entry: ChatEntry) {
        if let Err(e) = self.record(&entry) {
            tracing::warn!("{e}");
        }
        self.listeners()
            .notify(&ServiceId::Stormd, StormMsg::ChatIn(entry));
    }

    /// `sub` listens from now on.
    pub fn listen(&self, sub: Subscriber) -> Result<(), String> {
        self.listeners().add(sub, ())
    }

    /// A listener is gone from its bus.
    pub fn forget(&self, id: &ServiceId) {
        self.listeners().remove(id);
    }

    /// The messages with `peer`, oldest first (the newest [`MAX_HISTORY`]).
    pub fn history(&self, peer: &NodeId) -> Result<Vec<ChatEntry>, String> {
        let p = prefix(peer);
        let mut after: Option<Key> = {
            let mut start = [0u8; 32];
            start[..8].copy_from_slice(&p);
            // Every key of this peer is above `start` (time and counter are not both 0).
            Some(start)
        };
        let mut out = Vec::new();
        loop {
            let (ids, more) = self
                .storage
                .list_ids(CHAT, after, 1024)
                .map_err(|e| e.to_string())?;
            let mine: Vec<&Key> = ids.iter().take_while(|k| k[..8] == p).collect();
            for k in &mine {
                let Some(v) = self.storage.get(CHAT, k).map_err(|e| e.to_string())? else {
                    continue;
                };
                let mut r = Reader::new(&v);
                if let Ok(e) = ChatEntry::strict_decode(&mut r) {
                    if e.peer == *peer {
                        out.push(e);
                    }
                }
            }
            if !more || mine.len() < ids.len() {
                break;
            }
            after = ids.last().copied();
        }
        let skip = out.len().saturating_sub(MAX_HISTORY);
        Ok(out.split_off(skip))
    }
}
