//! RGB Node: manager `rgbd` on the CTL and API buses. `containerd` arrives with its issue.

use super::NodeSeed;
use crate::bus::BusKind;
use crate::wire::msg::ServiceId;

/// The RGB row of the seed table.
pub static SEED: NodeSeed = NodeSeed {
    manager: "rgbd",
    manager_id: ServiceId::Rgbd,
    buses: &[BusKind::Ctl, BusKind::Api],
    tcp_ports: &[(BusKind::Api, 63963)],
};
