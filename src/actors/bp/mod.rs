//! BP Node (Bitcoin P2P): manager `bpd` on the BLOCKS, API and SIGN buses.
//! `wired` (Bitcoin wire on 8333) and `signd` arrive with their issues.

use super::NodeSeed;
use crate::bus::BusKind;
use crate::wire::msg::ServiceId;

/// The BP row of the seed table.
pub static SEED: NodeSeed = NodeSeed {
    manager: "bpd",
    manager_id: ServiceId::Bpd,
    buses: &[BusKind::Blocks, BusKind::Api, BusKind::Sign],
    tcp_ports: &[(BusKind::Api, 61961)],
};
