//! The buses of the seed table (ARCHITECTURE.md): name, command-line flag, default IPC file in
//! the data dir, the seed's TCP port where it has one, and the frame size limit.

use super::limits;

/// One of the buses of the seed table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BusKind {
    /// MSG: P2P messages between peers and services (LNP).
    Msg,
    /// CTL: internal control.
    Ctl,
    /// CHNL: channel services (LNP).
    Chnl,
    /// API: clients.
    Api,
    /// BLOCKS: block notifications (BP).
    Blocks,
    /// SIGN: signer (BP).
    Sign,
    /// STORE: storage RPC (Storm).
    Store,
    /// STORM: Storm apps.
    Storm,
}

impl BusKind {
    /// Every bus, in flag order.
    pub const ALL: [BusKind; 8] = [
        BusKind::Msg,
        BusKind::Ctl,
        BusKind::Chnl,
        BusKind::Api,
        BusKind::Blocks,
        BusKind::Sign,
        BusKind::Store,
        BusKind::Storm,
    ];

    /// Lower-case name: also the config key under `[endpoints]` and the IPC file name.
    pub fn name(self) -> &'static str {
        match self {
            BusKind::Msg => "msg",
            BusKind::Ctl => "ctl",
            BusKind::Chnl => "chnl",
            BusKind::Api => "api",
            BusKind::Blocks => "blocks",
            BusKind::Sign => "sign",
            BusKind::Store => "store",
            BusKind::Storm => "storm",
        }
    }

    /// The short command-line flag of the seed table.
    pub fn flag(self) -> char {
        match self {
            BusKind::Msg => 'M',
            BusKind::Ctl => 'X',
            BusKind::Chnl => 'C',
            BusKind::Api => 'R',
            BusKind::Blocks => 'N',
            BusKind::Sign => 'K',
            BusKind::Store => 'S',
            BusKind::Storm => 'E',
        }
    }

    /// Largest ZMQ message accepted on this bus.
    pub fn max_msg(self) -> i64 {
        match self {
            BusKind::Api => limits::API_MAX_MSG,
            _ => limits::ESB_MAX_MSG,
        }
    }
}
