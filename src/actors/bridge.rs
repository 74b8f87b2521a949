//! The bridge service of a bus: binds the bus's ZMQ socket (its thread is in
//! [`crate::bus::socket`]) and reports it in `info`. A restart closes the socket and binds anew;
//! if the socket thread dies on its own, the bridge fails and is restarted like any service.

use super::service::{Control, Service, ServiceActor};
use super::status::NodeStatus;
use crate::bus::socket::BusSocket;
use crate::bus::{Bus, BusKind, Endpoint};
use actix::prelude::*;
use std::sync::Arc;

/// The bridge service of one bus.
pub struct Bridge {
    bus: Bus,
    kind: BusKind,
    endpoint: Endpoint,
    zmq: zmq::Context,
    status: Arc<NodeStatus>,
    /// The bound socket, while running.
    socket: Option<BusSocket>,
}

impl Bridge {
    /// A bridge that will bind `endpoint` for `bus`.
    pub fn new(
        bus: Bus,
        kind: BusKind,
        endpoint: Endpoint,
        zmq: zmq::Context,
        status: Arc<NodeStatus>,
    ) -> Bridge {
        Bridge {
            bus,
            kind,
            endpoint,
            zmq,
            status,
            socket: None,
        }
    }
}

impl Service for Bridge {
    fn start(&mut self, ctx: &mut Context<ServiceActor<Self>>) -> Result<(), String> {
        let me = ctx.address();
        let socket = BusSocket::bind(
            &self.zmq,
            self.bus.clone(),
            &self.endpoint,
            self.kind.max_msg(),
            Box::new(move |cause| me.do_send(Control::Fail(cause))),
        )
        .map_err(|e| e.to_string())?;
        tracing::info!(bus = self.kind.name(), endpoint = %self.endpoint, "bus socket bound");
        self.status
            .set_endpoint(self.kind.name(), self.endpoint.zmq());
        self.socket = Some(socket);
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(mut socket) = self.socket.take() {
            socket.close();
            self.status.remove_endpoint(self.kind.name());
        }
    }
}
