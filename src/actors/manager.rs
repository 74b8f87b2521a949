//! The node manager (`lnpd`, `bpd`, `rgbd`, `stormd`): answers the node-level API (`info`,
//! `subscribe`, `debug crash`) on every bus of its node and forwards service events to
//! subscribers. Node-specific requests arrive with the domain services of later issues.

use super::service::{Control, Service, ServiceActor};
use super::status::NodeStatus;
use crate::bus::{Bus, Deliver};
use crate::wire::msg::{code, Envelope, Msg, MsgKind, ServiceEvent, ServiceId};
use actix::prelude::*;
use std::sync::{Arc, Mutex};

/// Most subscribers at once; beyond it `subscribe` gets `BUSY`.
pub const MAX_SUBSCRIBERS: usize = 256;

/// Who subscribed: (bus, subscriber, request id of its `subscribe`). Shared with the factory so
/// that subscriptions survive a restart of the manager (whose crash is news they want).
pub type Subscribers = Arc<Mutex<Vec<(Bus, ServiceId, u64)>>>;

/// The node-specific requests of a manager (LNP: listen, connect, peers, ...). Its state must
/// live outside (shared), since the manager is rebuilt on restart.
pub trait Extension: Unpin + 'static {
    /// Handles a request the generic manager does not know; gives it back if not handled.
    fn handle(&mut self, d: Deliver) -> Option<Deliver>;

    /// `debug crash` of a service the root does not supervise (e.g. one `peerd`); `None` if no
    /// such service is known here.
    fn debug_crash(&mut self, service: &str, requested_by: &str) -> Option<Msg>;

    /// A notification to `service` bounced for good: forget it.
    fn gone(&mut self, service: &ServiceId);
}

/// The manager service.
pub struct Manager {
    id: ServiceId,
    name: &'static str,
    buses: Vec<Bus>,
    status: Arc<NodeStatus>,
    fault_injection: bool,
    subscribers: Subscribers,
    ext: Option<Box<dyn Extension>>,
}

impl Manager {
    /// A manager with service id `id` and name `name`, registered on `buses`.
    pub fn new(
        id: ServiceId,
        name: &'static str,
        buses: Vec<Bus>,
        status: Arc<NodeStatus>,
        fault_injection: bool,
        subscribers: Subscribers,
    ) -> Manager {
        Manager {
            id,
            name,
            buses,
            status,
            fault_injection,
            subscribers,
            ext: None,
        }
    }

    /// Adds the node-specific requests.
    pub fn with_extension(mut self, ext: Box<dyn Extension>) -> Manager {
        self.ext = Some(ext);
        self
    }

    fn subscribers(&self) -> std::sync::MutexGuard<'_, Vec<(Bus, ServiceId, u64)>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn debug_crash(&mut self, env: &Envelope, service: &str) -> Msg {
        if !self.fault_injection {
            return Msg::failure(
                code::REFUSED,
                "fault injection is disabled (start the node with --fault-injection)",
            );
        }
        if service == self.name {
            panic!("debug crash of {} requested by {}", self.name, env.src);
        }
        match self.status.control(service) {
            Some(control) => {
                control.do_send(Control::Crash {
                    requested_by: env.src.to_string(),
                });
                Msg::Success(Some(format!("crash injected into {service}")))
            }
            None => self
                .ext
                .as_mut()
                .and_then(|x| x.debug_crash(service, &env.src.to_string()))
                .unwrap_or_else(|| {
                    Msg::failure(code::NOT_FOUND, format!("no service named `{service}`"))
                }),
        }
    }
}

impl Service for Manager {
    fn start(&mut self, ctx: &mut Context<ServiceActor<Self>>) -> Result<(), String> {
        let me = ctx.address().recipient::<Deliver>();
        for bus in &self.buses {
            bus.register(self.id.clone(), me.clone());
        }
        Ok(())
    }

    fn handle(&mut self, d: Deliver, _: &mut Context<ServiceActor<Self>>) -> Result<(), String> {
        let known = matches!(
            d.env.msg,
            Msg::GetInfo | Msg::DebugCrash { .. } | Msg::Subscribe | Msg::Unsubscribe
        );
        let d = match self.ext.as_mut() {
            Some(ext) if !known && d.env.msg.kind() == MsgKind::Request => match ext.handle(d) {
                Some(d) => d,
                None => return Ok(()),
            },
            _ => d,
        };
        let Deliver { env, bus } = d;
        let reply = match &env.msg {
            Msg::GetInfo => Msg::NodeInfo(self.status.info()),
            Msg::DebugCrash { service } => self.debug_crash(&env, service),
            Msg::Subscribe => {
                let mut subs = self.subscribers();
                subs.retain(|(_, id, _)| id != &env.src);
                if subs.len() >= MAX_SUBSCRIBERS {
                    Msg::failure(code::BUSY, format!("{MAX_SUBSCRIBERS} subscribers already"))
                } else {
                    subs.push((bus.clone(), env.src.clone(), env.request_id));
                    Msg::Success(Some("subscribed to service events".into()))
                }
            }
            Msg::Unsubscribe => {
                self.subscribers().retain(|(_, id, _)| id != &env.src);
                Msg::Success(Some("unsubscribed".into()))
            }
            Msg::Failure { code, message } => {
                // A notification came back. Gone for good (NO_ROUTE): forget the subscriber;
                // anything else (a full queue, a socket restarting) loses only that event.
                if *code == code::NO_ROUTE {
                    tracing::debug!(subscriber = %env.src, "dropping subscriber: {message}");
                    self.subscribers().retain(|(_, id, _)| id != &env.src);
                    if let Some(ext) = self.ext.as_mut() {
                        ext.gone(&env.src);
                    }
                }
                return Ok(());
            }
            other if other.kind() == MsgKind::Request => Msg::failure(
                code::UNEXPECTED,
                format!(
                    "{} does not handle message type {:#06x}",
                    self.name,
                    other.type_id()
                ),
            ),
            _ => return Ok(()),
        };
        bus.send(env.reply(reply));
        Ok(())
    }

    fn service_event(&mut self, ev: &ServiceEvent) -> Result<(), String> {
        for (bus, sub, request_id) in self.subscribers().iter() {
            bus.send(Envelope {
                src: self.id.clone(),
                dst: sub.clone(),
                request_id: *request_id,
                msg: Msg::ServiceEvent(ev.clone()),
            });
        }
        Ok(())
    }
}
