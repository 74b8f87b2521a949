//! The ESB router of one bus: the routing table and the request bookkeeping.
//!
//! Local services register a mailbox; a message between two of them goes from the sender
//! straight into the destination's mailbox (one mailbox hop, the payload moved, never encoded).
//! Services in other processes reach the table through the bus socket ([`super::socket`]), which
//! registers their ZMQ routing id under their service id.
//!
//! Guarantees, all enforced here so that no service has to remember them:
//! - a message to an absent destination comes back to its sender as a `NO_ROUTE` failure;
//! - every request gets exactly one final reply: the handler's, or a failure when the handler
//!   crashes ([`Bus::fail_request`]), the deadline passes ([`Bus::expire`]) or the node stops
//!   ([`Bus::fail_all`]); a reply that comes after that is dropped.

use super::limits;
use crate::wire::api::{code, ApiError, Code, Envelope, Msg, MsgKind, ServiceId};
use actix::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A message delivered to a service's mailbox, with the bus it came on (to reply on).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver {
    /// The message.
    pub env: Envelope,
    /// The bus it came on.
    pub bus: Bus,
}

/// Sends outbound frames on the bus socket: `[routing_id, src, dst, payload]`.
pub type Outlet = Box<dyn FnMut(Vec<Vec<u8>>) -> Result<(), OutletError> + Send>;

/// Why the bus socket did not take outbound frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutletError {
    /// The peer's queue is full (it does not read).
    Full,
    /// No peer with that routing id is connected (it went away).
    Unreachable,
    /// The socket is closed (bridge stopped or restarting).
    Closed,
}

/// Counters of one bus, readable at any time.
#[derive(Debug, Default)]
pub struct BusStats {
    /// Messages handed to a destination (mailbox or socket).
    pub delivered: AtomicU64,
    /// Messages returned to their sender as failures (no route, busy, ...).
    pub bounced: AtomicU64,
    /// Replies dropped because their request had already ended (late, duplicate, unknown).
    pub late_replies: AtomicU64,
    /// Requests answered by the router with a timeout.
    pub timeouts: AtomicU64,
    /// Messages dropped because no failure could be sent for them.
    pub dropped: AtomicU64,
}

#[derive(Clone)]
struct Remote {
    routing_id: Vec<u8>,
    last_seen: Instant,
}

/// A message that could not be handed over, and why.
type Undelivered = (Envelope, ApiError);

/// Key of a request in flight: (handler, requester, request id).
type PendingKey = (ServiceId, ServiceId, u64);

/// FNV-1a: the hash of the table of *local* services, whose keys are the node's own ids (a peer
/// cannot insert colliding keys there). Tables keyed by ids that peers choose (remote routes,
/// requests in flight) keep std's keyed SipHash against hash flooding.
#[derive(Default, Clone, Copy)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type LocalMap = HashMap<ServiceId, Recipient<Deliver>, std::hash::BuildHasherDefault<Fnv>>;

/// The ids a node keeps for itself (docs/API.md section 3): a message from the bus socket with
/// one of them as `src` is refused with `SPOOFED_SOURCE`, whether or not that service is on
/// this bus or running at the moment.
#[derive(Clone, Debug, Default)]
pub struct Reserved {
    ids: HashSet<ServiceId>,
    prefixes: Vec<String>,
}

impl Reserved {
    /// `ids`, and every named id (`ff`) that starts with one of `prefixes` (the names of
    /// per-connection services such as `peerd-…`).
    pub fn new(ids: impl IntoIterator<Item = ServiceId>, prefixes: &[&str]) -> Reserved {
        Reserved {
            ids: ids.into_iter().collect(),
            prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// Whether `id` is kept by the node.
    pub fn holds(&self, id: &ServiceId) -> bool {
        self.ids.contains(id)
            || matches!(id, ServiceId::Other(name)
                if self.prefixes.iter().any(|p| name.as_str().starts_with(p.as_str())))
    }
}

#[derive(Default)]
struct Table {
    local: LocalMap,
    reserved: Arc<Reserved>,
    remote: HashMap<ServiceId, Remote>,
    pending: HashMap<PendingKey, Pending>,
    /// Requests in flight per source, for its share of the table.
    per_source: HashMap<Source, usize>,
    outlet: Option<Outlet>,
}

/// Who holds a request in flight, for the share each may hold: a local service by its id, a
/// connection of the bus socket by its routing id (whatever source ids it uses; on a TCP bus,
/// one encrypted session).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Source {
    Local(ServiceId),
    Remote(Vec<u8>),
}

/// A request in flight: its deadline and who sent it.
struct Pending {
    deadline: Instant,
    source: Source,
}

impl Table {
    fn open(&mut self, key: PendingKey, deadline: Instant, source: Source) {
        *self.per_source.entry(source.clone()).or_default() += 1;
        self.pending.insert(key, Pending { deadline, source });
    }

    /// Ends a request in flight; whether it was.
    fn close(&mut self, key: &PendingKey) -> bool {
        let Some(p) = self.pending.remove(key) else {
            return false;
        };
        if let Some(n) = self.per_source.get_mut(&p.source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&p.source);
            }
        }
        true
    }
}

struct Inner {
    name: &'static str,
    timeout: Duration,
    /// Most requests in flight one source may hold.
    per_source: usize,
    table: Mutex<Table>,
    stats: BusStats,
}

/// A handle to one bus's router (cheap to clone).
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

/// Where a message to route came from.
enum Origin<'a> {
    /// A service of this process.
    Local,
    /// A process on the bus socket, by routing id.
    Remote(&'a [u8]),
}

/// A connection of the bus socket, as the rate-limited log names sources: `bus:routing id`.
fn source(bus: &str, routing_id: &[u8]) -> String {
    use bitcoin::hex::DisplayHex;
    format!("{bus}:{}", routing_id.to_lower_hex_string())
}

impl Bus {
    /// A new, empty bus called `name` (`api`, `msg`, ...), whose requests time out after `timeout`
    /// (at most [`limits::REQUEST_TIMEOUT`]; each progress message restarts the clock), each
    /// source holding at most [`limits::MAX_PENDING_PER_SOURCE`] of them.
    pub fn new(name: &'static str, timeout: Duration) -> Bus {
        Bus::with_share(name, timeout, limits::MAX_PENDING_PER_SOURCE)
    }

    /// [`Bus::new`] with `per_source` requests in flight at most per source (1 to
    /// [`limits::MAX_PENDING`]): beyond it that source gets `BUSY` at once, while the others are
    /// still served.
    pub fn with_share(name: &'static str, timeout: Duration, per_source: usize) -> Bus {
        Bus {
            inner: Arc::new(Inner {
                name,
                per_source: per_source.clamp(1, limits::MAX_PENDING),
                timeout: timeout.min(limits::REQUEST_TIMEOUT),
                table: Mutex::new(Table::default()),
                stats: BusStats::default(),
            }),
        }
    }

    /// The bus name.
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// Counters.
    pub fn stats(&self) -> &BusStats {
        &self.inner.stats
    }

    /// Requests in flight.
    pub fn pending(&self) -> usize {
        self.table().pending.len()
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic never happens while the lock is held (no user code runs under it), but a
        // poisoned lock must not take the whole bus down: the table stays consistent.
        crate::sync::lock(&self.inner.table)
    }

    /// Registers a local service's mailbox under `id` (replacing any earlier one).
    pub fn register(&self, id: ServiceId, mailbox: Recipient<Deliver>) {
        let mut t = self.table();
        t.remote.remove(&id);
        t.local.insert(id, mailbox);
    }

    /// Sets the ids the node keeps for itself (besides the services registered here).
    pub fn reserve(&self, reserved: Arc<Reserved>) {
        self.table().reserved = reserved;
    }

    /// Removes a local service.
    pub fn unregister(&self, id: &ServiceId) {
        self.table().local.remove(id);
    }

    /// Installs (or removes) the socket thread's outbound queue. Remote routes are kept: a
    /// client that reconnects with the same routing id (docs/API.md) is reachable again as soon
    /// as the socket is back.
    pub fn set_outlet(&self, outlet: Option<Outlet>) {
        self.table().outlet = outlet;
    }

    /// Sends a message from a local service.
    pub fn send(&self, env: Envelope) {
        let mut t = self.table();
        self.route(&mut t, env, Origin::Local);
    }

    /// Sends the answer to a message that opened no request (a failure for a notification sent
    /// to a service that takes none): delivered without the request bookkeeping, which would
    /// drop it as a reply to no request.
    pub fn send_untracked(&self, env: Envelope) {
        let mut t = self.table();
        self.deliver_direct(&mut t, env);
    }

    /// Routes a message that arrived on the bus socket from `routing_id`.
    pub fn inbound(&self, routing_id: Vec<u8>, env: Envelope) {
        let mut t = self.table();
        if t.local.contains_key(&env.src) || t.reserved.holds(&env.src) {
            // Only the node's own services may use their ids; answer on the socket directly.
            let from = source(self.inner.name, &routing_id);
            if crate::lograte::REFUSED_SOURCES.allow(&from) {
                tracing::warn!(bus = self.inner.name, src = %env.src, ty = %format_args!("{:#06x}", env.msg.type_id()),
                id = env.request_id, "refused: the source id is kept by the node (0x2002)");
            }
            let reply = env.reply(Msg::failure(
                code::SPOOFED_SOURCE,
                format!("source {} is a service of this node", env.src),
            ));
            self.to_socket(&mut t, routing_id, &reply);
            self.inner.stats.bounced.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.remember(&mut t, env.src.clone(), routing_id.clone());
        self.route(&mut t, env, Origin::Remote(&routing_id));
    }

    /// Answers a request whose handler failed while handling it (if still in flight).
    pub fn fail_request(&self, handler: &ServiceId, requester: &ServiceId, id: u64, why: &str) {
        let mut t = self.table();
        let key = (handler.clone(), requester.clone(), id);
        if t.close(&key) {
            let reply = Envelope {
                src: handler.clone(),
                dst: requester.clone(),
                request_id: id,
                msg: Msg::failure(code::SERVICE_FAILED, why),
            };
            self.deliver_direct(&mut t, reply);
        }
    }

    /// Answers every request past its deadline with a timeout failure.
    pub fn expire(&self, now: Instant) -> usize {
        let mut t = self.table();
        let expired: Vec<PendingKey> = t
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &expired {
            t.close(key);
            let (handler, requester, id) = key.clone();
            let why = format!(
                "{handler} did not answer within {} ms",
                self.inner.timeout.as_millis()
            );
            let reply = Envelope {
                src: handler,
                dst: requester,
                request_id: id,
                msg: Msg::failure(code::TIMEOUT, why),
            };
            self.deliver_direct(&mut t, reply);
        }
        self.inner
            .stats
            .timeouts
            .fetch_add(expired.len() as u64, Ordering::Relaxed);
        expired.len()
    }

    /// Answers every request in flight with `code` (node shutdown).
    pub fn fail_all(&self, code: Code, why: &str) {
        let mut t = self.table();
        let keys: Vec<PendingKey> = t.pending.drain().map(|(k, _)| k).collect();
        t.per_source.clear();
        for (handler, requester, id) in keys {
            let reply = Envelope {
                src: handler,
                dst: requester,
                request_id: id,
                msg: Msg::failure(code, why),
            };
            self.deliver_direct(&mut t, reply);
        }
    }

    fn remember(&self, t: &mut Table, id: ServiceId, routing_id: Vec<u8>) {
        let now = Instant::now();
        if let Some(r) = t.remote.get_mut(&id) {
            r.last_seen = now;
            if r.routing_id != routing_id {
                r.routing_id = routing_id;
            }
            return;
        }
        if t.remote.len() >= limits::MAX_REMOTE_ROUTES {
            let oldest = t
                .remote
                .iter()
                .min_by_key(|(_, r)| r.last_seen)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                t.remote.remove(&k);
            }
        }
        t.remote.insert(
            id,
            Remote {
                routing_id,
                last_seen: now,
            },
        );
    }

    fn route(&self, t: &mut Table, env: Envelope, origin: Origin) {
        let key = match env.msg.kind() {
            MsgKind::Final | MsgKind::Progress => {
                let key = (env.src.clone(), env.dst.clone(), env.request_id);
                let open = if env.msg.kind() == MsgKind::Final {
                    t.close(&key)
                } else if let Some(p) = t.pending.get_mut(&key) {
                    // Progress shows the handler is alive: the deadline moves on.
                    p.deadline = Instant::now() + self.inner.timeout;
                    true
                } else {
                    false
                };
                if !open {
                    // Late (the requester already got a failure), duplicate, or never asked.
                    // Never answered: a failure could be taken for the answer to a request of
                    // the same id, and two parties could bounce replies forever.
                    self.inner
                        .stats
                        .late_replies
                        .fetch_add(1, Ordering::Relaxed);
                    match origin {
                        Origin::Remote(routing_id) => {
                            let from = source(self.inner.name, routing_id);
                            if crate::lograte::STRAY_REPLIES.allow(&from) {
                                tracing::warn!(bus = self.inner.name, src = %env.src,
                                    dst = %env.dst, ty = %format_args!("{:#06x}", env.msg.type_id()),
                                    id = env.request_id,
                                    "dropped: a reply type that answers no request in flight");
                            }
                        }
                        Origin::Local => tracing::debug!(bus = self.inner.name, src = %env.src,
                            dst = %env.dst, id = env.request_id,
                            "reply to no request in flight dropped"),
                    }
                    return;
                }
                None
            }
            MsgKind::Request => {
                let key = (env.dst.clone(), env.src.clone(), env.request_id);
                if t.pending.contains_key(&key) {
                    let why = format!("request id {} is already in flight", env.request_id);
                    return self.bounce(t, &env, code::MALFORMED, why);
                }
                let source = match origin {
                    Origin::Local => Source::Local(env.src.clone()),
                    Origin::Remote(rid) => Source::Remote(rid.to_vec()),
                };
                let held = t.per_source.get(&source).copied().unwrap_or(0);
                if held >= self.inner.per_source {
                    let who = match &source {
                        Source::Local(id) => id.to_string(),
                        Source::Remote(_) => "this connection".to_string(),
                    };
                    let why = format!(
                        "{held} requests in flight from {who} on the {} bus, its share \
                         (bus.max_requests_per_source)",
                        self.inner.name
                    );
                    return self.bounce(t, &env, code::BUSY, why);
                }
                if t.pending.len() >= limits::MAX_PENDING {
                    let why = format!("{} requests in flight on the bus", t.pending.len());
                    return self.bounce(t, &env, code::BUSY, why);
                }
                Some((key, source))
            }
            MsgKind::OneWay => None,
        };
        let kind = env.msg.kind();
        match self.deliver(t, env) {
            Ok(()) => {
                if let Some((key, source)) = key {
                    t.open(key, Instant::now() + self.inner.timeout, source);
                }
            }
            Err(undelivered) => {
                let (env, ApiError { code, message: why }) = *undelivered;
                if kind == MsgKind::Final || kind == MsgKind::Progress {
                    // The requester is gone; nobody to tell.
                    self.inner.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(bus = self.inner.name, dst = %env.dst, "reply undeliverable: {why}");
                } else {
                    if let Origin::Remote(_) = origin {
                        tracing::debug!(bus = self.inner.name, src = %env.src, "bounced: {why}");
                    }
                    self.bounce(t, &env, code, why);
                }
            }
        }
    }

    /// Hands a message to its destination, or says why not.
    fn deliver(&self, t: &mut Table, env: Envelope) -> Result<(), Box<Undelivered>> {
        if let Some(mailbox) = t.local.get(&env.dst) {
            let deliver = Deliver {
                env,
                bus: self.clone(),
            };
            return match mailbox.try_send(deliver) {
                Ok(()) => {
                    self.inner.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
                Err(SendError::Full(d)) => {
                    let why = format!("{} is busy (mailbox full)", d.env.dst);
                    Err(Box::new((d.env, ApiError::new(code::BUSY, why))))
                }
                Err(SendError::Closed(d)) => {
                    let why = format!("{} is stopped", d.env.dst);
                    Err(Box::new((d.env, ApiError::new(code::NO_ROUTE, why))))
                }
            };
        }
        let Some(remote) = t.remote.get(&env.dst) else {
            let why = format!("no service {} on the {} bus", env.dst, self.inner.name);
            return Err(Box::new((env, ApiError::new(code::NO_ROUTE, why))));
        };
        let routing_id = remote.routing_id.clone();
        match self.socket_frames(routing_id, &env) {
            Ok(frames) => match t.outlet.as_mut().map(|o| o(frames)) {
                Some(Ok(())) => {
                    self.inner.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
                Some(Err(OutletError::Full)) => {
                    let why = format!("{} does not read its messages (queue full)", env.dst);
                    Err(Box::new((env, ApiError::new(code::BUSY, why))))
                }
                Some(Err(OutletError::Unreachable)) => {
                    t.remote.remove(&env.dst);
                    let why = format!("{} left the {} bus", env.dst, self.inner.name);
                    Err(Box::new((env, ApiError::new(code::NO_ROUTE, why))))
                }
                Some(Err(OutletError::Closed)) | None => {
                    // The bridge is restarting: the destination may be back in a moment.
                    let why = format!("{} bus socket is restarting; retry", self.inner.name);
                    Err(Box::new((env, ApiError::new(code::BUSY, why))))
                }
            },
            Err(why) => Err(Box::new((env, ApiError::new(code::TOO_LARGE, why)))),
        }
    }

    fn socket_frames(&self, routing_id: Vec<u8>, env: &Envelope) -> Result<Vec<Vec<u8>>, String> {
        let [src, dst, payload] = env
            .encode_frames()
            .map_err(|e| format!("message cannot be encoded: {e}"))?;
        Ok(vec![routing_id, src, dst, payload])
    }

    /// Sends a message straight to a routing id on the socket (no table lookup).
    fn to_socket(&self, t: &mut Table, routing_id: Vec<u8>, env: &Envelope) {
        let sent = self
            .socket_frames(routing_id, env)
            .ok()
            .and_then(|frames| t.outlet.as_mut().map(|o| o(frames)));
        if !matches!(sent, Some(Ok(()))) {
            self.inner.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Delivers a failure reply built by the router itself (it ends no tracked request).
    fn deliver_direct(&self, t: &mut Table, reply: Envelope) {
        if let Err(undelivered) = self.deliver(t, reply) {
            let (env, ApiError { message: why, .. }) = *undelivered;
            self.inner.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(bus = self.inner.name, dst = %env.dst, "failure undeliverable: {why}");
        }
    }

    /// Returns a message to its sender as a failure.
    fn bounce(&self, t: &mut Table, env: &Envelope, code: Code, why: String) {
        if matches!(env.msg.kind(), MsgKind::Final | MsgKind::Progress) {
            self.inner.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.inner.stats.bounced.fetch_add(1, Ordering::Relaxed);
        self.deliver_direct(t, env.reply(Msg::failure(code, why)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A test service that forwards what it receives to a channel.
    struct Probe(mpsc::Sender<Envelope>);
    impl Actor for Probe {
        type Context = Context<Self>;
    }
    impl Handler<Deliver> for Probe {
        type Result = ();
        fn handle(&mut self, d: Deliver, _: &mut Context<Self>) {
            let _ = self.0.send(d.env);
        }
    }

    fn env(src: ServiceId, dst: ServiceId, id: u64, msg: Msg) -> Envelope {
        Envelope {
            src,
            dst,
            request_id: id,
            msg,
        }
    }

    fn recv(rx: &mpsc::Receiver<Envelope>) -> Envelope {
        rx.recv_timeout(Duration::from_secs(5)).expect("a message")
    }

    #[actix_rt::test]
    async fn requests_get_exactly_one_reply() {
        let bus = Bus::new("ctl", Duration::from_millis(50));
        let (atx, arx) = mpsc::channel();
        let (btx, brx) = mpsc::channel();
        let a = ServiceId::named("a").unwrap();
        let b = ServiceId::named("b").unwrap();
        bus.register(a.clone(), Probe(atx).start().recipient());
        bus.register(b.clone(), Probe(btx).start().recipient());

        // Absent destination: bounced to the sender.
        bus.send(env(a.clone(), ServiceId::Lnpd, 1, Msg::GetInfo));
        actix_rt::task::yield_now().await;
        let bounced = recv(&arx);
        assert!(matches!(
            bounced.msg,
            Msg::Failure {
                code: code::NO_ROUTE,
                ..
            }
        ));
        assert_eq!(bounced.request_id, 1);

        // Request answered once; the second answer is dropped.
        bus.send(env(a.clone(), b.clone(), 2, Msg::GetInfo));
        actix_rt::task::yield_now().await;
        let req = recv(&brx);
        bus.send(req.reply(Msg::Success(None)));
        bus.send(req.reply(Msg::Success(Some("again".into()))));
        actix_rt::task::yield_now().await;
        assert_eq!(recv(&arx).msg, Msg::Success(None));
        assert!(arx.recv_timeout(Duration::from_millis(50)).is_err());
        assert_eq!(bus.stats().late_replies.load(Ordering::Relaxed), 1);

        // Same request id twice while in flight: the second is refused.
        bus.send(env(a.clone(), b.clone(), 3, Msg::GetInfo));
        bus.send(env(a.clone(), b.clone(), 3, Msg::GetInfo));
        actix_rt::task::yield_now().await;
        let _ = recv(&brx);
        assert!(matches!(
            recv(&arx).msg,
            Msg::Failure {
                code: code::MALFORMED,
                ..
            }
        ));

        // Handler crash: failure to the requester; its late reply is dropped.
        bus.fail_request(&b, &a, 3, "panic: boom");
        actix_rt::task::yield_now().await;
        assert!(matches!(
            recv(&arx).msg,
            Msg::Failure {
                code: code::SERVICE_FAILED,
                ..
            }
        ));
        bus.send(env(b.clone(), a.clone(), 3, Msg::Success(None)));
        assert!(arx.recv_timeout(Duration::from_millis(50)).is_err());

        // Deadline: a timeout failure.
        bus.send(env(a.clone(), b.clone(), 4, Msg::GetInfo));
        assert_eq!(bus.expire(Instant::now() + Duration::from_secs(1)), 1);
        actix_rt::task::yield_now().await;
        assert!(matches!(
            recv(&arx).msg,
            Msg::Failure {
                code: code::TIMEOUT,
                ..
            }
        ));
        assert_eq!(bus.pending(), 0);
    }

    #[actix_rt::test]
    async fn remote_sources_cannot_spoof_local_ids() {
        let bus = Bus::new("api", Duration::from_secs(1));
        let (tx, rx) = mpsc::channel();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let sink = sent.clone();
        bus.set_outlet(Some(Box::new(move |frames| {
            sink.lock().unwrap().push(frames);
            Ok(())
        })));
        bus.register(ServiceId::Lnpd, Probe(tx).start().recipient());
        bus.inbound(
            b"peer".to_vec(),
            env(ServiceId::Lnpd, ServiceId::Lnpd, 5, Msg::GetInfo),
        );
        let frames = sent.lock().unwrap().pop().expect("a reply on the socket");
        assert_eq!(frames[0], b"peer");
        let reply = Envelope::decode_frames(&frames[1..]).unwrap();
        assert!(matches!(
            reply.msg,
            Msg::Failure {
                code: code::SPOOFED_SOURCE,
                ..
            }
        ));
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());

        // A genuine client is remembered and answered through the socket.
        let client = ServiceId::Client(9);
        bus.inbound(
            b"c9".to_vec(),
            env(client.clone(), ServiceId::Lnpd, 6, Msg::GetInfo),
        );
        actix_rt::task::yield_now().await;
        let req = recv(&rx);
        bus.send(req.reply(Msg::Success(None)));
        let frames = sent.lock().unwrap().pop().expect("a reply on the socket");
        assert_eq!(frames[0], b"c9");
    }

    #[actix_rt::test]
    async fn one_source_cannot_hold_more_than_its_share_of_the_requests_in_flight() {
        let bus = Bus::with_share("api", Duration::from_secs(5), 3);
        let sent = Arc::new(Mutex::new(Vec::new()));
        let sink = sent.clone();
        bus.set_outlet(Some(Box::new(move |frames| {
            sink.lock().unwrap().push(frames);
            Ok(())
        })));
        // A mute service: it takes requests and never answers.
        let (tx, rx) = mpsc::channel();
        let mute = ServiceId::named("mute").unwrap();
        bus.register(mute.clone(), Probe(tx).start().recipient());
        let failures = |sent: &Arc<Mutex<Vec<Vec<Vec<u8>>>>>, rid: &[u8]| -> Vec<(Code, String)> {
            let frames = std::mem::take(&mut *sent.lock().unwrap());
            frames
                .iter()
                .filter(|f| f[0] == rid)
                .filter_map(|f| match Envelope::decode_frames(&f[1..]).unwrap().msg {
                    Msg::Failure { code, message } => Some((code, message)),
                    _ => None,
                })
                .collect()
        };
        // One connection sends five, with a different source id each time: three get in, the
        // other two are BUSY at once.
        for i in 0..5u64 {
            let e = env(ServiceId::Client(i), mute.clone(), i, Msg::GetInfo);
            bus.inbound(b"flooder".to_vec(), e);
        }
        let busy = failures(&sent, b"flooder");
        assert_eq!(busy.len(), 2, "{busy:?}");
        assert!(busy
            .iter()
            .all(|(c, m)| *c == code::BUSY && m.contains("its share")));
        // Another connection, and a local service, are still served.
        bus.inbound(
            b"other".to_vec(),
            env(ServiceId::Client(9), mute.clone(), 1, Msg::GetInfo),
        );
        let local = ServiceId::named("local").unwrap();
        let (ltx, lrx) = mpsc::channel();
        bus.register(local.clone(), Probe(ltx).start().recipient());
        for i in 0..4u64 {
            bus.send(env(local.clone(), mute.clone(), i, Msg::GetInfo));
        }
        actix_rt::task::yield_now().await;
        assert!(failures(&sent, b"other").is_empty());
        let got: Vec<Envelope> =
            std::iter::from_fn(|| rx.recv_timeout(Duration::from_millis(200)).ok()).collect();
        assert_eq!(
            got.len(),
            3 + 1 + 3,
            "three of the flooder's, the other's, three local"
        );
        assert!(matches!(
            recv(&lrx).msg,
            Msg::Failure {
                code: code::BUSY,
                ..
            }
        ));
        // An answer frees a place in the flooder's share.
        bus.send(got[0].reply(Msg::Success(None)));
        let e = env(ServiceId::Client(7), mute.clone(), 7, Msg::GetInfo);
        bus.inbound(b"flooder".to_vec(), e);
        assert!(failures(&sent, b"flooder").is_empty());
        assert_eq!(bus.pending(), 3 + 1 + 3);
        // Expiry gives the shares back too.
        assert_eq!(bus.expire(Instant::now() + Duration::from_secs(10)), 7);
        assert!(bus.table().per_source.is_empty());
    }
}
