//! Container transfers between Storm nodes (Storm app messages over Bifrost, docs/API.md
//! "Container transfers"): what we share, what we are offered, what we download.
//!
//! The state lives behind one mutex shared by `stormd` (requests) and the LNP link thread
//! (peer messages, timers, sends). Nothing here does I/O but the store: the methods return the
//! Storm messages to send ([`Outgoing`]) and the link sends them.
//!
//! - **Sharing.** `send` records the container as shared with that peer (STORE table
//!   [`SHARES`], so it survives a restart) and announces it. Only a peer a container was
//!   announced to may pull it (`PullContainer`, `PullChunk`); anyone else gets `Reject`.
//! - **Offers.** An announcement is kept as an offer (in memory; bounded per peer in count and
//!   in announced bytes, and in all) until `accept`, or accepted at once for a node id of
//!   `[storm] auto_accept`. Beyond a bound it is dropped and logged (rate-limited).
//! - **Downloads** (STORE table [`DOWNLOADS`], so they survive a restart): `PullContainer`,
//!   then the `PushContainer` is checked (its id, the announced header) and kept; STORE says
//!   which chunks are missing, and those are asked for with at most `window` in flight (and
//!   at most `max_download_rate` bytes per second). A chunk must come from the peer it was
//!   asked of and hash to its id; it is stored in a group commit with the other chunks of the
//!   same burst. A chunk not received within `chunk_timeout` is asked for again, up to
//!   `chunk_retries` times; then the download waits [`STALL_WAIT`] and starts over with what
//!   is still missing (also after a send failed: the peer is not connected). A restart plans
//!   from the store again, so a chunk stored is never fetched twice.
//! - **The end.** Every chunk present and the sizes adding up to the header's: the container
//!   is stored, the download record removed, and `container_received` goes to the API's
//!   subscribers and to the app it was meant for on the STORM bus.

use super::stormd::{check_chunks, load_container, Apps, CHUNKS, CONTAINERS};
use crate::actors::listeners::Listeners;
use crate::bus::Bus;
use crate::lograte::STORM_REFUSED;
use crate::storage::{RedbStorage, Storage, Write};
use crate::wire::api::storm::{Key, StormMsg, TransferInfo, TransferState as st};
use crate::wire::api::{code, ApiError, ServiceId};
use crate::wire::limits::MAX_CONTAINER_CHUNKS;
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::{chunk_id, ChunkId, Container, ContainerHeader, ContainerId};
use crate::wire::storm::p2p::{FullId, MessageId, StormP2p};
use crate::wire::strict::{self, Reader, Strict, StrictError};
use bitcoin::hashes::{sha256, Hash};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// STORE table of downloads: container id -> [`Record`].
pub const DOWNLOADS: &str = "downloads";
/// STORE table of containers shared with peers: SHA256(peer ‖ container id) -> peer ‖
/// container id ‖ app.
pub const SHARES: &str = "shares";
/// A stalled download (chunks not sent after every retry) starts over after this.
pub const STALL_WAIT: Duration = Duration::from_secs(5);
/// A download whose request could not be sent (the peer is not connected) retries after this.
pub const PEER_WAIT: Duration = Duration::from_secs(2);
/// Most chunk ids served for one `PullChunk` (more are ignored).
pub const MAX_PULL_CHUNKS: usize = 64;
/// Most offers kept from all peers together.
pub const MAX_OFFERS: usize = 1024;
/// Progress notifications of one download, at most one per this (state changes always).
const PROGRESS_EVERY: Duration = Duration::from_millis(200);
/// Containers whose chunk lists are kept in memory for serving.
const SERVE_CACHE: usize = 64;

/// `[storm]` transfer settings.
#[derive(Clone, Debug)]
pub struct TransferSettings {
    /// Node ids whose announcements are accepted at once.
    pub auto_accept: Vec<NodeId>,
    /// Chunk requests in flight per download.
    pub window: usize,
    /// Time a requested chunk may take.
    pub chunk_timeout: Duration,
    /// Requests of one chunk after the first before the download waits.
    pub chunk_retries: u32,
    /// Download rate cap in bytes per second, all downloads together (0: none).
    pub max_rate: u64,
    /// Offers kept per peer.
    pub max_offers_per_peer: usize,
    /// Announced bytes of the offers kept per peer.
    pub max_offer_bytes_per_peer: u64,
}

/// A Storm message to send to a peer.
#[derive(Debug)]
pub struct Outgoing {
    /// The peer.
    pub peer: NodeId,
    /// The message.
    pub msg: StormP2p,
    /// The download it serves (a failed send makes it wait).
    pub download: Option<ContainerId>,
}

struct Offer {
    peer: NodeId,
    app: u16,
    message_id: MessageId,
    header: ContainerHeader,
}

/// What a download keeps in the STORE.
struct Record {
    peer: NodeId,
    app: u16,
    message_id: MessageId,
    header: ContainerHeader,
    container: Option<Container>,
}

impl Strict for Record {
    const MIN_SIZE: usize = 33 + 2 + 32 + ContainerHeader::MIN_SIZE + 1;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.peer.strict_encode(out)?;
        self.app.strict_encode(out)?;
        self.message_id.strict_encode(out)?;
        self.header.strict_encode(out)?;
        match &self.container {
            None => 0u8.strict_encode(out),
            Some(c) => {
                1u8.strict_encode(out)?;
                c.strict_encode(out)
            }
        }
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(Record {
            peer: NodeId::strict_decode(r)?,
            app: u16::strict_decode(r)?,
            message_id: MessageId::strict_decode(r)?,
            header: ContainerHeader::strict_decode(r)?,
            container: match u8::strict_decode(r)? {
                0 => None,
                1 => Some(Container::strict_decode(r)?),
                t => return Err(StrictError::WrongOptionalEncoding(t)),
            },
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Waiting for `PushContainer` (asked at `.0`, try `.1`).
    Header(Option<(Instant, u32)>),
    /// Fetching chunks.
    Chunks,
    /// Starts over at `.0`.
    Waiting(Instant),
}

struct Flight {
    deadline: Instant,
    tries: u32,
}

struct Download {
    rec: Record,
    phase: Phase,
    /// Missing chunks not asked for yet (planned from the store).
    queue: VecDeque<ChunkId>,
    in_flight: HashMap<ChunkId, Flight>,
    /// The missing chunks have been planned in this phase.
    planned: bool,
    chunks: u32,
    have: u32,
    had: Option<u32>,
    fetched: u32,
    /// Chunks received and hashed in this run.
    verified: BTreeSet<ChunkId>,
    note: String,
    last_progress: Option<Instant>,
}

struct Upload {
    app: u16,
    size: u64,
    chunks: u32,
    served: u32,
}

/// The transfers of a node.
pub struct Transfers {
    storage: Arc<RedbStorage>,
    settings: TransferSettings,
    apps: Arc<Apps>,
    offers: BTreeMap<ContainerId, Offer>,
    downloads: BTreeMap<ContainerId, Download>,
    uploads: BTreeMap<(ContainerId, NodeId), Upload>,
    /// Chunk sets of shared containers, for serving.
    serving: HashMap<ContainerId, BTreeSet<ChunkId>>,
    /// Chunks received and checked, stored at the next [`Transfers::commit`].
    received: Vec<(ContainerId, ChunkId, Vec<u8>)>,
    listeners: Listeners,
    /// The rate cap: requests are paced to this instant.
    paced: Instant,
}

fn hex(id: &impl std::fmt::Display) -> String {
    id.to_string()
}

fn share_key(peer: &NodeId, container: &ContainerId) -> Key {
    let mut e = Vec::with_capacity(65);
    e.extend_from_slice(peer.as_bytes());
    e.extend_from_slice(container.as_bytes());
    sha256::Hash::hash(&e).to_byte_array()
}

/// Counts a refused peer message; logs it unless that peer has filled its share of lines.
fn refuse(peer: &NodeId, what: &str) {
    if STORM_REFUSED.allow(&hex(peer)) {
        tracing::warn!(peer = %hex(peer), "storm: {what}");
    }
}

impl Transfers {
    /// The transfers kept in `storage` (downloads resume once the LNP node is reachable).
    pub fn load(
        storage: Arc<RedbStorage>,
        settings: TransferSettings,
        apps: Arc<Apps>,
    ) -> Result<Transfers, String> {
        let mut t = Transfers {
            storage,
            settings,
            apps,
            offers: BTreeMap::new(),
            downloads: BTreeMap::new(),
            uploads: BTreeMap::new(),
            serving: HashMap::new(),
            received: Vec::new(),
            listeners: Listeners::new("transfer", ServiceId::Stormd),
            paced: Instant::now(),
        };
        let mut after = None;
        loop {
            let (ids, more) = t
                .storage
                .list_ids(DOWNLOADS, after, 1024)
                .map_err(|e| format!("cannot read the downloads: {e}"))?;
            for id in &ids {
                let Ok(Some(v)) = t.storage.get(DOWNLOADS, id) else {
                    continue;
                };
                match strict::deserialize::<Record>(&v) {
                    Ok(rec) => {
                        tracing::info!(container = %ContainerId(*id), "download resumes");
                        t.downloads.insert(ContainerId(*id), Download::new(rec));
                    }
                    Err(e) => {
                        tracing::warn!(container = %ContainerId(*id), "a damaged download record: {e}")
                    }
                }
            }
            if !more || ids.is_empty() {
                break;
            }
            after = ids.last().copied();
        }
        Ok(t)
    }

    // ---- requests ----

    /// `send_container`: shares `container` with `peer` and returns the announcement.
    pub fn share(
        &mut self,
        peer: NodeId,
        container: ContainerId,
        app: u16,
    ) -> Result<StormP2p, ApiError> {
        let c = load_container(&*self.storage, &container)?.ok_or_else(|| {
            ApiError::new(code::NOT_FOUND, format!("no container {}", hex(&container)))
        })?;
        let mut v = Vec::with_capacity(67);
        v.extend_from_slice(peer.as_bytes());
        v.extend_from_slice(container.as_bytes());
        v.extend_from_slice(&app.to_le_bytes());
        self.storage
            .put(SHARES, &share_key(&peer, &container), &v)
            .map_err(|e| ApiError::new(e.code(), e.to_string()))?;
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

    /// `accept_container`: the offer becomes a download.
    pub fn accept(&mut self, container: ContainerId) -> Result<String, ApiError> {
        if self.downloads.contains_key(&container) {
            return Ok("already downloading".into());
        }
        let Some(offer) = self.offers.remove(&container) else {
            return Err(ApiError::new(
                code::NOT_FOUND,
                format!("no offer of container {}", hex(&container)),
            ));
        };
        self.start(container, offer)
            .map(|()| "accepted: downloading".into())
    }

    fn start(&mut self, container: ContainerId, o: Offer) -> Result<(), ApiError> {
        let rec = Record {
            peer: o.peer,
            app: o.app,
            message_id: o.message_id,
            header: o.header,
            container: None,
        };
        self.save(&container, &rec)?;
        tracing::info!(container = %hex(&container), peer = %hex(&rec.peer), size = rec.header.size, "download starts");
        let d = Download::new(rec);
        self.downloads.insert(container, d);
        self.progress(&container, true);
        Ok(())
    }

    fn save(&self, container: &ContainerId, rec: &Record) -> Result<(), ApiError> {
        let bytes =
            strict::serialize(rec).map_err(|e| ApiError::new(code::INVALID_DATA, e.to_string()))?;
        self.storage
            .put(DOWNLOADS, container.as_bytes(), &bytes)
            .map_err(|e| ApiError::new(e.code(), format!("the download cannot be kept: {e}")))
    }

    /// Every offer, download and shared container.
    pub fn list(&self) -> Vec<TransferInfo> {
        let mut out: Vec<TransferInfo> = Vec::new();
        for (id, o) in &self.offers {
            out.push(o.info(id));
        }
        for (id, d) in &self.downloads {
            out.push(d.info(id));
        }
        for ((id, peer), u) in &self.uploads {
            out.push(TransferInfo {
                container_id: *id,
                peer: *peer,
                app: u.app,
                state: st::Shared,
                size: u.size,
                chunks: u.chunks,
                have: u.chunks,
                had: 0,
                fetched: 0,
                served: u.served,
                note: String::new(),
            });
        }
        out
    }

    /// `transfer_subscribe`: `id` on `bus` gets the events from now on. Returns what it is
    /// sent at once, after the reply: a `transfer_progress` for each transfer, and
    /// `container_received` if `container` is stored.
    pub fn subscribe(
        &mut self,
        bus: Bus,
        id: ServiceId,
        request_id: u64,
        container: Option<ContainerId>,
    ) -> Result<Vec<StormMsg>, String> {
        self.listeners.add(bus, id, request_id)?;
        let mut now: Vec<StormMsg> = self
            .list()
            .into_iter()
            .map(StormMsg::TransferProgress)
            .collect();
        if let Some(c) = container {
            if !self.downloads.contains_key(&c) {
                if let Ok(Some(found)) = load_container(&*self.storage, &c) {
                    let n = distinct(&found.chunks).len() as u32;
                    now.push(StormMsg::ContainerReceived(TransferInfo {
                        container_id: c,
                        peer: NodeId::default(),
                        app: 0,
                        state: st::Received,
                        size: found.header.size,
                        chunks: n,
                        have: n,
                        had: n,
                        fetched: 0,
                        served: 0,
                        note: "already stored".into(),
                    }));
                }
            }
        }
        Ok(now)
    }

    /// A listener is gone from its bus.
    pub fn forget(&mut self, id: &ServiceId) {
        self.listeners.forget(id);
    }

    fn progress(&mut self, id: &ContainerId, changed: bool) {
        let now = Instant::now();
        let Some(d) = self.downloads.get_mut(id) else {
            return;
        };
        if !changed && d.last_progress.is_some_and(|t| now < t + PROGRESS_EVERY) {
            return;
        }
        d.last_progress = Some(now);
        let info = d.info(id);
        self.listeners.send(StormMsg::TransferProgress(info));
    }

    // ---- peer messages ----

    /// A Storm message from `peer`.
    pub fn on_message(
        &mut self,
        peer: NodeId,
        msg: StormP2p,
        now: Instant,
        out: &mut Vec<Outgoing>,
    ) {
        match msg {
            StormP2p::AnnounceContainer(app, header, id) => self.on_announce(peer, app, header, id),
            StormP2p::PullContainer(app, id) => self.on_pull_container(peer, app, id, out),
            StormP2p::PullChunk {
                app,
                message_id,
                container_id,
                chunk_ids,
            } => self.on_pull_chunk(peer, app, message_id, container_id, &chunk_ids, out),
            StormP2p::PushContainer(_, c) => self.on_push_container(peer, c),
            StormP2p::PushChunk {
                container_id,
                chunk_id: id,
                data,
                ..
            } => self.on_chunk(peer, container_id, id, data, now),
            StormP2p::Reject(_, id) => self.on_reject(peer, id.container_id),
            other => {
                tracing::debug!(peer = %hex(&peer), ty = other.type_id(), "a Storm message not handled")
            }
        }
    }

    fn on_announce(&mut self, peer: NodeId, app: u16, header: ContainerHeader, id: FullId) {
        let c = id.container_id;
        if self.downloads.contains_key(&c) || self.offers.contains_key(&c) {
            return;
        }
        if matches!(self.storage.get(CONTAINERS, c.as_bytes()), Ok(Some(_))) {
            tracing::debug!(container = %hex(&c), "an announced container we have");
            return;
        }
        let max_size = (MAX_CONTAINER_CHUNKS * crate::wire::limits::MAX_CHUNK) as u64;
        if header.size > max_size {
            return refuse(
                &peer,
                &format!(
                    "an announced container of {} bytes (at most {max_size}) ignored",
                    header.size
                ),
            );
        }
        let offer = Offer {
            peer,
            app,
            message_id: id.message_id,
            header,
        };
        if self.settings.auto_accept.contains(&peer) {
            if let Err(ApiError { message: why, .. }) = self.start(c, offer) {
                tracing::warn!(container = %hex(&c), "cannot start a download: {why}");
            }
            return;
        }
        let (n, bytes) = self
            .offers
            .values()
            .filter(|o| o.peer == peer)
            .fold((0usize, 0u64), |(n, b), o| (n + 1, b + o.header.size));
        if n >= self.settings.max_offers_per_peer
            || bytes + offer.header.size > self.settings.max_offer_bytes_per_peer
            || self.offers.len() >= MAX_OFFERS
        {
            return refuse(&peer, &format!(
                "an offer dropped: the peer has {n} offers of {bytes} bytes waiting (at most {} and {})",
                self.settings.max_offers_per_peer, self.settings.max_offer_bytes_per_peer
            ));
        }
        tracing::info!(container = %hex(&c), peer = %hex(&peer), size = offer.header.size, "a container offered (accept it with `storm accept`)");
        let info = offer.info(&c);
        self.offers.insert(c, offer);
        self.listeners.send(StormMsg::TransferProgress(info));
    }

    /// Whether `c` was sent to `peer` (STORE table `shares`; remembered in `uploads`).
    fn shared(&mut self, peer: &NodeId, c: &ContainerId) -> bool {
        if self.uploads.contains_key(&(*c, *peer)) {
            return true;
        }
        let Ok(Some(v)) = self.storage.get(SHARES, &share_key(peer, c)) else {
            return false;
        };
        let Some(app) = v.get(65..67).map(|b| u16::from_le_bytes([b[0], b[1]])) else {
            return false;
        };
        let Ok(Some(found)) = load_container(&*self.storage, c) else {
            return false;
        };
        self.uploads.insert((*c, *peer), Upload::of(app, &found));
        true
    }

    fn on_pull_container(&mut self, peer: NodeId, app: u16, id: FullId, out: &mut Vec<Outgoing>) {
        let c = id.container_id;
        let found = if self.shared(&peer, &c) {
            load_container(&*self.storage, &c).ok().flatten()
        } else {
            None
        };
        let msg = match found {
            Some(container) => StormP2p::PushContainer(app, container),
            None => {
                refuse(
                    &peer,
                    &format!(
                        "a pull of container {} not shared with it: rejected",
                        hex(&c)
                    ),
                );
                StormP2p::Reject(app, id)
            }
        };
        out.push(Outgoing {
            peer,
            msg,
            download: None,
        });
    }

    fn on_pull_chunk(
        &mut self,
        peer: NodeId,
        app: u16,
        message_id: MessageId,
        c: ContainerId,
        ids: &[ChunkId],
        out: &mut Vec<Outgoing>,
    ) {
        if !self.shared(&peer, &c) {
            refuse(
                &peer,
                &format!(
                    "a pull of chunks of container {} not shared with it: rejected",
                    hex(&c)
                ),
            );
            out.push(Outgoing {
                peer,
                msg: StormP2p::Reject(
                    app,
                    FullId {
                        message_id,
                        container_id: c,
                    },
                ),
                download: None,
            });
            return;
        }
        if !self.serving.contains_key(&c) {
            let Ok(Some(found)) = load_container(&*self.storage, &c) else {
                return;
            };
            if self.serving.len() >= SERVE_CACHE {
                self.serving.clear();
            }
            self.serving
                .insert(c, found.chunks.iter().copied().collect());
        }
        let set = &self.serving[&c];
        if ids.len() > MAX_PULL_CHUNKS {
            refuse(
                &peer,
                &format!(
                    "a pull of {} chunks: only the first {MAX_PULL_CHUNKS} served",
                    ids.len()
                ),
            );
        }
        let mut served = 0;
        for id in ids.iter().take(MAX_PULL_CHUNKS) {
            if !set.contains(id) {
                refuse(
                    &peer,
                    &format!(
                        "a pull of chunk {} that is not in container {}",
                        hex(id),
                        hex(&c)
                    ),
                );
                continue;
            }
            let Ok(Some(data)) = self.storage.get(CHUNKS, id.as_bytes()) else {
                tracing::warn!(chunk = %hex(id), "a chunk of a shared container is missing from the store");
                continue;
            };
            served += 1;
            out.push(Outgoing {
                peer,
                msg: StormP2p::PushChunk {
                    app,
                    container_id: c,
                    chunk_id: *id,
                    data,
                },
                download: None,
            });
        }
        if let Some(u) = self.uploads.get_mut(&(c, peer)) {
            u.served += served;
        }
    }

    fn on_push_container(&mut self, peer: NodeId, c: Container) {
        let Ok(id) = c.id() else {
            return refuse(&peer, "a container that does not encode");
        };
        let Some(d) = self.downloads.get_mut(&id) else {
            return refuse(
                &peer,
                &format!("container {} that nobody asked for: dropped", hex(&id)),
            );
        };
        if d.rec.peer != peer || !matches!(d.phase, Phase::Header(_)) {
            return refuse(
                &peer,
                &format!(
                    "container {} from a peer it was not asked of: dropped",
                    hex(&id)
                ),
            );
        }
        if c.header != d.rec.header {
            let why = "the container's header is not the one announced".to_string();
            return self.fail(&id, why);
        }
        // Each chunk holds 1 to MAX_CHUNK bytes: a list that cannot add up to the header's
        // size is refused now, not after fetching it.
        let n = c.chunks.len() as u64;
        if c.header.size < n || c.header.size > n * crate::wire::limits::MAX_CHUNK as u64 {
            let why = format!(
                "{n} chunks cannot hold the {} bytes of the header",
                c.header.size
            );
            return self.fail(&id, why);
        }
        d.rec.container = Some(c);
        d.phase = Phase::Chunks;
        d.planned = false;
        let rec = &self.downloads[&id].rec;
        if let Err(ApiError { message: why, .. }) = self.save(&id, rec) {
            tracing::warn!("{why}");
        }
        self.progress(&id, true);
    }

    fn on_chunk(&mut self, peer: NodeId, c: ContainerId, id: ChunkId, data: Vec<u8>, now: Instant) {
        let Some(d) = self.downloads.get_mut(&c) else {
            return refuse(
                &peer,
                &format!(
                    "a chunk of container {} that we do not download: dropped",
                    hex(&c)
                ),
            );
        };
        if d.rec.peer != peer || !d.in_flight.contains_key(&id) {
            return refuse(
                &peer,
                &format!(
                    "chunk {} that was not asked of this peer: dropped",
                    hex(&id)
                ),
            );
        }
        if chunk_id(&data) != id {
            refuse(
                &peer,
                &format!(
                    "chunk {} whose data does not hash to its id: dropped, asked again",
                    hex(&id)
                ),
            );
            // Counts as a try; asked again at once.
            if let Some(f) = d.in_flight.get_mut(&id) {
                f.deadline = now;
            }
            return;
        }
        d.in_flight.remove(&id);
        self.received.push((c, id, data));
    }

    fn on_reject(&mut self, peer: NodeId, c: ContainerId) {
        match self.downloads.get(&c) {
            Some(d) if d.rec.peer == peer => {
                self.fail(&c, "the peer refused to give it (Reject)".into())
            }
            _ => tracing::debug!(peer = %hex(&peer), "a Reject for nothing we asked"),
        }
    }

    /// Gives a download up: its record goes, subscribers are told.
    fn fail(&mut self, c: &ContainerId, why: String) {
        tracing::warn!(container = %hex(c), "download failed: {why}");
        if let Some(mut d) = self.downloads.remove(c) {
            let _ = self.storage.delete(DOWNLOADS, c.as_bytes());
            d.note = why;
            let mut info = d.info(c);
            info.state = st::Failed;
            self.listeners.send(StormMsg::TransferProgress(info));
        }
    }

    /// A request for download `c` could not be sent: it waits and starts over.
    pub fn send_failed(&mut self, c: &ContainerId, why: &str, now: Instant) {
        if let Some(d) = self.downloads.get_mut(c) {
            if !matches!(d.phase, Phase::Waiting(_)) {
                d.wait(
                    now + PEER_WAIT,
                    format!("the peer cannot be reached: {why}"),
                );
                self.progress(c, true);
            }
        }
    }

    /// The LNP node is gone: every download waits.
    pub fn link_down(&mut self, now: Instant) {
        let ids: Vec<ContainerId> = self.downloads.keys().copied().collect();
        for c in ids {
            self.send_failed(&c, "the LNP node is not reachable", now);
        }
    }

    /// Stores the chunks received since the last call (one durable commit), then counts them
    /// and finishes the downloads that are complete.
    pub fn commit(&mut self) {
        if self.received.is_empty() {
            return;
        }
        let mut got = Vec::with_capacity(self.received.len());
        let writes: Vec<Write> = std::mem::take(&mut self.received)
            .into_iter()
            .map(|(c, id, data)| {
                got.push((c, id));
                Write::Put {
                    table: CHUNKS.into(),
                    key: id.0,
                    value: data,
                }
            })
            .collect();
        if let Err(e) = self.storage.apply(&mut writes.iter()) {
            // Not stored: they are missing and planned again after the wait.
            tracing::error!("{} chunks not stored: {e}", got.len());
            let now = Instant::now();
            let ids: BTreeSet<ContainerId> = got.iter().map(|(c, _)| *c).collect();
            for c in ids {
                if let Some(d) = self.downloads.get_mut(&c) {
                    d.wait(now + STALL_WAIT, format!("the store failed: {e}"));
                }
            }
            return;
        }
        let mut touched = BTreeSet::new();
        for (c, id) in &got {
            if let Some(d) = self.downloads.get_mut(c) {
                d.have += 1;
                d.fetched += 1;
                d.verified.insert(*id);
                touched.insert(*c);
            }
        }
        for c in touched {
            self.progress(&c, false);
            self.maybe_complete(&c);
        }
    }

    fn maybe_complete(&mut self, c: &ContainerId) {
        let Some(d) = self.downloads.get(c) else {
            return;
        };
        if !(d.phase == Phase::Chunks && d.planned && d.queue.is_empty() && d.in_flight.is_empty())
        {
            return;
        }
        let Some(container) = d.rec.container.clone() else {
            return;
        };
        // The chunks received in this run were hashed on arrival; the others are hashed now.
        if let Err(ApiError { message: why, .. }) =
            check_chunks(&self.storage, &container, code::INVALID_DATA, &d.verified)
        {
            return self.fail(
                c,
                format!("the received container does not check out: {why}"),
            );
        }
        let bytes = match strict::serialize(&container) {
            Ok(b) => b,
            Err(e) => return self.fail(c, e.to_string()),
        };
        if let Err(e) = self.storage.put(CONTAINERS, c.as_bytes(), &bytes) {
            if let Some(d) = self.downloads.get_mut(c) {
                d.wait(
                    Instant::now() + STALL_WAIT,
                    format!("the store failed: {e}"),
                );
            }
            return;
        }
        let _ = self.storage.delete(DOWNLOADS, c.as_bytes());
        let Some(d) = self.downloads.remove(c) else {
            return;
        };
        let mut info = d.info(c);
        info.state = st::Received;
        tracing::info!(container = %hex(c), peer = %hex(&d.rec.peer), chunks = info.chunks, fetched = info.fetched, had = info.had, "container received");
        self.listeners
            .send(StormMsg::ContainerReceived(info.clone()));
        self.apps
            .deliver(d.rec.app, StormMsg::ContainerReceived(info));
    }

    /// Timers and requests: what is due is asked for (when the LNP node is `reachable`).
    pub fn tick(&mut self, now: Instant, reachable: bool, out: &mut Vec<Outgoing>) {
        if !reachable {
            return;
        }
        let ids: Vec<ContainerId> = self.downloads.keys().copied().collect();
        for c in ids {
            self.tick_one(&c, now, out);
        }
    }

    fn tick_one(&mut self, c: &ContainerId, now: Instant, out: &mut Vec<Outgoing>) {
        let settings = self.settings.clone();
        let Some(d) = self.downloads.get_mut(c) else {
            return;
        };
        if let Phase::Waiting(at) = d.phase {
            if now < at {
                return;
            }
            d.note.clear();
            d.phase = if d.rec.container.is_some() {
                Phase::Chunks
            } else {
                Phase::Header(None)
            };
            d.planned = false;
            self.progress(c, true);
        }
        let Some(d) = self.downloads.get_mut(c) else {
            return;
        };
        let full = FullId {
            message_id: d.rec.message_id,
            container_id: *c,
        };
        match d.phase {
            Phase::Waiting(_) => {}
            Phase::Header(asked) => {
                let due = match asked {
                    None => Some(1),
                    Some((at, tries)) if now >= at => Some(tries + 1),
                    Some(_) => None,
                };
                if let Some(tries) = due {
                    if tries > settings.chunk_retries + 1 {
                        d.wait(
                            now + STALL_WAIT,
                            "the peer did not send the container's chunk list".into(),
                        );
                        self.progress(c, true);
                        return;
                    }
                    d.phase = Phase::Header(Some((now + settings.chunk_timeout, tries)));
                    out.push(Outgoing {
                        peer: d.rec.peer,
                        msg: StormP2p::PullContainer(d.rec.app, full),
                        download: Some(*c),
                    });
                }
            }
            Phase::Chunks => {
                if !d.planned {
                    if let Err(why) = d.plan(&self.storage) {
                        d.wait(now + STALL_WAIT, why);
                        self.progress(c, true);
                        return;
                    }
                    self.progress(c, true);
                    self.maybe_complete(c);
                }
                let Some(d) = self.downloads.get_mut(c) else {
                    return;
                };
                let mut ask = Vec::new();
                let mut stalled = None;
                for (id, f) in d.in_flight.iter_mut() {
                    if now >= f.deadline {
                        if f.tries > settings.chunk_retries {
                            stalled = Some(*id);
                            break;
                        }
                        f.tries += 1;
                        f.deadline = now + settings.chunk_timeout;
                        ask.push(*id);
                    }
                }
                if let Some(id) = stalled {
                    let tries = settings.chunk_retries + 1;
                    d.wait(
                        now + STALL_WAIT,
                        format!(
                            "the peer did not send chunk {} after {tries} requests",
                            hex(&id)
                        ),
                    );
                    self.progress(c, true);
                    return;
                }
                while d.in_flight.len() < settings.window {
                    if settings.max_rate > 0 {
                        if self.paced < now {
                            self.paced = now;
                        }
                        if self.paced > now + Duration::from_millis(250) {
                            break;
                        }
                    }
                    let Some(id) = d.queue.pop_front() else {
                        break;
                    };
                    if settings.max_rate > 0 {
                        let chunk = crate::wire::limits::CONTAINER_CHUNK as f64;
                        self.paced += Duration::from_secs_f64(chunk / settings.max_rate as f64);
                    }
                    d.in_flight.insert(
                        id,
                        Flight {
                            deadline: now + settings.chunk_timeout,
                            tries: 1,
                        },
                    );
                    ask.push(id);
                }
                for part in ask.chunks(MAX_PULL_CHUNKS) {
                    out.push(Outgoing {
                        peer: d.rec.peer,
                        msg: StormP2p::PullChunk {
                            app: d.rec.app,
                            message_id: d.rec.message_id,
                            container_id: *c,
                            chunk_ids: part.to_vec(),
                        },
                        download: Some(*c),
                    });
                }
            }
        }
    }
}

impl Upload {
    fn of(app: u16, c: &Container) -> Upload {
        Upload {
            app,
            size: c.header.size,
            chunks: distinct(&c.chunks).len() as u32,
            served: 0,
        }
    }
}

impl Offer {
    fn info(&self, id: &ContainerId) -> TransferInfo {
        TransferInfo {
            container_id: *id,
            peer: self.peer,
            app: self.app,
            state: st::Offered,
            size: self.header.size,
            chunks: 0,
            have: 0,
            had: 0,
            fetched: 0,
            served: 0,
            note: String::new(),
        }
    }
}

impl Download {
    fn new(rec: Record) -> Download {
        let phase = if rec.container.is_some() {
            Phase::Chunks
        } else {
            Phase::Header(None)
        };
        let chunks = rec
            .container
            .as_ref()
            .map_or(0, |c| distinct(&c.chunks).len() as u32);
        Download {
            rec,
            phase,
            queue: VecDeque::new(),
            in_flight: HashMap::new(),
            planned: false,
            chunks,
            have: 0,
            had: None,
            fetched: 0,
            verified: BTreeSet::new(),
            note: String::new(),
            last_progress: None,
        }
    }

    fn wait(&mut self, until: Instant, why: String) {
        tracing::info!("download waits: {why}");
        self.phase = Phase::Waiting(until);
        self.note = why;
        self.in_flight.clear();
        self.queue.clear();
        self.planned = false;
    }

    /// Asks the store which chunks are missing; they are the queue.
    fn plan(&mut self, storage: &RedbStorage) -> Result<(), String> {
        let Some(c) = &self.rec.container else {
            return Err("no chunk list yet".into());
        };
        let ids = distinct(&c.chunks);
        let missing = storage
            .check_unknown(CHUNKS, &ids.iter().map(|c| c.0).collect::<Vec<_>>())
            .map_err(|e| format!("the store cannot say which chunks are missing: {e}"))?;
        let missing = distinct(&missing.into_iter().map(ChunkId).collect::<Vec<_>>());
        self.chunks = ids.len() as u32;
        self.have = self.chunks - missing.len() as u32;
        if self.had.is_none() {
            self.had = Some(self.have);
        }
        self.queue = missing.into_iter().collect();
        self.in_flight.clear();
        self.planned = true;
        Ok(())
    }

    fn info(&self, id: &ContainerId) -> TransferInfo {
        TransferInfo {
            container_id: *id,
            peer: self.rec.peer,
            app: self.rec.app,
            state: match self.phase {
                Phase::Header(_) => st::Header,
                Phase::Chunks => st::Chunks,
                Phase::Waiting(_) => st::Waiting,
            },
            size: self.rec.header.size,
            chunks: self.chunks,
            have: self.have,
            had: self.had.unwrap_or(0),
            fetched: self.fetched,
            served: 0,
            note: self.note.clone(),
        }
    }
}

/// The distinct ids of `ids`, in order of first appearance.
fn distinct(ids: &[ChunkId]) -> Vec<ChunkId> {
    let mut seen = BTreeSet::new();
    ids.iter().filter(|id| seen.insert(**id)).copied().collect()
}
