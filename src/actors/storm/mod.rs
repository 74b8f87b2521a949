//! Storm Node: manager `stormd` on the STORE (RPC), STORM and API buses. `stored` arrives with
//! its issue.

use super::NodeSeed;
use crate::bus::BusKind;
use crate::wire::msg::ServiceId;

/// The Storm row of the seed table.
pub static SEED: NodeSeed = NodeSeed {
    manager: "stormd",
    manager_id: ServiceId::Stormd,
    buses: &[BusKind::Store, BusKind::Storm, BusKind::Api],
    tcp_ports: &[(BusKind::Store, 60960), (BusKind::Api, 64964)],
};
