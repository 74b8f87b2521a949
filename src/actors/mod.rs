//! Actors: the root supervisor, the service wrapper, the generic services (bus routers, bus
//! bridges, the node manager), the connection driver shared by every P2P service, and one
//! module per node.
//!
//! A node is its module (`lnp/`, `bp/`, `rgb/`, `storm/`): its `NODE` ([`NodeDef`]) declares
//! the seed-table row, the built-in config, its own config sections and flags, and how its
//! validated settings ([`NodeSettings`]) become a [`NodePlan`]: the services it adds to the
//! supervision tree, the request handlers of its manager and the details `info` shows. This
//! file knows the list of nodes and nothing node-specific.
//!
//! Start order of a node: one router per bus, the node's own services, the manager, one bridge
//! per bus (external traffic comes in only once everything behind it runs). Shutdown runs the
//! other way.

pub mod admission;
pub mod bp;
pub mod bridge;
pub mod clock;
pub mod conn;
pub mod datadir;
pub mod limits;
pub mod lnp;
pub mod manager;
pub mod rgb;
pub mod router;
pub mod rpc_access;
pub mod service;
pub mod settings;
pub mod status;
pub mod storm;
pub mod supervisor;
pub mod tcp;

use crate::bus::router::Reserved;
use crate::bus::{Bus, BusKind, Endpoint};
use crate::wire::api::ServiceId;
use crate::wire::network::Network;
use crate::wire::node_id::NodeId;
use actix::prelude::*;
use bridge::Bridge;
use manager::{Extension, Manager};
use router::Router;
use service::ServiceActor;
use settings::Section;
use status::{DetailsFn, NodeStatus};
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

    /// The node's declaration (its module's `NODE`).
    pub fn def(self) -> &'static NodeDef {
        match self {
            NodeKind::Lnp => &lnp::NODE,
            NodeKind::Bp => &bp::NODE,
            NodeKind::Rgb => &rgb::NODE,
            NodeKind::Storm => &storm::NODE,
        }
    }

    /// The seed-table row of the node.
    pub fn seed(self) -> &'static NodeSeed {
        &self.def().seed
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
    /// TCP ports the seed gives (bound only when asked; a TCP bus is always encrypted).
    pub tcp_ports: &'static [(BusKind, u16)],
    /// Name prefixes of the services it starts per connection (`peerd-`): kept by the node
    /// like the names of its other services (docs/API.md section 3).
    pub connection_names: &'static [&'static str],
}

/// What a node module declares (`actors/<node>/mod.rs`, as `NODE`).
pub struct NodeDef {
    /// Its row of the seed table.
    pub seed: NodeSeed,
    /// The built-in configuration (`config/<node>.toml`, compiled in).
    pub defaults: &'static str,
    /// The top-level config sections the node owns (`peers`, `wire`), besides the generic keys.
    pub sections: &'static [&'static str],
    /// Start flags that replace a list in those sections: (flag without dashes, config key),
    /// e.g. `("listen", "peers.listen")`.
    pub list_flags: &'static [(&'static str, &'static str)],
    /// Reads and validates the node's sections.
    pub settings: fn(&Section<'_>) -> Result<Arc<dyn NodeSettings>, String>,
    /// The counters of refused input its `info` shows: those of these scopes.
    pub counters: &'static [crate::lograte::Scope],
}

/// A node's validated settings: the per-node value carried by [`NodeConfig`].
pub trait NodeSettings: std::fmt::Debug + Send + Sync {
    /// Opens and binds what must exist before any service starts (a store, a peer port: a port
    /// in use stops the node here, with a clear message) and returns the node's plan.
    fn plan(&self, env: &NodeEnv<'_>) -> Result<NodePlan, String>;
}

/// What a node's plan may use.
pub struct NodeEnv<'a> {
    /// The whole node configuration.
    pub config: &'a NodeConfig,
    /// The node's buses, in seed order.
    pub buses: &'a [(BusKind, Bus)],
}

/// Builds a fresh manager extension (the manager is rebuilt on restart; its extensions keep
/// their state outside, shared).
pub type ExtensionFactory = Box<dyn Fn() -> Box<dyn Extension>>;

/// What a node adds to the generic house.
#[derive(Default)]
pub struct NodePlan {
    /// Services supervised by the root, started in this order after the bus routers and
    /// before the manager (see [`service_spec`]).
    pub services: Vec<ChildSpec>,
    /// The request handlers of the manager, asked in this order.
    pub extensions: Vec<ExtensionFactory>,
    /// The node-specific values `info` shows, in a fixed order.
    pub details: Option<DetailsFn>,
}

/// Everything needed to start a node (built by `nodectl start` from flags and config).
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Which node.
    pub kind: NodeKind,
    /// Network.
    pub network: Network,
    /// Data dir (already created and locked).
    pub data_dir: PathBuf,
    /// Endpoint of each of the node's buses.
    pub endpoints: Vec<(BusKind, Endpoint)>,
    /// Restart intensity.
    pub policy: RestartPolicy,
    /// Deadline of a request's final reply.
    pub request_timeout: Duration,
    /// Requests in flight one source may hold on a bus.
    pub per_source_requests: usize,
    /// Whether `debug crash` is allowed.
    pub fault_injection: bool,
    /// Compressed public key of the node.
    pub node_id: NodeId,
    /// The node's secret key (BOLT-8 static key; the key of its encrypted TCP buses too).
    pub secret: bitcoin::secp256k1::SecretKey,
    /// Client keys allowed on the node's TCP buses, as configured.
    pub rpc_allow: Vec<NodeId>,
    /// The node's own settings.
    pub node: Arc<dyn NodeSettings>,
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
    let status = NodeStatus::new(config.kind, config.network.name().into(), config.node_id);
    let buses: Vec<(BusKind, Bus)> = config
        .endpoints
        .iter()
        .map(|(kind, _)| {
            let bus = Bus::with_share(
                kind.name(),
                config.request_timeout,
                config.per_source_requests,
            );
            (*kind, bus)
        })
        .collect();
    let plan = config.node.plan(&NodeEnv {
        config,
        buses: &buses,
    })?;
    if let Some(details) = plan.details {
        status.set_details(details);
    }
    let rpc = Arc::new(rpc_access::RpcAccess::load(
        &config.rpc_allow,
        &config.data_dir,
    )?);
    let secure = crate::bus::secure::SecureConfig {
        key: config.secret,
        allow: rpc.list(),
    };
    let mut children = Vec::new();
    for (kind, bus) in &buses {
        let bus = bus.clone();
        children.push(service_spec(format!("{}-router", kind.name()), move || {
            Router::new(bus.clone())
        }));
    }
    children.extend(plan.services);
    {
        let (id, name) = (seed.manager_id.clone(), seed.manager);
        let all: Vec<Bus> = buses.iter().map(|(_, b)| b.clone()).collect();
        let (status, fault) = (status.clone(), config.fault_injection);
        let subscribers = manager::event_subscribers();
        let extensions = plan.extensions;
        let rpc = rpc.clone();
        children.push(service_spec(name.to_string(), move || {
            let exts = extensions.iter().map(|f| f()).collect();
            let subs = subscribers.clone();
            Manager::new(
                id.clone(),
                name,
                all.clone(),
                status.clone(),
                fault,
                subs,
                exts,
            )
            .with_rpc(rpc.clone())
        }));
    }
    for ((kind, bus), (_, endpoint)) in buses.iter().zip(&config.endpoints) {
        let (kind, bus, endpoint) = (*kind, bus.clone(), endpoint.clone());
        let (zmq, status, secure) = (zmq.clone(), status.clone(), secure.clone());
        children.push(service_spec(format!("{}-bridge", kind.name()), move || {
            Bridge::new(
                bus.clone(),
                kind,
                endpoint.clone(),
                zmq.clone(),
                status.clone(),
            )
            .with_secure(secure.clone())
        }));
    }
    // The ids the node keeps for itself on every bus (docs/API.md section 3): its manager's
    // tag, the names of all its services, and the name families of per-connection services.
    let reserved = Arc::new(Reserved::new(
        std::iter::once(seed.manager_id.clone())
            // A name that cannot be a service name cannot come as a `src` either.
            .chain(
                children
                    .iter()
                    .filter_map(|c| ServiceId::named(c.name.clone()).ok()),
            ),
        seed.connection_names,
    ));
    for (_, bus) in &buses {
        bus.reserve(reserved.clone());
    }
    let all: Vec<Bus> = buses.iter().map(|(_, b)| b.clone()).collect();
    let root = Root::new(children, config.policy, status.clone(), all).start();
    Ok(RunningNode {
        root,
        status,
        buses,
    })
}

/// The child spec of a supervised service named `name`, built (and rebuilt after a crash) by
/// `factory`.
pub fn service_spec<S: service::Service>(
    name: String,
    factory: impl Fn() -> S + 'static,
) -> ChildSpec {
    ChildSpec {
        name: name.clone(),
        start: Box::new(move |root| ServiceActor::start(name, root, factory).recipient()),
    }
}
