//! The RGB requests of `rgbd` (an [`Extension`] of the node manager): every RGB request but
//! `contract_subscribe` is a task for a `containerd` worker.
//!
//! [`Dispatch`] (shared by every incarnation of rgbd and by the Storm link) keeps one queue
//! per origin (an API client, or a peer whose contract came through Storm) and serves them in
//! turn: a client that sends a hundred imports does not starve one that sends one. At most
//! `[rgb] queue` tasks wait in all; beyond, a request is answered `BUSY` at once.
//!
//! A task goes to an idle worker as the same message, a request from rgbd on the CTL bus with
//! rgbd's own request id. The worker's progress and final reply come back to rgbd, which
//! relays them to the client (or, for a contract from a peer, tells the `contract_received`
//! subscribers). A worker that crashes fails its task through the router
//! ([`crate::bus::Bus::fail_request`]): the client gets that failure, and the worker is idle
//! again.

use crate::actors::limits::MAX_LISTENERS;
use crate::actors::manager::Extension;
use crate::bus::{Bus, Deliver};
use crate::bus::{Subscriber, Subscribers};
use crate::wire::api::rgb::{Received, RgbMsg};
use crate::wire::api::{code, Envelope, Msg, MsgKind, ServiceId};
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::ContainerId;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Where a task came from, and where its answer goes.
pub enum Origin {
    /// An API client's request.
    Client(Bus, Envelope),
    /// A contract a peer sent through the Storm node.
    Peer {
        /// The sending node.
        from: NodeId,
        /// The container it came in.
        container_id: ContainerId,
    },
}

impl Origin {
    fn key(&self) -> String {
        match self {
            Origin::Client(_, env) => env.src.to_string(),
            Origin::Peer { from, .. } => format!("peer:{from}"),
        }
    }
}

struct Task {
    origin: Origin,
    msg: RgbMsg,
}

/// Tasks a worker holds at once: the one it runs and the next, waiting in its channel, so
/// that it never idles while its reply travels to rgbd and the next task back (measured:
/// a third of the time with one task per worker; docs/BENCHMARKS.md).
pub const TASKS_PER_WORKER: usize = 2;

struct State {
    /// Each worker and the request ids of the tasks it holds.
    workers: Vec<(ServiceId, Vec<u64>)>,
    /// Waiting tasks, one queue per origin, the origins in turn order (a queue is never
    /// empty: an origin leaves the turn with its last task).
    queues: VecDeque<(String, VecDeque<Task>)>,
    /// Tasks with a worker, by rgbd's request id on the CTL bus.
    running: HashMap<u64, (usize, Origin)>,
    next_id: u64,
}

impl State {
    fn queued(&self) -> usize {
        self.queues.iter().map(|(_, q)| q.len()).sum()
    }
}

/// The task queues and the workers, shared by rgbd's incarnations and the Storm link.
pub struct Dispatch {
    ctl: Bus,
    max_queue: usize,
    state: Mutex<State>,
    listeners: Mutex<Subscribers>,
}

impl Dispatch {
    /// Tasks for `workers` on the `ctl` bus, at most `max_queue` waiting.
    pub fn new(ctl: Bus, workers: Vec<ServiceId>, max_queue: usize) -> Dispatch {
        Dispatch {
            ctl,
            max_queue,
            state: Mutex::new(State {
                workers: workers.into_iter().map(|w| (w, Vec::new())).collect(),
                queues: VecDeque::new(),
                running: HashMap::new(),
                next_id: 1,
            }),
            listeners: Mutex::new(Subscribers::new("contract listeners", MAX_LISTENERS)),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    fn listeners(&self) -> MutexGuard<'_, Subscribers> {
        crate::sync::lock(&self.listeners)
    }

    /// (workers, busy workers, queued tasks).
    pub fn load(&self) -> (usize, usize, usize) {
        let s = self.state();
        let busy = s.workers.iter().filter(|(_, t)| !t.is_empty()).count();
        (s.workers.len(), busy, s.queued())
    }

    /// Queues a task; gives its origin back when the queue is full.
    fn submit(&self, origin: Origin, msg: RgbMsg) -> Option<Origin> {
        {
            let mut s = self.state();
            if s.queued() >= self.max_queue {
                return Some(origin);
            }
            let key = origin.key();
            let task = Task { origin, msg };
            match s.queues.iter_mut().find(|(k, _)| *k == key) {
                Some((_, q)) => q.push_back(task),
                None => s.queues.push_back((key, VecDeque::from([task]))),
            }
        }
        self.dispatch();
        None
    }

    /// A contract from a peer (the Storm link): validated and imported by a worker; the
    /// subscribers hear of it either way.
    pub fn received(&self, from: NodeId, container_id: ContainerId, consignment: Vec<u8>) {
        let origin = Origin::Peer { from, container_id };
        if self.submit(origin, RgbMsg::Import(consignment)).is_some() {
            tracing::warn!("a contract from a peer was dropped: the task queue is full");
            self.tell(Received {
                from,
                container_id,
                valid: false,
                contract_id: String::new(),
                reasons: vec!["not validated: the node's task queue was full".into()],
            });
        }
    }

    fn tell(&self, r: Received) {
        self.listeners()
            .notify(&ServiceId::Rgbd, RgbMsg::ContractReceived(r));
    }

    /// Hands waiting tasks to the least loaded workers with room, origins in turn.
    fn dispatch(&self) {
        let mut out = Vec::new();
        {
            let mut s = self.state();
            loop {
                let least = (0..s.workers.len()).min_by_key(|w| s.workers[*w].1.len());
                let Some(w) = least.filter(|w| s.workers[*w].1.len() < TASKS_PER_WORKER) else {
                    break;
                };
                // The origin whose turn it is gives one task and goes to the back.
                let Some((key, mut q)) = s.queues.pop_front() else {
                    break;
                };
                let Some(task) = q.pop_front() else { continue };
                if !q.is_empty() {
                    s.queues.push_back((key, q));
                }
                let id = s.next_id;
                s.next_id += 1;
                s.workers[w].1.push(id);
                let worker = s.workers[w].0.clone();
                s.running.insert(id, (w, task.origin));
                out.push(Envelope {
                    src: ServiceId::Rgbd,
                    dst: worker,
                    request_id: id,
                    msg: task.msg.into(),
                });
            }
        }
        for env in out {
            self.ctl.send(env);
        }
    }

    /// A reply from a worker: relayed; a final one frees the worker. Given back if it answers
    /// no task of ours.
    fn reply(&self, env: Envelope) -> Option<Envelope> {
        let final_reply = env.msg.kind() == MsgKind::Final;
        let origin = {
            let mut s = self.state();
            let Some((w, _)) = s.running.get(&env.request_id) else {
                return Some(env);
            };
            let w = *w;
            if s.workers[w].0 != env.src {
                return Some(env);
            }
            if !final_reply {
                match &s.running[&env.request_id].1 {
                    Origin::Client(bus, client) => bus.send(client.reply(env.msg)),
                    Origin::Peer { .. } => {}
                }
                return None;
            }
            let (_, origin) = s.running.remove(&env.request_id).expect("looked up above");
            s.workers[w].1.retain(|id| *id != env.request_id);
            origin
        };
        match origin {
            Origin::Client(bus, client) => bus.send(client.reply(env.msg)),
            Origin::Peer { from, container_id } => {
                let (valid, contract_id, reasons) = match env.msg {
                    Msg::Rgb(RgbMsg::Imported(v)) => (true, v.contract_id, v.warnings),
                    Msg::Failure { message, .. } => (false, String::new(), vec![message]),
                    other => (
                        false,
                        String::new(),
                        vec![format!("unexpected reply {:#06x}", other.type_id())],
                    ),
                };
                if valid {
                    tracing::info!(contract = %contract_id, "contract received from a peer, valid, imported");
                } else {
                    tracing::warn!(
                        "contract received from a peer refused: {}",
                        reasons.join("; ")
                    );
                }
                self.tell(Received {
                    from,
                    container_id,
                    valid,
                    contract_id,
                    reasons,
                });
            }
        }
        self.dispatch();
        None
    }
}

/// The extension.
pub struct Rgbd {
    dispatch: Arc<Dispatch>,
}

impl Rgbd {
    /// The extension over `dispatch` (shared across restarts).
    pub fn new(dispatch: Arc<Dispatch>) -> Rgbd {
        Rgbd { dispatch }
    }
}

impl Extension for Rgbd {
    fn handle(&mut self, d: Deliver) -> Option<Deliver> {
        let Deliver { env, bus } = d;
        let Msg::Rgb(m) = &env.msg else {
            return Some(Deliver { env, bus });
        };
        match m {
            RgbMsg::ContractSubscribe => {
                let reply = match self
                    .dispatch
                    .listeners()
                    .add(Subscriber::of(&bus, &env), ())
                {
                    Ok(()) => Msg::Success(Some("subscribed to contracts received".into())),
                    Err(why) => Msg::failure(code::BUSY, why),
                };
                bus.send(env.reply(reply));
            }
            RgbMsg::Issue(_)
            | RgbMsg::Import(_)
            | RgbMsg::Contracts
            | RgbMsg::State(_)
            | RgbMsg::Export { .. }
            | RgbMsg::SendContract { .. } => {
                let msg = m.clone();
                if let Some(Origin::Client(bus, env)) =
                    self.dispatch.submit(Origin::Client(bus, env), msg)
                {
                    let max = self.dispatch.max_queue;
                    bus.send(env.reply(Msg::failure(
                        code::BUSY,
                        format!("{max} RGB tasks are waiting for a worker; retry"),
                    )));
                }
            }
            _ => return Some(Deliver { env, bus }),
        }
        None
    }

    fn debug_crash(&mut self, _: &str, _: &str) -> Option<Msg> {
        None
    }

    fn gone(&mut self, service: &ServiceId) {
        self.dispatch.listeners().remove(service);
    }

    fn reply(&mut self, d: Deliver) -> Option<Deliver> {
        if d.bus.name() != self.dispatch.ctl.name() {
            return Some(d);
        }
        let Deliver { env, bus } = d;
        self.dispatch.reply(env).map(|env| Deliver { env, bus })
    }
}
