//! BP Node (Bitcoin P2P): manager `bpd` on the BLOCKS, API and SIGN buses, the signer `signd`
//! on the SIGN and API buses, and one `wired` per Bitcoin peer (v1 transport on the network's
//! port).
//!
//! [`NODE`] is the node's whole plan: its seed row, its `[wire]` section with `--listen` and
//! `--connect`, and (through [`BpSettings::plan`]) the chain store and peers behind `bpd`'s
//! requests and `info` details.
//!
//! - [`state`]: the header chain and its store, peers, BLOCKS subscribers, block requests.
//! - [`wired`]: the Bitcoin protocol of one connection, on the connection driver.
//! - [`bpd`]: the BP requests of the manager.
//! - [`signd`]: the signer (keys in `DATA_DIR/signer.key`, PSBT signing; `[signer]`).

pub mod bpd;
pub mod chain;
pub mod index;
pub mod signd;
pub mod state;
pub mod wallet;
pub mod watch;
pub mod wired;

use super::admission::{AdmissionConfig, RawAdmission};
use super::settings::Section;
use super::{service_spec, NodeDef, NodeEnv, NodePlan, NodeSeed, NodeSettings};
use crate::bus::BusKind;
use crate::wire::api::ServiceId;
use crate::wire::btc::peer::Timers;
use crate::wire::network::Network;
use bitcoin::p2p::Magic;
use serde::Deserialize;
use state::BpState;
use std::path::Path;
use std::sync::Arc;

/// The BP node's declaration.
pub static NODE: NodeDef = NodeDef {
    seed: NodeSeed {
        manager: "bpd",
        manager_id: ServiceId::Bpd,
        buses: &[BusKind::Blocks, BusKind::Api, BusKind::Sign],
        tcp_ports: &[(BusKind::Api, 61961)],
        connection_names: &["wired-"],
    },
    defaults: include_str!("../../../config/bp.toml"),
    sections: &["wire", "signer", "chain", "fees"],
    list_flags: &[("listen", "wire.listen"), ("connect", "wire.connect")],
    settings: |s| Ok(Arc::new(BpSettings::read(s)?)),
    counters: &[crate::lograte::Scope::Every, crate::lograte::Scope::Peers],
};

/// `[wire]` as written in the config.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawWire {
    connect: Vec<String>,
    listen: Vec<String>,
    handshake_timeout_secs: u64,
    inactivity_timeout_secs: u64,
    ping_interval_secs: u64,
    max_peers: u64,
    max_handshakes: u64,
    max_handshakes_per_ip: u64,
    max_peers_per_ip: u64,
    trusted: Vec<String>,
    onion_inbound: Vec<String>,
    relay_txs: bool,
}

/// `[chain]` as written in the config.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawChain {
    index_from: i64,
}

/// `[fees]` as written in the config.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawFees {
    targets: Vec<Vec<u64>>,
    default_target: u64,
}

/// `[signer]` as written in the config.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawSigner {
    allowed_sighash: Vec<String>,
}

/// Settings of the Bitcoin peer layer (`[wire]` of config/bp.toml, `--connect`, `--listen`)
/// and of the signer (`[signer]`).
#[derive(Clone, Debug)]
pub struct BpSettings {
    /// Sighash types the signer may use besides ALL/DEFAULT.
    pub extra_sighash: Vec<bitcoin::psbt::PsbtSighashType>,
    /// Peers to connect to at start (`host:port`).
    pub connect: Vec<String>,
    /// Addresses to listen on (none unless asked).
    pub listen: Vec<String>,
    /// Timers.
    pub timers: Timers,
    /// The caps on inbound connections (src/actors/admission.rs).
    pub admission: AdmissionConfig,
    /// Ask peers to announce their transactions (the relayed mempool, `tx_seen`).
    pub relay_txs: bool,
    /// The first height to index (`None`: the tip when the index was created; regtest 0).
    pub index_from: Option<u32>,
    /// Fee rates: (confirmation target in blocks, sat/vB), by target.
    pub fees: Vec<(u32, u64)>,
    /// The target of a wallet transaction without a fee rate.
    pub default_target: u32,
}

impl BpSettings {
    /// Reads and validates `[wire]`.
    pub fn read(s: &Section<'_>) -> Result<BpSettings, String> {
        let w: RawWire = s.table("wire")?;
        s.socket_addrs("wire.listen", &w.listen, "127.0.0.1:18444")?;
        for addr in &w.connect {
            let port_ok = match addr.rsplit_once(':') {
                Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok(),
                None => true,
            };
            let host_ok =
                !addr.is_empty() && addr.len() <= 255 && addr.bytes().all(|b| b.is_ascii_graphic());
            if !(host_ok && port_ok) {
                let shown: String = addr
                    .chars()
                    .take(64)
                    .flat_map(char::escape_default)
                    .collect();
                return Err(s.bad("wire.connect", format!("`{shown}` is not host[:port]")));
            }
        }
        let inactivity = w.inactivity_timeout_secs;
        let chain: RawChain = s.table("chain")?;
        let index_from = match chain.index_from {
            -1 => None,
            h if (0..=u32::MAX as i64).contains(&h) => Some(h as u32),
            h => {
                return Err(s.bad(
                    "chain.index_from",
                    format!("{h} is neither a height nor -1 (the tip when the index was created)"),
                ))
            }
        };
        let raw_fees: RawFees = s.table("fees")?;
        let mut fees = Vec::new();
        for t in &raw_fees.targets {
            match t.as_slice() {
                [target, rate] if (1..=1008).contains(target) && (1..=10_000).contains(rate) => {
                    fees.push((*target as u32, *rate))
                }
                _ => {
                    return Err(s.bad(
                        "fees.targets",
                        format!("{t:?} is not [target blocks 1..=1008, sat/vB 1..=10000]"),
                    ))
                }
            }
        }
        fees.sort_unstable();
        fees.dedup_by_key(|f| f.0);
        if fees.is_empty() {
            return Err(s.bad("fees.targets", "no target".into()));
        }
        let default_target = u32::try_from(raw_fees.default_target)
            .ok()
            .filter(|t| fees.iter().any(|f| f.0 == *t))
            .ok_or_else(|| {
                s.bad(
                    "fees.default_target",
                    format!("{} is not one of the targets", raw_fees.default_target),
                )
            })?;
        let signer: RawSigner = s.table("signer")?;
        let mut extra_sighash = Vec::new();
        for name in &signer.allowed_sighash {
            let t = crate::signer::sign::parse_sighash(name).ok_or_else(|| {
                s.bad(
                    "signer.allowed_sighash",
                    format!(
                        "`{}` is not ALL, NONE or SINGLE (each may add |ANYONECANPAY)",
                        name.escape_default()
                    ),
                )
            })?;
            extra_sighash.push(t);
        }
        Ok(BpSettings {
            relay_txs: w.relay_txs,
            index_from,
            fees,
            default_target,
            extra_sighash,
            connect: w.connect,
            listen: w.listen,
            timers: Timers {
                handshake: s.secs("wire.handshake_timeout_secs", w.handshake_timeout_secs, 600)?,
                inactivity: s.secs("wire.inactivity_timeout_secs", inactivity, 86_400)?,
                ping_interval: s.secs("wire.ping_interval_secs", w.ping_interval_secs, 3_600)?,
            },
            admission: RawAdmission {
                max_peers: w.max_peers,
                max_handshakes: w.max_handshakes,
                max_handshakes_per_ip: w.max_handshakes_per_ip,
                max_peers_per_ip: w.max_peers_per_ip,
                trusted: w.trusted,
                onion_inbound: w.onion_inbound,
            }
            .read(s, "wire")?,
        })
    }
}

impl NodeSettings for BpSettings {
    fn plan(&self, env: &NodeEnv<'_>) -> Result<NodePlan, String> {
        let keychain = load_keychain(env)?;
        let accounts = keychain
            .accounts()
            .into_iter()
            .map(|a| (a.kind, a.receive, a.change))
            .collect();
        let state = start_wire(self, env.config.network, &env.config.data_dir, accounts)?;
        let signer = Arc::new(open_signer(self, keychain, state.clone()));
        state.set_signer(signer.clone());
        let buses: Vec<_> = env
            .buses
            .iter()
            .filter(|(k, _)| matches!(k, BusKind::Sign | BusKind::Api))
            .map(|(_, b)| b.clone())
            .collect();
        let (ext, details) = (state.clone(), state);
        Ok(NodePlan {
            services: vec![service_spec("signd".into(), move || {
                signd::Signd::new(signer.clone(), buses.clone())
            })],
            extensions: vec![Box::new(move || Box::new(bpd::Bpd::new(ext.clone())))],
            details: Some(Box::new(move || details.details())),
        })
    }
}

/// Loads the signer's key (creating one on first start). A key file that cannot be read or is
/// readable by others stops the node here, with the reason.
fn load_keychain(env: &NodeEnv<'_>) -> Result<crate::signer::Keychain, String> {
    use crate::signer::keyfile;
    let path = env.config.data_dir.join(keyfile::FILE);
    let network = env.config.network.bitcoin();
    let (keychain, created) = keyfile::load_or_create(&path, network).map_err(|e| e.0)?;
    if created {
        tracing::warn!(key = %path.display(), fingerprint = %keychain.fingerprint(),
            "created a new signer key: back up this file, it is the only copy of its mnemonic");
    } else {
        tracing::info!(key = %path.display(), fingerprint = %keychain.fingerprint(),
            "signer key loaded");
    }
    Ok(keychain)
}

/// The signer over `keychain`, with the policy of `settings`.
fn open_signer(
    settings: &BpSettings,
    keychain: crate::signer::Keychain,
    state: Arc<BpState>,
) -> signd::Signer {
    let mut policy = crate::signer::Policy::accounts(&keychain);
    policy.extra_sighash = settings.extra_sighash.clone();
    signd::Signer {
        keychain,
        policy,
        state,
    }
}

/// What the BP services need.
#[derive(Clone, Debug)]
pub struct BpConfig {
    /// The network.
    pub network: bitcoin::Network,
    /// Its magic.
    pub magic: Magic,
    /// Timers.
    pub timers: Timers,
    /// The caps on inbound connections.
    pub admission: AdmissionConfig,
    /// The first height to index (`[chain] index_from`).
    pub index_from: Option<u32>,
    /// Ask peers to announce their transactions.
    pub relay_txs: bool,
    /// The signer's accounts: kind, receive and change descriptors (the wallet tracks them).
    pub accounts: Vec<(crate::signer::AccountKind, String, String)>,
    /// Fee rates per target (`[fees] targets`).
    pub fees: Vec<(u32, u64)>,
    /// The target of a wallet transaction without a fee rate.
    pub default_target: u32,
}

/// Opens the chain store, binds the listeners and dials the peers of `settings`.
pub fn start_wire(
    settings: &BpSettings,
    network: Network,
    data_dir: &Path,
    accounts: Vec<(crate::signer::AccountKind, String, String)>,
) -> Result<Arc<BpState>, String> {
    let config = BpConfig {
        network: network.bitcoin(),
        magic: Magic::from(network.bitcoin()),
        timers: settings.timers.clone(),
        admission: settings.admission.clone(),
        index_from: settings.index_from,
        relay_txs: settings.relay_txs,
        accounts,
        fees: settings.fees.clone(),
        default_target: settings.default_target,
    };
    let state = BpState::open(config, data_dir)?;
    // The download's clock: stalled requests are taken back once a second.
    let weak = Arc::downgrade(&state);
    actix_rt::spawn(async move {
        let mut tick = actix_rt::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            match weak.upgrade() {
                Some(state) => state.tick(),
                None => break,
            }
        }
    });
    for addr in &settings.listen {
        state.bind(addr)?;
    }
    for addr in &settings.connect {
        let addr = if addr.contains(':') {
            addr.clone()
        } else {
            format!("{addr}:{}", network.p2p_port())
        };
        state.connect(addr, None);
    }
    Ok(state)
}
