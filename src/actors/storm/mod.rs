//! Storm Node: manager `stormd` on the STORE (RPC), STORM and API buses, and `stored`, the
//! STORE RPC over the embedded database `DATA_DIR/store.redb`.
//!
//! [`NODE`] is the node's whole plan: its seed row, its config sections (`[lnp]`, `[storm]`),
//! and (through [`StormSettings::plan`]) the store opened before any service starts (the one
//! place that picks the backend: everything below takes a `dyn Storage`), the link thread,
//! `stored` as a supervised service, `stormd`'s requests, and the `info` details.
//!
//! The files form a DAG, `stormd` at the top (this file only wires them):
//!
//! - [`stormd`]: maps each request to what serves it (nothing imports it);
//! - [`link`]: the thread that owns the transfers and talks to the LNP node;
//! - [`transfer`]: the container transfers (offers, serving, downloads);
//! - [`containers`], [`apps`], [`chat`]: containers over the store, the STORM-bus apps, chat;
//! - [`stored`]: STORE requests; reads in the handler, writes group-committed by a writer thread.

pub mod apps;
pub mod chat;
pub mod containers;
pub mod link;
pub mod stored;
pub mod stormd;
pub mod transfer;

use super::settings::Section;
use super::{service_spec, NodeDef, NodeEnv, NodePlan, NodeSeed, NodeSettings};
use crate::bus::BusKind;
use crate::storage::{RedbStorage, Storage};
use crate::wire::api::storm::tables::CONTAINERS;
use crate::wire::api::{Detail, ServiceId};
use crate::wire::node_id::NodeId;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The Storm node's declaration.
pub static NODE: NodeDef = NodeDef {
    seed: NodeSeed {
        manager: "stormd",
        manager_id: ServiceId::Stormd,
        buses: &[BusKind::Store, BusKind::Storm, BusKind::Api],
        tcp_ports: &[(BusKind::Store, 60960), (BusKind::Api, 64964)],
        connection_names: &[],
    },
    defaults: include_str!("../../../config/storm.toml"),
    sections: &["lnp", "storm"],
    list_flags: &[("lnp", "lnp.join"), ("auto-accept", "storm.auto_accept")],
    settings: |s: &Section<'_>| Ok(Arc::new(StormSettings::read(s)?)),
    counters: &[crate::lograte::Scope::Every, crate::lograte::Scope::Storm],
};

/// `[lnp]` as written in the config.
#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawLnp {
    join: Vec<String>,
}

/// `[storm]` as written in the config.
#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawStorm {
    auto_accept: Vec<String>,
    window: u64,
    chunk_timeout_ms: u64,
    chunk_retries: u64,
    max_download_rate: u64,
    max_offers_per_peer: u64,
    max_offer_bytes_per_peer: u64,
}

/// The database file in the data dir.
pub const STORE_FILE: &str = "store.redb";

/// The Storm node's settings: the LNP node it joins, if any (the database lives in the data
/// dir).
#[derive(Debug)]
pub struct StormSettings {
    /// The MSG bus endpoint of the LNP node to join (`[lnp] join`, `--lnp`/`-M`).
    pub join: Option<String>,
    /// Container transfers (`[storm]`).
    pub transfers: transfer::TransferSettings,
}

impl StormSettings {
    /// Reads `[lnp]`.
    pub fn read(s: &Section<'_>) -> Result<StormSettings, String> {
        let l: RawLnp = s.table("lnp")?;
        if l.join.len() > 1 {
            return Err(s.bad("lnp.join", "a Storm node joins one LNP node".into()));
        }
        let t: RawStorm = s.table("storm")?;
        let mut auto_accept = Vec::new();
        for id in &t.auto_accept {
            match NodeId::parse_key(id).ok() {
                Some(b) => auto_accept.push(b),
                None => {
                    return Err(s.bad(
                        "storm.auto_accept",
                        format!(
                            "`{}` is not a node id (66 hex digits of a public key)",
                            id.escape_debug()
                        ),
                    ))
                }
            }
        }
        let transfers = transfer::TransferSettings {
            auto_accept,
            window: s.range("storm.window", t.window, 1, 256)? as usize,
            chunk_timeout: Duration::from_millis(s.range(
                "storm.chunk_timeout_ms",
                t.chunk_timeout_ms,
                100,
                600_000,
            )?),
            chunk_retries: s.range("storm.chunk_retries", t.chunk_retries, 0, 100)? as u32,
            max_rate: t.max_download_rate,
            max_offers_per_peer: s.range(
                "storm.max_offers_per_peer",
                t.max_offers_per_peer,
                0,
                1024,
            )? as usize,
            max_offer_bytes_per_peer: t.max_offer_bytes_per_peer,
        };
        Ok(StormSettings {
            join: l.join.into_iter().next(),
            transfers,
        })
    }
}

impl NodeSettings for StormSettings {
    fn plan(&self, env: &NodeEnv<'_>) -> Result<NodePlan, String> {
        // The one place that picks the backend: every service below takes a `dyn Storage`.
        let path = env.config.data_dir.join(STORE_FILE);
        let storage: Arc<dyn Storage> =
            Arc::new(RedbStorage::open(&path).map_err(|e| e.to_string())?);
        let store_path = path.display().to_string();
        let chat = Arc::new(chat::Chat::new(storage.clone()));
        let apps = Arc::new(apps::Apps::default());
        let transfers =
            transfer::Transfers::load(storage.clone(), self.transfers.clone(), Instant::now())?;
        let target = match &self.join {
            Some(j) => Some(
                crate::bus::client::Dial::parse(j, &env.config.data_dir, env.config.secret)
                    .map_err(|e| format!("--lnp {j}: {e}"))?,
            ),
            None => None,
        };
        let parts = link::LinkParts {
            chat: chat.clone(),
            apps: apps.clone(),
            transfers,
        };
        let link = link::Link::start(target, parts)?;
        let state = Arc::new(stormd::StormState {
            storage: storage.clone(),
            apps,
            chat,
            link,
            jobs: Arc::default(),
        });
        // `stored` answers on STORE (services, the seed's storage RPC), on STORM (extension
        // apps, e.g. an RGB node putting a contract's chunks in a container) and on the API
        // (remote clients and `nodectl storm store …`).
        let buses: Vec<_> = env
            .buses
            .iter()
            .filter(|(k, _)| matches!(k, BusKind::Store | BusKind::Storm | BusKind::Api))
            .map(|(_, b)| b.clone())
            .collect();
        let store_endpoint = env
            .config
            .endpoints
            .iter()
            .find(|(k, _)| *k == BusKind::Store)
            .map(|(_, e)| e.zmq())
            .unwrap_or_default();
        let st = state.clone();
        Ok(NodePlan {
            services: vec![service_spec("stored".into(), move || {
                stored::Stored::new(storage.clone(), buses.clone())
            })],
            extensions: vec![Box::new(move || Box::new(stormd::Stormd::new(st.clone())))],
            details: Some(Box::new(move || {
                details(&state, &store_path, &store_endpoint)
            })),
        })
    }
}

fn details(state: &stormd::StormState, path: &str, store: &str) -> Vec<(String, Detail)> {
    let tables = state.storage.tables().unwrap_or_default();
    let containers = tables
        .iter()
        .find(|t| t.name == CONTAINERS)
        .map_or(0, |t| t.count);
    let link = &state.link;
    vec![
        ("store_path".into(), Detail::Text(path.to_string())),
        ("store_endpoint".into(), Detail::Text(store.to_string())),
        ("tables".into(), Detail::U64(tables.len() as u64)),
        ("containers".into(), Detail::U64(containers)),
        ("apps".into(), Detail::U64(state.apps.count() as u64)),
        (
            "lnp".into(),
            Detail::Text(match link.endpoint() {
                None => "none".into(),
                Some(e) if link.reachable() => format!("{e} (reachable)"),
                Some(e) => format!("{e} (unreachable)"),
            }),
        ),
    ]
}
