//! Storm Node: manager `stormd` on the STORE (RPC), STORM and API buses. `stored` arrives with
//! its issue; this module's `NODE` is where its services, settings and requests will be
//! declared.

use super::{NoSettings, NodeDef, NodeSeed};
use crate::bus::BusKind;
use crate::wire::msg::ServiceId;
use std::sync::Arc;

/// The Storm node's declaration.
pub static NODE: NodeDef = NodeDef {
    seed: NodeSeed {
        manager: "stormd",
        manager_id: ServiceId::Stormd,
        buses: &[BusKind::Store, BusKind::Storm, BusKind::Api],
        tcp_ports: &[(BusKind::Store, 60960), (BusKind::Api, 64964)],
    },
    defaults: include_str!("../../../config/storm.toml"),
    sections: &[],
    list_flags: &[],
    settings: |_| Ok(Arc::new(NoSettings)),
};
