//! The services subscribed to one kind of notification of a node (Storm chat messages and
//! transfers, RGB contracts received), each with the request id of its subscription, which
//! every notification carries.
//!
//! At most [`MAX_LISTENERS`]; a service that subscribes again replaces its subscription. A
//! listener that went away bounces (`NO_ROUTE`) to the manager, which forgets it.

use crate::bus::Bus;
use crate::wire::api::{Envelope, Msg, ServiceId};

/// Most services listening for one kind of notification at once.
pub const MAX_LISTENERS: usize = 64;

/// The listeners of one kind of notification.
pub struct Listeners {
    kind: &'static str,
    src: ServiceId,
    list: Vec<(Bus, ServiceId, u64)>,
}

impl Listeners {
    /// No listeners yet of notifications named `kind` ("chat", "transfer") in errors, sent
    /// by `src` (the node's manager).
    pub const fn new(kind: &'static str, src: ServiceId) -> Listeners {
        Listeners {
            kind,
            src,
            list: Vec::new(),
        }
    }

    /// `id` on `bus` listens from now on (notifications carry `request_id`).
    pub fn add(&mut self, bus: Bus, id: ServiceId, request_id: u64) -> Result<(), String> {
        self.list.retain(|(_, s, _)| *s != id);
        if self.list.len() >= MAX_LISTENERS {
            return Err(format!("{MAX_LISTENERS} {} listeners already", self.kind));
        }
        self.list.push((bus, id, request_id));
        Ok(())
    }

    /// A listener is gone from its bus.
    pub fn forget(&mut self, id: &ServiceId) {
        self.list.retain(|(_, s, _)| s != id);
    }

    /// Sends `msg` to every listener.
    pub fn send(&self, msg: impl Into<Msg>) {
        let msg = msg.into();
        for (bus, id, request_id) in &self.list {
            bus.send(Envelope {
                src: self.src.clone(),
                dst: id.clone(),
                request_id: *request_id,
                msg: msg.clone(),
            });
        }
    }
}
