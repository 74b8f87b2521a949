//! The peer registry shared by `lnpd`, the listeners and every `peerd`: who is connected, the
//! caps on peers and handshakes, the listening sockets, and which services on the MSG bus want
//! which Lightning messages. It lives outside the actors so that a restart of `lnpd` loses
//! neither peers nor listeners.

use super::bifrostd::{self, Bifrost, BifrostCmd, Bifrostd};
use super::peerd::{self, Peer, PeerCmd, Peerd};
use crate::actors::admission::{self, AdmissionConfig, Newcomer, Slot, Verdict};
use crate::actors::conn::{Command, Origin};
use crate::actors::limits::MAX_PEER_SUBSCRIPTIONS;
use crate::actors::tcp::{self, Counters};
use crate::bus::{Bus, Subscriber, Subscribers};
use crate::lograte;
use crate::wire::api::lnp::{AppMessage, Direction, LnpMsg, PeerInfo, PeerMessage, Protocol};
use crate::wire::api::{code, Detail, Envelope, Msg, ServiceId};
use crate::wire::ln::peer::SessionConfig;
use crate::wire::node_id::NodeId;
use actix::prelude::*;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Settings of the peer layer (`[peers]` of config/lnp.toml).
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// Session timers and chain.
    pub session: SessionConfig,
    /// The caps on connections and handshakes (a handshake lasts until `init` is accepted).
    pub admission: AdmissionConfig,
}

/// The actor of a connection: a Lightning `peerd` or a Bifrost connection.
#[derive(Clone)]
pub enum PeerActor {
    /// BOLT-1 over BOLT-8.
    Lightning(Addr<Peerd>),
    /// LNPBP-50 over Brontozaur.
    Bifrost(Addr<Bifrostd>),
}

impl PeerActor {
    /// Lightning or Bifrost.
    pub fn protocol(&self) -> Protocol {
        match self {
            PeerActor::Lightning(_) => Protocol::Lightning,
            PeerActor::Bifrost(_) => Protocol::Bifrost,
        }
    }

    /// Asks the connection to close (answering `reply` once it has); false if its mailbox is
    /// full.
    pub fn disconnect(&self, reason: String, reply: Option<(Bus, Envelope)>) -> bool {
        match self {
            PeerActor::Lightning(a) => a
                .try_send(Command(PeerCmd::Disconnect { reply, reason }))
                .is_ok(),
            PeerActor::Bifrost(a) => a
                .try_send(Command(BifrostCmd::Disconnect { reply, reason }))
                .is_ok(),
        }
    }

    /// Pings the peer (`pong_size` bytes asked back); the connection answers `env` with the
    /// round trip. False if its mailbox is full.
    pub fn ping(&self, bus: Bus, env: Envelope, pong_size: u16) -> bool {
        match self {
            PeerActor::Lightning(a) => a
                .try_send(Command(PeerCmd::Ping {
                    bus,
                    env,
                    num_pong_bytes: pong_size,
                }))
                .is_ok(),
            PeerActor::Bifrost(a) => a
                .try_send(Command(BifrostCmd::Ping {
                    bus,
                    env,
                    pong_size,
                }))
                .is_ok(),
        }
    }

    /// Makes the connection's handler panic (fault injection); false if its mailbox is full.
    pub fn crash(&self, requested_by: String) -> bool {
        match self {
            PeerActor::Lightning(a) => a.try_send(Command(PeerCmd::Crash { requested_by })).is_ok(),
            PeerActor::Bifrost(a) => a
                .try_send(Command(BifrostCmd::Crash { requested_by }))
                .is_ok(),
        }
    }

    fn service_name(&self, node_id: Option<&NodeId>, conn: u64) -> String {
        match self {
            PeerActor::Lightning(_) => peerd::service_name(node_id, conn),
            PeerActor::Bifrost(_) => bifrostd::service_name(node_id, conn),
        }
    }
}

/// The requests waiting on one connection, of either protocol: the `connect` to answer once
/// ready, the `ping`s in order, the `disconnect` to answer once it has left.
#[derive(Default)]
pub struct Waiting {
    /// `connect` (answered when the peer is ready, or fails).
    pub connect: Option<(Bus, Envelope)>,
    /// `ping`s waiting for their pong, in order.
    pub pings: std::collections::VecDeque<(Bus, Envelope)>,
    /// `disconnect` (answered once the connection has left the registry).
    pub disconnect: Option<(Bus, Envelope)>,
}

struct Entry {
    actor: PeerActor,
    direction: Direction,
    addr: String,
    node_id: Option<NodeId>,
    ready_since: Option<u64>,
    features: Vec<u8>,
    counters: Arc<Counters>,
    rtt_us: Option<u64>,
    /// The remote IP (inbound), for the per-address caps.
    ip: Option<IpAddr>,
    opened: Instant,
    /// Whether it came through an `onion_inbound` listener.
    onion: bool,
    /// Whether it was evicted and is being closed: no longer counted by admission.
    closing: bool,
    /// Whether its `init` arrived (a Bifrost peer we dialled may be ready without).
    init: bool,
}

struct Inner {
    next_conn: u64,
    peers: BTreeMap<u64, Entry>,
    listening: Vec<(SocketAddr, actix_rt::task::JoinHandle<()>)>,
    bifrost_listening: Vec<(SocketAddr, actix_rt::task::JoinHandle<()>)>,
    /// Services that take Lightning messages, with their types.
    subscriptions: Subscribers<Vec<u16>>,
    /// Services that take Bifrost app messages, with their app ids.
    app_subscriptions: Subscribers<Vec<u16>>,
}

/// Where a Lightning peer's channel messages go (`channeld`): its readiness, its messages of
/// the types it wants, its departure. Calls for one peer come in the peer's order.
pub trait ChannelSink: Send + Sync {
    /// Whether the sink takes messages of `type_id`.
    fn wants(&self, type_id: u16) -> bool;
    /// A Lightning peer is ready (its `init` features, big-endian).
    fn connected(&self, node: NodeId, features: Vec<u8>, inbound: bool);
    /// A message of a type the sink wants; false if it could not take it (the connection is
    /// then closed: the reconnection's `channel_reestablish` repairs what was lost).
    fn message(&self, node: NodeId, type_id: u16, payload: Vec<u8>) -> bool;
    /// A ready peer's connection closed.
    fn disconnected(&self, node: NodeId);
}

/// The registry.
pub struct Registry {
    inner: Mutex<Inner>,
    /// Settings.
    pub config: PeerConfig,
    secret: SecretKey,
    channels: std::sync::OnceLock<Arc<dyn ChannelSink>>,
}

impl Registry {
    /// An empty registry for a node with key `secret`.
    pub fn new(config: PeerConfig, secret: SecretKey) -> Arc<Registry> {
        Arc::new(Registry {
            inner: Mutex::new(Inner {
                next_conn: 0,
                peers: BTreeMap::new(),
                listening: Vec::new(),
                bifrost_listening: Vec::new(),
                subscriptions: Subscribers::new("services subscribed", MAX_PEER_SUBSCRIPTIONS),
                app_subscriptions: Subscribers::new(
                    "services take Bifrost apps",
                    MAX_PEER_SUBSCRIPTIONS,
                ),
            }),
            config,
            secret,
            channels: std::sync::OnceLock::new(),
        })
    }

    /// Sets where channel messages go (once, when the node has `channeld`).
    pub fn set_channels(&self, sink: Arc<dyn ChannelSink>) {
        let _ = self.channels.set(sink);
    }

    /// Where channel messages go, if anywhere.
    pub fn channels(&self) -> Option<&Arc<dyn ChannelSink>> {
        self.channels.get()
    }

    /// Queues a Lightning message to the ready peer `node_id`; false if it is not connected or
    /// its mailbox is full (then it is disconnected: a lost message would desynchronise a
    /// channel, which the reconnection's `channel_reestablish` repairs).
    pub fn deliver(&self, node_id: &NodeId, type_id: u16, payload: Vec<u8>) -> bool {
        let Some(a) = self.find_lightning(node_id) else {
            return false;
        };
        if a.try_send(Command(PeerCmd::Deliver { type_id, payload }))
            .is_ok()
        {
            return true;
        }
        let _ = a.try_send(Command(PeerCmd::Disconnect {
            reply: None,
            reason: "its mailbox is full: a channel message could not be queued".into(),
        }));
        false
    }

    /// The ready Lightning peers: node id, `init` features, inbound.
    pub fn ready_lightning(&self) -> Vec<(NodeId, Vec<u8>, bool)> {
        self.lock()
            .peers
            .values()
            .filter(|e| e.ready_since.is_some() && e.actor.protocol() == Protocol::Lightning)
            .filter_map(|e| {
                Some((
                    e.node_id?,
                    e.features.clone(),
                    e.direction == Direction::Inbound,
                ))
            })
            .collect()
    }

    /// The address of the ready outbound Lightning connection to `node_id`.
    pub fn outbound_addr(&self, node_id: &NodeId) -> Option<String> {
        self.lock()
            .peers
            .values()
            .find(|e| {
                e.node_id.as_ref() == Some(node_id)
                    && e.actor.protocol() == Protocol::Lightning
                    && e.direction == Direction::Outbound
            })
            .map(|e| e.addr.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        crate::sync::lock(&self.inner)
    }

    /// The node's static key (BOLT-8).
    pub fn secret(&self) -> SecretKey {
        self.secret
    }

    /// The remote IP of connection `conn` if it is inbound and has not completed its handshake
    /// (its close is then a bad-peer event for the rate-limited log).
    pub fn pending_inbound_ip(&self, conn: u64) -> Option<IpAddr> {
        let t = self.lock();
        let e = t.peers.get(&conn)?;
        if e.direction == Direction::Inbound && e.ready_since.is_none() {
            e.ip
        } else {
            None
        }
    }

    /// Binds `addr` and accepts peers of `kind` (Lightning or Bifrost) on it.
    pub fn bind(self: &Arc<Self>, addr: &str, kind: Protocol) -> Result<SocketAddr, String> {
        let me = self.clone();
        let what = if kind == Protocol::Bifrost {
            "Bifrost peers"
        } else {
            "Lightning peers"
        };
        let (local, task) = tcp::listen(addr, what, move |stream, from| {
            me.accepted(kind, stream, from)
        })?;
        let mut t = self.lock();
        if kind == Protocol::Bifrost {
            t.bifrost_listening.push((local, task));
        } else {
            t.listening.push((local, task));
        }
        Ok(local)
    }

    /// The addresses listened on for Lightning peers.
    pub fn listening(&self) -> Vec<SocketAddr> {
        self.lock().listening.iter().map(|(a, _)| *a).collect()
    }

    /// The addresses listened on for Bifrost peers.
    pub fn bifrost_listening(&self) -> Vec<SocketAddr> {
        self.lock()
            .bifrost_listening
            .iter()
            .map(|(a, _)| *a)
            .collect()
    }

    fn accepted(self: &Arc<Self>, kind: Protocol, stream: tokio::net::TcpStream, addr: SocketAddr) {
        let cfg = &self.config.admission;
        let onion = cfg.is_onion(stream.local_addr().ok());
        let newcomer = Newcomer {
            ip: addr.ip(),
            onion,
        };
        let verdict = {
            let t = self.lock();
            let slots = t
                .peers
                .iter()
                .filter(|(_, e)| !e.closing)
                .map(|(conn, e)| Slot {
                    conn: *conn,
                    ip: e.ip,
                    inbound: e.direction == Direction::Inbound,
                    ready: e.ready_since.is_some(),
                    opened: e.opened,
                    bytes_in: e.counters.bytes_in.load(Ordering::Relaxed),
                    onion: e.onion,
                });
            admission::admit(cfg, newcomer, Instant::now(), slots)
        };
        match verdict {
            Verdict::Admit => {}
            Verdict::Evict(conn) => {
                let victim = self.lock().peers.get_mut(&conn).map(|e| {
                    e.closing = true;
                    (e.actor.clone(), e.addr.clone(), e.ip)
                });
                if let Some((actor, from, ip)) = victim {
                    let ip = ip.map(|ip| ip.to_string()).unwrap_or_default();
                    if lograte::EVICTED_HANDSHAKES.allow(&ip) {
                        tracing::warn!(%from, newcomer = %addr,
                            "evicting the slowest pending handshake for a newcomer");
                    }
                    actor.disconnect(
                        "evicted: the slowest handshake, for a newcomer".into(),
                        None,
                    );
                }
            }
            Verdict::Refuse(why) => {
                if lograte::REFUSED_CONNECTIONS.allow(&addr.ip().to_string()) {
                    tracing::warn!(from = %addr, "refusing a connection: too many {}", why.as_str());
                }
                return;
            }
        }
        self.spawn(kind, Origin::Inbound(stream, addr), onion, None, None);
    }

    fn spawn(
        self: &Arc<Self>,
        kind: Protocol,
        origin: Origin,
        onion: bool,
        remote: Option<PublicKey>,
        reply: Option<(Bus, Envelope)>,
    ) {
        let (direction, addr, ip) = match &origin {
            Origin::Inbound(_, a) => (Direction::Inbound, a.to_string(), Some(a.ip())),
            Origin::Outbound(a) => (Direction::Outbound, a.clone(), None),
        };
        let node_id = remote.map(NodeId::from);
        let mut t = self.lock();
        let conn = t.next_conn;
        t.next_conn += 1;
        // Registered before it starts, so its first events find the entry.
        let (actor, counters) = if kind == Protocol::Bifrost {
            let peer = Bifrostd::new(Bifrost::new(conn, self.clone(), remote, reply), origin);
            let counters = peer.counters();
            (PeerActor::Bifrost(Bifrostd::start(peer)), counters)
        } else {
            let peer = Peerd::new(Peer::new(conn, self.clone(), remote, reply), origin);
            let counters = peer.counters();
            (PeerActor::Lightning(Peerd::start(peer)), counters)
        };
        t.peers.insert(
            conn,
            Entry {
                actor,
                direction,
                addr,
                node_id,
                ready_since: None,
                features: Vec::new(),
                counters,
                rtt_us: None,
                ip,
                opened: Instant::now(),
                onion,
                closing: false,
                init: false,
            },
        );
    }

    /// Connects to `remote` at `addr` and answers `reply` when ready or failed. A peer already
    /// connected (or connecting) is not connected twice.
    pub fn connect(
        self: &Arc<Self>,
        kind: Protocol,
        remote: PublicKey,
        addr: String,
        reply: (Bus, Envelope),
    ) {
        let id = NodeId::from(remote);
        let found = self
            .lock()
            .peers
            .values()
            .find(|e| e.node_id == Some(id) && e.actor.protocol() == kind)
            .map(|e| (e.ready_since.is_some(), e.addr.clone()));
        if let Some((ready, at)) = found {
            let state = if ready {
                "already connected"
            } else {
                "already connecting"
            };
            let text = format!("{state} to {id} at {at}");
            reply.0.send(reply.1.reply(Msg::Success(Some(text))));
            return;
        }
        self.spawn(
            kind,
            Origin::Outbound(addr),
            false,
            Some(remote),
            Some(reply),
        );
    }

    /// Dials `remote` at `addr` (Lightning) unless a connection to it exists or is being made;
    /// nobody is answered (`channeld` reconnecting its channel peers). Call on the actix
    /// thread.
    pub fn dial(self: &Arc<Self>, remote: PublicKey, addr: String) {
        let id = NodeId::from(remote);
        let known = self
            .lock()
            .peers
            .values()
            .any(|e| e.node_id == Some(id) && e.actor.protocol() == Protocol::Lightning);
        if !known {
            self.spawn(
                Protocol::Lightning,
                Origin::Outbound(addr),
                false,
                Some(remote),
                None,
            );
        }
    }

    /// A peer authenticated as `node_id`. An older connection to the same node with the same
    /// protocol is replaced (the remote side reconnected; the old socket is likely dead).
    pub fn authenticated(&self, conn: u64, node_id: NodeId) {
        let mut t = self.lock();
        let Some(kind) = t.peers.get(&conn).map(|e| e.actor.protocol()) else {
            return;
        };
        let old: Vec<PeerActor> = t
            .peers
            .iter()
            .filter(|(c, e)| {
                **c != conn && e.node_id == Some(node_id) && e.actor.protocol() == kind
            })
            .map(|(_, e)| e.actor.clone())
            .collect();
        if let Some(e) = t.peers.get_mut(&conn) {
            e.node_id = Some(node_id);
        }
        drop(t);
        for actor in old {
            actor.disconnect(
                "replaced by a new connection from the same node".into(),
                None,
            );
        }
    }

    /// A peer is ready: its `init` was accepted (`init`), or a Bifrost peer we dialled that
    /// sends none answered our ping. A late `init` keeps the time it became ready.
    pub fn ready(&self, conn: u64, features: Vec<u8>, since: u64, init: bool) {
        if let Some(e) = self.lock().peers.get_mut(&conn) {
            e.ready_since.get_or_insert(since);
            e.features = features;
            e.init |= init;
        }
    }

    /// The socket address of an outbound connection is known.
    pub fn set_addr(&self, conn: u64, addr: String) {
        if let Some(e) = self.lock().peers.get_mut(&conn) {
            e.addr = addr;
        }
    }

    /// A ping was answered.
    pub fn rtt(&self, conn: u64, us: u64) {
        if let Some(e) = self.lock().peers.get_mut(&conn) {
            e.rtt_us = Some(us);
        }
    }

    /// A connection ended.
    pub fn remove(&self, conn: u64) {
        self.lock().peers.remove(&conn);
    }

    /// Connection `conn` (named `name`) ended with `reason` (`failure`: a handler failed): logs
    /// it (a stranger's failed handshake at most a few times per address, src/lograte.rs),
    /// answers what waits on it, and removes it.
    pub fn closed(&self, conn: u64, name: &str, reason: &str, failure: bool, w: &mut Waiting) {
        let logged = match self.pending_inbound_ip(conn) {
            Some(ip) => lograte::FAILED_HANDSHAKES.allow(&ip.to_string()),
            None => true,
        };
        if logged && failure {
            tracing::warn!(peer = %name, "connection dropped: {reason}");
        } else if logged {
            tracing::info!(peer = %name, "connection closed: {reason}");
        }
        if let Some((bus, env)) = w.connect.take() {
            bus.send(env.reply(Msg::failure(code::PEER_FAILED, reason)));
        }
        for (bus, env) in w.pings.drain(..) {
            let why = format!("connection closed before the pong: {reason}");
            bus.send(env.reply(Msg::failure(code::PEER_FAILED, why)));
        }
        self.remove(conn);
        if let Some((bus, env)) = w.disconnect.take() {
            bus.send(env.reply(Msg::Success(Some(format!("disconnected {name}")))));
        }
    }

    /// The actor of a peer, by node id and protocol.
    pub fn find(&self, node_id: &NodeId, kind: Protocol) -> Option<PeerActor> {
        let t = self.lock();
        let e = t
            .peers
            .values()
            .find(|e| e.node_id.as_ref() == Some(node_id) && e.actor.protocol() == kind)?;
        Some(e.actor.clone())
    }

    /// The actor of a Lightning peer, by node id.
    pub fn find_lightning(&self, node_id: &NodeId) -> Option<Addr<Peerd>> {
        match self.find(node_id, Protocol::Lightning)? {
            PeerActor::Lightning(a) => Some(a),
            PeerActor::Bifrost(_) => None,
        }
    }

    /// The actor of a peer, by service name (`peerd-...`, `bifrost-...`).
    pub fn find_service(&self, name: &str) -> Option<PeerActor> {
        let t = self.lock();
        let (_, e) = t
            .peers
            .iter()
            .find(|(c, e)| e.actor.service_name(e.node_id.as_ref(), **c) == name)?;
        Some(e.actor.clone())
    }

    /// Ready peers, for `peers`.
    pub fn list(&self) -> Vec<PeerInfo> {
        let t = self.lock();
        t.peers
            .iter()
            .filter_map(|(conn, e)| {
                let node_id = e.node_id?;
                Some(PeerInfo {
                    node_id,
                    addr: e.addr.clone(),
                    direction: e.direction,
                    features: e.features.clone(),
                    connected_since: e.ready_since?,
                    bytes_in: e.counters.bytes_in.load(Ordering::Relaxed),
                    bytes_out: e.counters.bytes_out.load(Ordering::Relaxed),
                    ping_rtt_us: e.rtt_us,
                    service: e.actor.service_name(Some(&node_id), *conn),
                    protocol: e.actor.protocol(),
                    init: e.init,
                })
            })
            .collect()
    }

    /// `info` details: `listening` ("host:port" each) and `peers` (ready connections).
    pub fn details(&self) -> Vec<(String, Detail)> {
        let t = self.lock();
        let listening = t.listening.iter().map(|(a, _)| a.to_string()).collect();
        let bifrost = t
            .bifrost_listening
            .iter()
            .map(|(a, _)| a.to_string())
            .collect();
        let ready = t.peers.values().filter(|e| e.ready_since.is_some()).count();
        vec![
            ("listening".into(), Detail::List(listening)),
            ("bifrost_listening".into(), Detail::List(bifrost)),
            ("peers".into(), Detail::U64(ready as u64)),
        ]
    }

    /// Records (or replaces) which message types `service` wants; an empty list unsubscribes.
    pub fn subscribe(&self, bus: Bus, env: &Envelope, types: Vec<u16>) -> Result<(), String> {
        let mut t = self.lock();
        if types.is_empty() {
            t.subscriptions.remove(&env.src);
            return Ok(());
        }
        t.subscriptions.add(Subscriber::of(&bus, env), types)
    }

    /// Whether a service asked for messages of `type_id`.
    pub fn wants(&self, type_id: u16) -> bool {
        if self.channels().is_some_and(|c| c.wants(type_id)) {
            return true;
        }
        self.lock()
            .subscriptions
            .iter()
            .any(|(_, types)| types.contains(&type_id))
    }

    /// Sends a peer's message to every service that asked for its type.
    pub fn forward(&self, m: PeerMessage) {
        let type_id = m.type_id;
        let msg = Msg::Lnp(LnpMsg::PeerMessageIn(m));
        self.lock()
            .subscriptions
            .notify_if(&ServiceId::Lnpd, &msg, |types| types.contains(&type_id));
    }

    /// Records (or replaces) which Bifrost apps `service` takes; an empty list unsubscribes.
    pub fn subscribe_apps(&self, bus: Bus, env: &Envelope, apps: Vec<u16>) -> Result<(), String> {
        let mut t = self.lock();
        if apps.is_empty() {
            t.app_subscriptions.remove(&env.src);
            return Ok(());
        }
        t.app_subscriptions.add(Subscriber::of(&bus, env), apps)
    }

    /// Sends a Bifrost app message to every service that takes its app; false if none does
    /// (the peer is then told so).
    pub fn forward_app(&self, m: AppMessage) -> bool {
        let app = m.app;
        let msg = Msg::Lnp(LnpMsg::BifrostAppIn(m));
        let taken = self
            .lock()
            .app_subscriptions
            .notify_if(&ServiceId::Lnpd, &msg, |apps| apps.contains(&app));
        taken > 0
    }

    /// A service is gone from its bus (a notification bounced with `NO_ROUTE`).
    pub fn unsubscribe(&self, service: &ServiceId) {
        let mut t = self.lock();
        t.subscriptions.remove(service);
        t.app_subscriptions.remove(service);
    }
}
