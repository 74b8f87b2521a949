//! BP Node (Bitcoin P2P): manager `bpd` on the BLOCKS, API and SIGN buses, and one `wired` per
//! Bitcoin peer (v1 transport on the network's port). `signd` arrives with its issue.
//!
//! - [`state`]: the header chain and its store, peers, BLOCKS subscribers, block requests.
//! - [`wired`]: the per-connection actor.
//! - [`bpd`]: the BP requests of the manager.

pub mod bpd;
pub mod state;
pub mod wired;

use super::NodeSeed;
use crate::bus::BusKind;
use crate::wire::btc_peer::Timers;
use crate::wire::msg::ServiceId;
use bitcoin::p2p::Magic;
use bitcoin::Network;
use state::BpState;
use std::path::Path;
use std::sync::Arc;

/// The BP row of the seed table.
pub static SEED: NodeSeed = NodeSeed {
    manager: "bpd",
    manager_id: ServiceId::Bpd,
    buses: &[BusKind::Blocks, BusKind::Api, BusKind::Sign],
    tcp_ports: &[(BusKind::Api, 61961)],
};

/// Settings of the Bitcoin peer layer (`[wire]` of config/bp.toml, `--connect`, `--listen`).
#[derive(Clone, Debug)]
pub struct BpSettings {
    /// Peers to connect to at start (`host:port`).
    pub connect: Vec<String>,
    /// Addresses to listen on (none unless asked).
    pub listen: Vec<String>,
    /// Timers.
    pub timers: Timers,
    /// Most connections.
    pub max_peers: usize,
}

/// What the BP services need.
#[derive(Clone, Debug)]
pub struct BpConfig {
    /// The network.
    pub network: Network,
    /// Its magic.
    pub magic: Magic,
    /// Timers.
    pub timers: Timers,
    /// Most connections.
    pub max_peers: usize,
}

/// The P2P port of a network.
pub fn default_port(network: Network) -> u16 {
    match network {
        Network::Bitcoin => 8333,
        Network::Testnet => 18333,
        Network::Testnet4 => 48333,
        Network::Signet => 38333,
        _ => 18444,
    }
}

/// Parses a network name.
pub fn network(name: &str) -> Result<Network, String> {
    Ok(match name {
        "bitcoin" => Network::Bitcoin,
        "testnet" => Network::Testnet,
        "testnet4" => Network::Testnet4,
        "signet" => Network::Signet,
        "regtest" => Network::Regtest,
        other => return Err(format!("unknown network {other}")),
    })
}

/// Opens the chain store, binds the listeners and dials the peers of `settings`.
pub fn start_wire(
    settings: &BpSettings,
    network_name: &str,
    data_dir: &Path,
) -> Result<Arc<BpState>, String> {
    let network = network(network_name)?;
    let config = BpConfig {
        network,
        magic: Magic::from(network),
        timers: settings.timers.clone(),
        max_peers: settings.max_peers,
    };
    let state = BpState::open(config, data_dir)?;
    for addr in &settings.listen {
        state.bind(addr)?;
    }
    for addr in &settings.connect {
        let addr = if addr.contains(':') {
            addr.clone()
        } else {
            format!("{addr}:{}", default_port(network))
        };
        state.connect(addr, None);
    }
    Ok(state)
}
