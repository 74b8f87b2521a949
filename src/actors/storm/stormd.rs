//! The Storm requests of `stormd` (an [`Extension`] of the node manager, on every bus of the
//! node): containers over the store, and the app registry of the STORM bus.
//!
//! - `containerize`, `assemble`: the chunks are checked on a thread of their own (at most
//!   [`MAX_CONTAINER_JOBS`] at once, else `BUSY`), which answers; the manager never blocks on
//!   reading a file's worth of chunks.
//! - Apps: a client registers an app id and receives `app_message` notifications for it (with
//!   the request id of its `register_app`) until it goes away. Local senders use `app_send`;
//!   Bifrost peers will be one more sender (docs/ARCHITECTURE.md).

use super::chat::Chat;
use super::link::Link;
use super::transfer::Transfers;
use crate::actors::limits::{MAX_APPS, MAX_CONTAINER_JOBS};
use crate::actors::manager::Extension;
use crate::bus::{Bus, Deliver};
use crate::storage::{RedbStorage, Storage, StoreError};
use crate::wire::api::storm::{AppInfo, ContainerInfo, StormMsg};
use crate::wire::api::{code, ApiError, Code, Envelope, Msg, ServiceId};
use crate::wire::limits::{MAX_CONTAINER_CHUNKS, MAX_LIST};
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::{chunk_id, ChunkId, Container, ContainerId};
use crate::wire::storm::p2p::{Mesg, MessageId, StormP2p};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Table of chunks (content-addressed).
pub const CHUNKS: &str = "chunks";
/// Table of containers: container id -> strict-encoded container.
pub const CONTAINERS: &str = "containers";

/// A registered app.
#[derive(Clone)]
struct App {
    name: String,
    bus: Bus,
    service: ServiceId,
    request_id: u64,
}

/// The apps registered on the STORM bus (shared with the LNP link, which delivers the app
/// messages and containers of peers).
#[derive(Default)]
pub struct Apps {
    map: Mutex<BTreeMap<u16, App>>,
}

impl Apps {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u16, App>> {
        crate::sync::lock(&self.map)
    }

    /// Sends `msg` to the service registered as `app`, with the request id of its
    /// `register_app`; false if none is.
    pub fn deliver(&self, app: u16, msg: StormMsg) -> bool {
        let apps = self.lock();
        let Some(a) = apps.get(&app) else {
            return false;
        };
        a.bus.send(Envelope {
            src: ServiceId::Stormd,
            dst: a.service.clone(),
            request_id: a.request_id,
            msg: msg.into(),
        });
        true
    }
}

/// State shared by every incarnation of the extension.
pub struct StormState {
    apps: Arc<Apps>,
    jobs: AtomicUsize,
    /// The chat (STORE table `chat`, listeners).
    pub chat: Arc<Chat>,
    /// The link to the LNP node this node joined, if any.
    pub link: Option<Arc<Link>>,
    /// Offers, downloads and shared containers.
    pub transfers: Arc<Mutex<Transfers>>,
}

impl std::fmt::Debug for StormState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StormState")
    }
}

impl StormState {
    /// The state of a node with `apps`, `chat` and `transfers`, joined to an LNP node
    /// through `link` (if any).
    pub fn new(
        apps: Arc<Apps>,
        chat: Arc<Chat>,
        transfers: Arc<Mutex<Transfers>>,
        link: Option<Arc<Link>>,
    ) -> StormState {
        StormState {
            apps,
            jobs: AtomicUsize::new(0),
            chat,
            link,
            transfers,
        }
    }

    /// The transfers, locked.
    pub fn transfers(&self) -> std::sync::MutexGuard<'_, Transfers> {
        crate::sync::lock(&self.transfers)
    }

    /// Number of registered apps.
    pub fn apps(&self) -> usize {
        self.lock_apps().len()
    }

    fn lock_apps(&self) -> std::sync::MutexGuard<'_, BTreeMap<u16, App>> {
        self.apps.lock()
    }
}

/// The extension.
pub struct Stormd {
    storage: Arc<RedbStorage>,
    state: Arc<StormState>,
}

impl Stormd {
    /// The extension over `storage`, with `state` shared across restarts.
    pub fn new(storage: Arc<RedbStorage>, state: Arc<StormState>) -> Stormd {
        Stormd { storage, state }
    }

    fn apps(&self) -> std::sync::MutexGuard<'_, BTreeMap<u16, App>> {
        self.state.lock_apps()
    }

    /// Runs `work` on a thread of its own, which answers the request; `BUSY` if too many run.
    fn spawn_job(
        &self,
        bus: &Bus,
        env: &Envelope,
        work: impl FnOnce(&RedbStorage) -> Msg + Send + 'static,
    ) -> Option<Msg> {
        let running = self.state.jobs.fetch_add(1, Ordering::AcqRel);
        if running >= MAX_CONTAINER_JOBS {
            self.state.jobs.fetch_sub(1, Ordering::AcqRel);
            return Some(Msg::failure(
                code::BUSY,
                format!("{MAX_CONTAINER_JOBS} container jobs are running; retry"),
            ));
        }
        let (storage, state, bus, env) = (
            self.storage.clone(),
            self.state.clone(),
            bus.clone(),
            env.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("stormd-container".into())
            .spawn(move || {
                let reply = crate::guard::guard(|| Ok(work(&storage)))
                    .unwrap_or_else(|why| Msg::failure(code::SERVICE_FAILED, why));
                state.jobs.fetch_sub(1, Ordering::AcqRel);
                bus.send(env.reply(reply));
            });
        match spawned {
            Ok(_) => None,
            Err(e) => {
                self.state.jobs.fetch_sub(1, Ordering::AcqRel);
                Some(Msg::failure(
                    code::BUSY,
                    format!("cannot start a thread: {e}"),
                ))
            }
        }
    }
}

fn store_failure(e: StoreError) -> Msg {
    Msg::failure(e.code(), e.to_string())
}

fn refused(e: ApiError) -> Msg {
    e.into()
}

fn store_refusal(e: StoreError) -> ApiError {
    ApiError::new(e.code(), e.to_string())
}

/// Reads and decodes a container.
pub fn load_container(s: &dyn Storage, id: &ContainerId) -> Result<Option<Container>, ApiError> {
    match s.get(CONTAINERS, id.as_bytes()).map_err(store_refusal)? {
        None => Ok(None),
        Some(bytes) => crate::wire::strict::deserialize(&bytes)
            .map(Some)
            .map_err(|e| {
                ApiError::new(
                    code::INVALID_DATA,
                    format!("container {} is damaged: {e}", id),
                )
            }),
    }
}

/// Every container, by id (at most [`MAX_LIST`]).
pub fn list_containers(s: &dyn Storage) -> Result<Vec<ContainerInfo>, ApiError> {
    let (ids, _) = s
        .list_ids(CONTAINERS, None, MAX_LIST)
        .map_err(store_refusal)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids.into_iter().map(ContainerId) {
        if let Some(c) = load_container(s, &id)? {
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
    s: &RedbStorage,
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
            Err(e) => return Err(store_refusal(e)),
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

/// `containerize`: the chunks checked (a size mismatch is the caller's), then the container.
fn containerize(s: &RedbStorage, container: Container) -> Msg {
    if let Err(r) = check_chunks(s, &container, code::INVALID_ARGUMENT, &BTreeSet::new()) {
        return refused(r);
    }
    let bytes = match crate::wire::strict::serialize(&container) {
        Ok(b) => b,
        Err(e) => return Msg::failure(code::INVALID_ARGUMENT, e.to_string()),
    };
    let id = Container::id_of_encoding(&bytes);
    if let Err(e) = s.put(CONTAINERS, id.as_bytes(), &bytes) {
        return store_failure(e);
    }
    StormMsg::ContainerCreated(ContainerInfo {
        id,
        chunks: container.chunks.len() as u32,
        header: container.header,
    })
    .into()
}

/// `assemble`: the container and every chunk checked (a size mismatch is the store's).
fn assemble(s: &RedbStorage, id: ContainerId) -> Msg {
    let container = match load_container(s, &id) {
        Ok(Some(c)) => c,
        Ok(None) => return no_container(&id),
        Err(r) => return refused(r),
    };
    match check_chunks(s, &container, code::INVALID_DATA, &BTreeSet::new()) {
        Ok(()) => StormMsg::ContainerData { id, container }.into(),
        Err(r) => refused(r),
    }
}

fn bad_chunk(n: usize, id: &ChunkId, what: &str) -> ApiError {
    ApiError::new(code::INVALID_DATA, format!("chunk #{n} {} {what}", id))
}

fn no_link() -> Msg {
    Msg::failure(
        code::REFUSED,
        "this Storm node joined no LNP node (start it with --lnp ENDPOINT)",
    )
}

fn no_container(id: &ContainerId) -> Msg {
    Msg::failure(code::NOT_FOUND, format!("no container {}", id))
}

impl Stormd {
    /// Sends a Storm message to a peer through the link, which answers the request (`None`),
    /// or the failure to answer with.
    fn link_send(&self, peer: NodeId, msg: StormP2p, bus: &Bus, env: &Envelope) -> Option<Msg> {
        let Some(link) = &self.state.link else {
            return Some(no_link());
        };
        link.send(peer, msg, None, (bus.clone(), env.clone()))
            .err()
            .map(|why| Msg::failure(code::PEER_FAILED, why))
    }
}

impl Extension for Stormd {
    fn handle(&mut self, d: Deliver) -> Option<Deliver> {
        let Deliver { env, bus } = &d;
        let Msg::Storm(op) = &env.msg else {
            return Some(d);
        };
        let reply = match op {
            StormMsg::Containerize { header, chunks } => {
                if chunks.len() > MAX_CONTAINER_CHUNKS {
                    Msg::failure(code::TOO_LARGE, "too many chunks")
                } else {
                    let c = Container {
                        header: header.clone(),
                        chunks: chunks.clone(),
                    };
                    // `None`: the job answers.
                    self.spawn_job(bus, env, move |s| containerize(s, c))?
                }
            }
            StormMsg::Assemble(id) => {
                let id = *id;
                // `None`: the job answers.
                self.spawn_job(bus, env, move |s| assemble(s, id))?
            }
            StormMsg::Containers => match list_containers(&*self.storage) {
                Ok(list) => StormMsg::ContainerList(list).into(),
                Err(r) => refused(r),
            },
            StormMsg::GetContainer(id) => match load_container(&*self.storage, id) {
                Ok(Some(container)) => StormMsg::ContainerData { id: *id, container }.into(),
                Ok(None) => no_container(id),
                Err(r) => refused(r),
            },
            StormMsg::RegisterApp { app, name } => {
                let mut apps = self.apps();
                match apps.get(app) {
                    Some(a) if a.service != env.src => Msg::failure(
                        code::CONFLICT,
                        format!("app id {app:#06x} is taken by `{}`", a.name),
                    ),
                    None if apps.len() >= MAX_APPS => {
                        Msg::failure(code::BUSY, format!("{MAX_APPS} apps are registered"))
                    }
                    _ => {
                        apps.insert(
                            *app,
                            App {
                                name: name.clone(),
                                bus: bus.clone(),
                                service: env.src.clone(),
                                request_id: env.request_id,
                            },
                        );
                        tracing::info!(app = *app, %name, by = %env.src, "storm app registered");
                        Msg::Success(Some(format!("registered as app {app:#06x}")))
                    }
                }
            }
            StormMsg::AppSend { app, payload } => {
                let msg = StormMsg::AppMessage {
                    app: *app,
                    from: env.src.to_string(),
                    payload: payload.clone(),
                };
                if self.state.apps.deliver(*app, msg) {
                    Msg::Success(Some(format!("delivered to app {app:#06x}")))
                } else {
                    Msg::failure(
                        code::NOT_FOUND,
                        format!("no app registered with id {app:#06x}"),
                    )
                }
            }
            StormMsg::Apps => StormMsg::AppList(
                self.apps()
                    .iter()
                    .map(|(app, a)| AppInfo {
                        app: *app,
                        name: a.name.clone(),
                    })
                    .collect(),
            )
            .into(),
            StormMsg::ChatSend { node_id, text } => match &self.state.link {
                None => no_link(),
                Some(link) => match link.chat(*node_id, text.clone(), (bus.clone(), env.clone())) {
                    Ok(()) => return None, // the link answers
                    Err(why) => Msg::failure(code::PEER_FAILED, why),
                },
            },
            StormMsg::ChatSubscribe => {
                match self
                    .state
                    .chat
                    .listen(bus.clone(), env.src.clone(), env.request_id)
                {
                    Ok(()) => Msg::Success(Some("listening for chat messages".into())),
                    Err(e) => Msg::failure(code::BUSY, e),
                }
            }
            StormMsg::ChatHistory { node_id } => match self.state.chat.history(node_id) {
                Ok(list) => StormMsg::ChatList(list).into(),
                Err(e) => Msg::failure(code::SERVICE_FAILED, e),
            },
            StormMsg::AppSendTo {
                node_id,
                app,
                payload,
            } => {
                let post = StormP2p::Post(
                    *app,
                    Mesg {
                        parent_id: MessageId::default(),
                        body: payload.clone(),
                        container_ids: vec![],
                    },
                );
                // `None`: the link answers.
                self.link_send(*node_id, post, bus, env)?
            }
            StormMsg::SendContainer {
                node_id,
                container_id,
                app,
            } => {
                let shared = match &self.state.link {
                    Some(l) if !l.reachable() => {
                        Err(ApiError::new(code::PEER_FAILED, l.unreachable()))
                    }
                    _ => self.state.transfers().share(*node_id, *container_id, *app),
                };
                match shared {
                    Err(r) => refused(r),
                    // `None`: the link answers.
                    Ok(announce) => self.link_send(*node_id, announce, bus, env)?,
                }
            }
            StormMsg::AcceptContainer(id) => {
                if self.state.link.is_none() {
                    no_link()
                } else {
                    let accepted = self.state.transfers().accept(*id);
                    if let Some(l) = &self.state.link {
                        l.wake();
                    }
                    match accepted {
                        Ok(text) => Msg::Success(Some(text)),
                        Err(r) => refused(r),
                    }
                }
            }
            StormMsg::Transfers => StormMsg::TransferList(self.state.transfers().list()).into(),
            StormMsg::TransferSubscribe(container) => {
                let subscribed = self.state.transfers().subscribe(
                    bus.clone(),
                    env.src.clone(),
                    env.request_id,
                    *container,
                );
                match subscribed {
                    Ok(now) => {
                        // The reply first: the client takes what follows as notifications.
                        bus.send(env.reply(Msg::Success(Some("listening for transfers".into()))));
                        for m in now {
                            bus.send(Envelope {
                                src: ServiceId::Stormd,
                                dst: env.src.clone(),
                                request_id: env.request_id,
                                msg: m.into(),
                            });
                        }
                        return None;
                    }
                    Err(e) => Msg::failure(code::BUSY, e),
                }
            }
            _ => return Some(d),
        };
        bus.send(env.reply(reply));
        None
    }

    fn debug_crash(&mut self, _: &str, _: &str) -> Option<Msg> {
        None
    }

    fn gone(&mut self, service: &ServiceId) {
        self.state.chat.forget(service);
        self.state.transfers().forget(service);
        self.apps().retain(|app, a| {
            let keep = &a.service != service;
            if !keep {
                tracing::info!(app = *app, name = %a.name, "storm app gone");
            }
            keep
        });
    }
}
