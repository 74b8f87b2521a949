//! What we share: `send_container` records a container as shared with a peer (table `shares`,
//! so it survives a restart) and announces it; only a peer a container was sent to may pull it
//! (`PullContainer`, `PullChunk`), anyone else gets `Reject`. At most [`MAX_PULL_CHUNKS`]
//! chunks are served per `PullChunk`, each only if it is in the container.

use super::record::Share;
use super::refuse;
use crate::actors::storm::containers;
use crate::storage::Storage;
use crate::wire::api::storm::tables::{CHUNKS, SHARES};
use crate::wire::api::storm::{TransferInfo, TransferState};
use crate::wire::api::{code, ApiError};
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::{ChunkId, Container, ContainerId};
use crate::wire::storm::p2p::{FullId, MessageId, StormP2p};
use crate::wire::strict;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Most chunk ids served for one `PullChunk` (more are ignored).
pub const MAX_PULL_CHUNKS: usize = 64;
/// Containers whose chunk lists are kept in memory for serving.
const SERVE_CACHE: usize = 64;

/// A container shared with one peer, as `transfers` lists it.
struct Upload {
    app: u16,
    size: u64,
    chunks: u32,
    /// Chunks sent since the node started.
    served: u32,
}

impl Upload {
    fn of(app: u16, c: &Container) -> Upload {
        Upload {
            app,
            size: c.header.size,
            chunks: super::distinct(&c.chunks).len() as u32,
            served: 0,
        }
    }
}

/// The containers we share.
#[derive(Default)]
pub struct Serving {
    /// Shared containers seen in this run, by (container, peer).
    uploads: BTreeMap<(ContainerId, NodeId), Upload>,
    /// Chunk sets of shared containers, for serving.
    cache: HashMap<ContainerId, BTreeSet<ChunkId>>,
}

impl Serving {
    /// `send_container`: records `container` as shared with `peer` (committed when it returns)
    /// and gives the announcement.
    pub fn share(
        &mut self,
        storage: &dyn Storage,
        peer: NodeId,
        container: ContainerId,
        app: u16,
    ) -> Result<StormP2p, ApiError> {
        let c = containers::load(storage, &container)?
            .ok_or_else(|| containers::not_found(&container))?;
        let share = Share {
            peer,
            container,
            app,
        };
        let bytes = strict::serialize(&share)
            .map_err(|e| ApiError::new(code::INVALID_DATA, e.to_string()))?;
        storage.put(SHARES, &Share::key(&peer, &container), &bytes)?;
        self.uploads
            .entry((container, peer))
            .and_modify(|u| u.app = app)
            .or_insert_with(|| Upload::of(app, &c));
        Ok(StormP2p::AnnounceContainer(
            app,
            c.header,
            FullId {
                message_id: MessageId::default(),
                container_id: container,
            },
        ))
    }

    /// Every container shared in this run, as `transfers` lists them.
    pub fn list(&self) -> impl Iterator<Item = TransferInfo> + '_ {
        self.uploads.iter().map(|((id, peer), u)| TransferInfo {
            container_id: *id,
            peer: *peer,
            app: u.app,
            state: TransferState::Shared,
            size: u.size,
            chunks: u.chunks,
            have: u.chunks,
            had: 0,
            fetched: 0,
            served: u.served,
            note: String::new(),
        })
    }

    /// Whether `c` was sent to `peer` (the table `shares`; remembered in `uploads`).
    fn shared(&mut self, storage: &dyn Storage, peer: &NodeId, c: &ContainerId) -> bool {
        if self.uploads.contains_key(&(*c, *peer)) {
            return true;
        }
        let Ok(Some(v)) = storage.get(SHARES, &Share::key(peer, c)) else {
            return false;
        };
        let Ok(share) = strict::deserialize::<Share>(&v) else {
            return false;
        };
        let Ok(Some(found)) = containers::load(storage, c) else {
            return false;
        };
        self.uploads
            .insert((*c, *peer), Upload::of(share.app, &found));
        true
    }

    /// A `PullContainer`: the container if it was shared with `peer`, else `Reject`.
    pub fn pull_container(
        &mut self,
        storage: &dyn Storage,
        peer: NodeId,
        app: u16,
        id: FullId,
    ) -> StormP2p {
        let c = id.container_id;
        let found = if self.shared(storage, &peer, &c) {
            containers::load(storage, &c).ok().flatten()
        } else {
            None
        };
        match found {
            Some(container) => StormP2p::PushContainer(app, container),
            None => {
                refuse(
                    &peer,
                    &format!("a pull of container {c} not shared with it: rejected"),
                );
                StormP2p::Reject(app, id)
            }
        }
    }

    /// A `PullChunk`: the chunks asked for that are in container `c` (at most
    /// [`MAX_PULL_CHUNKS`]) if it was shared with `peer`, else `Reject`.
    pub fn pull_chunks(
        &mut self,
        storage: &dyn Storage,
        peer: NodeId,
        app: u16,
        message_id: MessageId,
        c: ContainerId,
        ids: &[ChunkId],
    ) -> Vec<StormP2p> {
        if !self.shared(storage, &peer, &c) {
            refuse(
                &peer,
                &format!("a pull of chunks of container {c} not shared with it: rejected"),
            );
            let id = FullId {
                message_id,
                container_id: c,
            };
            return vec![StormP2p::Reject(app, id)];
        }
        if !self.cache.contains_key(&c) {
            let Ok(Some(found)) = containers::load(storage, &c) else {
                return Vec::new();
            };
            if self.cache.len() >= SERVE_CACHE {
                self.cache.clear();
            }
            self.cache.insert(c, found.chunks.iter().copied().collect());
        }
        let set = &self.cache[&c];
        if ids.len() > MAX_PULL_CHUNKS {
            refuse(
                &peer,
                &format!(
                    "a pull of {} chunks: only the first {MAX_PULL_CHUNKS} served",
                    ids.len()
                ),
            );
        }
        let mut out = Vec::new();
        for id in ids.iter().take(MAX_PULL_CHUNKS) {
            if !set.contains(id) {
                refuse(
                    &peer,
                    &format!("a pull of chunk {id} that is not in container {c}"),
                );
                continue;
            }
            let Ok(Some(data)) = storage.get(CHUNKS, id.as_bytes()) else {
                tracing::warn!(chunk = %id, "a chunk of a shared container is missing from the store");
                continue;
            };
            out.push(StormP2p::PushChunk {
                app,
                container_id: c,
                chunk_id: *id,
                data,
            });
        }
        if let Some(u) = self.uploads.get_mut(&(c, peer)) {
            u.served += out.len() as u32;
        }
        out
    }
}
