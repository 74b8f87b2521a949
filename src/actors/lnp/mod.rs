//! LNP Node (Lightning P2P): manager `lnpd` on the MSG, CTL, CHNL and API buses, and one
//! `peerd` per Lightning peer (BOLT-1 over BOLT-8, 9735 by default). `channeld` and Bifrost
//! (9999) arrive with their issues.
//!
//! [`NODE`] is the node's whole plan: its seed row, its `[peers]` section and `--listen`, and
//! (through [`LnpSettings::plan`]) the registry behind `lnpd`'s requests and `info` details.
//!
//! - [`peers`]: the registry of connections, listeners, caps and MSG-bus subscriptions.
//! - [`peerd`]: the Lightning protocol of one connection, on the connection driver.
//! - [`lnpd`]: the LNP requests of the manager.

pub mod bifrostd;
#[cfg(feature = "channels")]
pub mod channeld;
pub mod lnpd;
pub mod peerd;
pub mod peers;

use super::admission::{AdmissionConfig, RawAdmission};
use super::settings::Section;
use super::{NodeDef, NodeEnv, NodePlan, NodeSeed, NodeSettings};
use crate::bus::BusKind;
use crate::wire::api::ServiceId;
use crate::wire::ln::bolt1::Features;
use crate::wire::ln::peer::SessionConfig;
use crate::wire::network::Network;
use bitcoin::secp256k1::SecretKey;
use peers::{PeerConfig, Registry};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
#[cfg(feature = "channels")]
use {
    super::service_spec,
    crate::bus::client::Dial,
    crate::ldk::engine::EngineConfig,
    crate::storage::{RedbStorage, Storage},
    channeld::{ChannelShared, Channeld},
};

/// The LNP node's declaration.
pub static NODE: NodeDef = NodeDef {
    seed: NodeSeed {
        manager: "lnpd",
        manager_id: ServiceId::Lnpd,
        buses: &[BusKind::Msg, BusKind::Ctl, BusKind::Chnl, BusKind::Api],
        tcp_ports: &[(BusKind::Api, 62962)],
        connection_names: &["peerd-", "bifrost-"],
    },
    defaults: include_str!("../../../config/lnp.toml"),
    sections: &["peers", "bifrost", "chain", "channels"],
    list_flags: &[
        ("listen", "peers.listen"),
        ("bifrost-listen", "bifrost.listen"),
        ("bp", "chain.bp"),
    ],
    settings: |s| Ok(Arc::new(LnpSettings::read(s)?)),
    counters: &[crate::lograte::Scope::Every, crate::lograte::Scope::Peers],
};

/// `[peers]` as written in the config.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawPeers {
    listen: Vec<String>,
    handshake_timeout_ms: u64,
    ping_interval_secs: u64,
    pong_timeout_secs: u64,
    max_peers: u64,
    max_handshakes: u64,
    max_handshakes_per_ip: u64,
    max_peers_per_ip: u64,
    trusted: Vec<String>,
    onion_inbound: Vec<String>,
}

/// `[bifrost]` as written in the config.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawBifrost {
    listen: Vec<String>,
}

/// `[chain]` as written in the config.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawChain {
    bp: Vec<String>,
}

/// `[channels]` as written in the config.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawChannels {
    min_depth: u64,
    to_self_delay: u64,
    fault_point: String,
}

/// Peer settings of an LNP node (`[peers]` in config/lnp.toml, `--listen`).
#[derive(Clone, Debug)]
pub struct LnpSettings {
    /// Addresses to listen on at start (`host:port`).
    pub listen: Vec<String>,
    /// Addresses to listen on for Bifrost peers (`[bifrost] listen`, `--bifrost-listen`).
    pub bifrost_listen: Vec<String>,
    /// Deadline of each handshake act and of the peer's `init`.
    pub act_timeout: Duration,
    /// Idle time before we ping a peer.
    pub ping_interval: Duration,
    /// Time a ping may stay unanswered.
    pub pong_timeout: Duration,
    /// The caps on inbound connections (src/actors/admission.rs).
    pub admission: AdmissionConfig,
    /// The BP node that is the channels' chain (`--bp`, `[chain] bp`): an endpoint of its API.
    pub bp: Option<String>,
    /// Depth we ask of channels peers fund (`[channels] min_depth`).
    pub min_depth: u32,
    /// Blocks our force close waits (`[channels] to_self_delay`).
    pub to_self_delay: u16,
    /// With fault injection: where `channeld` stops (`[channels] fault_point`).
    pub fault_point: Option<(bool, u16)>,
}

impl LnpSettings {
    /// Reads and validates `[peers]`.
    pub fn read(s: &Section<'_>) -> Result<LnpSettings, String> {
        let p: RawPeers = s.table("peers")?;
        s.socket_addrs("peers.listen", &p.listen, "0.0.0.0:9735")?;
        let b: RawBifrost = s.table("bifrost")?;
        let c: RawChain = s.table("chain")?;
        if c.bp.len() > 1 {
            return Err(s.bad("chain.bp", "one BP node at most".into()));
        }
        let ch: RawChannels = s.table("channels")?;
        s.socket_addrs("bifrost.listen", &b.listen, "0.0.0.0:9999")?;
        let ms = s.range(
            "peers.handshake_timeout_ms",
            p.handshake_timeout_ms,
            100,
            60_000,
        )?;
        Ok(LnpSettings {
            listen: p.listen,
            bifrost_listen: b.listen,
            act_timeout: Duration::from_millis(ms),
            ping_interval: s.secs("peers.ping_interval_secs", p.ping_interval_secs, 3_600)?,
            pong_timeout: s.secs("peers.pong_timeout_secs", p.pong_timeout_secs, 600)?,
            admission: RawAdmission {
                max_peers: p.max_peers,
                max_handshakes: p.max_handshakes,
                max_handshakes_per_ip: p.max_handshakes_per_ip,
                max_peers_per_ip: p.max_peers_per_ip,
                trusted: p.trusted,
                onion_inbound: p.onion_inbound,
            }
            .read(s, "peers")?,
            bp: c.bp.into_iter().next(),
            min_depth: s.range("channels.min_depth", ch.min_depth, 1, 144)? as u32,
            to_self_delay: s.range("channels.to_self_delay", ch.to_self_delay, 144, 2016)? as u16,
            fault_point: fault_point(s, &ch.fault_point)?,
        })
    }
}

/// `[channels] fault_point`: "" (none), `sent:TYPE` or `received:TYPE` (a channel message type).
fn fault_point(s: &Section<'_>, text: &str) -> Result<Option<(bool, u16)>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let parsed = text.split_once(':').and_then(|(d, t)| {
        let t: u16 = t.parse().ok()?;
        match d {
            "sent" => Some((true, t)),
            "received" => Some((false, t)),
            _ => None,
        }
    });
    parsed.map(Some).ok_or_else(|| {
        s.bad(
            "channels.fault_point",
            "expected \"\", sent:TYPE or received:TYPE".into(),
        )
    })
}

impl NodeSettings for LnpSettings {
    #[cfg(not(feature = "channels"))]
    fn plan(&self, env: &NodeEnv<'_>) -> Result<NodePlan, String> {
        if self.bp.is_some() {
            return Err("--bp: this nodectl is built without the `channels` feature".into());
        }
        let registry = start_peers(
            self,
            env.config.network,
            env.config.secret,
            Features::default(),
        )?;
        let (ext, details) = (registry.clone(), registry);
        Ok(NodePlan {
            services: Vec::new(),
            extensions: vec![Box::new(move || Box::new(lnpd::Lnpd::new(ext.clone())))],
            details: Some(Box::new(move || details.details())),
        })
    }

    #[cfg(feature = "channels")]
    fn plan(&self, env: &NodeEnv<'_>) -> Result<NodePlan, String> {
        let config = env.config;
        // The channel keys' seed, beside the node key: created once, mode 0600.
        let seed_file = config.data_dir.join("channel.seed");
        let (seed, _, _) = crate::actors::datadir::key_file(&seed_file)?;
        let engine = EngineConfig {
            seed: seed.secret_bytes(),
            network: config.network.bitcoin(),
            node_secret: config.secret,
            min_depth: self.min_depth,
            to_self_delay: self.to_self_delay,
        };
        let features = match &self.bp {
            Some(_) => Features(crate::ldk::engine::init_features(&engine)),
            None => Features::default(),
        };
        let registry = start_peers(self, config.network, config.secret, features)?;
        let bp = match &self.bp {
            None => None,
            Some(ep) => Some(
                Dial::parse(ep, &config.data_dir, config.secret)
                    .map_err(|e| format!("--bp {ep}: {e}"))?,
            ),
        };
        let path = config
            .data_dir
            .join(format!("channels-{}.redb", config.network.name()));
        let store: Arc<dyn Storage> = Arc::new(
            RedbStorage::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?,
        );
        if self.fault_point.is_some() && !config.fault_injection {
            return Err("[channels] fault_point needs fault_injection = true".into());
        }
        let shared = ChannelShared::new(
            registry.clone(),
            store,
            engine,
            bp,
            zmq::Context::new(),
            self.fault_point,
        );
        let buses: Vec<_> = env
            .buses
            .iter()
            .filter(|(k, _)| matches!(k, BusKind::Chnl | BusKind::Api))
            .map(|(_, b)| b.clone())
            .collect();
        let (ext, details, port) = (registry.clone(), registry, shared.port.clone());
        Ok(NodePlan {
            services: vec![service_spec("channeld".into(), move || {
                Channeld::new(shared.clone(), buses.clone())
            })],
            extensions: vec![Box::new(move || Box::new(lnpd::Lnpd::new(ext.clone())))],
            details: Some(Box::new(move || {
                let mut d = details.details();
                d.extend(port.details());
                d
            })),
        })
    }
}

/// Builds the registry and binds the listeners of `settings` (before any service starts, so a
/// port in use stops the node with a clear message).
pub fn start_peers(
    settings: &LnpSettings,
    network: Network,
    secret: SecretKey,
    features: Features,
) -> Result<Arc<Registry>, String> {
    let config = PeerConfig {
        session: SessionConfig {
            chain: network.chain_hash(),
            features,
            act_timeout: settings.act_timeout,
            ping_interval: settings.ping_interval,
            pong_timeout: settings.pong_timeout,
        },
        admission: settings.admission.clone(),
    };
    let registry = Registry::new(config, secret);
    for addr in &settings.listen {
        registry.bind(addr, crate::wire::api::lnp::Protocol::Lightning)?;
    }
    for addr in &settings.bifrost_listen {
        registry.bind(addr, crate::wire::api::lnp::Protocol::Bifrost)?;
    }
    Ok(registry)
}
