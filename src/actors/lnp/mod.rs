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
    sections: &["peers", "bifrost"],
    list_flags: &[
        ("listen", "peers.listen"),
        ("bifrost-listen", "bifrost.listen"),
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
}

/// `[bifrost]` as written in the config.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawBifrost {
    listen: Vec<String>,
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
}

impl LnpSettings {
    /// Reads and validates `[peers]`.
    pub fn read(s: &Section<'_>) -> Result<LnpSettings, String> {
        let p: RawPeers = s.table("peers")?;
        s.socket_addrs("peers.listen", &p.listen, "0.0.0.0:9735")?;
        let b: RawBifrost = s.table("bifrost")?;
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
            }
            .read(s, "peers")?,
        })
    }
}

impl NodeSettings for LnpSettings {
    fn plan(&self, env: &NodeEnv<'_>) -> Result<NodePlan, String> {
        let registry = start_peers(self, env.config.network, env.config.secret)?;
        let (ext, details) = (registry.clone(), registry);
        Ok(NodePlan {
            services: Vec::new(),
            extensions: vec![Box::new(move || Box::new(lnpd::Lnpd::new(ext.clone())))],
            details: Some(Box::new(move || details.details())),
        })
    }
}

/// Builds the registry and binds the listeners of `settings` (before any service starts, so a
/// port in use stops the node with a clear message).
pub fn start_peers(
    settings: &LnpSettings,
    network: Network,
    secret: SecretKey,
) -> Result<Arc<Registry>, String> {
    let config = PeerConfig {
        session: SessionConfig {
            chain: network.chain_hash(),
            features: Features::default(),
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
