//! Actors: the root supervisor, the service wrapper, the services of this issue (bus routers,
//! bus bridges, node managers) and one module per node with its row of the seed table.
//!
//! Start order of a node: one router per bus, the manager, one bridge per bus (external traffic
//! comes in only once everything behind it runs). Shutdown runs the other way.

pub mod bp;
pub mod bridge;
pub mod datadir;
pub mod lnp;
pub mod manager;
pub mod rgb;
pub mod router;
pub mod service;
pub mod status;
pub mod storm;
pub mod supervisor;
pub mod tcp;

use crate::bus::{Bus, BusKind, Endpoint};
use crate::wire::msg::ServiceId;
use actix::prelude::*;
use bridge::Bridge;
use manager::Manager;
use router::Router;
use service::ServiceActor;
use status::NodeStatus;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use supervisor::{ChildSpec, RestartPolicy, Root};

/// Which of the four nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// LNP Node (Lightning P2P).
    Lnp,
    /// BP Node (Bitcoin P2P).
    Bp,
    /// RGB Node.
    Rgb,
    /// Storm Node.
    Storm,
}

impl NodeKind {
    /// Every node.
    pub const ALL: [NodeKind; 4] = [NodeKind::Lnp, NodeKind::Bp, NodeKind::Rgb, NodeKind::Storm];

    /// `lnp`, `bp`, `rgb` or `storm`.
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Lnp => "lnp",
            NodeKind::Bp => "bp",
            NodeKind::Rgb => "rgb",
            NodeKind::Storm => "storm",
        }
    }

    /// Parses a node name.
    pub fn from_name(s: &str) -> Option<NodeKind> {
        NodeKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The seed-table row of the node.
    pub fn seed(self) -> &'static NodeSeed {
        match self {
            NodeKind::Lnp => &lnp::SEED,
            NodeKind::Bp => &bp::SEED,
            NodeKind::Rgb => &rgb::SEED,
            NodeKind::Storm => &storm::SEED,
        }
    }

    /// Default data dir, relative to `$HOME`.
    pub fn default_data_dir(self) -> &'static str {
        match self {
            NodeKind::Lnp => "~/.lnp",
            NodeKind::Bp => "~/.bp",
            NodeKind::Rgb => "~/.rgb",
            NodeKind::Storm => "~/.storm",
        }
    }
}

/// A node's row of the seed table (ARCHITECTURE.md).
#[derive(Debug)]
pub struct NodeSeed {
    /// Service name of the manager.
    pub manager: &'static str,
    /// Service id of the manager on every bus.
    pub manager_id: ServiceId,
    /// The node's buses, in the seed's order.
    pub buses: &'static [BusKind],
    /// TCP ports the seed gives (bound only when asked, on loopback, until encryption lands).
    pub tcp_ports: &'static [(BusKind, u16)],
}

/// Everything needed to start a node (built by `nodectl start` from flags and config).
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Which node.
    pub kind: NodeKind,
    /// Network name.
    pub network: String,
    /// Data dir (already created and locked).
    pub data_dir: PathBuf,
    /// Endpoint of each of the node's buses.
    pub endpoints: Vec<(BusKind, Endpoint)>,
    /// Restart intensity.
    pub policy: RestartPolicy,
    /// Deadline of a request's final reply.
    pub request_timeout: Duration,
    /// Whether `debug crash` is allowed.
    pub fault_injection: bool,
    /// Compressed public key of the node.
    pub node_id: [u8; 33],
    /// The node's secret key (BOLT-8 static key).
    pub secret: bitcoin::secp256k1::SecretKey,
    /// Peer settings (LNP only).
    pub lnp: Option<lnp::LnpSettings>,
    /// Bitcoin peer settings (BP only).
    pub bp: Option<bp::BpSettings>,
}

/// A started node: its root and shared handles.
pub struct RunningNode {
    /// The root supervisor.
    pub root: Addr<Root>,
    /// The shared status.
    pub status: Arc<NodeStatus>,
    /// The node's buses, in seed order.
    pub buses: Vec<(BusKind, Bus)>,
}

/// Starts a node's root (and through it every service) on the current actix arbiter. Fails
/// only on what the operator must fix (e.g. a peer port in use).
pub fn start_node(config: &NodeConfig, zmq: &zmq::Context) -> Result<RunningNode, String> {
    let seed = config.kind.seed();
    let status = NodeStatus::new(config.kind, config.network.clone(), config.node_id);
    let buses: Vec<(BusKind, Bus)> = config
        .endpoints
        .iter()
        .map(|(kind, _)| (*kind, Bus::new(kind.name(), config.request_timeout)))
        .collect();
    let registry = match (&config.lnp, config.kind) {
        (Some(settings), NodeKind::Lnp) => {
            let r = lnp::start_peers(settings, &config.network, config.secret)?;
            let details = r.clone();
            status.set_details(Box::new(move || details.details()));
            Some(r)
        }
        _ => None,
    };
    let bp_state = match (&config.bp, config.kind) {
        (Some(settings), NodeKind::Bp) => {
            let s = bp::start_wire(settings, &config.network, &config.data_dir)?;
            let details = s.clone();
            status.set_details(Box::new(move || details.details()));
            Some(s)
        }
        _ => None,
    };
    let mut children = Vec::new();
    for (kind, bus) in &buses {
        let bus = bus.clone();
        children.push(child(format!("{}-router", kind.name()), move || {
            Router::new(bus.clone())
        }));
    }
    {
        let (id, name) = (seed.manager_id.clone(), seed.manager);
        let all: Vec<Bus> = buses.iter().map(|(_, b)| b.clone()).collect();
        let (status, fault) = (status.clone(), config.fault_injection);
        let subscribers = manager::Subscribers::default();
        children.push(child(name.to_string(), move || {
            let subs = subscribers.clone();
            let m = Manager::new(id.clone(), name, all.clone(), status.clone(), fault, subs);
            match (&registry, &bp_state) {
                (Some(r), _) => m.with_extension(Box::new(lnp::lnpd::Lnpd::new(r.clone()))),
                (_, Some(s)) => m.with_extension(Box::new(bp::bpd::Bpd::new(s.clone()))),
                _ => m,
            }
        }));
    }
    for ((kind, bus), (_, endpoint)) in buses.iter().zip(&config.endpoints) {
        let (kind, bus, endpoint) = (*kind, bus.clone(), endpoint.clone());
        let (zmq, status) = (zmq.clone(), status.clone());
        children.push(child(format!("{}-bridge", kind.name()), move || {
            Bridge::new(
                bus.clone(),
                kind,
                endpoint.clone(),
                zmq.clone(),
                status.clone(),
            )
        }));
    }
    let all: Vec<Bus> = buses.iter().map(|(_, b)| b.clone()).collect();
    let root = Root::new(children, config.policy, status.clone(), all).start();
    Ok(RunningNode {
        root,
        status,
        buses,
    })
}

fn child<S: service::Service>(name: String, factory: impl Fn() -> S + 'static) -> ChildSpec {
    ChildSpec {
        name: name.clone(),
        start: Box::new(move |root| ServiceActor::start(name, root, factory).recipient()),
    }
}
