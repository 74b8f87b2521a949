//! The services subscribed to one kind of Storm notification (chat messages, transfers), each
//! with the request id of its subscription, which every notification carries.
//!
//! At most [`MAX_LISTENERS`]; a service that subscribes again replaces its subscription. A
//! listener that went away bounces (`NO_ROUTE`) to stormd, which forgets it.

use crate::bus::Bus;
use crate::wire::msg::{Envelope, Msg, ServiceId};
use crate::wire::storm_api::StormMsg;

/// Most services listening for one kind of notification at once.
pub const MAX_LISTENERS: usize = 64;

/// The listeners of one kind of notification.
pub struct Listeners {
    kind: &'static str,
    list: Vec<(Bus, ServiceId, u64)>,
}

impl Listeners {
    /// No listeners yet of notifications named `kind` ("chat", "transfer") in errors.
    pub const fn new(kind: &'static str) -> Listeners {
        Listeners {
            kind,
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
    pub fn send(&self, msg: &StormMsg) {
        for (bus, id, request_id) in &self.list {
            bus.send(Envelope {
                src: ServiceId::Stormd,
                dst: id.clone(),
                request_id: *request_id,
                msg: Msg::Storm(msg.clone()),
            });
        }
    }
}
