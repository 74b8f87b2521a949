//! The root actor: starts the node's services in order, restarts failed ones (actix keeps their
//! address), escalates when a service fails more than `max_restarts` times within `period`, and
//! stops everything in reverse order on shutdown (OTP one_for_one with intensity, docs/ARCHITECTURE.md,
//! "Supervision").

use super::service::{Control, Lifecycle};
use super::status::NodeStatus;
use crate::bus::Bus;
use crate::wire::api::{code, ServiceEvent, ServiceState};
use actix::prelude::*;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Restart intensity: more than `max_restarts` restarts of one service within `period`
/// stops the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed within `period`.
    pub max_restarts: u32,
    /// The sliding window.
    pub period: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 3,
            period: Duration::from_secs(5),
        }
    }
}

/// Exit code of a node stopped by escalation.
pub const EXIT_ESCALATION: i32 = 2;

/// How to start one child: given the root's lifecycle mailbox, start the actor and return its
/// control mailbox.
pub struct ChildSpec {
    /// Service name.
    pub name: String,
    /// Starts the service.
    pub start: Box<dyn FnOnce(Recipient<Lifecycle>) -> Recipient<Control>>,
}

struct Child {
    name: String,
    control: Recipient<Control>,
    failures: VecDeque<Instant>,
}

/// Ask the root to stop the node with an exit code.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Shutdown {
    /// Process exit code.
    pub code: i32,
    /// Why (logged).
    pub reason: String,
}

/// The root supervisor.
pub struct Root {
    pending: VecDeque<ChildSpec>,
    /// The child whose `Started` we wait for before starting the next one.
    starting: Option<String>,
    children: Vec<Child>,
    policy: RestartPolicy,
    status: Arc<NodeStatus>,
    buses: Vec<Bus>,
    shutting_down: bool,
}

impl Root {
    /// A root that will start `children` in order.
    pub fn new(
        children: Vec<ChildSpec>,
        policy: RestartPolicy,
        status: Arc<NodeStatus>,
        buses: Vec<Bus>,
    ) -> Root {
        Root {
            pending: children.into(),
            starting: None,
            children: Vec::new(),
            policy,
            status,
            buses,
            shutting_down: false,
        }
    }

    fn start_next(&mut self, ctx: &mut Context<Self>) {
        let Some(spec) = self.pending.pop_front() else {
            self.starting = None;
            tracing::info!(
                node = self.status.kind.name(),
                services = self.children.len(),
                "node started"
            );
            return;
        };
        let control = (spec.start)(ctx.address().recipient());
        self.status.add_service(&spec.name, control.clone());
        self.starting = Some(spec.name.clone());
        self.children.push(Child {
            name: spec.name,
            control,
            failures: VecDeque::new(),
        });
    }

    fn broadcast(&self, ev: ServiceEvent) {
        for child in &self.children {
            child.control.do_send(Control::Event(ev.clone()));
        }
    }

    fn shutdown(&mut self, code: i32, reason: String, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        self.pending.clear();
        if code == 0 {
            tracing::info!("stopping the node: {reason}");
        } else {
            tracing::error!(exit_code = code, "stopping the node: {reason}");
        }
        for bus in &self.buses {
            bus.fail_all(code::SHUTTING_DOWN, "the node is shutting down");
        }
        let children: Vec<(String, Recipient<Control>)> = self
            .children
            .iter()
            .rev()
            .map(|c| (c.name.clone(), c.control.clone()))
            .collect();
        let status = self.status.clone();
        let stop_all = async move {
            for (name, control) in children {
                let stopped = actix_rt::time::timeout(
                    Duration::from_millis(500),
                    control.send(Control::Stop),
                )
                .await;
                if !matches!(stopped, Ok(Ok(()))) {
                    tracing::warn!(service = %name, "did not confirm its stop in 500 ms");
                }
                status.update(&name, |s| s.state = ServiceState::Stopped);
                tracing::debug!(service = %name, "stopped");
            }
            System::current().stop_with_code(code);
        };
        ctx.spawn(stop_all.into_actor(self));
    }
}

impl Actor for Root {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.start_next(ctx);
    }
}

impl Handler<Lifecycle> for Root {
    type Result = ();

    fn handle(&mut self, msg: Lifecycle, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        match msg {
            Lifecycle::Started(name) => {
                let info = self
                    .status
                    .update(&name, |s| s.state = ServiceState::Running);
                tracing::debug!(service = %name, "running");
                if let Some(info) = info.filter(|i| i.restarts > 0) {
                    self.broadcast(ServiceEvent {
                        service: name.clone(),
                        state: ServiceState::Running,
                        restarts: info.restarts,
                        cause: None,
                    });
                }
                if self.starting.as_deref() == Some(name.as_str()) {
                    self.start_next(ctx);
                }
            }
            Lifecycle::Failed { name, cause } => {
                let policy = self.policy;
                let Some(child) = self.children.iter_mut().find(|c| c.name == name) else {
                    return;
                };
                let now = Instant::now();
                child.failures.push_back(now);
                while child
                    .failures
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > policy.period)
                {
                    child.failures.pop_front();
                }
                let recent = child.failures.len() as u32;
                let info = self.status.update(&name, |s| {
                    s.state = ServiceState::Restarting;
                    s.restarts += 1;
                    s.last_failure = Some(cause.clone());
                });
                if recent > policy.max_restarts {
                    let reason = format!(
                        "{name} failed {recent} times within {} s (limit {}); last cause: {cause}",
                        policy.period.as_secs_f64(),
                        policy.max_restarts
                    );
                    self.shutdown(EXIT_ESCALATION, reason, ctx);
                    return;
                }
                let restarts = info.map(|i| i.restarts).unwrap_or(0);
                tracing::warn!(service = %name, restarts, "restarting after failure: {cause}");
                self.broadcast(ServiceEvent {
                    service: name,
                    state: ServiceState::Restarting,
                    restarts,
                    cause: Some(cause),
                });
            }
        }
    }
}

impl Handler<Shutdown> for Root {
    type Result = ();

    fn handle(&mut self, msg: Shutdown, ctx: &mut Context<Self>) {
        self.shutdown(msg.code, msg.reason, ctx);
    }
}
