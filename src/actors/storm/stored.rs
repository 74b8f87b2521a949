//! `stored`: the STORE RPC of the Storm node, on the STORE and API buses, over the storage the
//! node's plan chose (`storage::RedbStorage` at `DATA_DIR/store.redb`).
//!
//! - Reads run in the service's handler (redb's MVCC: a read never waits for a write).
//! - Writes are validated, then queued to one writer thread (at most
//!   [`STORE_WRITE_QUEUE`] waiting; beyond it the reply is `BUSY` at once). The writer takes
//!   every write waiting (up to [`STORE_MAX_BATCH`]), commits them in one durable transaction
//!   (group commit), and only then answers each. A write that was answered is on disk.
//! - When `stored` fails (a panic, `debug crash stored`), its writer stops taking writes: the
//!   writes still queued are answered with `SERVICE_FAILED` and were not applied; the batch
//!   being committed finishes and is answered. The restarted `stored` has a new writer over the
//!   same database. Every request gets exactly one reply (the bus drops a second one).

use crate::actors::limits::{STORE_MAX_BATCH, STORE_WRITE_QUEUE};
use crate::actors::service::{not_taken, Service, ServiceActor};
use crate::bus::{Bus, Deliver};
use crate::storage::{Storage, StoreError, Write, WriteDone};
use crate::wire::api::storm::Key;
use crate::wire::api::storm::StormMsg;
use crate::wire::api::{code, Code, Envelope, Msg, MsgKind, ServiceId};
use crate::wire::storm::container::ChunkId;
use actix::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

/// The service id of `stored` on its buses.
pub fn id() -> ServiceId {
    crate::storage::stored_id()
}

/// A queued write and where its reply goes (`env` keeps the request's ids for the reply; its
/// body was moved into `write`).
struct Job {
    write: Write,
    /// The chunk id, for `store_chunk`.
    chunk: Option<ChunkId>,
    bus: Bus,
    env: Envelope,
}

/// The writer of one incarnation of `stored`.
struct Writer {
    queue: SyncSender<Job>,
    cancelled: Arc<AtomicBool>,
}

/// The service.
pub struct Stored {
    storage: Arc<dyn Storage>,
    buses: Vec<Bus>,
    writer: Option<Writer>,
}

impl Stored {
    /// `stored` over `storage`, registered on `buses`.
    pub fn new(storage: Arc<dyn Storage>, buses: Vec<Bus>) -> Stored {
        Stored {
            storage,
            buses,
            writer: None,
        }
    }

    fn read(&self, op: &StormMsg) -> Result<Msg, StoreError> {
        let s = &*self.storage;
        let absent = |what: &str, key: &dyn std::fmt::Display, table: &str| {
            Msg::failure(
                code::NOT_FOUND,
                format!("no {what} {key} in table `{table}`"),
            )
        };
        Ok(match op {
            StormMsg::Tables => StormMsg::TableList(s.tables()?).into(),
            StormMsg::Count { table } => StormMsg::Counted(s.count(table)?).into(),
            StormMsg::Get { table, key } => match s.get(table, key)? {
                Some(v) => StormMsg::Value(v).into(),
                None => absent("key", &hex(key), table),
            },
            StormMsg::RetrieveChunk { table, id } => match s.retrieve_chunk(table, id)? {
                Some(v) => StormMsg::Value(v).into(),
                None => absent("chunk", id, table),
            },
            StormMsg::ListIds {
                table,
                after,
                limit,
            } => {
                let (ids, more) = s.list_ids(table, *after, usize::from(*limit))?;
                StormMsg::IdList { ids, more }.into()
            }
            StormMsg::CheckUnknown { table, ids } => StormMsg::IdList {
                ids: s.check_unknown(table, ids)?,
                more: false,
            }
            .into(),
            other => Msg::failure(
                code::UNEXPECTED,
                format!(
                    "stored does not handle request type {:#06x}",
                    other.type_id()
                ),
            ),
        })
    }

    /// The write of a write request, validated, and the chunk id for `store_chunk`.
    fn write_of(op: StormMsg) -> Result<(Write, Option<ChunkId>), StoreError> {
        let (write, chunk) = match op {
            StormMsg::Put { table, key, value } => (Write::Put { table, key, value }, None),
            StormMsg::Delete { table, key } => (Write::Delete { table, key }, None),
            StormMsg::Insert { table, ids } => (Write::Insert { table, ids }, None),
            StormMsg::StoreChunk { table, data } => {
                let (id, w) = Write::chunk(table, data)?;
                (w, Some(id))
            }
            _ => return Err(StoreError::Invalid("not a write".into())),
        };
        write.check()?;
        Ok((write, chunk))
    }

    fn enqueue(&self, op: StormMsg, bus: Bus, env: Envelope) {
        let (write, chunk) = match Stored::write_of(op) {
            Ok(w) => w,
            Err(e) => return bus.send(env.reply(Msg::failure(e.code(), e.to_string()))),
        };
        let job = Job {
            write,
            chunk,
            bus,
            env,
        };
        let Some(writer) = &self.writer else {
            return job.fail(code::SERVICE_FAILED, "stored is not running");
        };
        match writer.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => job.fail(
                code::BUSY,
                &format!("the write queue is full ({STORE_WRITE_QUEUE} writes); retry"),
            ),
            Err(TrySendError::Disconnected(job)) => {
                job.fail(code::SERVICE_FAILED, "the writer of stored stopped")
            }
        }
    }
}

impl Job {
    fn fail(&self, code: Code, why: &str) {
        self.bus.send(self.env.reply(Msg::failure(code, why)));
    }

    /// The reply once the write is committed.
    fn committed(&self, done: WriteDone) -> Msg {
        match (done, self.chunk, &self.write) {
            (_, Some(id), _) => StormMsg::ChunkStored(id).into(),
            (WriteDone::Deleted(false), _, Write::Delete { table, key }) => Msg::failure(
                code::NOT_FOUND,
                format!("no key {} in table `{table}`", hex(key)),
            ),
            _ => Msg::Success(None),
        }
    }
}

fn hex(id: &Key) -> String {
    use bitcoin::hex::DisplayHex;
    id.to_lower_hex_string()
}

/// The writer thread: group commit until its queue is closed.
fn write_loop(storage: Arc<dyn Storage>, queue: Receiver<Job>, cancelled: Arc<AtomicBool>) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while jobs.len() < STORE_MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if cancelled.load(Ordering::Acquire) {
            for job in &jobs {
                job.fail(
                    code::SERVICE_FAILED,
                    "stored failed before this write was committed; it was not applied",
                );
            }
            continue;
        }
        match storage.apply(&mut jobs.iter().map(|j| &j.write)) {
            Ok(done) => {
                for (job, done) in jobs.iter().zip(done) {
                    job.bus.send(job.env.reply(job.committed(done)));
                }
            }
            Err(e) => {
                tracing::error!("store commit of {} writes failed: {e}", jobs.len());
                for job in &jobs {
                    job.fail(e.code(), &format!("not committed: {e}"));
                }
            }
        }
    }
}

impl Service for Stored {
    fn start(&mut self, ctx: &mut Context<ServiceActor<Self>>) -> Result<(), String> {
        let (queue, rx) = sync_channel(STORE_WRITE_QUEUE);
        let cancelled = Arc::new(AtomicBool::new(false));
        let (storage, flag) = (self.storage.clone(), cancelled.clone());
        std::thread::Builder::new()
            .name("stored-writer".into())
            .spawn(move || write_loop(storage, rx, flag))
            .map_err(|e| format!("cannot start the writer thread: {e}"))?;
        self.writer = Some(Writer { queue, cancelled });
        let me = ctx.address().recipient::<Deliver>();
        for bus in &self.buses {
            bus.register(id(), me.clone());
        }
        Ok(())
    }

    fn handle(&mut self, d: Deliver, _: &mut Context<ServiceActor<Self>>) -> Result<(), String> {
        if d.env.msg.kind() != MsgKind::Request || !matches!(d.env.msg, Msg::Storm(_)) {
            // Notifications and other nodes' requests: failure 0x4000; a reply (NO_ROUTE for
            // a client that left) is ignored.
            not_taken("stored", &d);
            return Ok(());
        }
        let Deliver { mut env, bus } = d;
        let Msg::Storm(op) = &mut env.msg else {
            return Ok(()); // checked above
        };
        // The body moves out (a value is not copied); `env` keeps the ids for the reply.
        let op = std::mem::replace(op, StormMsg::Tables);
        match op {
            StormMsg::Put { .. }
            | StormMsg::Delete { .. }
            | StormMsg::Insert { .. }
            | StormMsg::StoreChunk { .. } => self.enqueue(op, bus, env),
            op => {
                let reply = self
                    .read(&op)
                    .unwrap_or_else(|e| Msg::failure(e.code(), e.to_string()));
                bus.send(env.reply(reply));
            }
        }
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(w) = self.writer.take() {
            // Queued writes are answered with a failure by the writer; the queue closes when
            // the sender drops here, and the thread ends once it has drained it.
            w.cancelled.store(true, Ordering::Release);
        }
        // It stays registered: its address survives a restart, and requests that arrive
        // meanwhile wait in its mailbox.
    }
}
