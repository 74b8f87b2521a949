//! The node manager (`lnpd`, `bpd`, `rgbd`, `stormd`): answers the node-level API (`info`,
//! `subscribe`, `debug crash`) on every bus of its node and forwards service events to
//! subscribers. A node's own requests are handled by the [`Extension`]s its plan gives
//! (`actors/<node>/mod.rs`), asked in order.

use super::limits::MAX_SUBSCRIBERS;
use super::rpc_access::RpcAccess;
use super::service::{not_taken, Control, Service, ServiceActor};
use super::status::NodeStatus;
use crate::bus::{Bus, Deliver, Subscriber, Subscribers};
use crate::wire::api::{code, Envelope, Msg, MsgKind, ServiceEvent, ServiceId};
use crate::wire::node_id::NodeId;
use actix::prelude::*;
use std::sync::{Arc, Mutex};

/// Who subscribed to service events. Shared with the factory so that subscriptions survive a
/// restart of the manager (whose crash is news they want).
pub type EventSubscribers = Arc<Mutex<Subscribers>>;

/// No subscribers yet (at most [`MAX_SUBSCRIBERS`]).
pub fn event_subscribers() -> EventSubscribers {
    Arc::new(Mutex::new(Subscribers::new("subscribers", MAX_SUBSCRIBERS)))
}

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

    /// A reply (progress or final) to a request the extension sent to a service of its node
    /// (rgbd to a `containerd` worker); gives it back if it is not one of those.
    fn reply(&mut self, d: Deliver) -> Option<Deliver> {
        Some(d)
    }
}

/// The manager service.
pub struct Manager {
    id: ServiceId,
    name: &'static str,
    buses: Vec<Bus>,
    status: Arc<NodeStatus>,
    fault_injection: bool,
    subscribers: EventSubscribers,
    /// The node's request handlers, asked in order.
    exts: Vec<Box<dyn Extension>>,
    /// The allow-list of the node's TCP buses.
    rpc: Option<Arc<RpcAccess>>,
}

impl Manager {
    /// A manager with service id `id` and name `name`, registered on `buses`, handling its
    /// node's requests with `exts`.
    pub fn new(
        id: ServiceId,
        name: &'static str,
        buses: Vec<Bus>,
        status: Arc<NodeStatus>,
        fault_injection: bool,
        subscribers: EventSubscribers,
        exts: Vec<Box<dyn Extension>>,
    ) -> Manager {
        Manager {
            id,
            name,
            buses,
            status,
            fault_injection,
            subscribers,
            exts,
            rpc: None,
        }
    }

    /// The manager answers `rpc_allow`, `rpc_revoke` and `rpc_list` over `rpc`.
    pub fn with_rpc(mut self, rpc: Arc<RpcAccess>) -> Manager {
        self.rpc = Some(rpc);
        self
    }

    fn rpc(&self, msg: &Msg) -> Msg {
        let Some(rpc) = &self.rpc else {
            return Msg::failure(code::REFUSED, "this node has no allow-list");
        };
        let set = |key: &NodeId, allowed: bool| {
            if !key.is_key() {
                return Msg::failure(code::INVALID_ARGUMENT, "not a public key");
            }
            match rpc.set(*key, allowed) {
                Ok(changed) => {
                    let what = match (allowed, changed) {
                        (true, true) => "allowed",
                        (true, false) => "was already allowed",
                        (false, true) => "revoked",
                        (false, false) => "was not allowed",
                    };
                    tracing::info!(%key, "client key {what}");
                    Msg::Success(Some(format!("client key {key} {what}")))
                }
                Err(e) => Msg::failure(code::SERVICE_FAILED, e),
            }
        };
        match msg {
            Msg::RpcAllow(k) => set(k, true),
            Msg::RpcRevoke(k) => set(k, false),
            _ => Msg::RpcAllowList(rpc.list().list()),
        }
    }

    fn subscribers(&self) -> std::sync::MutexGuard<'_, Subscribers> {
        crate::sync::lock(&self.subscribers)
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
            None => {
                let by = env.src.to_string();
                self.exts
                    .iter_mut()
                    .find_map(|x| x.debug_crash(service, &by))
                    .unwrap_or_else(|| {
                        Msg::failure(code::NOT_FOUND, format!("no service named `{service}`"))
                    })
            }
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
            Msg::GetInfo
                | Msg::DebugCrash { .. }
                | Msg::Subscribe
                | Msg::Unsubscribe
                | Msg::RpcAllow(_)
                | Msg::RpcRevoke(_)
                | Msg::RpcList
        );
        let mut d = d;
        let kind = d.env.msg.kind();
        if !known && kind == MsgKind::Request {
            for ext in self.exts.iter_mut() {
                match ext.handle(d) {
                    Some(back) => d = back,
                    None => return Ok(()),
                }
            }
        }
        if matches!(kind, MsgKind::Final | MsgKind::Progress) {
            for ext in self.exts.iter_mut() {
                match ext.reply(d) {
                    Some(back) => d = back,
                    None => return Ok(()),
                }
            }
        }
        let Deliver { env, bus } = d;
        let reply = match &env.msg {
            Msg::GetInfo => Msg::NodeInfo(self.status.info()),
            Msg::DebugCrash { service } => self.debug_crash(&env, service),
            m @ (Msg::RpcAllow(_) | Msg::RpcRevoke(_) | Msg::RpcList) => self.rpc(m),
            Msg::Subscribe => match self.subscribers().add(Subscriber::of(&bus, &env), ()) {
                Ok(()) => Msg::Success(Some("subscribed to service events".into())),
                Err(full) => Msg::failure(code::BUSY, full),
            },
            Msg::Unsubscribe => {
                self.subscribers().remove(&env.src);
                Msg::Success(Some("unsubscribed".into()))
            }
            Msg::Failure { code, message } => {
                // A notification came back. Gone for good (NO_ROUTE): forget the subscriber;
                // anything else (a full queue, a socket restarting) loses only that event.
                if *code == code::NO_ROUTE {
                    tracing::debug!(subscriber = %env.src, "dropping subscriber: {message}");
                    self.subscribers().remove(&env.src);
                    for ext in self.exts.iter_mut() {
                        ext.gone(&env.src);
                    }
                }
                return Ok(());
            }
            _ => {
                not_taken(self.name, &Deliver { env, bus });
                return Ok(());
            }
        };
        bus.send(env.reply(reply));
        Ok(())
    }

    fn service_event(&mut self, ev: &ServiceEvent) -> Result<(), String> {
        self.subscribers()
            .notify(&self.id, Msg::ServiceEvent(ev.clone()));
        Ok(())
    }
}
