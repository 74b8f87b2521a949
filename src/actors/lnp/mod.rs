//! LNP Node (Lightning P2P): manager `lnpd` on the MSG, CTL, CHNL and API buses, and one
//! `peerd` per Lightning peer (BOLT-1 over BOLT-8, 9735 by default). `channeld` and Bifrost
//! (9999) arrive with their issues.
//!
//! - [`peers`]: the registry of connections, listeners, caps and MSG-bus subscriptions.
//! - [`peerd`]: the per-connection actor and its TCP bridge.
//! - [`lnpd`]: the LNP requests of the manager.

pub mod lnpd;
pub mod peerd;
pub mod peers;

use super::NodeSeed;
use crate::bus::BusKind;
use crate::wire::bolt1::Features;
use crate::wire::lnp_peer::SessionConfig;
use crate::wire::msg::ServiceId;
use bitcoin::secp256k1::SecretKey;
use peers::{PeerConfig, Registry};
use std::sync::Arc;
use std::time::Duration;

/// The LNP row of the seed table.
pub static SEED: NodeSeed = NodeSeed {
    manager: "lnpd",
    manager_id: ServiceId::Lnpd,
    buses: &[BusKind::Msg, BusKind::Ctl, BusKind::Chnl, BusKind::Api],
    tcp_ports: &[(BusKind::Api, 62962)],
};

/// Peer settings of an LNP node (`[peers]` in config/lnp.toml, `--listen`).
#[derive(Clone, Debug)]
pub struct LnpSettings {
    /// Addresses to listen on at start (`host:port`).
    pub listen: Vec<String>,
    /// Deadline of each handshake act and of the peer's `init`.
    pub act_timeout: Duration,
    /// Idle time before we ping a peer.
    pub ping_interval: Duration,
    /// Time a ping may stay unanswered.
    pub pong_timeout: Duration,
    /// Most connections.
    pub max_peers: usize,
    /// Most connections in the handshake at once.
    pub max_handshakes: usize,
}

/// The BOLT chain hash of a network (its genesis block hash, in internal byte order).
pub fn chain_hash(network: &str) -> Result<[u8; 32], String> {
    let n = match network {
        "bitcoin" => bitcoin::Network::Bitcoin,
        "testnet" => bitcoin::Network::Testnet,
        "testnet4" => bitcoin::Network::Testnet4,
        "signet" => bitcoin::Network::Signet,
        "regtest" => bitcoin::Network::Regtest,
        other => return Err(format!("unknown network {other}")),
    };
    Ok(bitcoin::blockdata::constants::ChainHash::using_genesis_block(n).to_bytes())
}

/// Builds the registry and binds the listeners of `settings` (before any service starts, so a
/// port in use stops the node with a clear message).
pub fn start_peers(
    settings: &LnpSettings,
    network: &str,
    secret: SecretKey,
) -> Result<Arc<Registry>, String> {
    let config = PeerConfig {
        session: SessionConfig {
            chain: chain_hash(network)?,
            features: Features::default(),
            act_timeout: settings.act_timeout,
            ping_interval: settings.ping_interval,
            pong_timeout: settings.pong_timeout,
        },
        max_peers: settings.max_peers,
        max_handshakes: settings.max_handshakes,
    };
    let registry = Registry::new(config, secret);
    for addr in &settings.listen {
        registry.bind(addr)?;
    }
    Ok(registry)
}

#[cfg(test)]
mod tests {
    #[test]
    fn chain_hashes_are_genesis_hashes_in_internal_order() {
        // Regtest genesis 0f9188f1...06226e46 as shown by explorers; BOLT chain_hash reversed.
        let h = super::chain_hash("regtest").unwrap();
        assert_eq!(h[0], 0x06);
        assert_eq!(h[31], 0x0f);
        assert!(super::chain_hash("nope").is_err());
    }
}
