//! What the node knows about itself, shared between the root (which writes the services' states)
//! the bridges (which write their bound endpoints) and the manager (which answers `info`).

use super::service::Control;
use super::NodeKind;
use crate::sync::{read, write};
use crate::wire::api::{Detail, API_VERSION};
use crate::wire::api::{EndpointInfo, NodeInfo, ServiceInfo, ServiceState};
use crate::wire::node_id::NodeId;
use actix::Recipient;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// The node's shared status.
pub struct NodeStatus {
    /// Which node this is.
    pub kind: NodeKind,
    /// Network name (`signet`, ...).
    pub network: String,
    /// Compressed public key of the node identity.
    pub node_id: NodeId,
    /// When the node started.
    pub started: Instant,
    services: RwLock<Vec<ServiceInfo>>,
    endpoints: RwLock<Vec<EndpointInfo>>,
    controls: RwLock<HashMap<String, Recipient<Control>>>,
    /// The node-specific part of `info`, set by the node's module at start.
    details: RwLock<Option<DetailsFn>>,
}

/// Computes the node-specific details of `info`.
pub type DetailsFn = Box<dyn Fn() -> Vec<(String, Detail)> + Send + Sync>;

impl NodeStatus {
    /// A status with no services yet.
    pub fn new(kind: NodeKind, network: String, node_id: NodeId) -> Arc<NodeStatus> {
        Arc::new(NodeStatus {
            kind,
            network,
            node_id,
            started: Instant::now(),
            services: RwLock::new(Vec::new()),
            endpoints: RwLock::new(Vec::new()),
            controls: RwLock::new(HashMap::new()),
            details: RwLock::new(None),
        })
    }

    /// Adds a service (in start order) with its control mailbox.
    pub fn add_service(&self, name: &str, control: Recipient<Control>) {
        write(&self.services).push(ServiceInfo {
            name: name.to_string(),
            state: ServiceState::Stopped,
            restarts: 0,
            last_failure: None,
        });
        write(&self.controls).insert(name.to_string(), control);
    }

    /// Updates a service; returns its info after the change.
    pub fn update(&self, name: &str, f: impl FnOnce(&mut ServiceInfo)) -> Option<ServiceInfo> {
        let mut services = write(&self.services);
        let svc = services.iter_mut().find(|s| s.name == name)?;
        f(svc);
        Some(svc.clone())
    }

    /// The control mailbox of a service.
    pub fn control(&self, name: &str) -> Option<Recipient<Control>> {
        read(&self.controls).get(name).cloned()
    }

    /// Records a bound endpoint.
    pub fn set_endpoint(&self, bus: &str, endpoint: String) {
        let mut eps = write(&self.endpoints);
        eps.retain(|e| e.bus != bus);
        eps.push(EndpointInfo {
            bus: bus.to_string(),
            endpoint,
        });
        eps.sort_by(|a, b| a.bus.cmp(&b.bus));
    }

    /// Forgets a bound endpoint.
    pub fn remove_endpoint(&self, bus: &str) {
        write(&self.endpoints).retain(|e| e.bus != bus);
    }

    /// Sets where the node-specific details of `info` come from.
    pub fn set_details(&self, f: DetailsFn) {
        *write(&self.details) = Some(f);
    }

    /// The reply to `info`.
    pub fn info(&self) -> NodeInfo {
        NodeInfo {
            node: self.kind.name().to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            network: self.network.clone(),
            node_id: self.node_id,
            uptime_s: self.started.elapsed().as_secs(),
            endpoints: read(&self.endpoints).clone(),
            services: read(&self.services).clone(),
            // Every node's first details are the API version (docs/API.md section 12) and the
            // counters of refused input that concern it (src/lograte.rs).
            details: std::iter::once((
                "api_version".to_string(),
                Detail::U64(u64::from(API_VERSION)),
            ))
            .chain(
                crate::lograte::ALL
                    .iter()
                    .filter(|(_, _, scope)| self.kind.def().counters.contains(scope))
                    .map(|(key, l, _)| (key.to_string(), Detail::U64(l.total()))),
            )
            .chain(
                read(&self.details)
                    .as_ref()
                    .map(|f| f())
                    .unwrap_or_default(),
            )
            .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_shows_the_refusal_counters_of_its_node_only() {
        let every = [
            "refused_connections",
            "failed_handshakes",
            "bad_frames",
            "stray_replies",
            "refused_sources",
        ];
        for (kind, own, others) in [
            (
                NodeKind::Lnp,
                vec!["evicted_handshakes"],
                vec!["storm_refused", "rgb_refused"],
            ),
            (
                NodeKind::Bp,
                vec!["evicted_handshakes"],
                vec!["storm_refused", "rgb_refused"],
            ),
            (
                NodeKind::Rgb,
                vec!["rgb_refused"],
                vec!["evicted_handshakes", "storm_refused"],
            ),
            (
                NodeKind::Storm,
                vec!["storm_refused"],
                vec!["evicted_handshakes", "rgb_refused"],
            ),
        ] {
            let info = NodeStatus::new(kind, "regtest".into(), NodeId([2; 33])).info();
            let keys: Vec<&str> = info.details.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(keys[0], "api_version", "{kind:?}");
            for k in every.iter().chain(&own) {
                assert!(keys.contains(k), "{kind:?} shows {k}: {keys:?}");
            }
            for k in &others {
                assert!(!keys.contains(k), "{kind:?} does not show {k}: {keys:?}");
            }
        }
    }
}
