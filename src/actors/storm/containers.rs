//! Containers over the store (docs/API.md, "Containers"): read, list, check, make and
//! assemble them. Shared by `stormd`'s requests and by the transfers (a download's end check).
//!
//! `containerize` and `assemble` read and hash every chunk: they run on threads of their own
//! ([`Jobs`], at most [`MAX_CONTAINER_JOBS`] at once, else `BUSY`), which answer the request,
//! so the manager never blocks on a file's worth of chunks.

use crate::actors::limits::MAX_CONTAINER_JOBS;
use crate::bus::Bus;
use crate::storage::Storage;
use crate::wire::api::storm::tables::{CHUNKS, CONTAINERS};
use crate::wire::api::storm::{ContainerInfo, StormMsg};
use crate::wire::api::{code, ApiError, Code, Envelope, Msg};
use crate::wire::limits::MAX_LIST;
use crate::wire::storm::container::{chunk_id, ChunkId, Container, ContainerId};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Reads and decodes a container.
pub fn load(s: &dyn Storage, id: &ContainerId) -> Result<Option<Container>, ApiError> {
    match s.get(CONTAINERS, id.as_bytes())? {
        None => Ok(None),
        Some(bytes) => crate::wire::strict::deserialize(&bytes)
            .map(Some)
            .map_err(|e| {
                ApiError::new(
                    code::INVALID_DATA,
                    format!("container {id} is damaged: {e}"),
                )
            }),
    }
}

/// Every container, by id (at most [`MAX_LIST`]).
pub fn list(s: &dyn Storage) -> Result<Vec<ContainerInfo>, ApiError> {
    let (ids, _) = s.list_ids(CONTAINERS, None, MAX_LIST)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids.into_iter().map(ContainerId) {
        if let Some(c) = load(s, &id)? {
            out.push(ContainerInfo {
                id,
                chunks: c.chunks.len() as u32,
                header: c.header,
            });
        }
    }
    Ok(out)
}

/// Checks every chunk of `container` in the store: present, hashing to its id (but for those
/// in `verified`, hashed already by the caller), and the sizes adding up to the header's (a
/// mismatch is failure `size_code`).
pub fn check_chunks(
    s: &dyn Storage,
    container: &Container,
    size_code: Code,
    verified: &BTreeSet<ChunkId>,
) -> Result<(), ApiError> {
    let mut size = 0u64;
    for (n, id) in container.chunks.iter().enumerate() {
        match s.get(CHUNKS, id.as_bytes()) {
            Ok(Some(data)) if verified.contains(id) || chunk_id(&data) == *id => {
                size += data.len() as u64
            }
            Ok(Some(_)) => {
                return Err(bad_chunk(
                    n,
                    id,
                    "is altered: its data does not hash to its id",
                ))
            }
            Ok(None) => return Err(bad_chunk(n, id, "is missing from the store")),
            Err(e) => return Err(e.into()),
        }
    }
    if size != container.header.size {
        return Err(ApiError::new(
            size_code,
            format!(
                "the chunks hold {size} bytes, the header says {}",
                container.header.size
            ),
        ));
    }
    Ok(())
}

fn bad_chunk(n: usize, id: &ChunkId, what: &str) -> ApiError {
    ApiError::new(code::INVALID_DATA, format!("chunk #{n} {id} {what}"))
}

/// `containerize`: the chunks checked (a size mismatch is the caller's), then the container
/// kept under its id.
pub fn containerize(s: &dyn Storage, container: Container) -> Msg {
    if let Err(e) = check_chunks(s, &container, code::INVALID_ARGUMENT, &BTreeSet::new()) {
        return e.into();
    }
    let bytes = match crate::wire::strict::serialize(&container) {
        Ok(b) => b,
        Err(e) => return Msg::failure(code::INVALID_ARGUMENT, e.to_string()),
    };
    let id = Container::id_of_encoding(&bytes);
    if let Err(e) = s.put(CONTAINERS, id.as_bytes(), &bytes) {
        return ApiError::from(e).into();
    }
    StormMsg::ContainerCreated(ContainerInfo {
        id,
        chunks: container.chunks.len() as u32,
        header: container.header,
    })
    .into()
}

/// `assemble`: the container and every chunk checked (a size mismatch is the store's).
pub fn assemble(s: &dyn Storage, id: ContainerId) -> Msg {
    let container = match load(s, &id) {
        Ok(Some(c)) => c,
        Ok(None) => return not_found(&id).into(),
        Err(e) => return e.into(),
    };
    match check_chunks(s, &container, code::INVALID_DATA, &BTreeSet::new()) {
        Ok(()) => StormMsg::ContainerData { id, container }.into(),
        Err(e) => e.into(),
    }
}

/// The failure for an unknown container.
pub fn not_found(id: &ContainerId) -> ApiError {
    ApiError::new(code::NOT_FOUND, format!("no container {id}"))
}

/// The container checks running on threads of their own.
#[derive(Default)]
pub struct Jobs {
    running: AtomicUsize,
}

impl Jobs {
    /// Runs `work` over `storage` on a thread of its own, which answers `env` on `bus`; the
    /// failure to answer now (`BUSY`) if [`MAX_CONTAINER_JOBS`] run already.
    pub fn spawn(
        self: &Arc<Self>,
        storage: Arc<dyn Storage>,
        bus: &Bus,
        env: &Envelope,
        work: impl FnOnce(&dyn Storage) -> Msg + Send + 'static,
    ) -> Option<Msg> {
        let running = self.running.fetch_add(1, Ordering::AcqRel);
        if running >= MAX_CONTAINER_JOBS {
            self.running.fetch_sub(1, Ordering::AcqRel);
            return Some(Msg::failure(
                code::BUSY,
                format!("{MAX_CONTAINER_JOBS} container jobs are running; retry"),
            ));
        }
        let (jobs, bus, env) = (self.clone(), bus.clone(), env.clone());
        let spawned = std::thread::Builder::new()
            .name("stormd-container".into())
            .spawn(move || {
                let reply = crate::guard::guard(|| Ok(work(&*storage)))
                    .unwrap_or_else(|why| Msg::failure(code::SERVICE_FAILED, why));
                jobs.running.fetch_sub(1, Ordering::AcqRel);
                bus.send(env.reply(reply));
            });
        match spawned {
            Ok(_) => None,
            Err(e) => {
                self.running.fetch_sub(1, Ordering::AcqRel);
                Some(Msg::failure(
                    code::BUSY,
                    format!("cannot start a thread: {e}"),
                ))
            }
        }
    }
}
