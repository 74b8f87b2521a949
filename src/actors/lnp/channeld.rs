//! `channeld`: the LNP node's channels (the named service `channeld` on the CHNL and API
//! buses), with LDK as the channel engine ([`crate::ldk`]), our peers as its transport and a
//! BP node as its chain, wallet and broadcaster.
//!
//! - One **engine thread** owns the [`Engine`]: every call into LDK runs there, one at a time,
//!   so the calls for one peer never run concurrently. Its inputs (peers' readiness, messages
//!   and departures from `peerd`, API requests, blocks and replies from the BP node, a 1 s
//!   tick) come through one channel; after each, what LDK returned is carried out: messages
//!   to peers, notices to the CHNL subscribers, fundings and chain commands to the BP node.
//!   Monitor updates are durable inside LDK's calls (a synchronous `Persist` over `Storage`),
//!   so a message that leaves is always covered by what is on disk.
//! - One **chain thread** holds a DEALER on the BP node's API (`--bp`, `[chain] bp`): a
//!   heartbeat (`info` each second; silent for 3 s = unreachable, said in `info`), the
//!   filtered-block feed from the last block the manager saw (`subscribe_watches`, owner
//!   `lnp-<node id>`, filtered), LDK's `Filter` registrations as BP watches, broadcasts, fee
//!   rates (`get_fees`, each minute), fundings (`wallet_fund`) and the sweep address
//!   (`get_address` of `signd`). When the BP node comes back it subscribes again from the
//!   manager's best block, so no block is missed.
//! - A restart of `channeld` (a crash, `debug crash channeld`) stops both threads, opens the
//!   engine again from the store and disconnects the ready Lightning peers, so that every
//!   channel is reestablished on the reconnection.

use super::peers::{ChannelSink, Registry};
use crate::actors::service::{not_taken, Service, ServiceActor};
use crate::bus::client::{Client, ClientError, Dial, Liveness, DEAD_AFTER, HEARTBEAT};
use crate::bus::{Bus, Deliver, Subscriber, Subscribers};
use crate::ldk::codec::{self, Out};
use crate::ldk::engine::{self, ChainCmd, Engine, EngineConfig, FundingNeed, Notice, Payment};
use crate::storage::Storage;
use crate::sync::lock;
use crate::wire::api::bp::{BpMsg, WatchTarget};
use crate::wire::api::lnp::{ChannelEventInfo, ChannelInfo, LnpMsg, PaymentRecord};
use crate::wire::api::{code, Detail, Envelope, Msg, ServiceId, ServiceName};
use crate::wire::node_id::NodeId;
use actix::prelude::*;
use bitcoin::consensus::encode;
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, ScriptBuf};
use lightning::chain::BestBlock;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The service id of `channeld`.
pub fn id() -> ServiceId {
    crate::wire::api::lnp::CHANNELD
}

/// The most events of each kind a slow CHNL subscriber may miss is the bus's; at most this
/// many subscribers.
const MAX_SUBSCRIBERS: usize = 64;
/// Inputs waiting for the engine thread before peers' messages are refused (the peer is
/// disconnected; reestablish repairs the channel).
const MAX_INPUTS: usize = 4_096;

enum Input {
    Connected(NodeId, Vec<u8>, bool),
    Message(NodeId, u16, Vec<u8>),
    Disconnected(NodeId),
    Request(Bus, Envelope),
    Tip(BestBlock),
    Block(
        bitcoin::block::Header,
        u32,
        Vec<(usize, bitcoin::Transaction)>,
    ),
    Unblock(bitcoin::block::Header, u32),
    Funded(FundingNeed, Result<bitcoin::Transaction, String>),
    Fees(Vec<(u32, u64)>),
    SweepScript(ScriptBuf),
}

/// What `channeld` shares with `peerd` (the [`ChannelSink`]) and `info`: the current engine
/// thread's input, and the chain's state.
pub struct ChannelPort {
    tx: Mutex<Option<Sender<Input>>>,
    queued: std::sync::atomic::AtomicUsize,
    /// The BP node answered lately.
    pub reachable: AtomicBool,
    /// What the chain link says (the BP endpoint, or why there is none).
    pub chain: Mutex<String>,
    /// The engine's state, for `info` (`starting`, `ready`, or why it is not).
    pub engine: Mutex<String>,
    /// The best block the manager has seen (height, hash).
    pub best: Mutex<Option<(u32, BlockHash)>>,
    /// The feed must be subscribed again (a gap, a new engine).
    resubscribe: AtomicBool,
}

impl ChannelPort {
    fn new(chain: String) -> ChannelPort {
        ChannelPort {
            tx: Mutex::new(None),
            queued: Default::default(),
            reachable: AtomicBool::new(false),
            chain: Mutex::new(chain),
            engine: Mutex::new("starting".into()),
            best: Mutex::new(None),
            resubscribe: AtomicBool::new(true),
        }
    }

    fn send(&self, i: Input) -> bool {
        if self.queued.load(Ordering::Acquire) >= MAX_INPUTS {
            return false;
        }
        match &*lock(&self.tx) {
            Some(tx) => {
                self.queued.fetch_add(1, Ordering::AcqRel);
                tx.send(i).is_ok()
            }
            None => false,
        }
    }

    /// `info` details of the channels.
    pub fn details(&self) -> Vec<(String, Detail)> {
        let best = lock(&self.best).map(|(h, _)| h as u64).unwrap_or(0);
        vec![
            ("chain".into(), Detail::Text(lock(&self.chain).clone())),
            (
                "chain_reachable".into(),
                Detail::U64(self.reachable.load(Ordering::Acquire) as u64),
            ),
            (
                "channels_engine".into(),
                Detail::Text(lock(&self.engine).clone()),
            ),
            ("channels_height".into(), Detail::U64(best)),
        ]
    }
}

impl ChannelSink for ChannelPort {
    fn wants(&self, type_id: u16) -> bool {
        codec::TYPES.contains(&type_id) || codec::GOSSIP.contains(&type_id)
    }
    fn connected(&self, node: NodeId, features: Vec<u8>, inbound: bool) {
        self.send(Input::Connected(node, features, inbound));
    }
    fn message(&self, node: NodeId, type_id: u16, payload: Vec<u8>) -> bool {
        if codec::GOSSIP.contains(&type_id) {
            return true;
        }
        if !self.send(Input::Message(node, type_id, payload)) {
            tracing::warn!(peer = %node, "channeld is busy or down: the peer is disconnected rather than a channel message lost");
            return false;
        }
        true
    }
    fn disconnected(&self, node: NodeId) {
        self.send(Input::Disconnected(node));
    }
}

/// Everything `channeld` needs, kept across its restarts.
pub struct ChannelShared {
    /// The port (sink, status).
    pub port: Arc<ChannelPort>,
    registry: Arc<Registry>,
    store: Arc<dyn Storage>,
    config: EngineConfig,
    bp: Option<Dial>,
    zmq: zmq::Context,
    /// With fault injection: the engine stops (and waits to be killed) right after sending
    /// (`sent:TYPE`) or handling (`received:TYPE`) a channel message of that type.
    fault: Option<(bool, u16)>,
}

impl ChannelShared {
    /// The shared state: channels kept in `store`, the chain from `bp`.
    pub fn new(
        registry: Arc<Registry>,
        store: Arc<dyn Storage>,
        config: EngineConfig,
        bp: Option<Dial>,
        zmq: zmq::Context,
        fault: Option<(bool, u16)>,
    ) -> Arc<ChannelShared> {
        let chain = match &bp {
            Some(d) => d.shown(),
            None => "none: start with --bp <endpoint> to have channels".into(),
        };
        let port = Arc::new(ChannelPort::new(chain));
        if bp.is_some() {
            registry.set_channels(port.clone());
        }
        Arc::new(ChannelShared {
            port,
            registry,
            store,
            config,
            bp,
            zmq,
            fault,
        })
    }
}

/// The service.
pub struct Channeld {
    shared: Arc<ChannelShared>,
    buses: Vec<Bus>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Channeld {
    /// `channeld` over `shared`, registered on `buses` (CHNL and API).
    pub fn new(shared: Arc<ChannelShared>, buses: Vec<Bus>) -> Channeld {
        Channeld {
            shared,
            buses,
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        }
    }
}

impl Service for Channeld {
    fn start(&mut self, ctx: &mut Context<ServiceActor<Self>>) -> Result<(), String> {
        let me = ctx.address().recipient();
        for bus in &self.buses {
            bus.register(id(), me.clone());
        }
        self.stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (ctx_tx, ctx_rx) = mpsc::channel();
        *lock(&self.shared.port.tx) = Some(tx);
        // What `info` says until this incarnation's engine is open (not the last one's).
        *lock(&self.shared.port.engine) = "starting".into();
        self.shared.port.queued.store(0, Ordering::Release);
        self.shared.port.resubscribe.store(true, Ordering::Release);
        // Peers that are ready now knew the previous incarnation: reconnecting makes LDK
        // reestablish their channels.
        for (node, _, _) in self.shared.registry.ready_lightning() {
            if let Some(a) = self.shared.registry.find_lightning(&node) {
                let _ = a.try_send(crate::actors::conn::Command(
                    super::peerd::PeerCmd::Disconnect {
                        reply: None,
                        reason: "channeld restarted: reconnect to reestablish channels".into(),
                    },
                ));
            }
        }
        let (shared, stop) = (self.shared.clone(), self.stop.clone());
        let arbiter = actix::Arbiter::current();
        let control = ctx.address().recipient::<crate::actors::service::Control>();
        let engine = std::thread::Builder::new()
            .name("channeld".into())
            .spawn(move || {
                if let Err(why) = crate::guard::guard(|| {
                    run_engine(&shared, rx, ctx_tx, &stop, arbiter);
                    Ok(())
                }) {
                    tracing::error!("the channel engine failed: {why}");
                    *lock(&shared.port.engine) = format!("failed: {why}");
                    // channeld restarts (and opens the engine again from the store).
                    control.do_send(crate::actors::service::Control::Fail(format!(
                        "the channel engine failed: {why}"
                    )));
                }
            })
            .map_err(|e| format!("cannot start the channel engine: {e}"))?;
        self.threads.push(engine);
        if let Some(dial) = self.shared.bp.clone() {
            let (shared, stop) = (self.shared.clone(), self.stop.clone());
            let chain = std::thread::Builder::new()
                .name("channeld-chain".into())
                .spawn(move || run_chain(&shared, &dial, ctx_rx, &stop))
                .map_err(|e| format!("cannot start the chain link: {e}"))?;
            self.threads.push(chain);
        }
        Ok(())
    }

    fn handle(&mut self, d: Deliver, _: &mut Context<ServiceActor<Self>>) -> Result<(), String> {
        let is_channel_request = matches!(
            &d.env.msg,
            Msg::Lnp(
                LnpMsg::ChannelOpen { .. }
                    | LnpMsg::ListChannels
                    | LnpMsg::MakeInvoice { .. }
                    | LnpMsg::Pay { .. }
                    | LnpMsg::ListPayments
                    | LnpMsg::CloseChannel { .. }
                    | LnpMsg::LnBalance
                    | LnpMsg::SubscribeChannelEvents
            )
        );
        if !is_channel_request {
            not_taken("channeld", &d);
            return Ok(());
        }
        let (bus, env) = (d.bus.clone(), d.env.clone());
        if !self.shared.port.send(Input::Request(d.bus, d.env)) {
            bus.send(env.reply(Msg::failure(code::BUSY, "channeld is busy; retry")));
        }
        Ok(())
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        *lock(&self.shared.port.tx) = None;
        *lock(&self.shared.port.engine) = "stopped".into();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A command for the chain thread.
enum ChainReq {
    Cmd(ChainCmd),
    Fund(FundingNeed, u64),
    NeedSweepScript,
}

struct EngineState {
    engine: Option<Engine>,
    opens: HashMap<u128, (Bus, Envelope)>,
    opens_by_temp: HashMap<String, u128>,
    pays: HashMap<String, Vec<(Bus, Envelope)>>,
    subscribers: Subscribers,
    chain: Sender<ChainReq>,
    tip: Option<BestBlock>,
    started: Instant,
    /// The fault point was reached: do nothing more (the test kills the process).
    stop_at_fault: bool,
}

fn run_engine(
    shared: &ChannelShared,
    rx: Receiver<Input>,
    chain: Sender<ChainReq>,
    stop: &AtomicBool,
    arbiter: actix::ArbiterHandle,
) {
    let mut st = EngineState {
        engine: None,
        opens: HashMap::new(),
        opens_by_temp: HashMap::new(),
        pays: HashMap::new(),
        subscribers: Subscribers::new("services subscribed to channel events", MAX_SUBSCRIBERS),
        chain,
        tip: None,
        started: Instant::now(),
        stop_at_fault: false,
    };
    let mut last_reconnect = Instant::now() - Duration::from_secs(60);
    let mut last_tick = Instant::now();
    let mut last_open_try = Instant::now() - Duration::from_secs(10);
    while !stop.load(Ordering::Acquire) {
        if st.stop_at_fault {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        if last_reconnect.elapsed() >= Duration::from_secs(1) {
            last_reconnect = Instant::now();
            if let Some(e) = &st.engine {
                let connected: Vec<_> = shared
                    .registry
                    .ready_lightning()
                    .iter()
                    .filter_map(|(n, _, _)| n.public_key())
                    .collect();
                for (peer, addr) in e.peers_to_reconnect(&connected) {
                    tracing::info!(peer = %peer, %addr, "reconnecting a channel peer");
                    let r = shared.registry.clone();
                    arbiter.spawn_fn(move || r.dial(peer, addr));
                }
            }
        }
        if st.engine.is_none()
            && (st.tip.is_some() || last_open_try.elapsed() >= Duration::from_secs(1))
        {
            last_open_try = Instant::now();
            open_engine(shared, &mut st);
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(input) => {
                shared.port.queued.fetch_sub(1, Ordering::AcqRel);
                if let Err(why) = input_one(shared, &mut st, input) {
                    tracing::warn!("channeld: {why}");
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            let now = st.started.elapsed();
            if let Some(e) = st.engine.as_mut() {
                match e.tick(now) {
                    Ok(step) => carry_out(shared, &mut st, step),
                    Err(why) => tracing::warn!("channeld tick: {why}"),
                }
            }
        }
    }
}

fn open_engine(shared: &ChannelShared, st: &mut EngineState) {
    if !Engine::exists(&shared.store) && st.tip.is_none() {
        *lock(&shared.port.engine) =
            "waiting for the BP node's tip to create the channel state".into();
        return;
    }
    match Engine::open(shared.store.clone(), &shared.config, st.tip) {
        Ok(e) => {
            let best = e.best_block();
            *lock(&shared.port.best) = Some((best.height, best.block_hash));
            *lock(&shared.port.engine) = if e.has_sweep_script() {
                "ready".into()
            } else {
                "waiting for a BP wallet address for the funds of closed channels".into()
            };
            shared.port.resubscribe.store(true, Ordering::Release);
            tracing::info!(
                height = best.height,
                channels = e.channels().len(),
                "channel engine ready"
            );
            if !e.has_sweep_script() {
                let _ = st.chain.send(ChainReq::NeedSweepScript);
            }
            st.engine = Some(e);
            // LDK's filter registrations of the monitors just loaded.
            flush_chain(st);
            for (node, features, inbound) in shared.registry.ready_lightning() {
                let _ = input_one(shared, st, Input::Connected(node, features, inbound));
            }
        }
        Err(why) => {
            tracing::warn!("the channel engine cannot open: {why}");
            *lock(&shared.port.engine) = format!("not ready: {why}");
        }
    }
}

fn flush_chain(st: &mut EngineState) {
    if let Some(e) = &st.engine {
        for c in e.chain_commands() {
            let _ = st.chain.send(ChainReq::Cmd(c));
        }
    }
}

fn pk(n: &NodeId) -> Result<bitcoin::secp256k1::PublicKey, String> {
    n.public_key()
        .ok_or_else(|| format!("{n} is not a public key"))
}

fn input_one(shared: &ChannelShared, st: &mut EngineState, input: Input) -> Result<(), String> {
    if let Input::Tip(t) = input {
        st.tip = Some(t);
        return Ok(());
    }
    if let Input::Request(bus, env) = input {
        request(shared, st, bus, env);
        return Ok(());
    }
    let Some(e) = st.engine.as_mut() else {
        return match input {
            Input::SweepScript(_) | Input::Fees(_) => Ok(()),
            _ => Err("an input before the engine is open was dropped".into()),
        };
    };
    let step = match input {
        Input::Connected(n, f, inbound) => {
            if !inbound {
                if let Some(a) = shared.registry.outbound_addr(&n) {
                    e.remember_peer(&pk(&n)?, &a)?;
                }
            }
            e.peer_connected(pk(&n)?, &f, inbound)?
        }
        Input::Message(n, t, p) => {
            let step = e.peer_message(pk(&n)?, t, &p)?;
            if shared.fault == Some((false, t)) {
                fault_reached(st, &format!("received:{t}"));
                return Ok(());
            }
            step
        }
        Input::Disconnected(n) => e.peer_disconnected(pk(&n)?)?,
        Input::Block(h, height, txs) => match e.block_connected(&h, height, &txs) {
            Ok(s) => {
                let b = e.best_block();
                *lock(&shared.port.best) = Some((b.height, b.block_hash));
                s
            }
            Err(why) => {
                shared.port.resubscribe.store(true, Ordering::Release);
                return Err(why);
            }
        },
        Input::Unblock(h, height) => {
            let s = e.block_disconnected(&h, height)?;
            let b = e.best_block();
            *lock(&shared.port.best) = Some((b.height, b.block_hash));
            s
        }
        Input::Funded(need, tx) => {
            let failed = tx.as_ref().err().cloned();
            let s = e.funded(&need, tx)?;
            if let Some(why) = failed {
                if let Some(uid) = st.opens_by_temp.remove(&need.temp_id.to_string()) {
                    if let Some((bus, env)) = st.opens.remove(&uid) {
                        bus.send(env.reply(Msg::failure(
                            code::REFUSED,
                            format!("the BP wallet cannot fund the channel: {why}"),
                        )));
                    }
                }
            }
            s
        }
        Input::Fees(f) => {
            e.fees.set(f);
            return Ok(());
        }
        Input::SweepScript(s) => {
            e.set_sweep_script(s)?;
            *lock(&shared.port.engine) = "ready".into();
            return Ok(());
        }
        Input::Tip(_) | Input::Request(..) => return Ok(()),
    };
    carry_out(shared, st, step);
    Ok(())
}

fn fault_reached(st: &mut EngineState, point: &str) {
    tracing::warn!("fault point {point} reached: channeld stops here (fault injection)");
    st.stop_at_fault = true;
}

fn carry_out(shared: &ChannelShared, st: &mut EngineState, step: engine::Step) {
    for o in step.out {
        if st.stop_at_fault {
            return;
        }
        match o {
            Out::Send(node, t, payload) => {
                if !shared.registry.deliver(&NodeId::from(node), t, payload) {
                    tracing::debug!(peer = %node, type_id = t, "a channel message for a peer not connected was dropped");
                }
                if shared.fault == Some((true, t)) {
                    fault_reached(st, &format!("sent:{t}"));
                }
            }
            Out::Disconnect(node, why) => {
                if let Some(a) = shared.registry.find_lightning(&NodeId::from(node)) {
                    let _ = a.try_send(crate::actors::conn::Command(
                        super::peerd::PeerCmd::Disconnect {
                            reply: None,
                            reason: format!("channeld: {why}"),
                        },
                    ));
                }
            }
        }
    }
    for need in step.funding {
        let rate = st
            .engine
            .as_ref()
            .map(|e| e.fees.sat_per_vb(6))
            .unwrap_or(2);
        if st.chain.send(ChainReq::Fund(need.clone(), rate)).is_err() {
            let _ = input_one(
                shared,
                st,
                Input::Funded(need, Err("no BP node (--bp)".into())),
            );
        }
    }
    for n in step.notices {
        notice(st, n);
    }
    flush_chain(st);
}

fn id32(hex: &str) -> [u8; 32] {
    use bitcoin::hex::FromHex;
    <[u8; 32]>::from_hex(hex).unwrap_or([0; 32])
}

fn node_of(hex: &str) -> Option<NodeId> {
    NodeId::parse_key(hex).ok()
}

fn notice(st: &mut EngineState, n: Notice) {
    let ev = match &n {
        Notice::ChannelPending {
            channel_id,
            peer,
            funding,
            temp_id,
            user_id,
        } => {
            st.opens_by_temp.remove(temp_id);
            if let Some((bus, env)) = st.opens.remove(user_id) {
                bus.send(
                    env.reply(
                        LnpMsg::ChannelOpened {
                            channel_id: id32(channel_id),
                            funding: funding.clone(),
                        }
                        .into(),
                    ),
                );
            }
            ChannelEventInfo {
                kind: 0,
                id: id32(channel_id),
                peer: node_of(peer),
                amount_msat: 0,
                text: funding.clone(),
            }
        }
        Notice::ChannelReady { channel_id, peer } => ChannelEventInfo {
            kind: 1,
            id: id32(channel_id),
            peer: node_of(peer),
            amount_msat: 0,
            text: String::new(),
        },
        Notice::ChannelClosed {
            channel_id,
            peer,
            reason,
            user_id,
        } => {
            if let Some((bus, env)) = st.opens.remove(user_id) {
                bus.send(env.reply(Msg::failure(
                    code::REFUSED,
                    format!("the channel was not opened: {reason}"),
                )));
            }
            ChannelEventInfo {
                kind: 2,
                id: id32(channel_id),
                peer: peer.as_deref().and_then(node_of),
                amount_msat: 0,
                text: reason.clone(),
            }
        }
        Notice::PaymentReceived { hash, amount_msat } => ChannelEventInfo {
            kind: 3,
            id: id32(hash),
            peer: None,
            amount_msat: *amount_msat,
            text: String::new(),
        },
        Notice::PaymentSent { hash, fee_msat } => {
            answer_pays(st, hash);
            ChannelEventInfo {
                kind: 4,
                id: id32(hash),
                peer: None,
                amount_msat: *fee_msat,
                text: String::new(),
            }
        }
        Notice::PaymentFailed { hash, reason } => {
            answer_pays(st, hash);
            ChannelEventInfo {
                kind: 5,
                id: id32(hash),
                peer: None,
                amount_msat: 0,
                text: reason.clone(),
            }
        }
    };
    st.subscribers.notify(&id(), LnpMsg::ChannelEvent(ev));
}

fn answer_pays(st: &mut EngineState, hash: &str) {
    let Some(waiting) = st.pays.remove(hash) else {
        return;
    };
    let Some(p) = st.engine.as_ref().and_then(|e| e.payment(hash)).map(record) else {
        return;
    };
    for (bus, env) in waiting {
        bus.send(env.reply(LnpMsg::PaymentInfo(p.clone()).into()));
    }
}

fn record(p: &Payment) -> PaymentRecord {
    PaymentRecord {
        hash: id32(&p.hash),
        outbound: p.outbound,
        amount_msat: p.amount_msat,
        fee_msat: p.fee_msat,
        status: match p.status.as_str() {
            "pending" => 0,
            "succeeded" => 1,
            _ => 2,
        },
        reason: p.reason.clone(),
        preimage: p.preimage.as_deref().map(id32),
        payee: p.payee.as_deref().and_then(node_of),
        created: p.created,
        updated: p.updated,
    }
}

fn request(shared: &ChannelShared, st: &mut EngineState, bus: Bus, env: Envelope) {
    let reply = |m: Msg| bus.send(env.reply(m));
    if let Msg::Lnp(LnpMsg::SubscribeChannelEvents) = &env.msg {
        match st.subscribers.add(Subscriber::of(&bus, &env), ()) {
            Ok(()) => reply(Msg::Success(Some("subscribed to channel events".into()))),
            Err(why) => reply(Msg::failure(code::BUSY, why)),
        }
        return;
    }
    if st.engine.is_none() {
        let why = lock(&shared.port.engine).clone();
        reply(Msg::failure(
            code::REFUSED,
            format!("the channels are not ready: {why}"),
        ));
        return;
    }
    let Msg::Lnp(m) = env.msg.clone() else { return };
    let result = serve(shared, st, &bus, &env, m);
    match result {
        Ok(Some(m)) => reply(m),
        Ok(None) => {}
        Err((c, why)) => reply(Msg::failure(c, why)),
    }
}

type Served = Result<Option<Msg>, (crate::wire::api::Code, String)>;

fn engine_of(st: &mut EngineState) -> Result<&mut Engine, (crate::wire::api::Code, String)> {
    st.engine
        .as_mut()
        .ok_or((code::REFUSED, "the channels are not ready".into()))
}

fn serve(
    shared: &ChannelShared,
    st: &mut EngineState,
    bus: &Bus,
    env: &Envelope,
    m: LnpMsg,
) -> Served {
    match m {
        LnpMsg::ChannelOpen {
            node_id,
            sats,
            push_msat,
        } => {
            if shared.bp.is_none() {
                return Err((
                    code::REFUSED,
                    "no BP node (--bp): channels cannot be funded".into(),
                ));
            }
            if !shared.port.reachable.load(Ordering::Acquire) {
                return Err((
                    code::REFUSED,
                    format!(
                        "the BP node at {} is unreachable: no new channels until it is back",
                        lock(&shared.port.chain)
                    ),
                ));
            }
            if !engine_of(st)?.has_sweep_script() {
                return Err((
                    code::REFUSED,
                    "no BP wallet address yet for the funds of closed channels: retry in a moment"
                        .into(),
                ));
            }
            if shared.registry.find_lightning(&node_id).is_none() {
                return Err((
                    code::NOT_FOUND,
                    format!("{node_id} is not connected: connect first"),
                ));
            }
            let peer = pk(&node_id).map_err(|e| (code::INVALID_ARGUMENT, e))?;
            let (temp, uid, step) = engine_of(st)?
                .open_channel(peer, sats, push_msat)
                .map_err(|e| (code::REFUSED, e))?;
            st.opens.insert(uid, (bus.clone(), env.clone()));
            st.opens_by_temp.insert(temp.to_string(), uid);
            bus.send(env.reply(Msg::Progress(format!(
                "open_channel {temp} sent to {node_id}"
            ))));
            carry_out(shared, st, step);
            Ok(None)
        }
        LnpMsg::ListChannels => Ok(Some(
            LnpMsg::ChannelList(engine_of(st)?.channels().iter().map(info).collect()).into(),
        )),
        LnpMsg::MakeInvoice {
            amount_msat,
            description,
            expiry_secs,
        } => {
            let inv = engine_of(st)?
                .invoice(amount_msat, &description, expiry_secs)
                .map_err(|w| (code::INVALID_ARGUMENT, w))?;
            Ok(Some(
                LnpMsg::Invoice {
                    bolt11: inv.to_string(),
                    hash: inv.payment_hash().to_byte_array(),
                }
                .into(),
            ))
        }
        LnpMsg::Pay {
            bolt11,
            amount_msat,
            wait,
        } => {
            let inv = lightning_invoice::Bolt11Invoice::from_str(bolt11.trim()).map_err(|w| {
                (
                    code::INVALID_ARGUMENT,
                    format!("not a BOLT-11 invoice: {w}"),
                )
            })?;
            if inv.network() != shared.config.network {
                return Err((
                    code::INVALID_ARGUMENT,
                    format!(
                        "an invoice of {:?}, not of this node's network",
                        inv.network()
                    ),
                ));
            }
            if inv.would_expire(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default(),
            ) {
                return Err((code::INVALID_ARGUMENT, "the invoice has expired".into()));
            }
            let (p, step) = engine_of(st)?
                .pay(&inv, amount_msat)
                .map_err(|w| (code::REFUSED, w))?;
            let hash = p.hash.clone();
            if wait {
                st.pays
                    .entry(hash.clone())
                    .or_default()
                    .push((bus.clone(), env.clone()));
                bus.send(env.reply(Msg::Progress(format!("payment {hash} sent"))));
                carry_out(shared, st, step);
                Ok(None)
            } else {
                carry_out(shared, st, step);
                let p = st
                    .engine
                    .as_ref()
                    .and_then(|e| e.payment(&hash))
                    .map(record)
                    .unwrap_or_else(|| record(&p));
                Ok(Some(LnpMsg::PaymentInfo(p).into()))
            }
        }
        LnpMsg::ListPayments => Ok(Some(
            LnpMsg::PaymentList(
                engine_of(st)?
                    .payments()
                    .iter()
                    .take(crate::wire::limits::MAX_LIST)
                    .map(record)
                    .collect(),
            )
            .into(),
        )),
        LnpMsg::CloseChannel { channel_id, force } => {
            let cid = lightning::ln::types::ChannelId(channel_id);
            let step = engine_of(st)?
                .close(&cid, force)
                .map_err(|w| (code::NOT_FOUND, w))?;
            carry_out(shared, st, step);
            Ok(Some(Msg::Success(Some(format!(
                "{} close of channel {cid} started",
                if force { "a force" } else { "a cooperative" }
            )))))
        }
        LnpMsg::LnBalance => {
            let channels = engine_of(st)?
                .channels()
                .iter()
                .map(|c| (id32(&c.channel_id), c.local_msat, c.remote_msat))
                .collect();
            let (onchain_sat, claims) = engine_of(st)?.onchain_claimable();
            Ok(Some(
                LnpMsg::LnBalances {
                    channels,
                    onchain_sat,
                    claims,
                }
                .into(),
            ))
        }
        _ => Err((code::UNEXPECTED, "not a channel request".into())),
    }
}

fn info(c: &engine::ChannelView) -> ChannelInfo {
    ChannelInfo {
        channel_id: id32(&c.channel_id),
        peer: node_of(&c.peer).unwrap_or(NodeId([2; 33])),
        capacity_sat: c.capacity_sat,
        local_msat: c.local_msat,
        remote_msat: c.remote_msat,
        outbound: c.outbound,
        state: match c.state.as_str() {
            "pending" => 0,
            "ready" => 1,
            "offline" => 2,
            _ => 3,
        },
        funding: c.funding.clone(),
        scid: c.scid,
        confirmations: c.confirmations,
        confirmations_required: c.confirmations_required,
    }
}

// ---- the chain thread ---------------------------------------------------------------------

fn bpd() -> ServiceId {
    ServiceId::Bpd
}

fn signd() -> ServiceId {
    ServiceId::Other(ServiceName::fixed("signd"))
}

/// The BP watch id of a chain command: a txid in hex (64), an outpoint as 48 hex digits of its
/// txid, ':' and the index (both within the 64 bytes a watch id may have).
fn watch_of(c: &ChainCmd) -> Option<(String, WatchTarget)> {
    match c {
        ChainCmd::WatchTx(t) => Some((t.to_string(), WatchTarget::Txid(t.to_byte_array()))),
        ChainCmd::WatchOutput(o) => Some((
            format!("{}:{}", &o.txid.to_string()[..48], o.vout),
            WatchTarget::Outpoint(o.txid.to_byte_array(), o.vout),
        )),
        ChainCmd::Broadcast(_) => None,
    }
}

struct Link {
    client: Client,
    sub: Option<u64>,
    /// Replayed events still to come before subscribing again (`more`).
    replay: Option<(u32, [u8; 32])>,
    info: Option<u64>,
    fees: Option<u64>,
    addr: Option<u64>,
    funds: HashMap<u64, FundingNeed>,
}

fn run_chain(shared: &ChannelShared, dial: &Dial, rx: Receiver<ChainReq>, stop: &AtomicBool) {
    let port = &shared.port;
    let owner = format!(
        "lnp-{}",
        NodeId::from(bitcoin::secp256k1::PublicKey::from_secret_key(
            &bitcoin::secp256k1::Secp256k1::new(),
            &shared.config.node_secret
        ))
        .short()
    );
    let mut link: Option<Link> = None;
    let mut live = Liveness::new(Instant::now());
    let mut last_ping = Instant::now() - HEARTBEAT;
    let mut last_fees = Instant::now() - Duration::from_secs(120);
    let mut need_sweep = false;
    // Commands kept while the BP node is away (watches, broadcasts: sent when it is back).
    let mut backlog: Vec<ChainReq> = Vec::new();
    let mut was_alive = false;
    while !stop.load(Ordering::Acquire) {
        if link.is_none() {
            match Client::dial(&shared.zmq, dial, DEAD_AFTER) {
                Ok(c) => {
                    link = Some(Link {
                        client: c,
                        sub: None,
                        replay: None,
                        info: None,
                        fees: None,
                        addr: None,
                        funds: HashMap::new(),
                    });
                    live.opened(Instant::now());
                }
                Err(e) => {
                    tracing::debug!("the BP node is not there yet: {e}");
                    std::thread::sleep(HEARTBEAT);
                    continue;
                }
            }
        }
        let now = Instant::now();
        let alive = live.alive(now);
        if !alive && port.reachable.swap(false, Ordering::AcqRel) {
            tracing::warn!(bp = %dial.shown(), "the BP node is unreachable");
        }
        if alive && !was_alive {
            // Back (or first seen): a restarted BP node has forgotten our subscription.
            port.resubscribe.store(true, Ordering::Release);
        }
        was_alive = alive;
        if matches!(dial, Dial::Remote(..)) && live.stale(now) {
            link = None;
            continue;
        }
        let Some(l) = link.as_mut() else { continue };
        let mut broken = false;
        let mut send = |l: &mut Link, dst: &ServiceId, m: Msg| -> Option<u64> {
            match l.client.send(dst, m) {
                Ok(id) => Some(id),
                Err(e) => {
                    tracing::debug!("the BP link failed: {e}");
                    broken = true;
                    None
                }
            }
        };
        if last_ping.elapsed() >= HEARTBEAT {
            last_ping = Instant::now();
            l.info = send(l, &bpd(), Msg::GetInfo);
        }
        if port.reachable.load(Ordering::Acquire) {
            if port.resubscribe.swap(false, Ordering::AcqRel) {
                let since = lock(&port.best).map(|(_, h)| h.to_byte_array());
                l.replay = None;
                l.sub = send(
                    l,
                    &bpd(),
                    BpMsg::SubscribeWatches {
                        owner: owner.clone(),
                        since,
                        filtered: true,
                    }
                    .into(),
                );
            }
            if last_fees.elapsed() >= Duration::from_secs(60) {
                last_fees = Instant::now();
                l.fees = send(l, &bpd(), BpMsg::GetFees.into());
            }
            if need_sweep && l.addr.is_none() {
                l.addr = send(
                    l,
                    &signd(),
                    BpMsg::GetAddress {
                        taproot: false,
                        index: None,
                    }
                    .into(),
                );
            }
            while let Ok(r) = rx.try_recv() {
                backlog.push(r);
            }
            for r in std::mem::take(&mut backlog) {
                match r {
                    ChainReq::Cmd(ChainCmd::Broadcast(tx)) => {
                        tracing::info!(txid = %tx.compute_txid(), "broadcasting through the BP node");
                        send(
                            l,
                            &bpd(),
                            BpMsg::Broadcast {
                                tx: encode::serialize(&tx),
                            }
                            .into(),
                        );
                    }
                    ChainReq::Cmd(c) => {
                        if let Some((id, target)) = watch_of(&c) {
                            send(
                                l,
                                &bpd(),
                                BpMsg::AddWatch {
                                    owner: owner.clone(),
                                    id,
                                    target,
                                    from_height: None,
                                }
                                .into(),
                            );
                        }
                    }
                    ChainReq::Fund(need, rate) => {
                        let m = BpMsg::WalletFund {
                            outputs: vec![(need.script.to_bytes(), need.sats)],
                            fee_rate: Some(rate),
                        };
                        if let Some(id) = send(l, &bpd(), m.into()) {
                            l.funds.insert(id, need);
                        }
                    }
                    ChainReq::NeedSweepScript => need_sweep = true,
                }
            }
        } else {
            while let Ok(r) = rx.try_recv() {
                match r {
                    ChainReq::Fund(need, _) => {
                        port.send(Input::Funded(
                            need,
                            Err(format!("the BP node at {} is unreachable", dial.shown())),
                        ));
                    }
                    ChainReq::NeedSweepScript => need_sweep = true,
                    other => backlog.push(other),
                }
            }
        }
        if broken {
            link = None;
            continue;
        }
        let env = match l.client.recv(Duration::from_millis(50)) {
            Ok(env) => env,
            Err(ClientError::Timeout(_)) => continue,
            Err(e) => {
                tracing::debug!("the BP link socket failed: {e}");
                link = None;
                continue;
            }
        };
        live.heard(Instant::now());
        if Some(env.request_id) == l.info {
            if !port.reachable.swap(true, Ordering::AcqRel) {
                tracing::info!(bp = %dial.shown(), "the BP node is reachable");
            }
            continue;
        }
        if Some(env.request_id) == l.sub {
            match env.msg {
                Msg::Bp(BpMsg::WatchSynced(s)) => {
                    if lock(&port.best).is_none() {
                        if let Ok(h) = BlockHash::from_slice(&s.hash) {
                            port.send(Input::Tip(BestBlock::new(h, s.height)));
                            // Subscribe again from that tip once the engine exists.
                        }
                    }
                    if s.more {
                        l.replay = Some((s.events, s.hash));
                        if s.events == 0 {
                            port.resubscribe.store(true, Ordering::Release);
                        }
                    }
                }
                Msg::Bp(BpMsg::FilteredBlock(f)) => {
                    let header: Result<bitcoin::block::Header, _> =
                        encode::deserialize(&f.block.header);
                    let mut txs = Vec::new();
                    for (pos, raw) in &f.txs {
                        match encode::deserialize::<bitcoin::Transaction>(raw) {
                            Ok(t) => txs.push((*pos as usize, t)),
                            Err(e) => tracing::warn!(
                                "a transaction of the filtered feed does not decode: {e}"
                            ),
                        }
                    }
                    match header {
                        Ok(h) => {
                            port.send(Input::Block(h, f.block.height, txs));
                        }
                        Err(e) => {
                            tracing::warn!("a header of the filtered feed does not decode: {e}")
                        }
                    }
                    count_replay(l, port);
                }
                Msg::Bp(BpMsg::BlockDisconnected(b)) => {
                    if let Ok(h) = encode::deserialize::<bitcoin::block::Header>(&b.header) {
                        port.send(Input::Unblock(h, b.height));
                    }
                    count_replay(l, port);
                }
                Msg::Failure { code, message } => {
                    tracing::warn!("the BP node refused our subscription: {code:#06x} {message}");
                    if code == crate::wire::api::code::NOT_FOUND {
                        *lock(&port.engine) =
                            format!("the BP node does not know our best block: {message}");
                    }
                }
                _ => count_replay(l, port),
            }
            continue;
        }
        if Some(env.request_id) == l.fees {
            if let Msg::Bp(BpMsg::FeeRates(v)) = env.msg {
                port.send(Input::Fees(
                    v.iter().map(|f| (f.target, f.sat_per_vb)).collect(),
                ));
            }
            continue;
        }
        if Some(env.request_id) == l.addr {
            l.addr = None;
            if let Msg::Bp(BpMsg::AddressInfo(a)) = env.msg {
                need_sweep = false;
                port.send(Input::SweepScript(ScriptBuf::from_bytes(a.script)));
            }
            continue;
        }
        if let Some(need) = l.funds.remove(&env.request_id) {
            let r = match env.msg {
                Msg::Bp(BpMsg::WalletSent(w)) => encode::deserialize(&w.tx)
                    .map_err(|e| format!("the funding transaction does not decode: {e}")),
                Msg::Failure { message, .. } => Err(message),
                other => Err(format!("unexpected reply {:#06x}", other.type_id())),
            };
            port.send(Input::Funded(need, r));
            continue;
        }
        if let Msg::Failure { code, message } = &env.msg {
            tracing::warn!("the BP node: {code:#06x} {message}");
        }
    }
}

fn count_replay(l: &mut Link, port: &ChannelPort) {
    if let Some((n, h)) = l.replay.as_mut() {
        *n = n.saturating_sub(1);
        if *n == 0 {
            let _ = h;
            l.replay = None;
            port.resubscribe.store(true, Ordering::Release);
        }
    }
}
