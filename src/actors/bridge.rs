//! The bridge service of a bus: binds the bus's ZMQ socket, runs its receiving pump
//! ([`crate::bus::socket`]) on the bridge's own context, and reports the endpoint in `info`. A
//! restart closes the socket and binds anew; if the pump fails on its own, the bridge fails and
//! is restarted like any service.

use super::service::{Control, Service, ServiceActor};
use super::status::NodeStatus;
use crate::bus::secure::SecureConfig;
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
    /// Keys of the encrypted sessions (a TCP endpoint).
    secure: Option<SecureConfig>,
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
            secure: None,
            socket: None,
        }
    }

    /// The keys a TCP endpoint of this bus runs its encrypted sessions with.
    pub fn with_secure(mut self, secure: SecureConfig) -> Bridge {
        self.secure = Some(secure);
        self
    }
}

impl Service for Bridge {
    fn start(&mut self, ctx: &mut Context<ServiceActor<Self>>) -> Result<(), String> {
        let socket = BusSocket::bind(
            &self.zmq,
            self.bus.clone(),
            &self.endpoint,
            self.kind.max_msg(),
            self.secure.clone(),
        )
        .map_err(|e| e.to_string())?;
        // The pump lives in this actor's context: a restart drops it before `stop` runs.
        let pump = actix::fut::wrap_future::<_, ServiceActor<Self>>(socket.pump());
        ctx.spawn(pump.map(|result, _, ctx| {
            if let Err(cause) = result {
                ctx.address()
                    .do_send(Control::Fail(format!("bus socket: {cause}")));
            }
        }));
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
