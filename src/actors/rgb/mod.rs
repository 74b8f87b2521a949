//! RGB Node: manager `rgbd` on the CTL and API buses. `containerd` arrives with its issue; this
//! module's `NODE` is where its services, settings and requests will be declared.

use super::{NoSettings, NodeDef, NodeSeed};
use crate::bus::BusKind;
use crate::wire::msg::ServiceId;
use std::sync::Arc;

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
    sections: &[],
    list_flags: &[],
    settings: |_| Ok(Arc::new(NoSettings)),
};
