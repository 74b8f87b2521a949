//! One download as a sans-I/O state machine. Time comes in as an argument; what to send to the
//! peer and what to tell the listeners goes into [`Effects`]; what needs the store comes back
//! as a [`Need`] (which chunks are missing, the container to check and keep), and the caller
//! answers it. Nothing here reads the clock, a socket or the store.
//!
//! The phases hold their own data: the chunk list (with the chunks this run hashed on arrival)
//! exists from the peer's `PushContainer` on, and only `Chunks` has chunks queued and in
//! flight.
//!
//! - `Header`: `PullContainer`, asked again after `chunk_timeout`, up to `chunk_retries` more
//!   times; then the download waits [`STALL_WAIT`].
//! - `Plan`: the store is to say which chunks are missing ([`Need::Plan`], [`Download::planned`]).
//!   A chunk stored is never asked for, whatever happened before (a restart plans again).
//! - `Chunks`: at most `window` chunks in flight (and at most `max_download_rate` bytes per
//!   second, all downloads together: [`Pacer`]). A chunk not received within `chunk_timeout` is
//!   asked again, up to `chunk_retries` times; then the download waits [`STALL_WAIT`] and plans
//!   again. A chunk must come from the peer it was asked of and hash to its id.
//! - `Waiting`: until its time, then back to `Header` or `Plan`. A request that could not be
//!   sent (the peer is not connected) makes it wait [`PEER_WAIT`].

use super::record::Record;
use super::{distinct, Effects, TransferSettings};
use crate::actors::storm::transfer::serve::MAX_PULL_CHUNKS;
use crate::wire::api::storm::{StormMsg, TransferInfo, TransferState};
use crate::wire::limits::{CONTAINER_CHUNK, MAX_CHUNK};
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::{chunk_id, ChunkId, Container, ContainerHeader, ContainerId};
use crate::wire::storm::p2p::{FullId, MessageId, StormP2p};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// A stalled download (chunks not sent after every retry) starts over after this.
pub const STALL_WAIT: Duration = Duration::from_secs(5);
/// A download whose request could not be sent (the peer is not connected) retries after this.
pub const PEER_WAIT: Duration = Duration::from_secs(2);
/// Progress notifications of one download, at most one per this (state changes always).
pub const PROGRESS_EVERY: Duration = Duration::from_millis(200);
/// The rate cap lets requests run this far ahead of their pace (a burst).
const PACE_AHEAD: Duration = Duration::from_millis(250);

/// The download rate cap, all downloads together: chunk requests are paced so that at most
/// `max_download_rate` bytes per second are asked for.
#[derive(Debug)]
pub struct Pacer {
    /// When the next request is due at the pace.
    next: Instant,
}

impl Pacer {
    /// A pacer with nothing asked yet.
    pub fn new(now: Instant) -> Pacer {
        Pacer { next: now }
    }

    /// Whether one more chunk may be asked for at `now` (`rate` 0: no cap).
    fn ready(&mut self, now: Instant, rate: u64) -> bool {
        if rate == 0 {
            return true;
        }
        self.next = self.next.max(now);
        self.next <= now + PACE_AHEAD
    }

    /// One chunk was asked for.
    fn spend(&mut self, rate: u64) {
        if rate > 0 {
            self.next += Duration::from_secs_f64(CONTAINER_CHUNK as f64 / rate as f64);
        }
    }
}

/// What the caller does next for a download.
#[derive(Debug, PartialEq, Eq)]
pub enum Need {
    /// Nothing.
    Nothing,
    /// Asks the store which of these chunks are missing and answers with
    /// [`Download::planned`].
    Plan(Vec<ChunkId>),
    /// Every chunk is stored: check the container ([`Download::fetch`]), keep it, and end the
    /// download.
    Complete,
}

/// What a message from the peer did.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Taken: a chunk to store with the next commit, or a chunk list to keep in the record.
    Taken,
    /// Dropped (and logged, rate-limited): the reason.
    Refused(String),
    /// The download cannot succeed: it ends, with the reason.
    Failed(String),
}

/// The chunk list, and the chunks this run hashed on arrival (not hashed again at the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch {
    /// The container the peer sent.
    pub container: Container,
    /// Chunks received and hashed in this run.
    pub verified: BTreeSet<ChunkId>,
}

/// A chunk asked for.
#[derive(Debug)]
struct Flight {
    deadline: Instant,
    tries: u32,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for `PushContainer`: asked (by when, and how many times), or not yet.
    Header { asked: Option<(Instant, u32)> },
    /// The chunk list is known; the store is to say what is missing.
    Plan(Fetch),
    /// Fetching the missing chunks.
    Chunks {
        fetch: Fetch,
        /// Missing chunks not asked for yet.
        queue: VecDeque<ChunkId>,
        /// Chunks asked for and not received.
        in_flight: BTreeMap<ChunkId, Flight>,
    },
    /// Starts over at `until`.
    Waiting {
        until: Instant,
        fetch: Option<Fetch>,
    },
}

/// The numbers `transfers` shows.
#[derive(Debug, Default)]
struct Counts {
    /// Distinct chunks (0 until planned).
    chunks: u32,
    /// Chunks stored.
    have: u32,
    /// Chunks stored when this run first planned.
    had: Option<u32>,
    /// Chunks received in this run.
    fetched: u32,
}

/// One download.
#[derive(Debug)]
pub struct Download {
    peer: NodeId,
    app: u16,
    message_id: MessageId,
    /// The header the peer announced.
    header: ContainerHeader,
    phase: Phase,
    counts: Counts,
    /// Why it waits (empty otherwise).
    note: String,
    /// When the last progress notification went out.
    last_progress: Option<Instant>,
}

impl Download {
    /// A download from its record: new (asks for the chunk list) or resumed (plans at once).
    pub fn new(rec: Record) -> Download {
        let phase = match rec.container {
            Some(container) => Phase::Plan(Fetch {
                container,
                verified: BTreeSet::new(),
            }),
            None => Phase::Header { asked: None },
        };
        let mut d = Download {
            peer: rec.peer,
            app: rec.app,
            message_id: rec.message_id,
            header: rec.header,
            phase,
            counts: Counts::default(),
            note: String::new(),
            last_progress: None,
        };
        if let Some(f) = d.fetch() {
            d.counts.chunks = distinct(&f.container.chunks).len() as u32;
        }
        d
    }

    /// What the store keeps of it.
    pub fn record(&self) -> Record {
        Record {
            peer: self.peer,
            app: self.app,
            message_id: self.message_id,
            header: self.header.clone(),
            container: self.fetch().map(|f| f.container.clone()),
        }
    }

    /// The peer it comes from.
    pub fn peer(&self) -> &NodeId {
        &self.peer
    }

    /// The app it is for.
    pub fn app(&self) -> u16 {
        self.app
    }

    /// The chunk list and the chunks hashed on arrival, once known.
    pub fn fetch(&self) -> Option<&Fetch> {
        match &self.phase {
            Phase::Header { .. } => None,
            Phase::Plan(f) | Phase::Chunks { fetch: f, .. } => Some(f),
            Phase::Waiting { fetch, .. } => fetch.as_ref(),
        }
    }

    fn fetch_mut(&mut self) -> Option<&mut Fetch> {
        match &mut self.phase {
            Phase::Header { .. } => None,
            Phase::Plan(f) | Phase::Chunks { fetch: f, .. } => Some(f),
            Phase::Waiting { fetch, .. } => fetch.as_mut(),
        }
    }

    /// As `transfers` lists it.
    pub fn info(&self, id: &ContainerId) -> TransferInfo {
        TransferInfo {
            container_id: *id,
            peer: self.peer,
            app: self.app,
            state: match self.phase {
                Phase::Header { .. } => TransferState::Header,
                Phase::Plan(_) | Phase::Chunks { .. } => TransferState::Chunks,
                Phase::Waiting { .. } => TransferState::Waiting,
            },
            size: self.header.size,
            chunks: self.counts.chunks,
            have: self.counts.have,
            had: self.counts.had.unwrap_or(0),
            fetched: self.counts.fetched,
            served: 0,
            note: self.note.clone(),
        }
    }

    /// Its info at the end: received, or failed with `why`.
    pub fn end_info(&self, id: &ContainerId, state: TransferState, why: String) -> TransferInfo {
        let mut info = self.info(id);
        info.state = state;
        info.note = why;
        info
    }

    /// A progress notification: at once if `changed` (a new state), else at most one per
    /// [`PROGRESS_EVERY`].
    pub fn progress(&mut self, id: &ContainerId, changed: bool, now: Instant, fx: &mut Effects) {
        if !changed && self.last_progress.is_some_and(|t| now < t + PROGRESS_EVERY) {
            return;
        }
        self.last_progress = Some(now);
        fx.notify.push(StormMsg::TransferProgress(self.info(id)));
    }

    /// Waits until `until`, then starts over (`why` shows meanwhile).
    pub fn wait(
        &mut self,
        id: &ContainerId,
        until: Instant,
        why: String,
        now: Instant,
        fx: &mut Effects,
    ) {
        tracing::info!(container = %id, "download waits: {why}");
        let fetch = match std::mem::replace(&mut self.phase, Phase::Header { asked: None }) {
            Phase::Header { .. } => None,
            Phase::Plan(f) | Phase::Chunks { fetch: f, .. } => Some(f),
            Phase::Waiting { fetch, .. } => fetch,
        };
        self.phase = Phase::Waiting { until, fetch };
        self.note = why;
        self.progress(id, true, now, fx);
    }

    /// A request for it could not be sent: it waits [`PEER_WAIT`] (unless it waits already).
    pub fn send_failed(&mut self, id: &ContainerId, why: &str, now: Instant, fx: &mut Effects) {
        if !matches!(self.phase, Phase::Waiting { .. }) {
            let why = format!("the peer cannot be reached: {why}");
            self.wait(id, now + PEER_WAIT, why, now, fx);
        }
    }

    /// The timers: what is due at `now` is asked for.
    pub fn tick(
        &mut self,
        id: &ContainerId,
        now: Instant,
        cfg: &TransferSettings,
        pacer: &mut Pacer,
        fx: &mut Effects,
    ) -> Need {
        if let Phase::Waiting { until, .. } = &mut self.phase {
            if now < *until {
                return Need::Nothing;
            }
            let Phase::Waiting { fetch, .. } =
                std::mem::replace(&mut self.phase, Phase::Header { asked: None })
            else {
                return Need::Nothing;
            };
            if let Some(f) = fetch {
                self.phase = Phase::Plan(f);
            }
            self.note.clear();
            self.progress(id, true, now, fx);
        }
        match &mut self.phase {
            Phase::Waiting { .. } => Need::Nothing,
            Phase::Header { asked } => {
                let tries = match asked {
                    None => 1,
                    Some((deadline, tries)) if now >= *deadline => *tries + 1,
                    Some(_) => return Need::Nothing,
                };
                if tries > cfg.chunk_retries + 1 {
                    let why = "the peer did not send the container's chunk list".to_string();
                    self.wait(id, now + STALL_WAIT, why, now, fx);
                    return Need::Nothing;
                }
                *asked = Some((now + cfg.chunk_timeout, tries));
                let full = FullId {
                    message_id: self.message_id,
                    container_id: *id,
                };
                fx.send(
                    self.peer,
                    StormP2p::PullContainer(self.app, full),
                    Some(*id),
                );
                Need::Nothing
            }
            Phase::Plan(f) => Need::Plan(distinct(&f.container.chunks)),
            Phase::Chunks { .. } => {
                self.flights(id, now, cfg, pacer, fx);
                Need::Nothing
            }
        }
    }

    /// The store's answer to [`Need::Plan`]: the chunks missing (or why it cannot say).
    pub fn planned(
        &mut self,
        id: &ContainerId,
        missing: Result<Vec<ChunkId>, String>,
        now: Instant,
        cfg: &TransferSettings,
        pacer: &mut Pacer,
        fx: &mut Effects,
    ) -> Need {
        if !matches!(self.phase, Phase::Plan(_)) {
            return Need::Nothing;
        }
        let missing = match missing {
            Ok(m) => distinct(&m),
            Err(why) => {
                self.wait(id, now + STALL_WAIT, why, now, fx);
                return Need::Nothing;
            }
        };
        let Phase::Plan(fetch) = std::mem::replace(&mut self.phase, Phase::Header { asked: None })
        else {
            return Need::Nothing;
        };
        let chunks = distinct(&fetch.container.chunks).len() as u32;
        self.counts.chunks = chunks;
        self.counts.have = chunks.saturating_sub(missing.len() as u32);
        self.counts.had.get_or_insert(self.counts.have);
        self.phase = Phase::Chunks {
            fetch,
            queue: missing.into(),
            in_flight: BTreeMap::new(),
        };
        self.progress(id, true, now, fx);
        if self.done() {
            return Need::Complete;
        }
        self.flights(id, now, cfg, pacer, fx);
        Need::Nothing
    }

    /// Chunks due again, then new ones while the window and the pace allow.
    fn flights(
        &mut self,
        id: &ContainerId,
        now: Instant,
        cfg: &TransferSettings,
        pacer: &mut Pacer,
        fx: &mut Effects,
    ) {
        let Phase::Chunks {
            queue, in_flight, ..
        } = &mut self.phase
        else {
            return;
        };
        let mut ask = Vec::new();
        let mut stalled = None;
        for (chunk, f) in in_flight.iter_mut() {
            if now >= f.deadline {
                if f.tries > cfg.chunk_retries {
                    stalled = Some(*chunk);
                    break;
                }
                f.tries += 1;
                f.deadline = now + cfg.chunk_timeout;
                ask.push(*chunk);
            }
        }
        if let Some(chunk) = stalled {
            let tries = cfg.chunk_retries + 1;
            let why = format!("the peer did not send chunk {chunk} after {tries} requests");
            self.wait(id, now + STALL_WAIT, why, now, fx);
            return;
        }
        while in_flight.len() < cfg.window && pacer.ready(now, cfg.max_rate) {
            let Some(chunk) = queue.pop_front() else {
                break;
            };
            pacer.spend(cfg.max_rate);
            let flight = Flight {
                deadline: now + cfg.chunk_timeout,
                tries: 1,
            };
            in_flight.insert(chunk, flight);
            ask.push(chunk);
        }
        for part in ask.chunks(MAX_PULL_CHUNKS) {
            let msg = StormP2p::PullChunk {
                app: self.app,
                message_id: self.message_id,
                container_id: *id,
                chunk_ids: part.to_vec(),
            };
            fx.send(self.peer, msg, Some(*id));
        }
    }

    /// Whether every chunk is stored.
    fn done(&self) -> bool {
        matches!(&self.phase, Phase::Chunks { queue, in_flight, .. } if queue.is_empty() && in_flight.is_empty())
    }

    /// The peer's `PushContainer` (`id` checked by the caller): taken if it is the one asked
    /// of that peer and can hold the announced content (the caller then keeps the record).
    pub fn on_container(
        &mut self,
        id: &ContainerId,
        from: &NodeId,
        container: Container,
        now: Instant,
        fx: &mut Effects,
    ) -> Verdict {
        if self.peer != *from || !matches!(self.phase, Phase::Header { .. }) {
            return Verdict::Refused(format!(
                "container {id} from a peer it was not asked of: dropped"
            ));
        }
        if container.header != self.header {
            return Verdict::Failed("the container's header is not the one announced".into());
        }
        // Each chunk holds 1 to MAX_CHUNK bytes: a list that cannot add up to the header's
        // size is refused now, not after fetching it.
        let n = container.chunks.len() as u64;
        let size = container.header.size;
        if size < n || size > n * MAX_CHUNK as u64 {
            return Verdict::Failed(format!(
                "{n} chunks cannot hold the {size} bytes of the header"
            ));
        }
        self.phase = Phase::Plan(Fetch {
            container,
            verified: BTreeSet::new(),
        });
        self.progress(id, true, now, fx);
        Verdict::Taken
    }

    /// A `PushChunk` from `from`: taken (to be stored) if it was asked of that peer and its
    /// data hashes to its id. Data that does not is dropped and asked again at once (a try).
    pub fn on_chunk(
        &mut self,
        from: &NodeId,
        chunk: &ChunkId,
        data: &[u8],
        now: Instant,
    ) -> Verdict {
        let not_asked = || {
            Verdict::Refused(format!(
                "chunk {chunk} that was not asked of this peer: dropped"
            ))
        };
        let Phase::Chunks { in_flight, .. } = &mut self.phase else {
            return not_asked();
        };
        if self.peer != *from {
            return not_asked();
        }
        let Some(flight) = in_flight.get_mut(chunk) else {
            return not_asked();
        };
        if chunk_id(data) != *chunk {
            flight.deadline = now;
            return Verdict::Refused(format!(
                "chunk {chunk} whose data does not hash to its id: dropped, asked again"
            ));
        }
        in_flight.remove(chunk);
        Verdict::Taken
    }

    /// Chunks of it were committed to the store: counted, and [`Need::Complete`] once all
    /// are there.
    pub fn stored(
        &mut self,
        id: &ContainerId,
        chunks: &[ChunkId],
        now: Instant,
        fx: &mut Effects,
    ) -> Need {
        let n = chunks.len() as u32;
        self.counts.have += n;
        self.counts.fetched += n;
        if let Some(f) = self.fetch_mut() {
            f.verified.extend(chunks.iter().copied());
        }
        self.progress(id, false, now, fx);
        if self.done() {
            Need::Complete
        } else {
            Need::Nothing
        }
    }
}

#[cfg(test)]
mod tests {
    //! The state machine on a fake clock: every case is a few calls with instants made up,
    //! no process, no store, no socket.
    use super::*;
    use crate::wire::storm::container::split;

    const ID: ContainerId = ContainerId([9; 32]);
    const PEER: NodeId = NodeId([2; 33]);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn cfg() -> TransferSettings {
        TransferSettings {
            auto_accept: vec![],
            window: 4,
            chunk_timeout: ms(1_000),
            chunk_retries: 2,
            max_rate: 0,
            max_offers_per_peer: 16,
            max_offer_bytes_per_peer: 1 << 30,
        }
    }

    /// A container of `n` chunks of 10 bytes (chunk `i` is ten bytes of `i`).
    fn content(n: u8) -> (Container, Vec<Vec<u8>>) {
        let data: Vec<u8> = (0..n).flat_map(|i| [i; 10]).collect();
        let parts: Vec<Vec<u8>> = split(&data, 10).map(|p| p.to_vec()).collect();
        let container = Container {
            header: header(data.len() as u64),
            chunks: parts.iter().map(|p| chunk_id(p)).collect(),
        };
        (container, parts)
    }

    fn header(size: u64) -> ContainerHeader {
        ContainerHeader {
            version: 0,
            mime: "application/octet-stream".into(),
            info: String::new(),
            size,
        }
    }

    fn record(container: Option<Container>, size: u64) -> Record {
        Record {
            peer: PEER,
            app: 2,
            message_id: MessageId::default(),
            header: header(size),
            container,
        }
    }

    /// The chunks asked for in `fx`, in order.
    fn asked(fx: &Effects) -> Vec<ChunkId> {
        fx.send
            .iter()
            .flat_map(|o| match &o.msg {
                StormP2p::PullChunk { chunk_ids, .. } => chunk_ids.clone(),
                _ => vec![],
            })
            .collect()
    }

    fn pulls_of_container(fx: &Effects) -> usize {
        fx.send
            .iter()
            .filter(|o| matches!(o.msg, StormP2p::PullContainer(..)))
            .count()
    }

    /// A download of `n` chunks, chunk list received and planned with everything missing, at
    /// `t0`; the effects of planning.
    fn fetching(n: u8, cfg: &TransferSettings, t0: Instant) -> (Download, Pacer, Effects) {
        let (c, _) = content(n);
        let mut d = Download::new(record(Some(c.clone()), c.header.size));
        let mut pacer = Pacer::new(t0);
        let mut fx = Effects::default();
        let Need::Plan(ids) = d.tick(&ID, t0, cfg, &mut pacer, &mut fx) else {
            panic!("plans first")
        };
        let need = d.planned(&ID, Ok(ids), t0, cfg, &mut pacer, &mut fx);
        assert_eq!(need, Need::Nothing);
        (d, pacer, fx)
    }

    fn state(d: &Download) -> TransferState {
        d.info(&ID).state
    }

    #[test]
    fn a_new_download_asks_for_the_chunk_list_once_per_timeout() {
        let t0 = Instant::now();
        let mut d = Download::new(record(None, 30));
        let (mut p, mut fx) = (Pacer::new(t0), Effects::default());
        assert_eq!(state(&d), TransferState::Header);
        d.tick(&ID, t0, &cfg(), &mut p, &mut fx);
        assert_eq!(pulls_of_container(&fx), 1);
        assert_eq!(fx.send[0].download, Some(ID));
        d.tick(&ID, t0 + ms(999), &cfg(), &mut p, &mut fx);
        assert_eq!(pulls_of_container(&fx), 1, "not again before the timeout");
        d.tick(&ID, t0 + ms(1_000), &cfg(), &mut p, &mut fx);
        assert_eq!(pulls_of_container(&fx), 2);
    }

    #[test]
    fn no_chunk_list_after_every_retry_waits_then_asks_afresh() {
        let t0 = Instant::now();
        let mut d = Download::new(record(None, 30));
        let (mut p, mut fx) = (Pacer::new(t0), Effects::default());
        // 1 + chunk_retries (2) requests, one per second.
        for s in 0..3 {
            d.tick(&ID, t0 + ms(1_000 * s), &cfg(), &mut p, &mut fx);
        }
        assert_eq!(pulls_of_container(&fx), 3);
        d.tick(&ID, t0 + ms(3_000), &cfg(), &mut p, &mut fx);
        assert_eq!(pulls_of_container(&fx), 3);
        assert_eq!(state(&d), TransferState::Waiting);
        assert!(
            d.info(&ID).note.contains("chunk list"),
            "{}",
            d.info(&ID).note
        );
        d.tick(
            &ID,
            t0 + ms(3_000) + STALL_WAIT - ms(1),
            &cfg(),
            &mut p,
            &mut fx,
        );
        assert_eq!(state(&d), TransferState::Waiting);
        d.tick(&ID, t0 + ms(3_000) + STALL_WAIT, &cfg(), &mut p, &mut fx);
        assert_eq!(state(&d), TransferState::Header);
        assert_eq!(
            pulls_of_container(&fx),
            4,
            "asked again at once, tries counted afresh"
        );
        assert!(d.info(&ID).note.is_empty());
    }

    #[test]
    fn a_chunk_list_from_another_peer_or_unasked_is_refused() {
        let t0 = Instant::now();
        let (c, _) = content(3);
        let mut d = Download::new(record(None, c.header.size));
        let mut fx = Effects::default();
        let v = d.on_container(&ID, &NodeId([7; 33]), c.clone(), t0, &mut fx);
        assert!(matches!(v, Verdict::Refused(r) if r.contains("not asked of")));
        assert_eq!(state(&d), TransferState::Header);
        assert_eq!(
            d.on_container(&ID, &PEER, c.clone(), t0, &mut fx),
            Verdict::Taken
        );
        // Once known, another one is refused too.
        let v = d.on_container(&ID, &PEER, c, t0, &mut fx);
        assert!(matches!(v, Verdict::Refused(_)));
    }

    #[test]
    fn a_lying_chunk_list_ends_the_download() {
        let t0 = Instant::now();
        let (c, _) = content(3);
        let mut fx = Effects::default();
        // Another header than the one announced.
        let mut d = Download::new(record(None, c.header.size + 1));
        let v = d.on_container(&ID, &PEER, c.clone(), t0, &mut fx);
        assert!(matches!(v, Verdict::Failed(r) if r.contains("not the one announced")));
        // Three chunks cannot hold 3 x MAX_CHUNK + 1 bytes, nor 2 bytes.
        for size in [3 * MAX_CHUNK as u64 + 1, 2] {
            let mut lie = c.clone();
            lie.header.size = size;
            let mut d = Download::new(record(None, size));
            let v = d.on_container(&ID, &PEER, lie, t0, &mut fx);
            assert!(
                matches!(v, Verdict::Failed(r) if r.contains("cannot hold")),
                "{size}"
            );
        }
    }

    #[test]
    fn a_taken_chunk_list_is_kept_in_the_record_and_planned_without_duplicates() {
        let t0 = Instant::now();
        let (mut c, _) = content(3);
        c.chunks.push(c.chunks[0]);
        c.header.size += 10;
        let mut d = Download::new(record(None, c.header.size));
        let (mut p, mut fx) = (Pacer::new(t0), Effects::default());
        assert_eq!(
            d.on_container(&ID, &PEER, c.clone(), t0, &mut fx),
            Verdict::Taken
        );
        assert_eq!(d.record().container, Some(c.clone()));
        let Need::Plan(ids) = d.tick(&ID, t0, &cfg(), &mut p, &mut fx) else {
            panic!("plans")
        };
        assert_eq!(ids, c.chunks[..3].to_vec());
        assert!(fx
            .notify
            .iter()
            .all(|m| matches!(m, StormMsg::TransferProgress(_))));
    }

    #[test]
    fn nothing_missing_completes_at_once() {
        let t0 = Instant::now();
        let (c, _) = content(3);
        let mut d = Download::new(record(Some(c.clone()), c.header.size));
        let (mut p, mut fx) = (Pacer::new(t0), Effects::default());
        let Need::Plan(_) = d.tick(&ID, t0, &cfg(), &mut p, &mut fx) else {
            panic!()
        };
        assert_eq!(
            d.planned(&ID, Ok(vec![]), t0, &cfg(), &mut p, &mut fx),
            Need::Complete
        );
        let info = d.info(&ID);
        assert_eq!(
            (info.chunks, info.have, info.had, info.fetched),
            (3, 3, 3, 0)
        );
        assert!(asked(&fx).is_empty());
    }

    #[test]
    fn at_most_window_chunks_are_in_flight_and_each_arrival_makes_room() {
        let t0 = Instant::now();
        let (c, parts) = content(10);
        let (mut d, mut p, mut fx) = fetching(10, &cfg(), t0);
        assert_eq!(asked(&fx), c.chunks[..4].to_vec(), "the window is 4");
        assert_eq!(fx.send.len(), 1, "one PullChunk for the four");
        let t1 = t0 + ms(10);
        assert_eq!(
            d.on_chunk(&PEER, &c.chunks[0], &parts[0], t1),
            Verdict::Taken
        );
        assert_eq!(d.stored(&ID, &c.chunks[..1], t1, &mut fx), Need::Nothing);
        let mut fx = Effects::default();
        d.tick(&ID, t1, &cfg(), &mut p, &mut fx);
        assert_eq!(asked(&fx), vec![c.chunks[4]]);
        let info = d.info(&ID);
        assert_eq!((info.have, info.fetched, info.had), (1, 1, 0));
    }

    #[test]
    fn a_wide_window_asks_in_pulls_of_at_most_64_chunks() {
        let t0 = Instant::now();
        let mut cfg = cfg();
        cfg.window = 200;
        let (_, _, fx) = fetching(150, &cfg, t0);
        let sizes: Vec<usize> = fx
            .send
            .iter()
            .map(|o| match &o.msg {
                StormP2p::PullChunk { chunk_ids, .. } => chunk_ids.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(sizes, [64, 64, 22]);
    }

    #[test]
    fn a_chunk_not_received_is_asked_again_then_the_download_waits_and_plans_again() {
        let t0 = Instant::now();
        let (c, parts) = content(2);
        let mut cfg = cfg();
        cfg.window = 1;
        let (mut d, mut p, _) = fetching(2, &cfg, t0);
        // Tries 2 and 3 (chunk_retries = 2), one per timeout.
        for s in 1..=2 {
            let mut fx = Effects::default();
            d.tick(&ID, t0 + ms(1_000 * s), &cfg, &mut p, &mut fx);
            assert_eq!(asked(&fx), vec![c.chunks[0]], "try {}", s + 1);
        }
        let mut fx = Effects::default();
        d.tick(&ID, t0 + ms(3_000), &cfg, &mut p, &mut fx);
        assert!(asked(&fx).is_empty());
        let info = d.info(&ID);
        assert_eq!(info.state, TransferState::Waiting);
        assert!(info.note.contains(&c.chunks[0].to_string()) && info.note.contains("3 requests"));
        // A late chunk while waiting is refused: nothing is in flight.
        let late = d.on_chunk(&PEER, &c.chunks[0], &parts[0], t0 + ms(3_100));
        assert!(matches!(late, Verdict::Refused(_)));
        // After the wait it plans again from the store (nothing is lost or asked twice).
        let need = d.tick(&ID, t0 + ms(3_000) + STALL_WAIT, &cfg, &mut p, &mut fx);
        assert_eq!(need, Need::Plan(c.chunks.clone()));
        assert_eq!(state(&d), TransferState::Chunks);
    }

    #[test]
    fn a_lying_sender_is_refused_and_the_chunk_asked_again_at_once() {
        let t0 = Instant::now();
        let (c, parts) = content(2);
        let (mut d, mut p, _) = fetching(2, &cfg(), t0);
        let v = d.on_chunk(&PEER, &c.chunks[0], b"not the chunk", t0 + ms(5));
        assert!(matches!(v, Verdict::Refused(r) if r.contains("does not hash")));
        let mut fx = Effects::default();
        d.tick(&ID, t0 + ms(5), &cfg(), &mut p, &mut fx);
        assert_eq!(
            asked(&fx),
            vec![c.chunks[0]],
            "asked again without waiting for the timeout"
        );
        // The right data is still taken.
        assert_eq!(
            d.on_chunk(&PEER, &c.chunks[0], &parts[0], t0 + ms(6)),
            Verdict::Taken
        );
    }

    #[test]
    fn chunks_from_another_peer_or_not_asked_for_are_refused() {
        let t0 = Instant::now();
        let (c, parts) = content(6);
        let (mut d, _, _) = fetching(6, &cfg(), t0);
        let other = d.on_chunk(&NodeId([7; 33]), &c.chunks[0], &parts[0], t0);
        assert!(matches!(other, Verdict::Refused(_)));
        // Chunk 5 is missing but not in the window yet.
        let early = d.on_chunk(&PEER, &c.chunks[5], &parts[5], t0);
        assert!(matches!(early, Verdict::Refused(r) if r.contains("not asked")));
        // A chunk is taken once.
        assert_eq!(
            d.on_chunk(&PEER, &c.chunks[0], &parts[0], t0),
            Verdict::Taken
        );
        assert!(matches!(
            d.on_chunk(&PEER, &c.chunks[0], &parts[0], t0),
            Verdict::Refused(_)
        ));
    }

    #[test]
    fn the_rate_cap_paces_requests_over_time() {
        let t0 = Instant::now();
        let mut cfg = cfg();
        cfg.window = 100;
        cfg.chunk_timeout = Duration::from_secs(60);
        // Four chunks' worth of bytes per second: a request every 250 ms, up to 250 ms ahead.
        cfg.max_rate = 4 * CONTAINER_CHUNK as u64;
        let (mut d, mut p, fx) = fetching(20, &cfg, t0);
        assert_eq!(asked(&fx).len(), 2, "one now and one 250 ms ahead");
        let mut fx = Effects::default();
        d.tick(&ID, t0 + ms(100), &cfg, &mut p, &mut fx);
        assert!(asked(&fx).is_empty(), "the pace is ahead of the clock");
        // Idle time is not saved up: a second later, again one now and one ahead.
        let mut fx = Effects::default();
        d.tick(&ID, t0 + ms(1_000), &cfg, &mut p, &mut fx);
        assert_eq!(asked(&fx).len(), 2);
        let mut fx = Effects::default();
        d.tick(&ID, t0 + ms(1_250), &cfg, &mut p, &mut fx);
        assert_eq!(asked(&fx).len(), 1, "then one per 250 ms");
    }

    #[test]
    fn a_resumed_download_plans_from_the_store_and_counts_what_it_had() {
        let t0 = Instant::now();
        let (c, parts) = content(4);
        // After a restart: the record has the chunk list; two chunks were stored before.
        let mut d = Download::new(record(Some(c.clone()), c.header.size));
        let (mut p, mut fx) = (Pacer::new(t0), Effects::default());
        assert_eq!(state(&d), TransferState::Chunks);
        assert_eq!(d.info(&ID).chunks, 4);
        let Need::Plan(ids) = d.tick(&ID, t0, &cfg(), &mut p, &mut fx) else {
            panic!("plans first")
        };
        assert_eq!(ids.len(), 4);
        let missing = c.chunks[2..].to_vec();
        d.planned(&ID, Ok(missing.clone()), t0, &cfg(), &mut p, &mut fx);
        assert_eq!(asked(&fx), missing, "only what the store lacks");
        for (chunk, part) in c.chunks.iter().zip(&parts).skip(2) {
            assert_eq!(d.on_chunk(&PEER, chunk, part, t0), Verdict::Taken);
        }
        assert_eq!(d.stored(&ID, &missing, t0, &mut fx), Need::Complete);
        let info = d.info(&ID);
        assert_eq!(
            (info.chunks, info.have, info.had, info.fetched),
            (4, 4, 2, 2)
        );
        assert_eq!(
            d.fetch().unwrap().verified.len(),
            2,
            "the two hashed on arrival"
        );
    }

    #[test]
    fn an_unreachable_peer_makes_it_wait_once() {
        let t0 = Instant::now();
        let (mut d, mut p, _) = fetching(3, &cfg(), t0);
        let mut fx = Effects::default();
        d.send_failed(&ID, "not connected", t0, &mut fx);
        assert_eq!(state(&d), TransferState::Waiting);
        assert!(d.info(&ID).note.contains("not connected"));
        // A second failure does not push the wait further.
        d.send_failed(&ID, "again", t0 + ms(1_000), &mut fx);
        assert!(d.info(&ID).note.contains("not connected"));
        let need = d.tick(&ID, t0 + PEER_WAIT, &cfg(), &mut p, &mut fx);
        assert!(matches!(need, Need::Plan(_)), "back after PEER_WAIT");
    }

    #[test]
    fn a_store_that_cannot_plan_makes_it_wait() {
        let t0 = Instant::now();
        let (c, _) = content(3);
        let mut d = Download::new(record(Some(c.clone()), c.header.size));
        let (mut p, mut fx) = (Pacer::new(t0), Effects::default());
        d.tick(&ID, t0, &cfg(), &mut p, &mut fx);
        let need = d.planned(
            &ID,
            Err("the disk is gone".into()),
            t0,
            &cfg(),
            &mut p,
            &mut fx,
        );
        assert_eq!(need, Need::Nothing);
        assert_eq!(state(&d), TransferState::Waiting);
        assert_eq!(d.info(&ID).note, "the disk is gone");
        assert!(d.fetch().is_some(), "the chunk list is kept while waiting");
        let need = d.tick(&ID, t0 + STALL_WAIT, &cfg(), &mut p, &mut fx);
        assert!(matches!(need, Need::Plan(_)));
    }

    #[test]
    fn progress_is_told_at_each_change_and_at_most_every_200_ms_between() {
        let t0 = Instant::now();
        let (c, parts) = content(10);
        let mut cfg = cfg();
        cfg.window = 10;
        let (mut d, _, fx) = fetching(10, &cfg, t0);
        assert_eq!(fx.notify.len(), 1, "planned: a change");
        let mut fx = Effects::default();
        for (i, part) in parts.iter().enumerate().take(5) {
            let t = t0 + ms(50 * i as u64);
            d.on_chunk(&PEER, &c.chunks[i], part, t);
            d.stored(&ID, &c.chunks[i..=i], t, &mut fx);
        }
        // At 0 (within 200 ms of the change: no), 50, 100, 150: no; 200: yes.
        assert_eq!(fx.notify.len(), 1);
        let mut fx = Effects::default();
        d.wait(&ID, t0 + ms(5_000), "why".into(), t0 + ms(210), &mut fx);
        assert_eq!(fx.notify.len(), 1, "a change is told at once");
    }

    #[test]
    fn chunks_stored_while_waiting_count_and_the_end_comes_after_planning() {
        let t0 = Instant::now();
        let (c, parts) = content(2);
        let (mut d, mut p, _) = fetching(2, &cfg(), t0);
        let mut fx = Effects::default();
        assert_eq!(
            d.on_chunk(&PEER, &c.chunks[0], &parts[0], t0),
            Verdict::Taken
        );
        assert_eq!(
            d.on_chunk(&PEER, &c.chunks[1], &parts[1], t0),
            Verdict::Taken
        );
        d.send_failed(&ID, "gone", t0, &mut fx);
        // The commit of what arrived lands while waiting: counted, not the end yet.
        assert_eq!(d.stored(&ID, &c.chunks, t0, &mut fx), Need::Nothing);
        assert_eq!(d.info(&ID).have, 2);
        let Need::Plan(_) = d.tick(&ID, t0 + PEER_WAIT, &cfg(), &mut p, &mut fx) else {
            panic!("plans after the wait")
        };
        let need = d.planned(&ID, Ok(vec![]), t0 + PEER_WAIT, &cfg(), &mut p, &mut fx);
        assert_eq!(need, Need::Complete);
        assert_eq!(
            d.fetch().unwrap().verified.len(),
            2,
            "hashed on arrival, kept"
        );
    }

    #[test]
    fn the_end_infos_say_received_or_failed_with_the_reason() {
        let (c, _) = content(1);
        let d = Download::new(record(Some(c), 10));
        let done = d.end_info(&ID, TransferState::Received, String::new());
        assert_eq!(
            (done.state, done.peer, done.app),
            (TransferState::Received, PEER, 2)
        );
        let failed = d.end_info(&ID, TransferState::Failed, "Reject".into());
        assert_eq!(
            (failed.state, failed.note.as_str()),
            (TransferState::Failed, "Reject")
        );
    }
}
