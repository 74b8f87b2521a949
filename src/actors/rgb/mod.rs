//! RGB Node: manager `rgbd` on the CTL and API buses, and `containerd`, a pool of supervised
//! workers on the CTL bus that do the heavy work on the RGB v0.11.1 libraries (`crate::rgb`).
//!
//! [`NODE`] is the node's plan: `[rgb]` settings; the stock opened (embedded in
//! `DATA_DIR/rgb.redb`, or in a Storm node's STORE with `-S`) before any service starts; one
//! `containerd-N` service per worker; the requests of `rgbd` ([`rgbd::Rgbd`]); the link to a
//! Storm node (`--storm`) that sends and receives contracts as its app 0x0010; `info` details.
//!
//! - [`rgbd`]: takes RGB requests on the API, queues them fairly per client and hands each to
//!   an idle worker over the CTL bus; relays the worker's progress and final reply.
//! - [`containerd`]: one worker: a thread that validates, imports, issues and exports.
//! - [`storm`]: the link to a Storm node's STORM bus.

#[cfg(feature = "rgb")]
pub mod containerd;
#[cfg(feature = "rgb")]
pub mod rgbd;
#[cfg(feature = "rgb")]
pub mod storm;

use super::settings::Section;
use super::{NodeDef, NodeEnv, NodePlan, NodeSeed, NodeSettings};
use crate::bus::BusKind;
use crate::wire::api::ServiceId;
use std::sync::Arc;
use std::time::Duration;

/// The RGB node's declaration.
pub static NODE: NodeDef = NodeDef {
    seed: NodeSeed {
        manager: "rgbd",
        manager_id: ServiceId::Rgbd,
        buses: &[BusKind::Ctl, BusKind::Api],
        tcp_ports: &[(BusKind::Api, 63963)],
        connection_names: &[],
    },
    defaults: include_str!("../../../config/rgb.toml"),
    sections: &["rgb"],
    list_flags: &[("store", "rgb.store"), ("storm", "rgb.storm")],
    settings: |s: &Section<'_>| Ok(Arc::new(RgbSettings::read(s)?)),
    counters: &[crate::lograte::Scope::Every, crate::lograte::Scope::Rgb],
};

/// The embedded database of the stock, in the data dir.
pub const STOCK_FILE: &str = "rgb.redb";

/// Most workers (`[rgb] workers`).
pub const MAX_WORKERS: u64 = 16;

/// `[rgb]` as written in the config.
#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawRgb {
    workers: u64,
    queue: u64,
    store: Vec<String>,
    storm: Vec<String>,
    fault_task_delay_ms: u64,
}

/// The RGB node's settings.
#[derive(Debug, Clone)]
pub struct RgbSettings {
    /// Number of `containerd` workers.
    pub workers: usize,
    /// Tasks waiting for a worker, all clients together.
    pub queue: usize,
    /// A Storm node's STORE endpoint keeping the stock (`-S`), or none (embedded).
    pub store: Option<String>,
    /// A Storm node's STORM bus endpoint (`--storm`), to send and receive contracts.
    pub storm: Option<String>,
    /// With fault injection only: each worker task waits this long first.
    pub fault_task_delay: Duration,
}

impl RgbSettings {
    /// Reads `[rgb]`.
    pub fn read(s: &Section<'_>) -> Result<RgbSettings, String> {
        let r: RawRgb = s.table("rgb")?;
        if r.store.len() > 1 {
            return Err(s.bad("rgb.store", "one STORE endpoint at most".into()));
        }
        if r.storm.len() > 1 {
            return Err(s.bad("rgb.storm", "one Storm node at most".into()));
        }
        Ok(RgbSettings {
            workers: s.range("rgb.workers", r.workers, 1, MAX_WORKERS)? as usize,
            queue: s.range("rgb.queue", r.queue, 1, 4096)? as usize,
            store: r.store.into_iter().next(),
            storm: r.storm.into_iter().next(),
            fault_task_delay: Duration::from_millis(s.range(
                "rgb.fault_task_delay_ms",
                r.fault_task_delay_ms,
                0,
                60_000,
            )?),
        })
    }
}

#[cfg(not(feature = "rgb"))]
impl NodeSettings for RgbSettings {
    fn plan(&self, _: &NodeEnv<'_>) -> Result<NodePlan, String> {
        Err("this nodectl was built without the `rgb` feature".into())
    }
}

#[cfg(feature = "rgb")]
impl NodeSettings for RgbSettings {
    fn plan(&self, env: &NodeEnv<'_>) -> Result<NodePlan, String> {
        use super::service_spec;
        use crate::bus::client::Dial;
        use crate::rgb::store::{Contracts, Tables};
        use crate::storage::{RedbStorage, RemoteStorage, Storage};
        let config = env.config;
        let network = config.network.bitcoin();
        let zmq = zmq::Context::new();
        let (storage, store_name): (Arc<dyn Storage>, String) = match &self.store {
            None => {
                let path = config.data_dir.join(STOCK_FILE);
                let s = RedbStorage::open(&path).map_err(|e| e.to_string())?;
                (Arc::new(s), path.display().to_string())
            }
            Some(ep) => {
                let dial = Dial::parse(ep, &config.data_dir, config.secret)
                    .map_err(|e| format!("-S/--store {ep}: {e}"))?;
                let s = RemoteStorage::new(zmq.clone(), dial, config.request_timeout);
                let name = format!("STORE {}", s.endpoint());
                (Arc::new(s), name)
            }
        };
        let contracts = Arc::new(
            Contracts::open(
                network,
                Tables::of(&owner(&config.node_id), network),
                storage,
            )
            .map_err(|e| format!("the RGB stock ({store_name}): {e}"))?,
        );
        let ctl = env
            .buses
            .iter()
            .find(|(k, _)| *k == BusKind::Ctl)
            .map(|(_, b)| b.clone())
            .ok_or("the RGB node has no CTL bus")?;
        let workers = (0..self.workers)
            .map(|n| crate::wire::api::ServiceName::new(format!("containerd-{n}")))
            .collect::<Result<Vec<_>, _>>()?;
        let dispatch = Arc::new(rgbd::Dispatch::new(
            ctl.clone(),
            workers.iter().cloned().map(ServiceId::Other).collect(),
            self.queue,
        ));
        let link = match &self.storm {
            None => None,
            Some(ep) => {
                let dial = Dial::parse(ep, &config.data_dir, config.secret)
                    .map_err(|e| format!("--storm {ep}: {e}"))?;
                Some(storm::StormLink::start(
                    zmq,
                    dial,
                    config.request_timeout,
                    dispatch.clone(),
                )?)
            }
        };
        let delay = if config.fault_injection {
            self.fault_task_delay
        } else {
            Duration::ZERO
        };
        let committer =
            containerd::Committer::start(contracts.clone(), self.workers * rgbd::TASKS_PER_WORKER)?;
        let shared = Arc::new(containerd::Shared {
            contracts: contracts.clone(),
            committer,
            link: link.clone(),
            task_delay: delay,
        });
        let services = workers
            .iter()
            .map(|name| {
                let (name, ctl, shared) = (name.clone(), ctl.clone(), shared.clone());
                service_spec(name.to_string(), move || {
                    containerd::Containerd::new(name.clone(), ctl.clone(), shared.clone())
                })
            })
            .collect();
        let d = dispatch.clone();
        Ok(NodePlan {
            services,
            extensions: vec![Box::new(move || Box::new(rgbd::Rgbd::new(d.clone())))],
            details: Some(Box::new(move || {
                details(&store_name, &contracts, &dispatch, link.as_deref())
            })),
        })
    }
}

/// The owner part of the stock's table names: 8 bytes of the node id after its parity byte,
/// in hex (docs/API.md, "RGB requests").
#[cfg(feature = "rgb")]
fn owner(node_id: &crate::wire::node_id::NodeId) -> String {
    bitcoin::hex::DisplayHex::to_lower_hex_string(&node_id.as_bytes()[1..9])
}

#[cfg(feature = "rgb")]
fn details(
    store: &str,
    contracts: &crate::rgb::store::Contracts,
    dispatch: &rgbd::Dispatch,
    link: Option<&storm::StormLink>,
) -> Vec<(String, crate::wire::api::Detail)> {
    use crate::wire::api::Detail;
    let (workers, busy, queued) = dispatch.load();
    vec![
        ("store".into(), Detail::Text(store.to_string())),
        ("contracts".into(), Detail::U64(contracts.count())),
        ("workers".into(), Detail::U64(workers as u64)),
        ("busy_workers".into(), Detail::U64(busy as u64)),
        ("queued".into(), Detail::U64(queued as u64)),
        (
            "storm".into(),
            Detail::Text(match link {
                None => "none".into(),
                Some(l) if l.reachable() => format!("{} (reachable)", l.endpoint()),
                Some(l) => format!("{} (unreachable)", l.endpoint()),
            }),
        ),
    ]
}
