//! Container transfers between Storm nodes (Storm app messages over Bifrost, docs/API.md
//! "Container transfers"): what we share, what we are offered, what we download.
//!
//! [`Transfers`] is owned by the LNP link thread (`super::link`), which feeds it the peers'
//! messages, the requests of `stormd` and the time, and sends what it returns ([`Effects`]): the
//! Storm messages for peers, the notifications for the `transfer_subscribe` listeners and for
//! the STORM-bus apps. It does no I/O but the store, and it is the only place that writes the
//! store's transfer tables; nothing else holds it, so no request waits behind its commits.
//!
//! - [`serve`]: what we share (table `shares`), and serving pulls of it.
//! - [`offers`]: what peers offered us, bounded per peer and in all.
//! - [`download`]: one download, a sans-I/O state machine; this file runs its store work
//!   (which chunks are missing, committing the chunks received, keeping the container).
//! - [`record`]: the STORE records (`downloads`, `shares`) and their codecs.
//!
//! What must survive a restart is in STORE tables: `shares`, `downloads` (the announced header
//! and, once known, the chunk list); offers live in memory. The chunks received in a burst are
//! committed in one durable transaction; the end (the container kept, the record gone) is one
//! more.

pub mod download;
pub mod offers;
pub mod record;
pub mod serve;

use crate::actors::storm::containers;
use crate::lograte::STORM_REFUSED;
use crate::storage::{Storage, StoreError, Write};
use crate::wire::api::storm::tables::{CHUNKS, CONTAINERS, DOWNLOADS};
use crate::wire::api::storm::{StormMsg, TransferInfo, TransferState};
use crate::wire::api::{code, ApiError};
use crate::wire::limits::{MAX_CHUNK, MAX_CONTAINER_CHUNKS};
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::{ChunkId, Container, ContainerHeader, ContainerId};
use crate::wire::storm::p2p::{FullId, StormP2p};
use crate::wire::strict;
use download::{Download, Need, Pacer, Verdict, STALL_WAIT};
use offers::{Caps, Offer, Offers};
use record::Record;
use serve::Serving;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// The download it serves (a failed send makes it wait), or `None` for what we serve.
    pub download: Option<ContainerId>,
}

/// What the caller sends after a call, in order.
#[derive(Debug, Default)]
pub struct Effects {
    /// Storm messages for peers.
    pub send: Vec<Outgoing>,
    /// Notifications for the `transfer_subscribe` listeners.
    pub notify: Vec<StormMsg>,
    /// Notifications for the STORM-bus app of that id.
    pub deliver: Vec<(u16, StormMsg)>,
}

impl Effects {
    fn send(&mut self, peer: NodeId, msg: StormP2p, download: Option<ContainerId>) {
        self.send.push(Outgoing {
            peer,
            msg,
            download,
        });
    }
}

/// Counts a refused peer message; logs it unless that peer has filled its share of lines.
pub(in crate::actors::storm) fn refuse(peer: &NodeId, what: &str) {
    if STORM_REFUSED.allow(&peer.to_string()) {
        tracing::warn!(%peer, "storm: {what}");
    }
}

/// The distinct ids of `ids`, in order of first appearance.
fn distinct(ids: &[ChunkId]) -> Vec<ChunkId> {
    let mut seen = BTreeSet::new();
    ids.iter().filter(|id| seen.insert(**id)).copied().collect()
}

/// The transfers of a node.
pub struct Transfers {
    storage: Arc<dyn Storage>,
    settings: TransferSettings,
    offers: Offers,
    downloads: BTreeMap<ContainerId, Download>,
    serving: Serving,
    /// Chunks received and checked, stored at the next [`Transfers::commit`].
    received: Vec<(ContainerId, ChunkId, Vec<u8>)>,
    pacer: Pacer,
}

impl Transfers {
    /// The transfers kept in `storage` (downloads resume once the LNP node is reachable).
    pub fn load(
        storage: Arc<dyn Storage>,
        settings: TransferSettings,
        now: Instant,
    ) -> Result<Transfers, String> {
        let mut downloads = BTreeMap::new();
        let mut after = None;
        loop {
            let (ids, more) = storage
                .list_ids(DOWNLOADS, after, 1024)
                .map_err(|e| format!("cannot read the downloads: {e}"))?;
            for key in &ids {
                let id = ContainerId(*key);
                let Ok(Some(v)) = storage.get(DOWNLOADS, key) else {
                    continue;
                };
                match strict::deserialize::<Record>(&v) {
                    Ok(rec) => {
                        tracing::info!(container = %id, "download resumes");
                        downloads.insert(id, Download::new(rec));
                    }
                    Err(e) => tracing::warn!(container = %id, "a damaged download record: {e}"),
                }
            }
            if !more || ids.is_empty() {
                break;
            }
            after = ids.last().copied();
        }
        Ok(Transfers {
            storage,
            settings,
            offers: Offers::default(),
            downloads,
            serving: Serving::default(),
            received: Vec::new(),
            pacer: Pacer::new(now),
        })
    }

    // ---- requests ----

    /// `send_container`: shares `container` with `peer` (committed) and gives the announcement.
    pub fn share(
        &mut self,
        peer: NodeId,
        container: ContainerId,
        app: u16,
    ) -> Result<StormP2p, ApiError> {
        self.serving.share(&*self.storage, peer, container, app)
    }

    /// `accept_container`: the offer becomes a download.
    pub fn accept(
        &mut self,
        container: ContainerId,
        now: Instant,
        fx: &mut Effects,
    ) -> Result<String, ApiError> {
        if self.downloads.contains_key(&container) {
            return Ok("already downloading".into());
        }
        let Some(offer) = self.offers.take(&container) else {
            return Err(ApiError::new(
                code::NOT_FOUND,
                format!("no offer of container {container}"),
            ));
        };
        self.start(container, offer, now, fx)
            .map(|()| "accepted: downloading".into())
    }

    fn start(
        &mut self,
        id: ContainerId,
        o: Offer,
        now: Instant,
        fx: &mut Effects,
    ) -> Result<(), ApiError> {
        let rec = Record {
            peer: o.peer,
            app: o.app,
            message_id: o.message_id,
            header: o.header,
            container: None,
        };
        self.save(&id, &rec)?;
        tracing::info!(container = %id, peer = %rec.peer, size = rec.header.size, "download starts");
        let mut d = Download::new(rec);
        d.progress(&id, true, now, fx);
        self.downloads.insert(id, d);
        Ok(())
    }

    fn save(&self, id: &ContainerId, rec: &Record) -> Result<(), ApiError> {
        let bytes =
            strict::serialize(rec).map_err(|e| ApiError::new(code::INVALID_DATA, e.to_string()))?;
        self.storage
            .put(DOWNLOADS, id.as_bytes(), &bytes)
            .map_err(|e| ApiError::new(e.code(), format!("the download cannot be kept: {e}")))
    }

    /// Every offer, download and shared container.
    pub fn list(&self) -> Vec<TransferInfo> {
        self.offers
            .list()
            .chain(self.downloads.iter().map(|(id, d)| d.info(id)))
            .chain(self.serving.list())
            .collect()
    }

    /// `container_received` for `container` if it is stored and not being downloaded (a
    /// subscriber that asks after the end).
    pub fn already_received(&self, container: &ContainerId) -> Option<TransferInfo> {
        if self.downloads.contains_key(container) {
            return None;
        }
        let found = containers::load(&*self.storage, container).ok()??;
        let n = distinct(&found.chunks).len() as u32;
        Some(TransferInfo {
            container_id: *container,
            peer: NodeId::default(),
            app: 0,
            state: TransferState::Received,
            size: found.header.size,
            chunks: n,
            have: n,
            had: n,
            fetched: 0,
            served: 0,
            note: "already stored".into(),
        })
    }

    // ---- peer messages ----

    /// A Storm message from `peer`.
    pub fn on_message(&mut self, peer: NodeId, msg: StormP2p, now: Instant, fx: &mut Effects) {
        match msg {
            StormP2p::AnnounceContainer(app, header, id) => {
                self.on_announce(peer, app, header, id, now, fx)
            }
            StormP2p::PullContainer(app, id) => {
                let reply = self.serving.pull_container(&*self.storage, peer, app, id);
                fx.send(peer, reply, None);
            }
            StormP2p::PullChunk {
                app,
                message_id,
                container_id,
                chunk_ids,
            } => {
                let s = &*self.storage;
                for m in
                    self.serving
                        .pull_chunks(s, peer, app, message_id, container_id, &chunk_ids)
                {
                    fx.send(peer, m, None);
                }
            }
            StormP2p::PushContainer(_, c) => self.on_push_container(peer, c, now, fx),
            StormP2p::PushChunk {
                container_id,
                chunk_id,
                data,
                ..
            } => self.on_chunk(peer, container_id, chunk_id, data, now),
            StormP2p::Reject(_, id) => match self.downloads.get(&id.container_id) {
                Some(d) if *d.peer() == peer => self.fail(
                    &id.container_id,
                    "the peer refused to give it (Reject)".into(),
                    fx,
                ),
                _ => tracing::debug!(%peer, "a Reject for nothing we asked"),
            },
            other => tracing::debug!(%peer, ty = other.type_id(), "a Storm message not handled"),
        }
    }

    fn on_announce(
        &mut self,
        peer: NodeId,
        app: u16,
        header: ContainerHeader,
        id: FullId,
        now: Instant,
        fx: &mut Effects,
    ) {
        let c = id.container_id;
        if self.downloads.contains_key(&c) || self.offers.contains(&c) {
            return;
        }
        if matches!(self.storage.get(CONTAINERS, c.as_bytes()), Ok(Some(_))) {
            tracing::debug!(container = %c, "an announced container we have");
            return;
        }
        let max_size = (MAX_CONTAINER_CHUNKS * MAX_CHUNK) as u64;
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
            if let Err(e) = self.start(c, offer, now, fx) {
                tracing::warn!(container = %c, "cannot start a download: {}", e.message);
            }
            return;
        }
        let info = offer.info(&c);
        let caps = Caps {
            per_peer: self.settings.max_offers_per_peer,
            bytes_per_peer: self.settings.max_offer_bytes_per_peer,
        };
        match self.offers.keep(c, offer, caps) {
            Err(why) => refuse(&peer, &why),
            Ok(()) => {
                tracing::info!(container = %c, %peer, size = info.size, "a container offered (accept it with `storm accept`)");
                fx.notify.push(StormMsg::TransferProgress(info));
            }
        }
    }

    fn on_push_container(&mut self, peer: NodeId, c: Container, now: Instant, fx: &mut Effects) {
        let Ok(id) = c.id() else {
            return refuse(&peer, "a container that does not encode");
        };
        let Some(d) = self.downloads.get_mut(&id) else {
            return refuse(
                &peer,
                &format!("container {id} that nobody asked for: dropped"),
            );
        };
        match d.on_container(&id, &peer, c, now, fx) {
            Verdict::Refused(why) => refuse(&peer, &why),
            Verdict::Failed(why) => self.fail(&id, why, fx),
            Verdict::Taken => {
                let rec = d.record();
                if let Err(e) = self.save(&id, &rec) {
                    tracing::warn!("{}", e.message);
                }
            }
        }
    }

    fn on_chunk(&mut self, peer: NodeId, c: ContainerId, id: ChunkId, data: Vec<u8>, now: Instant) {
        let Some(d) = self.downloads.get_mut(&c) else {
            return refuse(
                &peer,
                &format!("a chunk of container {c} that we do not download: dropped"),
            );
        };
        match d.on_chunk(&peer, &id, &data, now) {
            Verdict::Taken => self.received.push((c, id, data)),
            Verdict::Refused(why) | Verdict::Failed(why) => refuse(&peer, &why),
        }
    }

    /// Gives a download up: its record goes, listeners are told.
    fn fail(&mut self, c: &ContainerId, why: String, fx: &mut Effects) {
        tracing::warn!(container = %c, "download failed: {why}");
        if let Some(d) = self.downloads.remove(c) {
            let _ = self.storage.delete(DOWNLOADS, c.as_bytes());
            let info = d.end_info(c, TransferState::Failed, why);
            fx.notify.push(StormMsg::TransferProgress(info));
        }
    }

    // ---- the link ----

    /// A request for download `c` could not be sent: it waits and starts over.
    pub fn send_failed(&mut self, c: &ContainerId, why: &str, now: Instant, fx: &mut Effects) {
        if let Some(d) = self.downloads.get_mut(c) {
            d.send_failed(c, why, now, fx);
        }
    }

    /// The LNP node is gone: every download waits.
    pub fn link_down(&mut self, now: Instant, fx: &mut Effects) {
        for (id, d) in self.downloads.iter_mut() {
            d.send_failed(id, "the LNP node is not reachable", now, fx);
        }
    }

    /// Stores the chunks received since the last call (one durable commit), then counts them
    /// and finishes the downloads that are complete.
    pub fn commit(&mut self, now: Instant, fx: &mut Effects) {
        if self.received.is_empty() {
            return;
        }
        let mut got: BTreeMap<ContainerId, Vec<ChunkId>> = BTreeMap::new();
        let writes: Vec<Write> = std::mem::take(&mut self.received)
            .into_iter()
            .map(|(c, id, data)| {
                got.entry(c).or_default().push(id);
                Write::Put {
                    table: CHUNKS.into(),
                    key: id.0,
                    value: data,
                }
            })
            .collect();
        if let Err(e) = self.storage.apply(&mut writes.iter()) {
            // Not stored: they are missing and planned again after the wait.
            tracing::error!("{} chunks not stored: {e}", writes.len());
            for c in got.keys() {
                self.store_failed(c, &e, now, fx);
            }
            return;
        }
        for (c, ids) in got {
            let need = match self.downloads.get_mut(&c) {
                Some(d) => d.stored(&c, &ids, now, fx),
                None => continue,
            };
            if need == Need::Complete {
                self.complete(&c, now, fx);
            }
        }
    }

    /// A commit for download `c` failed: it waits [`STALL_WAIT`], then plans again (what was
    /// not stored is missing).
    fn store_failed(&mut self, c: &ContainerId, e: &StoreError, now: Instant, fx: &mut Effects) {
        if let Some(d) = self.downloads.get_mut(c) {
            let why = format!("the store failed: {e}");
            d.wait(c, now + STALL_WAIT, why, now, fx);
        }
    }

    /// Every chunk of `c` is stored: the container is checked and kept, the record goes (one
    /// commit), and `container_received` goes to the listeners and to the app.
    fn complete(&mut self, c: &ContainerId, now: Instant, fx: &mut Effects) {
        let Some(fetch) = self.downloads.get(c).and_then(|d| d.fetch()) else {
            return;
        };
        // The chunks received in this run were hashed on arrival; the others are hashed now.
        let checked = containers::check_chunks(
            &*self.storage,
            &fetch.container,
            code::INVALID_DATA,
            &fetch.verified,
        );
        if let Err(e) = checked {
            let why = format!("the received container does not check out: {}", e.message);
            return self.fail(c, why, fx);
        }
        let bytes = match strict::serialize(&fetch.container) {
            Ok(b) => b,
            Err(e) => return self.fail(c, e.to_string(), fx),
        };
        let writes = [
            Write::Put {
                table: CONTAINERS.into(),
                key: c.0,
                value: bytes,
            },
            Write::Delete {
                table: DOWNLOADS.into(),
                key: c.0,
            },
        ];
        if let Err(e) = self.storage.apply(&mut writes.iter()) {
            return self.store_failed(c, &e, now, fx);
        }
        let Some(d) = self.downloads.remove(c) else {
            return;
        };
        let info = d.end_info(c, TransferState::Received, String::new());
        tracing::info!(container = %c, peer = %d.peer(), chunks = info.chunks, fetched = info.fetched, had = info.had, "container received");
        fx.notify.push(StormMsg::ContainerReceived(info.clone()));
        fx.deliver
            .push((d.app(), StormMsg::ContainerReceived(info)));
    }

    /// Timers and requests: what is due is asked for (when the LNP node is `reachable`).
    pub fn tick(&mut self, now: Instant, reachable: bool, fx: &mut Effects) {
        if !reachable {
            return;
        }
        let ids: Vec<ContainerId> = self.downloads.keys().copied().collect();
        for id in ids {
            self.tick_one(&id, now, fx);
        }
    }

    fn tick_one(&mut self, id: &ContainerId, now: Instant, fx: &mut Effects) {
        let Some(d) = self.downloads.get_mut(id) else {
            return;
        };
        let mut need = d.tick(id, now, &self.settings, &mut self.pacer, fx);
        if let Need::Plan(ids) = need {
            let keys: Vec<_> = ids.iter().map(|c| c.0).collect();
            let missing = self
                .storage
                .check_unknown(CHUNKS, &keys)
                .map(|m| m.into_iter().map(ChunkId).collect())
                .map_err(|e| format!("the store cannot say which chunks are missing: {e}"));
            need = d.planned(id, missing, now, &self.settings, &mut self.pacer, fx);
        }
        if need == Need::Complete {
            self.complete(id, now, fx);
        }
    }
}
