//! LNP Node (Lightning P2P): manager `lnpd` on the MSG, CTL, CHNL and API buses.
//! `peerd` (BOLT-1 over BOLT-8 on 9735, Bifrost on 9999) and `channeld` arrive with their issues.

use super::NodeSeed;
use crate::bus::BusKind;
use crate::wire::msg::ServiceId;

/// The LNP row of the seed table.
pub static SEED: NodeSeed = NodeSeed {
    manager: "lnpd",
    manager_id: ServiceId::Lnpd,
    buses: &[BusKind::Msg, BusKind::Ctl, BusKind::Chnl, BusKind::Api],
    tcp_ports: &[(BusKind::Api, 62962)],
};
