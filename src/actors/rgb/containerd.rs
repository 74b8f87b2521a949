//! One `containerd` worker (`containerd-N`), a supervised service on the CTL bus: it takes the
//! tasks rgbd hands it (RGB requests, with rgbd's request id) and runs them on a thread of its
//! own, never in the actor's handler: validation of a large consignment must not stall the
//! node's arbiter.
//!
//! - The thread answers each task on the CTL bus: `progress` at each step, then the final
//!   reply. Validation runs without the stock's lock, so two workers validate in parallel.
//! - A panic in the thread (in the RGB libraries, say) fails only its task (the guard answers
//!   it) and restarts the worker (`Control::Fail`).
//! - A valid consignment goes to the [`Committer`], one thread for the node that journals and
//!   imports (under the stock's lock) and answers; meanwhile the worker validates its next
//!   task. Validation and commit overlap: one worker is not idle while a commit waits on the
//!   disk (measured: 0.63x of in-process imports without, docs/BENCHMARKS.md).
//! - A crash of the worker itself (`debug crash containerd-0`, or the panic above) fails the
//!   tasks it holds through the router, marks its thread cancelled (a cancelled thread, and
//!   the committer for its tasks, commit nothing more and answer nothing), and the supervisor
//!   starts a fresh worker with a fresh thread.

use super::storm::StormLink;
use crate::actors::clock::unix_now;
use crate::actors::service::{Control, Service, ServiceActor};
use crate::bus::{Bus, Deliver};
use crate::guard::guard;
use crate::lograte::RGB_REFUSED;
use crate::rgb::store::Contracts;
use crate::rgb::{NiaIssue, NoWitnesses};
use crate::wire::api::rgb::{ContractState, RgbMsg, Validation};
use crate::wire::api::{code, Code, Envelope, Msg, MsgKind, ServiceId, ServiceName};
use actix::prelude::*;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A commit for the [`Committer`]: the checked consignment of the `rgb_import` in `env`.
struct Commit {
    checked: crate::rgb::Checked,
    /// The worker incarnation holding the task, the bus and the request to answer.
    held: Arc<Held>,
    ctl: Bus,
    env: Envelope,
}

/// The thread that journals and imports valid consignments, one at a time, and answers them.
pub struct Committer {
    tx: std::sync::mpsc::SyncSender<Commit>,
}

impl Committer {
    /// Starts the committer of `contracts`; at most `depth` commits wait.
    pub fn start(contracts: Arc<Contracts>, depth: usize) -> Result<Committer, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Commit>(depth);
        std::thread::Builder::new()
            .name("rgb-committer".into())
            .spawn(move || {
                for c in rx {
                    let Commit {
                        mut checked,
                        held,
                        ctl,
                        env,
                    } = c;
                    if held.cancelled() {
                        continue;
                    }
                    let warnings = std::mem::take(&mut checked.warnings);
                    let reply = match &env.msg {
                        Msg::Rgb(RgbMsg::Import(bytes)) => {
                            match guard(|| Ok(contracts.import(bytes, checked))) {
                                Ok(Ok(cid)) => RgbMsg::Imported(Validation {
                                    contract_id: cid.to_string(),
                                    warnings,
                                })
                                .into(),
                                Ok(Err(e)) => Msg::failure(code::SERVICE_FAILED, e.to_string()),
                                Err(why) => Msg::failure(
                                    code::SERVICE_FAILED,
                                    format!("the commit of this import failed: {why}"),
                                ),
                            }
                        }
                        _ => Msg::failure(code::UNEXPECTED, "not an import"),
                    };
                    if held.take(env.request_id) {
                        ctl.send(env.reply(reply));
                    }
                }
            })
            .map_err(|e| format!("cannot start the RGB committer: {e}"))?;
        Ok(Committer { tx })
    }

    fn submit(&self, c: Commit) -> Result<(), String> {
        self.tx
            .send(c)
            .map_err(|_| "the RGB committer is gone".to_string())
    }
}

/// What every worker uses.
pub struct Shared {
    /// The stock.
    pub contracts: Arc<Contracts>,
    /// The committer of imports.
    pub committer: Committer,
    /// The Storm node, if attached.
    pub link: Option<Arc<StormLink>>,
    /// With fault injection only: each task waits this long first (tests crash a worker in
    /// the middle of a task).
    pub task_delay: Duration,
}

/// One incarnation's bookkeeping, shared with its thread.
#[derive(Default)]
struct Held {
    /// Request ids of the tasks it holds (running, then waiting).
    ids: Mutex<Vec<u64>>,
    /// Set when the incarnation stops: its thread commits and answers nothing more.
    cancelled: AtomicBool,
}

impl Held {
    /// Removes `id`; true if it was held (so the caller answers it).
    fn take(&self, id: u64) -> bool {
        let mut ids = crate::sync::lock(&self.ids);
        match ids.iter().position(|i| *i == id) {
            Some(n) => {
                ids.remove(n);
                true
            }
            None => false,
        }
    }

    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

/// The worker service.
pub struct Containerd {
    name: ServiceName,
    id: ServiceId,
    ctl: Bus,
    shared: Arc<Shared>,
    held: Arc<Held>,
    tx: Option<Sender<Envelope>>,
}

impl Containerd {
    /// Worker `name` on the `ctl` bus.
    pub fn new(name: ServiceName, ctl: Bus, shared: Arc<Shared>) -> Containerd {
        Containerd {
            id: ServiceId::Other(name.clone()),
            name,
            ctl,
            shared,
            held: Arc::new(Held::default()),
            tx: None,
        }
    }
}

impl Service for Containerd {
    fn start(&mut self, ctx: &mut Context<ServiceActor<Self>>) -> Result<(), String> {
        self.ctl
            .register(self.id.clone(), ctx.address().recipient::<Deliver>());
        let control = ctx.address().recipient::<Control>();
        let (tx, rx) = channel::<Envelope>();
        let job = Job {
            name: self.name.to_string(),
            ctl: self.ctl.clone(),
            shared: self.shared.clone(),
            held: self.held.clone(),
        };
        std::thread::Builder::new()
            .name(self.name.to_string())
            .spawn(move || {
                for env in rx {
                    if job.held.cancelled() {
                        break;
                    }
                    if let Err(why) = job.run(env) {
                        control.do_send(Control::Fail(why));
                        break;
                    }
                }
            })
            .map_err(|e| format!("cannot start the worker thread: {e}"))?;
        self.tx = Some(tx);
        Ok(())
    }

    fn handle(&mut self, d: Deliver, _: &mut Context<ServiceActor<Self>>) -> Result<(), String> {
        if d.env.msg.kind() != MsgKind::Request || !matches!(d.env.msg, Msg::Rgb(_)) {
            crate::actors::service::not_taken(self.name.as_str(), &d);
            return Ok(());
        }
        crate::sync::lock(&self.held.ids).push(d.env.request_id);
        let tx = self.tx.as_ref().ok_or("the worker thread is not running")?;
        tx.send(d.env)
            .map_err(|_| "the worker thread is gone".to_string())
    }

    fn stop(&mut self) {
        self.held.cancelled.store(true, Ordering::Release);
        self.tx = None;
        let ids = std::mem::take(&mut *crate::sync::lock(&self.held.ids));
        for id in ids {
            self.ctl.fail_request(
                &self.id,
                &ServiceId::Rgbd,
                id,
                &format!(
                    "{} stopped while holding the task (it restarts; retry)",
                    self.name
                ),
            );
        }
    }
}

/// What the worker thread runs a task with.
struct Job {
    name: String,
    ctl: Bus,
    shared: Arc<Shared>,
    held: Arc<Held>,
}

impl Job {
    /// Runs one task and answers it; `Err` after a panic (answered too): the worker restarts.
    fn run(&self, env: Envelope) -> Result<(), String> {
        let id = env.request_id;
        let outcome = guard(|| Ok(self.work(&env)));
        let (reply, panicked) = match outcome {
            Ok(Some(m)) => (m, None),
            // Cancelled: the stopping incarnation answered.
            Ok(None) => return Ok(()),
            Err(why) => (
                Msg::failure(
                    code::SERVICE_FAILED,
                    format!("{} failed on this task: {why}", self.name),
                ),
                Some(why),
            ),
        };
        if self.held.take(id) {
            self.ctl.send(env.reply(reply));
        }
        match panicked {
            Some(why) => Err(format!("panic in a task: {why}")),
            None => Ok(()),
        }
    }

    /// Waits `task_delay` (fault injection), in steps; false if cancelled meanwhile.
    fn fault_delay(&self) -> bool {
        let until = Instant::now() + self.shared.task_delay;
        while Instant::now() < until {
            if self.held.cancelled() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    fn progress(&self, env: &Envelope, what: &str) {
        self.ctl.send(env.reply(Msg::Progress(what.into())));
    }

    /// The task's final reply, or `None` if it is not answered here (the worker was cancelled
    /// meanwhile, or the committer answers).
    fn work(&self, env: &Envelope) -> Option<Msg> {
        let Msg::Rgb(m) = &env.msg else {
            return Some(Msg::failure(code::UNEXPECTED, "not an RGB task"));
        };
        if matches!(m, RgbMsg::Import(_)) {
            self.progress(env, "validating");
        }
        if !self.shared.task_delay.is_zero() && !self.fault_delay() {
            return None;
        }
        let c = &self.shared.contracts;
        let failure = |code: Code, e: &dyn std::fmt::Display| Msg::failure(code, e.to_string());
        Some(match m {
            RgbMsg::Issue(i) => match issue_params(i) {
                Err(e) => failure(code::INVALID_ARGUMENT, &e),
                Ok(p) => match c.issue(&p) {
                    Ok(id) => RgbMsg::Issued(id.to_string()).into(),
                    Err(e) if e.is_store() => failure(code::SERVICE_FAILED, &e),
                    Err(e) => failure(code::INVALID_ARGUMENT, &e),
                },
            },
            RgbMsg::Import(bytes) => {
                let checked = match c.validator().check(bytes, &NoWitnesses) {
                    Ok(ch) => ch,
                    Err(e) => {
                        if RGB_REFUSED.allow(&self.name) {
                            tracing::warn!(worker = %self.name, "consignment refused: {e}");
                        }
                        return Some(failure(code::INVALID_DATA, &e));
                    }
                };
                if self.held.cancelled() {
                    return None;
                }
                self.progress(env, "valid; importing");
                let commit = Commit {
                    checked,
                    held: self.held.clone(),
                    ctl: self.ctl.clone(),
                    env: env.clone(),
                };
                match self.shared.committer.submit(commit) {
                    Ok(()) => return None,
                    Err(e) => failure(code::SERVICE_FAILED, &e),
                }
            }
            RgbMsg::Contracts => match c.contracts() {
                Ok(ids) => RgbMsg::ContractList(ids.iter().map(|i| i.to_string()).collect()).into(),
                Err(e) => failure(code::SERVICE_FAILED, &e),
            },
            RgbMsg::State(id) => match c.state(id) {
                Ok(s) => RgbMsg::ContractState(ContractState {
                    contract_id: s.contract_id,
                    ticker: s.ticker,
                    name: s.name,
                    precision: s.precision,
                    issued: s.issued,
                    allocations: s
                        .allocations
                        .into_iter()
                        .map(|a| (a.seal, a.amount))
                        .collect(),
                })
                .into(),
                Err(e) => failure(code::NOT_FOUND, &e),
            },
            RgbMsg::Export {
                contract_id,
                armored,
            } => match c.export(contract_id, *armored) {
                Ok(bytes) => RgbMsg::Exported(bytes).into(),
                Err(e) => failure(code::NOT_FOUND, &e),
            },
            RgbMsg::SendContract {
                node_id,
                contract_id,
            } => {
                let Some(link) = &self.shared.link else {
                    return Some(failure(
                        code::REFUSED,
                        &"this RGB node is attached to no Storm node (start it with --storm ENDPOINT)",
                    ));
                };
                let bytes = match c.export(contract_id, false) {
                    Ok(b) => b,
                    Err(e) => return Some(failure(code::NOT_FOUND, &e)),
                };
                self.progress(env, "handing the consignment to the Storm node");
                match link.send(*node_id, contract_id, &bytes) {
                    Ok(note) => Msg::Success(Some(note)),
                    Err(e) => e.into(),
                }
            }
            other => failure(
                code::UNEXPECTED,
                &format!("{} takes no message {:#06x}", self.name, other.type_id()),
            ),
        })
    }
}

/// The library's issue parameters from the request (a random blinding, the time now).
fn issue_params(i: &crate::wire::api::rgb::NiaIssue) -> Result<NiaIssue, String> {
    let seal = bitcoin::OutPoint::from_str(&i.seal)
        .map_err(|e| format!("seal `{}` is not TXID:VOUT: {e}", i.seal.escape_debug()))?;
    Ok(NiaIssue {
        ticker: i.ticker.clone(),
        name: i.name.clone(),
        precision: i.precision,
        supply: i.supply,
        seal,
        blinding: bitcoin::secp256k1::rand::random(),
        timestamp: unix_now() as i64,
    })
}
