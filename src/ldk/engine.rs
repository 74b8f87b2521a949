//! The channel engine: LDK's `ChannelManager`, `ChainMonitor` and output sweeper, with what we
//! supply to them: the node key as LDK's node signer, a one-hop router (direct peers only),
//! fee rates, the chain commands (watches, broadcasts) queued for the BP node, the log, and
//! persistence through [`Kv`]. No I/O but the store: the caller feeds peers' messages, blocks
//! and time, and takes back what to send ([`Step`]).

use super::codec::{self, Out};
use super::store::Kv;
use crate::storage::Storage;
use crate::sync::lock;
use bitcoin::block::Header;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{
    ecdh::SharedSecret, ecdsa, schnorr, PublicKey, Scalar, Secp256k1, SecretKey,
};
use bitcoin::{BlockHash, Network, OutPoint, ScriptBuf, Transaction, Txid};
use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator};
use lightning::chain::chainmonitor::ChainMonitor;
use lightning::chain::{BestBlock, Filter, Listen, WatchedOutput};
use lightning::events::{ClosureReason, Event, EventsProvider, ReplayEvent};
use lightning::ln::channel_state::ChannelDetails;
use lightning::ln::channelmanager::{
    Bolt11InvoiceParameters, ChainParameters, ChannelManager, ChannelManagerReadArgs, PaymentId,
};
use lightning::ln::inbound_payment::ExpandedKey;
use lightning::ln::msgs::{BaseMessageHandler, Init, UnsignedGossipMessage};
use lightning::ln::types::ChannelId;
use lightning::offers::invoice::UnsignedBolt12Invoice;
use lightning::onion_message::messenger::NullMessageRouter;
use lightning::routing::router::{
    InFlightHtlcs, Path, Payee, Route, RouteHop, RouteParameters, RouteParametersConfig, Router,
};
use lightning::sign::{
    ChangeDestinationSourceSync, EntropySource, InMemorySigner, KeysManager, NodeSigner,
    PeerStorageKey, ReceiveAuthKey, Recipient,
};
use lightning::types::features::{ChannelFeatures, InitFeatures, NodeFeatures};
use lightning::types::payment::{PaymentHash, PaymentPreimage};
use lightning::util::config::UserConfig;
use lightning::util::logger::{Level, Logger, Record};
use lightning::util::persist::{self, KVStoreSync};
use lightning::util::ser::{ReadableArgs, Writeable};
use lightning::util::sweep::OutputSweeperSync;
use lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescription, Description, RawBolt11Invoice};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The largest HTLC CLTV delta we accept from an invoice (LDK's own bound is 2016 blocks).
const MAX_FINAL_CLTV: u32 = 1_008;

// ---- what the chain gets from LDK -------------------------------------------------------

/// A command for the BP node, queued by LDK's callbacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainCmd {
    /// Watch this transaction (its confirmation).
    WatchTx(Txid),
    /// Watch the spend of this output.
    WatchOutput(OutPoint),
    /// Broadcast this transaction.
    Broadcast(Transaction),
}

/// LDK's `Filter` and `BroadcasterInterface`: both queue [`ChainCmd`]s.
#[derive(Default)]
pub struct ChainQueue {
    cmds: Mutex<Vec<ChainCmd>>,
}

impl ChainQueue {
    /// The commands queued since the last call.
    pub fn take(&self) -> Vec<ChainCmd> {
        std::mem::take(&mut *lock(&self.cmds))
    }
}

impl Filter for ChainQueue {
    fn register_tx(&self, txid: &Txid, _script: &bitcoin::Script) {
        lock(&self.cmds).push(ChainCmd::WatchTx(*txid));
    }
    fn register_output(&self, output: WatchedOutput) {
        let op = OutPoint {
            txid: output.outpoint.txid,
            vout: output.outpoint.index as u32,
        };
        lock(&self.cmds).push(ChainCmd::WatchOutput(op));
    }
}

impl BroadcasterInterface for ChainQueue {
    fn broadcast_transactions(&self, txs: &[&Transaction]) {
        let mut q = lock(&self.cmds);
        for tx in txs {
            q.push(ChainCmd::Broadcast((*tx).clone()));
        }
    }
}

/// Fee rates (sat/vB by confirmation target in blocks), from the BP node's `get_fees`.
pub struct Fees {
    rates: Mutex<Vec<(u32, u64)>>,
}

impl Default for Fees {
    fn default() -> Self {
        Fees {
            rates: Mutex::new(vec![(1, 10), (6, 4), (144, 2)]),
        }
    }
}

impl Fees {
    /// Replaces the table (target blocks, sat/vB).
    pub fn set(&self, mut rates: Vec<(u32, u64)>) {
        rates.retain(|(t, r)| *t > 0 && *r > 0);
        if !rates.is_empty() {
            rates.sort();
            *lock(&self.rates) = rates;
        }
    }

    /// The rate for a target of `blocks` (the first target at least that far, else the last).
    pub fn sat_per_vb(&self, blocks: u32) -> u64 {
        let r = lock(&self.rates);
        r.iter()
            .find(|(t, _)| *t >= blocks)
            .or(r.last())
            .map(|(_, s)| *s)
            .unwrap_or(1)
    }
}

impl FeeEstimator for Fees {
    fn get_est_sat_per_1000_weight(&self, target: ConfirmationTarget) -> u32 {
        let kw = |blocks| (self.sat_per_vb(blocks).min(100_000) * 250) as u32;
        let v = match target {
            // The highest rate a peer may set: far above ours, so that a busy mempool at the
            // peer's side is not taken for an attack (which would close the channel).
            ConfirmationTarget::MaximumFeeEstimate => kw(1).saturating_mul(10).max(25_000),
            ConfirmationTarget::UrgentOnChainSweep => kw(1),
            // The lowest rate a peer may set: the relay floor, for the same reason.
            ConfirmationTarget::MinAllowedAnchorChannelRemoteFee
            | ConfirmationTarget::MinAllowedNonAnchorChannelRemoteFee => 253,
            ConfirmationTarget::AnchorChannelFee => kw(144),
            ConfirmationTarget::NonAnchorChannelFee => kw(6),
            ConfirmationTarget::ChannelCloseMinimum => kw(144),
            ConfirmationTarget::OutputSpendingFee => kw(6),
        };
        v.max(253)
    }
}

/// LDK's log into ours (target `ldk`).
pub struct Log;

impl Logger for Log {
    fn log(&self, r: Record) {
        let peer = r.peer_id.map(|p| p.to_string()).unwrap_or_default();
        match r.level {
            Level::Gossip | Level::Trace => tracing::trace!(target: "ldk", peer, "{}", r.args),
            Level::Debug => tracing::debug!(target: "ldk", peer, "{}", r.args),
            Level::Info => tracing::info!(target: "ldk", peer, "{}", r.args),
            Level::Warn => tracing::warn!(target: "ldk", peer, "{}", r.args),
            Level::Error => tracing::error!(target: "ldk", peer, "{}", r.args),
        }
    }
}

/// The address funds of closed channels are swept to: a BP wallet address, set by `channeld`
/// (and kept, so a sweep needs no BP node at hand).
#[derive(Default)]
pub struct SweepTo {
    script: Mutex<Option<ScriptBuf>>,
}

impl SweepTo {
    /// The script, once known.
    pub fn get(&self) -> Option<ScriptBuf> {
        lock(&self.script).clone()
    }
}

impl ChangeDestinationSourceSync for SweepTo {
    fn get_change_destination_script(&self) -> Result<ScriptBuf, ()> {
        self.get().ok_or(())
    }
}

// ---- keys -------------------------------------------------------------------------------

/// LDK's node signer with our node key (the id peers know), the rest from the channel seed.
pub struct NodeKeys {
    keys: Arc<KeysManager>,
    secret: SecretKey,
    id: PublicKey,
    secp: Secp256k1<bitcoin::secp256k1::All>,
}

impl NodeKeys {
    fn node(&self, r: Recipient) -> Result<&SecretKey, ()> {
        match r {
            Recipient::Node => Ok(&self.secret),
            Recipient::PhantomNode => Err(()),
        }
    }
}

impl NodeSigner for NodeKeys {
    fn get_expanded_key(&self) -> ExpandedKey {
        self.keys.get_expanded_key()
    }
    fn get_peer_storage_key(&self) -> PeerStorageKey {
        self.keys.get_peer_storage_key()
    }
    fn get_receive_auth_key(&self) -> ReceiveAuthKey {
        self.keys.get_receive_auth_key()
    }
    fn get_node_id(&self, r: Recipient) -> Result<PublicKey, ()> {
        self.node(r).map(|_| self.id)
    }
    fn ecdh(
        &self,
        r: Recipient,
        other: &PublicKey,
        tweak: Option<&Scalar>,
    ) -> Result<SharedSecret, ()> {
        let mut k = *self.node(r)?;
        if let Some(t) = tweak {
            k = k.mul_tweak(t).map_err(|_| ())?;
        }
        Ok(SharedSecret::new(other, &k))
    }
    fn sign_invoice(
        &self,
        invoice: &RawBolt11Invoice,
        r: Recipient,
    ) -> Result<ecdsa::RecoverableSignature, ()> {
        let msg = bitcoin::secp256k1::Message::from_digest(invoice.signable_hash());
        Ok(self.secp.sign_ecdsa_recoverable(&msg, self.node(r)?))
    }
    fn sign_bolt12_invoice(
        &self,
        invoice: &UnsignedBolt12Invoice,
    ) -> Result<schnorr::Signature, ()> {
        let keys = bitcoin::secp256k1::Keypair::from_secret_key(&self.secp, &self.secret);
        let aux = self.keys.get_secure_random_bytes();
        Ok(self
            .secp
            .sign_schnorr_with_aux_rand(invoice.tagged_hash().as_digest(), &keys, &aux))
    }
    fn sign_gossip_message(&self, msg: UnsignedGossipMessage) -> Result<ecdsa::Signature, ()> {
        let h = bitcoin::hashes::sha256d::Hash::hash(&msg.encode());
        let m = bitcoin::secp256k1::Message::from_digest(h.to_byte_array());
        Ok(self.secp.sign_ecdsa(&m, &self.secret))
    }
    fn sign_message(&self, msg: &[u8]) -> Result<String, ()> {
        Ok(lightning::util::message_signing::sign(msg, &self.secret))
    }
}

/// LDK's signer provider: channel keys from the seed (KeysManager), and every script our
/// funds go to on chain (a cooperative close's output, the claims of a force close) a BP
/// wallet address, so that what a channel gives back shows in `bp balance`.
pub struct Signers {
    keys: Arc<KeysManager>,
    to: Arc<SweepTo>,
}

impl lightning::sign::SignerProvider for Signers {
    type EcdsaSigner = InMemorySigner;
    fn generate_channel_keys_id(&self, inbound: bool, user_channel_id: u128) -> [u8; 32] {
        self.keys.generate_channel_keys_id(inbound, user_channel_id)
    }
    fn derive_channel_signer(&self, id: [u8; 32]) -> InMemorySigner {
        self.keys.derive_channel_signer(id)
    }
    fn get_destination_script(&self, _id: [u8; 32]) -> Result<ScriptBuf, ()> {
        self.to.get().ok_or(())
    }
    fn get_shutdown_scriptpubkey(&self) -> Result<lightning::ln::script::ShutdownScript, ()> {
        let s = self.to.get().ok_or(())?;
        lightning::ln::script::ShutdownScript::try_from(s).map_err(|_| ())
    }
}

// ---- routing ------------------------------------------------------------------------------

/// Routes to direct peers only: one hop over a usable channel whose counterparty is the payee.
/// Multi-hop routing needs gossip, which this version does not keep.
pub struct OneHop;

impl Router for OneHop {
    fn find_route(
        &self,
        _payer: &PublicKey,
        params: &RouteParameters,
        first_hops: Option<&[&ChannelDetails]>,
        _inflight: InFlightHtlcs,
    ) -> Result<Route, &'static str> {
        let Payee::Clear {
            node_id,
            final_cltv_expiry_delta,
            features,
            ..
        } = &params.payment_params.payee
        else {
            return Err("blinded payees need multi-hop routing, which this node does not do");
        };
        if *final_cltv_expiry_delta > MAX_FINAL_CLTV {
            return Err("the invoice asks a final CLTV delta above 1008 blocks");
        }
        let amount = params.final_value_msat;
        let hop = first_hops
            .unwrap_or(&[])
            .iter()
            .filter(|c| c.counterparty.node_id == *node_id && c.is_usable)
            .filter(|c| {
                c.next_outbound_htlc_limit_msat >= amount
                    && c.next_outbound_htlc_minimum_msat <= amount
            })
            .max_by_key(|c| c.next_outbound_htlc_limit_msat);
        let Some(c) = hop else {
            return Err(
                if first_hops
                    .unwrap_or(&[])
                    .iter()
                    .any(|c| c.counterparty.node_id == *node_id)
                {
                    "no channel with the payee can carry this amount now"
                } else {
                    "the payee is not a direct channel peer (multi-hop routing is not supported)"
                },
            );
        };
        let scid = c
            .get_outbound_payment_scid()
            .ok_or("the channel has no short channel id yet")?;
        let node_features = features
            .as_ref()
            .map(|f| f.to_context())
            .unwrap_or_else(|| c.counterparty.features.to_context());
        let hop = RouteHop {
            pubkey: *node_id,
            node_features: node_features as NodeFeatures,
            short_channel_id: scid,
            channel_features: ChannelFeatures::empty(),
            fee_msat: amount,
            cltv_expiry_delta: *final_cltv_expiry_delta,
            maybe_announced_channel: false,
        };
        Ok(Route {
            paths: vec![Path {
                hops: vec![hop],
                blinded_tail: None,
            }],
            route_params: Some(params.clone()),
        })
    }

    fn create_blinded_payment_paths<
        T: bitcoin::secp256k1::Signing + bitcoin::secp256k1::Verification,
    >(
        &self,
        _recipient: PublicKey,
        _first_hops: Vec<ChannelDetails>,
        _tlvs: lightning::blinded_path::payment::ReceiveTlvs,
        _amount_msats: Option<u64>,
        _secp: &Secp256k1<T>,
    ) -> Result<Vec<lightning::blinded_path::payment::BlindedPaymentPath>, ()> {
        Err(())
    }
}

// ---- the types ----------------------------------------------------------------------------

/// The chain monitor.
pub type Monitor = ChainMonitor<
    InMemorySigner,
    Arc<ChainQueue>,
    Arc<ChainQueue>,
    Arc<Fees>,
    Arc<Log>,
    Arc<Kv>,
    Arc<KeysManager>,
>;
/// The channel manager.
pub type Manager = ChannelManager<
    Arc<Monitor>,
    Arc<ChainQueue>,
    Arc<KeysManager>,
    Arc<NodeKeys>,
    Arc<Signers>,
    Arc<Fees>,
    Arc<OneHop>,
    Arc<NullMessageRouter>,
    Arc<Log>,
>;
/// The sweeper of closed channels' funds.
pub type Sweeper = OutputSweeperSync<
    Arc<ChainQueue>,
    Arc<SweepTo>,
    Arc<Fees>,
    Arc<ChainQueue>,
    Arc<Kv>,
    Arc<Log>,
    Arc<KeysManager>,
>;

// ---- records ------------------------------------------------------------------------------

/// A payment, as `nodectl lnp payments` shows it. Kept in the store before anyone is told.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Payment {
    /// Payment hash (hex).
    pub hash: String,
    /// Whether we pay (true) or are paid.
    pub outbound: bool,
    /// Amount (msat) asked, or received.
    pub amount_msat: u64,
    /// Fee paid (msat), when known.
    pub fee_msat: Option<u64>,
    /// `pending`, `succeeded`, `failed`.
    pub status: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// The preimage (hex), once known.
    pub preimage: Option<String>,
    /// The payee (hex node id), outbound only.
    pub payee: Option<String>,
    /// When it was made (unix seconds), and last changed.
    pub created: u64,
    /// Last change.
    pub updated: u64,
}

const PAYMENTS: &str = "lnp_payments";
const PEERS: &str = "lnp_peers";
const SWEEP_KEY: (&str, &str, &str) = ("lnp", "", "sweep_script");

/// A channel, as `nodectl lnp channels` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ChannelView {
    /// Channel id (hex).
    pub channel_id: String,
    /// The peer.
    pub peer: String,
    /// Capacity (sat).
    pub capacity_sat: u64,
    /// Our balance (msat): what we could send, plus our reserve.
    pub local_msat: u64,
    /// Theirs (msat), the same way.
    pub remote_msat: u64,
    /// We funded it.
    pub outbound: bool,
    /// `pending` (funding not deep enough), `ready` (usable), `offline` (peer away), `closing`.
    pub state: String,
    /// Funding outpoint `txid:vout`, once known.
    pub funding: Option<String>,
    /// Short channel id, once mined.
    pub scid: Option<u64>,
    /// Confirmations of the funding, and how many are required.
    pub confirmations: Option<u32>,
    /// Required depth.
    pub confirmations_required: Option<u32>,
}

/// Something extension services hear about on the CHNL bus (and `nodectl lnp listen`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Notice {
    /// The funding is signed by both sides (waiting for depth).
    ChannelPending {
        /// Channel id (hex).
        channel_id: String,
        /// The peer.
        peer: String,
        /// Funding outpoint.
        funding: String,
        /// The temporary id it had.
        temp_id: String,
        /// Our id of the channel (set at opening).
        user_id: u128,
    },
    /// The channel is ready for payments.
    ChannelReady {
        /// Channel id.
        channel_id: String,
        /// The peer.
        peer: String,
    },
    /// The channel is closed.
    ChannelClosed {
        /// Channel id.
        channel_id: String,
        /// The peer, if known.
        peer: Option<String>,
        /// Why.
        reason: String,
        /// Our id of the channel.
        user_id: u128,
    },
    /// We were paid.
    PaymentReceived {
        /// Hash.
        hash: String,
        /// Amount (msat).
        amount_msat: u64,
    },
    /// Our payment succeeded.
    PaymentSent {
        /// Hash.
        hash: String,
        /// Fee (msat).
        fee_msat: u64,
    },
    /// Our payment failed.
    PaymentFailed {
        /// Hash.
        hash: String,
        /// Why.
        reason: String,
    },
}

/// A funding transaction LDK waits for: pay `sats` to `script` (the channel's P2WSH).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FundingNeed {
    /// The temporary channel id.
    pub temp_id: ChannelId,
    /// The peer.
    pub peer: PublicKey,
    /// The funding output's script.
    pub script: ScriptBuf,
    /// Its value.
    pub sats: u64,
}

/// What the caller does after a call: send, disconnect, tell, fund; the chain commands are
/// taken from [`Engine::chain_commands`].
#[derive(Debug, Default)]
pub struct Step {
    /// Messages and disconnections for peers, in order.
    pub out: Vec<Out>,
    /// Notices for the CHNL bus.
    pub notices: Vec<Notice>,
    /// Fundings to make.
    pub funding: Vec<FundingNeed>,
}

/// The engine's settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The chain.
    pub network: Network,
    /// Our node key (peers know us by its public key).
    pub node_secret: SecretKey,
    /// Depth we ask of a channel a peer funds (LDK's `minimum_depth`, at least 1).
    pub min_depth: u32,
    /// Our `to_self_delay` (blocks a force close of ours waits).
    pub to_self_delay: u16,
    /// The seed of the channel keys (`DATA_DIR/channel.seed`, created once, mode 0600).
    pub seed: [u8; 32],
}

/// The user config of our channels.
pub fn user_config(c: &EngineConfig) -> UserConfig {
    let mut u = UserConfig::default();
    u.channel_handshake_config.minimum_depth = c.min_depth.max(1);
    u.channel_handshake_config.our_to_self_delay = c.to_self_delay.max(144);
    u.channel_handshake_config.announce_for_forwarding = false;
    u.channel_handshake_limits.max_minimum_depth = 144;
    u.channel_handshake_limits
        .force_announced_channel_preference = false;
    u.accept_inbound_channels = true;
    u.manually_accept_inbound_channels = false;
    u
}

/// The features our `init` carries (what LDK provides and requires).
pub fn init_features(c: &EngineConfig) -> Vec<u8> {
    let mut le = lightning::ln::channelmanager::provided_init_features(&user_config(c))
        .le_flags()
        .to_vec();
    le.reverse();
    le
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The engine.
pub struct Engine {
    /// LDK's channel manager.
    pub manager: Arc<Manager>,
    /// LDK's chain monitor.
    pub monitor: Arc<Monitor>,
    sweeper: Arc<Sweeper>,
    keys: Arc<KeysManager>,
    kv: Arc<Kv>,
    chain: Arc<ChainQueue>,
    /// Fee rates (set from the BP node).
    pub fees: Arc<Fees>,
    sweep_to: Arc<SweepTo>,
    payments: HashMap<String, Payment>,
    /// The peers LDK was told are connected (LDK panics on a disconnect of a peer it does not
    /// hold as connected; connection events can reach a new engine out of step).
    connected: HashSet<PublicKey>,
    last_timer: Duration,
}

impl Engine {
    /// Whether the store holds a channel manager (else [`Engine::open`] needs the chain tip).
    pub fn exists(store: &Arc<dyn Storage>) -> bool {
        let (p, s, k) = (
            persist::CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE,
            persist::CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE,
            persist::CHANNEL_MANAGER_PERSISTENCE_KEY,
        );
        Kv::new(store.clone()).read(p, s, k).is_ok()
    }

    /// Opens the engine kept in `store`, or makes a new one at `tip` (the chain's best block now).
    pub fn open(
        store: Arc<dyn Storage>,
        c: &EngineConfig,
        tip: Option<BestBlock>,
    ) -> Result<Engine, String> {
        let kv = Arc::new(Kv::new(store));
        let seed = c.seed;
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let keys = Arc::new(KeysManager::new(&seed, t.as_secs(), t.subsec_nanos(), true));
        let secp = Secp256k1::new();
        let node = Arc::new(NodeKeys {
            keys: keys.clone(),
            secret: c.node_secret,
            id: PublicKey::from_secret_key(&secp, &c.node_secret),
            secp,
        });
        let chain = Arc::new(ChainQueue::default());
        let fees = Arc::new(Fees::default());
        let sweep_to = Arc::new(SweepTo::default());
        {
            let (p, s, k) = SWEEP_KEY;
            if let Ok(v) = kv.read(p, s, k) {
                *lock(&sweep_to.script) = Some(ScriptBuf::from_bytes(v));
            }
        }
        let signers = Arc::new(Signers {
            keys: keys.clone(),
            to: sweep_to.clone(),
        });
        let log = Arc::new(Log);
        let monitor = Arc::new(ChainMonitor::new(
            Some(chain.clone()),
            chain.clone(),
            log.clone(),
            fees.clone(),
            kv.clone(),
            keys.clone(),
            keys.get_peer_storage_key(),
        ));
        let config = user_config(c);
        let router = Arc::new(OneHop);
        let mrouter = Arc::new(NullMessageRouter {});
        let (pm, sm, km) = (
            persist::CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE,
            persist::CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE,
            persist::CHANNEL_MANAGER_PERSISTENCE_KEY,
        );
        let manager = match kv.read(pm, sm, km) {
            Ok(bytes) => {
                let monitors =
                    persist::read_channel_monitors(kv.clone(), keys.clone(), signers.clone())
                        .map_err(|e| format!("cannot read the channel monitors: {e}"))?;
                let refs: Vec<_> = monitors.iter().map(|(_, m)| m).collect();
                let args = ChannelManagerReadArgs::new(
                    keys.clone(),
                    node.clone(),
                    signers.clone(),
                    fees.clone(),
                    monitor.clone(),
                    chain.clone(),
                    router,
                    mrouter,
                    log.clone(),
                    config,
                    refs,
                );
                let (_, manager) = <(BlockHash, Manager)>::read(&mut &bytes[..], args)
                    .map_err(|e| format!("cannot read the channel manager: {e:?}"))?;
                for (_, m) in monitors {
                    let id = m.channel_id();
                    m.load_outputs_to_watch(&chain, &log);
                    lightning::chain::Watch::watch_channel(&*monitor, id, m)
                        .map_err(|_| format!("the monitor of channel {id} was refused"))?;
                }
                manager
            }
            Err(e) if e.kind() == bitcoin::io::ErrorKind::NotFound => {
                let best = tip.ok_or("no channel state yet, and the chain tip is not known (is the BP node reachable?)")?;
                let params = ChainParameters {
                    network: c.network,
                    best_block: best,
                };
                ChannelManager::new(
                    fees.clone(),
                    monitor.clone(),
                    chain.clone(),
                    router,
                    mrouter,
                    log.clone(),
                    keys.clone(),
                    node.clone(),
                    signers.clone(),
                    config,
                    params,
                    now_secs() as u32,
                )
            }
            Err(e) => return Err(format!("cannot read the channel manager: {e}")),
        };
        let (ps, ss, ks) = (
            persist::OUTPUT_SWEEPER_PERSISTENCE_PRIMARY_NAMESPACE,
            persist::OUTPUT_SWEEPER_PERSISTENCE_SECONDARY_NAMESPACE,
            persist::OUTPUT_SWEEPER_PERSISTENCE_KEY,
        );
        let sweeper = match kv.read(ps, ss, ks) {
            Ok(bytes) => {
                let args = (
                    chain.clone(),
                    fees.clone(),
                    Some(chain.clone()),
                    keys.clone(),
                    sweep_to.clone(),
                    kv.clone(),
                    log.clone(),
                );
                let (_, s) = <(BestBlock, Sweeper)>::read(&mut &bytes[..], args)
                    .map_err(|e| format!("cannot read the output sweeper: {e:?}"))?;
                s
            }
            Err(_) => OutputSweeperSync::new(
                manager.current_best_block(),
                chain.clone(),
                fees.clone(),
                Some(chain.clone()),
                keys.clone(),
                sweep_to.clone(),
                kv.clone(),
                log.clone(),
            ),
        };
        let mut payments = HashMap::new();
        for key in kv
            .list(PAYMENTS, "")
            .map_err(|e| format!("cannot list the payments: {e}"))?
        {
            let v = kv
                .read(PAYMENTS, "", &key)
                .map_err(|e| format!("cannot read payment {key}: {e}"))?;
            let p: Payment =
                serde_json::from_slice(&v).map_err(|e| format!("payment {key}: {e}"))?;
            payments.insert(key, p);
        }
        let e = Engine {
            manager: Arc::new(manager),
            monitor,
            sweeper: Arc::new(sweeper),
            keys,
            kv,
            chain,
            fees,
            sweep_to,
            payments,
            connected: HashSet::new(),
            last_timer: Duration::ZERO,
        };
        e.persist_manager()?;
        Ok(e)
    }

    /// Our node id.
    pub fn node_id(&self) -> PublicKey {
        self.manager.get_our_node_id()
    }

    /// The best block LDK's manager has seen.
    pub fn best_block(&self) -> BestBlock {
        self.manager.current_best_block()
    }

    /// Sets (and keeps) the address closed channels' funds go to.
    pub fn set_sweep_script(&self, script: ScriptBuf) -> Result<(), String> {
        let (p, s, k) = SWEEP_KEY;
        self.kv
            .write(p, s, k, script.to_bytes())
            .map_err(|e| e.to_string())?;
        *lock(&self.sweep_to.script) = Some(script);
        Ok(())
    }

    /// Keeps where `peer` was reached (an outbound connection), to reconnect it when its
    /// channels need it.
    pub fn remember_peer(&self, peer: &PublicKey, addr: &str) -> Result<(), String> {
        let key = peer.to_string();
        if self.kv.read(PEERS, "", &key).ok().as_deref() == Some(addr.as_bytes()) {
            return Ok(());
        }
        self.kv
            .write(PEERS, "", &key, addr.as_bytes().to_vec())
            .map_err(|e| e.to_string())
    }

    /// The channel peers that are not connected, with the address they were reached at.
    pub fn peers_to_reconnect(&self, connected: &[PublicKey]) -> Vec<(PublicKey, String)> {
        let mut out: Vec<(PublicKey, String)> = Vec::new();
        for c in self.manager.list_channels() {
            let p = c.counterparty.node_id;
            if connected.contains(&p) || out.iter().any(|(q, _)| *q == p) {
                continue;
            }
            if let Ok(a) = self.kv.read(PEERS, "", &p.to_string()) {
                out.push((p, String::from_utf8_lossy(&a).into_owned()));
            }
        }
        out
    }

    /// Whether a sweep address is known.
    pub fn has_sweep_script(&self) -> bool {
        self.sweep_to.get().is_some()
    }

    /// The chain commands LDK queued.
    pub fn chain_commands(&self) -> Vec<ChainCmd> {
        self.chain.take()
    }

    fn persist_manager(&self) -> Result<(), String> {
        self.kv
            .write(
                persist::CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE,
                persist::CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE,
                persist::CHANNEL_MANAGER_PERSISTENCE_KEY,
                self.manager.encode(),
            )
            .map_err(|e| format!("cannot keep the channel manager: {e}"))
    }

    fn keep_payment(&mut self, p: Payment) -> Result<(), String> {
        let v = serde_json::to_vec(&p).map_err(|e| e.to_string())?;
        self.kv
            .write(PAYMENTS, "", &p.hash, v)
            .map_err(|e| format!("cannot keep payment {}: {e}", p.hash))?;
        self.payments.insert(p.hash.clone(), p);
        Ok(())
    }

    // ---- peers ----

    /// A peer's connection is ready; `features` its `init` features (big-endian, as on the wire).
    pub fn peer_connected(
        &mut self,
        peer: PublicKey,
        features: &[u8],
        inbound: bool,
    ) -> Result<Step, String> {
        let mut le = features.to_vec();
        le.reverse();
        let init = Init {
            features: InitFeatures::from_le_bytes(le),
            networks: None,
            remote_network_address: None,
        };
        if self.connected.contains(&peer) {
            // Told twice of one connection (once when the engine opened, once from the queue):
            // every closed connection is told before the next one opens, in the same queue.
            return self.step();
        }
        let r = self.manager.peer_connected(peer, &init, inbound);
        if r.is_ok() {
            self.connected.insert(peer);
        }
        let mut step = self.step()?;
        if r.is_err() {
            step.out.push(Out::Disconnect(
                peer,
                "the peer lacks features our channels need (static_remotekey)".into(),
            ));
        }
        Ok(step)
    }

    /// A peer's connection closed.
    pub fn peer_disconnected(&mut self, peer: PublicKey) -> Result<Step, String> {
        if self.connected.remove(&peer) {
            self.manager.peer_disconnected(peer);
        }
        self.step()
    }

    /// Whether LDK holds `peer` as connected.
    pub fn is_connected(&self, peer: &PublicKey) -> bool {
        self.connected.contains(peer)
    }

    /// A channel message from `peer`. A message that does not decode is answered with a
    /// warning (BOLT-1) and the connection closed; LDK answers the rest as BOLT-2 says.
    pub fn peer_message(
        &mut self,
        peer: PublicKey,
        type_id: u16,
        payload: &[u8],
    ) -> Result<Step, String> {
        if !self.connected.contains(&peer) {
            // A message of a connection LDK was not told about (it closed, or it belongs to
            // an earlier engine): the peer reestablishes on its next connection.
            tracing::debug!(peer = %peer, type_id, "channel message of a peer not connected: dropped");
            return self.step();
        }
        match codec::decode(type_id, payload) {
            Ok(m) => {
                codec::dispatch(&*self.manager, peer, m);
                self.step()
            }
            Err(why) => {
                tracing::warn!(peer = %peer, type_id, "malformed channel message: {why}");
                let mut step = self.step()?;
                let w = lightning::ln::msgs::WarningMessage {
                    channel_id: ChannelId([0; 32]),
                    data: format!("malformed message of type {type_id}: {why}"),
                };
                step.out.push(Out::Send(peer, 1, w.encode()));
                step.out.push(Out::Disconnect(
                    peer,
                    format!("malformed message of type {type_id}"),
                ));
                Ok(step)
            }
        }
    }

    // ---- the chain ----

    /// Block `header` at `height` joined the best chain; `txs` its transactions that touch our
    /// watches (position, transaction), in block order.
    pub fn block_connected(
        &mut self,
        header: &Header,
        height: u32,
        txs: &[(usize, Transaction)],
    ) -> Result<Step, String> {
        let data: Vec<(usize, &Transaction)> = txs.iter().map(|(i, t)| (*i, t)).collect();
        let best = self.manager.current_best_block();
        if height <= best.height {
            // Seen already (a replay that overlaps what was fed).
            return Ok(Step::default());
        }
        if height == best.height + 1 && header.prev_blockhash == best.block_hash {
            self.manager.filtered_block_connected(header, &data, height);
        } else {
            return Err(format!(
                "block {height} does not build on our best block {} at {}",
                best.block_hash, best.height
            ));
        }
        self.monitor.filtered_block_connected(header, &data, height);
        if height > self.sweeper.current_best_block().height {
            self.sweeper.filtered_block_connected(header, &data, height);
        }
        let _ = self.sweeper.regenerate_and_broadcast_spend_if_necessary();
        let step = self.step()?;
        self.persist_manager()?;
        Ok(step)
    }

    /// Block `header` at `height` left the best chain.
    pub fn block_disconnected(&mut self, header: &Header, height: u32) -> Result<Step, String> {
        let fork = BestBlock::new(header.prev_blockhash, height.saturating_sub(1));
        if self.manager.current_best_block().height >= height {
            self.manager.blocks_disconnected(fork);
        }
        self.monitor.blocks_disconnected(fork);
        if self.sweeper.current_best_block().height >= height {
            self.sweeper.blocks_disconnected(fork);
        }
        let step = self.step()?;
        self.persist_manager()?;
        Ok(step)
    }

    /// Time passed (`now` since any fixed origin): LDK's timers (each minute), pending HTLC
    /// forwards, claims to rebroadcast.
    pub fn tick(&mut self, now: Duration) -> Result<Step, String> {
        if now.saturating_sub(self.last_timer) >= Duration::from_secs(60) {
            self.last_timer = now;
            self.manager.timer_tick_occurred();
            self.monitor.rebroadcast_pending_claims();
            let _ = self.sweeper.regenerate_and_broadcast_spend_if_necessary();
        }
        self.step()
    }

    // ---- requests ----

    /// Opens a channel of `sats` to `peer`, pushing `push_msat`.
    pub fn open_channel(
        &mut self,
        peer: PublicKey,
        sats: u64,
        push_msat: u64,
    ) -> Result<(ChannelId, u128, Step), String> {
        let user_id = u128::from_be_bytes(
            self.keys.get_secure_random_bytes()[..16]
                .try_into()
                .unwrap_or([0; 16]),
        );
        let id = self
            .manager
            .create_channel(peer, sats, push_msat, user_id, None, None)
            .map_err(|e| format!("{e:?}"))?;
        Ok((id, user_id, self.step()?))
    }

    /// The funding transaction of `need`, signed by the BP wallet (or why there is none).
    pub fn funded(
        &mut self,
        need: &FundingNeed,
        tx: Result<Transaction, String>,
    ) -> Result<Step, String> {
        match tx {
            Ok(tx) => {
                if !tx
                    .output
                    .iter()
                    .any(|o| o.script_pubkey == need.script && o.value.to_sat() == need.sats)
                {
                    tracing::error!("the funding transaction does not pay the channel's output");
                    let _ = self.manager.force_close_broadcasting_latest_txn(
                        &need.temp_id,
                        &need.peer,
                        "funding failed".into(),
                    );
                } else if let Err(e) =
                    self.manager
                        .funding_transaction_generated(need.temp_id, need.peer, tx)
                {
                    tracing::warn!("LDK refused the funding transaction: {e:?}");
                }
            }
            Err(why) => {
                tracing::warn!(channel = %need.temp_id, "the channel cannot be funded: {why}");
                let _ = self.manager.force_close_broadcasting_latest_txn(
                    &need.temp_id,
                    &need.peer,
                    format!("funding failed: {why}"),
                );
            }
        }
        self.step()
    }

    /// A BOLT-11 invoice of ours.
    pub fn invoice(
        &mut self,
        amount_msat: Option<u64>,
        description: &str,
        expiry_secs: u32,
    ) -> Result<Bolt11Invoice, String> {
        let desc =
            Description::new(description.to_string()).map_err(|e| format!("description: {e:?}"))?;
        let params = Bolt11InvoiceParameters {
            amount_msats: amount_msat,
            description: Bolt11InvoiceDescription::Direct(desc),
            invoice_expiry_delta_secs: Some(expiry_secs),
            ..Default::default()
        };
        self.manager
            .create_bolt11_invoice(params)
            .map_err(|e| format!("{e:?}"))
    }

    /// Pays `invoice` (its amount, or `amount_msat` for an invoice without one). The payment's
    /// record is kept before LDK sends anything.
    pub fn pay(
        &mut self,
        invoice: &Bolt11Invoice,
        amount_msat: Option<u64>,
    ) -> Result<(Payment, Step), String> {
        let hash = hex(invoice.payment_hash().as_byte_array());
        if let Some(p) = self.payments.get(&hash) {
            if p.status != "failed" {
                return Err(format!(
                    "invoice {hash} is already {} by us",
                    if p.status == "pending" {
                        "being paid"
                    } else {
                        "paid"
                    }
                ));
            }
        }
        let payee = invoice.recover_payee_pub_key();
        if !self
            .manager
            .list_usable_channels()
            .iter()
            .any(|c| c.counterparty.node_id == payee)
        {
            return Err(format!("no usable channel with the payee {payee}: only direct channel peers can be paid (no multi-hop routing)"));
        }
        let amount = invoice
            .amount_milli_satoshis()
            .or(amount_msat)
            .ok_or("the invoice has no amount: give one")?;
        let now = now_secs();
        let p = Payment {
            hash: hash.clone(),
            outbound: true,
            amount_msat: amount,
            fee_msat: None,
            status: "pending".into(),
            reason: None,
            preimage: None,
            payee: Some(payee.to_string()),
            created: now,
            updated: now,
        };
        self.keep_payment(p.clone())?;
        let id = PaymentId(invoice.payment_hash().to_byte_array());
        let amt = if invoice.amount_milli_satoshis().is_some() {
            None
        } else {
            Some(amount)
        };
        if let Err(e) = self.manager.pay_for_bolt11_invoice(
            invoice,
            id,
            amt,
            RouteParametersConfig::default(),
            lightning::ln::channelmanager::Retry::Attempts(3),
        ) {
            let why = format!("{e:?}");
            self.settle(&hash, |p| {
                p.status = "failed".into();
                p.reason = Some(why.clone());
            })?;
            return Err(why);
        }
        Ok((p, self.step()?))
    }

    /// Closes a channel: cooperatively, or by broadcasting our commitment.
    pub fn close(&mut self, channel_id: &ChannelId, force: bool) -> Result<Step, String> {
        let c = self
            .manager
            .list_channels()
            .into_iter()
            .find(|c| c.channel_id == *channel_id)
            .ok_or_else(|| format!("no channel {channel_id}"))?;
        let peer = c.counterparty.node_id;
        let r = if force {
            self.manager.force_close_broadcasting_latest_txn(
                channel_id,
                &peer,
                "closed by the operator".into(),
            )
        } else {
            self.manager.close_channel(channel_id, &peer)
        };
        r.map_err(|e| format!("{e:?}"))?;
        self.step()
    }

    /// Our channels.
    pub fn channels(&self) -> Vec<ChannelView> {
        self.manager
            .list_channels()
            .iter()
            .map(|c| {
                let mut v = view(c);
                // LDK tells our balance to the msat only above the reserve (what we could send,
                // plus the reserve); below it, the monitor's figure (to the sat) is the truth.
                let pending: u64 = c.pending_inbound_htlcs.iter().map(|h| h.amount_msat).sum::<u64>()
                    + c.pending_outbound_htlcs.iter().map(|h| h.amount_msat).sum::<u64>();
                if c.outbound_capacity_msat == 0 {
                    if let Ok(m) = self.monitor.get_monitor(c.channel_id) {
                        let sat: u64 = m
                            .get_claimable_balances()
                            .iter()
                            .map(|b| match b {
                                lightning::chain::channelmonitor::Balance::ClaimableOnChannelClose { balance_candidates, confirmed_balance_candidate_index, .. } => balance_candidates
                                    .get(*confirmed_balance_candidate_index)
                                    .or(balance_candidates.last())
                                    .map(|h| h.amount_satoshis + if c.is_outbound { h.transaction_fee_satoshis } else { 0 })
                                    .unwrap_or(0),
                                _ => 0,
                            })
                            .sum();
                        v.local_msat = sat * 1000;
                    }
                }
                if c.inbound_capacity_msat == 0 {
                    v.remote_msat = (c.channel_value_satoshis * 1000).saturating_sub(v.local_msat + pending);
                }
                v
            })
            .collect()
    }

    /// Our payments, newest first.
    pub fn payments(&self) -> Vec<Payment> {
        let mut v: Vec<Payment> = self.payments.values().cloned().collect();
        v.sort_by(|a, b| b.created.cmp(&a.created).then(a.hash.cmp(&b.hash)));
        v
    }

    /// One payment.
    pub fn payment(&self, hash: &str) -> Option<&Payment> {
        self.payments.get(hash)
    }

    /// What is to be claimed on chain (sat): balances of closed or closing channels not yet
    /// swept, and the outputs the sweeper holds.
    pub fn onchain_claimable(&self) -> (u64, Vec<String>) {
        let open: Vec<ChannelDetails> = self.manager.list_channels();
        let refs: Vec<&ChannelDetails> = open.iter().collect();
        let mut sum = 0;
        let mut lines = Vec::new();
        for b in self.monitor.get_claimable_balances(&refs) {
            let a = b.claimable_amount_satoshis();
            sum += a;
            lines.push(format!("{a} sat: {}", balance_kind(&b)));
        }
        for o in self.sweeper.tracked_spendable_outputs() {
            let v = match &o.descriptor {
                lightning::sign::SpendableOutputDescriptor::StaticOutput { output, .. } => {
                    output.value.to_sat()
                }
                lightning::sign::SpendableOutputDescriptor::DelayedPaymentOutput(d) => {
                    d.output.value.to_sat()
                }
                lightning::sign::SpendableOutputDescriptor::StaticPaymentOutput(d) => {
                    d.output.value.to_sat()
                }
            };
            lines.push(format!(
                "{v} sat: being swept to the BP wallet ({:?})",
                o.status
            ));
        }
        (sum, lines)
    }

    fn settle(&mut self, hash: &str, f: impl FnOnce(&mut Payment)) -> Result<(), String> {
        if let Some(mut p) = self.payments.get(hash).cloned() {
            f(&mut p);
            p.updated = now_secs();
            self.keep_payment(p)?;
        }
        Ok(())
    }

    /// Drains LDK: events handled (funding asked, payments claimed and recorded, outputs given
    /// to the sweeper), then the messages to send. Monitor updates were made durable inside
    /// LDK's calls (a synchronous `Persist`), so every message here may leave.
    pub fn step(&mut self) -> Result<Step, String> {
        let mut step = Step::default();
        let mut failed = None;
        let mut events = pending(&*self.manager);
        events.extend(pending(&*self.monitor));
        for ev in events {
            if let Err(e) = self.event(ev, &mut step) {
                failed = Some(e);
            }
        }
        self.manager.process_pending_htlc_forwards();
        step.out.extend(codec::encode(
            self.manager.get_and_clear_pending_msg_events(),
        ));
        if self.manager.get_and_clear_needs_persistence() {
            self.persist_manager()?;
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(step),
        }
    }

    fn event(&mut self, ev: Event, step: &mut Step) -> Result<(), String> {
        match ev {
            Event::FundingGenerationReady {
                temporary_channel_id,
                counterparty_node_id,
                channel_value_satoshis,
                output_script,
                ..
            } => {
                step.funding.push(FundingNeed {
                    temp_id: temporary_channel_id,
                    peer: counterparty_node_id,
                    script: output_script,
                    sats: channel_value_satoshis,
                });
            }
            Event::PaymentClaimable {
                payment_hash,
                purpose,
                amount_msat,
                ..
            } => match purpose.preimage() {
                Some(pre) => self.manager.claim_funds(pre),
                None => {
                    tracing::warn!(hash = %payment_hash, amount_msat, "a payment we cannot claim (no preimage): failed back");
                    self.manager.fail_htlc_backwards(&payment_hash);
                }
            },
            Event::PaymentClaimed {
                payment_hash,
                amount_msat,
                purpose,
                ..
            } => {
                let hash = hex(&payment_hash.0);
                let now = now_secs();
                let p = Payment {
                    hash: hash.clone(),
                    outbound: false,
                    amount_msat,
                    fee_msat: None,
                    status: "succeeded".into(),
                    reason: None,
                    preimage: purpose.preimage().map(|p: PaymentPreimage| hex(&p.0)),
                    payee: None,
                    created: self.payments.get(&hash).map(|p| p.created).unwrap_or(now),
                    updated: now,
                };
                self.keep_payment(p)?;
                step.notices
                    .push(Notice::PaymentReceived { hash, amount_msat });
            }
            Event::PaymentSent {
                payment_hash,
                payment_preimage,
                fee_paid_msat,
                ..
            } => {
                let hash = hex(&payment_hash.0);
                self.settle(&hash, |p| {
                    p.status = "succeeded".into();
                    p.preimage = Some(hex(&payment_preimage.0));
                    p.fee_msat = fee_paid_msat;
                    p.reason = None;
                })?;
                step.notices.push(Notice::PaymentSent {
                    hash,
                    fee_msat: fee_paid_msat.unwrap_or(0),
                });
            }
            Event::PaymentFailed {
                payment_id,
                payment_hash,
                reason,
            } => {
                let hash = hex(&payment_hash
                    .map(|h: PaymentHash| h.0)
                    .unwrap_or(payment_id.0));
                let why = reason
                    .map(|r| format!("{r:?}"))
                    .unwrap_or_else(|| "failed".into());
                self.settle(&hash, |p| {
                    p.status = "failed".into();
                    p.reason = Some(why.clone());
                })?;
                step.notices
                    .push(Notice::PaymentFailed { hash, reason: why });
            }
            Event::SpendableOutputs {
                outputs,
                channel_id,
            } => {
                // Static outputs pay our BP wallet address already (a cooperative close, the
                // destination script): only the outputs with channel keys are swept.
                self.sweeper
                    .track_spendable_outputs(outputs, channel_id, true, None)
                    .map_err(|_| "the sweeper could not keep the outputs".to_string())?;
            }
            Event::ChannelPending {
                channel_id,
                counterparty_node_id,
                funding_txo,
                former_temporary_channel_id,
                user_channel_id,
                ..
            } => {
                step.notices.push(Notice::ChannelPending {
                    channel_id: channel_id.to_string(),
                    peer: counterparty_node_id.to_string(),
                    funding: format!("{}:{}", funding_txo.txid, funding_txo.vout),
                    temp_id: former_temporary_channel_id
                        .map(|t| t.to_string())
                        .unwrap_or_default(),
                    user_id: user_channel_id,
                });
            }
            Event::ChannelReady {
                channel_id,
                counterparty_node_id,
                ..
            } => {
                step.notices.push(Notice::ChannelReady {
                    channel_id: channel_id.to_string(),
                    peer: counterparty_node_id.to_string(),
                });
            }
            Event::ChannelClosed {
                channel_id,
                reason,
                counterparty_node_id,
                user_channel_id,
                ..
            } => {
                step.notices.push(Notice::ChannelClosed {
                    channel_id: channel_id.to_string(),
                    peer: counterparty_node_id.map(|p| p.to_string()),
                    reason: closure(&reason),
                    user_id: user_channel_id,
                });
            }
            Event::DiscardFunding { channel_id, .. } => {
                tracing::warn!(channel = %channel_id, "a funding transaction was discarded (its coins stay spent in the BP wallet until it is abandoned)");
            }
            Event::PaymentPathSuccessful { .. }
            | Event::PaymentPathFailed { .. }
            | Event::HTLCHandlingFailed { .. } => {}
            other => tracing::debug!(target: "ldk", "event not acted on: {other:?}"),
        }
        Ok(())
    }
}

/// The events `p` has now (handled by the caller, after LDK's lock is released).
fn pending<P: EventsProvider>(p: &P) -> Vec<Event> {
    let events = std::cell::RefCell::new(Vec::new());
    p.process_pending_events(&|ev: Event| -> Result<(), ReplayEvent> {
        events.borrow_mut().push(ev);
        Ok(())
    });
    events.into_inner()
}

fn balance_kind(b: &lightning::chain::channelmonitor::Balance) -> &'static str {
    use lightning::chain::channelmonitor::Balance::*;
    match b {
        ClaimableOnChannelClose { .. } => "our balance if the channel closes now",
        ClaimableAwaitingConfirmations { .. } => "claimable once its confirmations are reached",
        ContentiousClaimable { .. } => "an HTLC we can claim with its preimage",
        MaybeTimeoutClaimableHTLC { .. } => "an HTLC of ours that times out",
        MaybePreimageClaimableHTLC { .. } => "an HTLC the peer may claim",
        CounterpartyRevokedOutputClaimable { .. } => "a revoked output of the peer, ours to take",
    }
}

fn closure(r: &ClosureReason) -> String {
    r.to_string()
}

fn view(c: &ChannelDetails) -> ChannelView {
    let state = if c
        .channel_shutdown_state
        .is_some_and(|s| s != lightning::ln::channel_state::ChannelShutdownState::NotShuttingDown)
    {
        "closing"
    } else if c.is_usable {
        "ready"
    } else if c.is_channel_ready {
        "offline"
    } else {
        "pending"
    };
    ChannelView {
        channel_id: c.channel_id.to_string(),
        peer: c.counterparty.node_id.to_string(),
        capacity_sat: c.channel_value_satoshis,
        local_msat: c.outbound_capacity_msat + c.unspendable_punishment_reserve.unwrap_or(0) * 1000,
        remote_msat: c.inbound_capacity_msat + c.counterparty.unspendable_punishment_reserve * 1000,
        outbound: c.is_outbound,
        state: state.into(),
        funding: c.funding_txo.map(|o| format!("{}:{}", o.txid, o.index)),
        scid: c.short_channel_id,
        confirmations: c.confirmations,
        confirmations_required: c.confirmations_required,
    }
}

/// Parses a channel id (64 hex digits).
pub fn parse_channel_id(s: &str) -> Result<ChannelId, String> {
    use bitcoin::hex::FromHex;
    <[u8; 32]>::from_hex(s)
        .map(ChannelId)
        .map_err(|_| "a channel id is 64 hex digits".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RedbStorage;
    use bitcoin::hashes::Hash;

    fn engine() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Storage> =
            Arc::new(RedbStorage::open(&dir.path().join("ch.redb")).unwrap());
        let cfg = EngineConfig {
            network: Network::Regtest,
            node_secret: SecretKey::from_slice(&[3; 32]).unwrap(),
            min_depth: 1,
            to_self_delay: 144,
            seed: [4; 32],
        };
        let tip = BestBlock::new(BlockHash::from_byte_array([5; 32]), 100);
        (dir, Engine::open(store, &cfg, Some(tip)).unwrap())
    }

    #[test]
    fn connection_events_out_of_step_are_absorbed_not_a_panic() {
        let (_d, mut e) = engine();
        let secp = Secp256k1::new();
        let peer = PublicKey::from_secret_key(&secp, &SecretKey::from_slice(&[9; 32]).unwrap());
        // A close of a connection this engine never heard of (it belonged to the engine
        // before a restart): LDK itself would panic.
        e.peer_disconnected(peer).unwrap();
        assert!(!e.is_connected(&peer));
        // A message on it is dropped, not handed to LDK.
        let step = e.peer_message(peer, 39, &[0; 10]).unwrap();
        assert!(step.out.is_empty(), "{:?}", step.out.len());
        // Connected twice (once when the engine opened, once from the queue), then closed
        // twice: LDK sees one connection and one close.
        let be = init_features(&EngineConfig {
            network: Network::Regtest,
            node_secret: SecretKey::from_slice(&[3; 32]).unwrap(),
            min_depth: 1,
            to_self_delay: 144,
            seed: [4; 32],
        });
        e.peer_connected(peer, &be, false).unwrap();
        e.peer_connected(peer, &be, false).unwrap();
        assert!(e.is_connected(&peer));
        assert_eq!(e.manager.list_channels().len(), 0);
        e.peer_disconnected(peer).unwrap();
        e.peer_disconnected(peer).unwrap();
        assert!(!e.is_connected(&peer));
        // Now connected, a malformed message gets a warning and a disconnect.
        e.peer_connected(peer, &be, true).unwrap();
        let step = e.peer_message(peer, 32, &[1, 2, 3]).unwrap();
        assert!(step
            .out
            .iter()
            .any(|o| matches!(o, Out::Disconnect(p, _) if *p == peer)));
    }
}
