//! Supervision matrix (docs/ARCHITECTURE.md, "Supervision"): {error, panic} x {start, handle, event, stop} for a
//! service under the real root supervisor and bus router, in-process. Every case must end in a
//! restart with the same address (and the request in flight answered with a failure) or, past
//! the intensity limit, in the node exiting with the escalation code.

use actix::prelude::*;
use lnpbp_nodes::actors::service::{Control, Service, ServiceActor};
use lnpbp_nodes::actors::status::NodeStatus;
use lnpbp_nodes::actors::supervisor::{ChildSpec, RestartPolicy, Root, EXIT_ESCALATION};
use lnpbp_nodes::actors::NodeKind;
use lnpbp_nodes::bus::{Bus, Deliver};
use lnpbp_nodes::wire::api::{code, Envelope, Msg, ServiceEvent, ServiceId, ServiceState};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Error,
    Panic,
}

#[derive(Default)]
struct Plan {
    start: Mutex<Vec<Fault>>,
    handle: Mutex<Vec<Fault>>,
    event: Mutex<Vec<Fault>>,
    stop: Mutex<Vec<Fault>>,
    starts: AtomicU32,
}

fn next(list: &Mutex<Vec<Fault>>) -> Option<Fault> {
    list.lock().unwrap().pop()
}

fn inject(f: Option<Fault>, place: &str) -> Result<(), String> {
    match f {
        None => Ok(()),
        Some(Fault::Error) => Err(format!("injected error in {place}")),
        Some(Fault::Panic) => panic!("injected panic in {place}"),
    }
}

struct Faulty {
    plan: Arc<Plan>,
    bus: Bus,
}

const ID: &str = "faulty";

impl Service for Faulty {
    fn start(&mut self, ctx: &mut Context<ServiceActor<Self>>) -> Result<(), String> {
        // Register only once: after a restart the old registration must still reach us.
        if self.plan.starts.fetch_add(1, Ordering::SeqCst) == 0 {
            self.bus
                .register(ServiceId::named(ID).unwrap(), ctx.address().recipient());
        }
        inject(next(&self.plan.start), "start")
    }

    fn handle(&mut self, d: Deliver, _: &mut Context<ServiceActor<Self>>) -> Result<(), String> {
        inject(next(&self.plan.handle), "handle")?;
        let starts = self.plan.starts.load(Ordering::SeqCst);
        d.bus
            .send(d.env.reply(Msg::Success(Some(starts.to_string()))));
        Ok(())
    }

    fn service_event(&mut self, _: &ServiceEvent) -> Result<(), String> {
        inject(next(&self.plan.event), "event")
    }

    fn stop(&mut self) {
        let _ = inject(next(&self.plan.stop), "stop");
    }
}

struct Probe(mpsc::Sender<Envelope>);
impl Actor for Probe {
    type Context = Context<Self>;
}
impl Handler<Deliver> for Probe {
    type Result = ();
    fn handle(&mut self, d: Deliver, _: &mut Context<Self>) {
        let _ = self.0.send(d.env);
    }
}

struct Harness {
    bus: Bus,
    status: Arc<NodeStatus>,
    control: Arc<Mutex<Option<Recipient<Control>>>>,
    replies: mpsc::Receiver<Envelope>,
    next_id: u64,
}

impl Harness {
    fn start(plan: Arc<Plan>, policy: RestartPolicy) -> Harness {
        let bus = Bus::new("ctl", Duration::from_secs(5));
        let status = NodeStatus::new(
            NodeKind::Lnp,
            "regtest".into(),
            lnpbp_nodes::wire::node_id::NodeId([2; 33]),
        );
        let (tx, replies) = mpsc::channel();
        bus.register(
            ServiceId::named("probe").unwrap(),
            Probe(tx).start().recipient(),
        );
        let control = Arc::new(Mutex::new(None));
        let (b, c) = (bus.clone(), control.clone());
        let spec = ChildSpec {
            name: ID.into(),
            start: Box::new(move |root| {
                let addr = ServiceActor::start(ID, root, move || Faulty {
                    plan: plan.clone(),
                    bus: b.clone(),
                });
                let r = addr.recipient::<Control>();
                *c.lock().unwrap() = Some(r.clone());
                r
            }),
        };
        Root::new(vec![spec], policy, status.clone(), vec![bus.clone()]).start();
        Harness {
            bus,
            status,
            control,
            replies,
            next_id: 1,
        }
    }

    async fn state(&self) -> (ServiceState, u32) {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
        let info = self.status.info();
        let s = info.services.iter().find(|s| s.name == ID).unwrap();
        (s.state, s.restarts)
    }

    async fn request(&mut self) -> Msg {
        let id = self.next_id;
        self.next_id += 1;
        self.bus.send(Envelope {
            src: ServiceId::named("probe").unwrap(),
            dst: ServiceId::named(ID).unwrap(),
            request_id: id,
            msg: Msg::GetInfo,
        });
        for _ in 0..500 {
            actix_rt::time::sleep(Duration::from_millis(2)).await;
            if let Ok(env) = self.replies.try_recv() {
                assert_eq!(env.request_id, id);
                return env.msg;
            }
        }
        panic!("no reply to request {id}");
    }
}

fn lenient() -> RestartPolicy {
    RestartPolicy {
        max_restarts: 10,
        period: Duration::from_secs(5),
    }
}

fn run(f: impl AsyncFnOnce() + 'static) {
    let sys = System::new();
    sys.block_on(f());
}

#[test]
fn handle_error_or_panic_restarts_with_the_same_address_and_fails_the_request() {
    for fault in [Fault::Error, Fault::Panic] {
        run(async move || {
            let plan = Arc::new(Plan::default());
            let mut h = Harness::start(plan.clone(), lenient());
            assert_eq!(h.state().await, (ServiceState::Running, 0));
            assert_eq!(h.request().await, Msg::Success(Some("1".into())));
            plan.handle.lock().unwrap().push(fault);
            match h.request().await {
                Msg::Failure { code: c, message } => {
                    assert_eq!(c, code::SERVICE_FAILED, "{fault:?}");
                    assert!(message.contains("injected"), "{message}");
                }
                other => panic!("{fault:?}: {other:?}"),
            }
            assert_eq!(h.state().await, (ServiceState::Running, 1), "{fault:?}");
            // Same address: the registration made before the restart still delivers.
            assert_eq!(
                h.request().await,
                Msg::Success(Some("2".into())),
                "{fault:?}"
            );
            assert_eq!(h.bus.pending(), 0);
        });
    }
}

#[test]
fn start_error_or_panic_restarts_until_it_runs() {
    for fault in [Fault::Error, Fault::Panic] {
        run(async move || {
            let plan = Arc::new(Plan::default());
            plan.start.lock().unwrap().extend([fault, fault]);
            let mut h = Harness::start(plan.clone(), lenient());
            assert_eq!(h.state().await, (ServiceState::Running, 2), "{fault:?}");
            assert_eq!(h.request().await, Msg::Success(Some("3".into())));
        });
    }
}

#[test]
fn event_handler_failure_restarts_and_stop_failure_does_not_block_restart() {
    for fault in [Fault::Error, Fault::Panic] {
        run(async move || {
            let plan = Arc::new(Plan::default());
            let mut h = Harness::start(plan.clone(), lenient());
            assert_eq!(h.state().await, (ServiceState::Running, 0));
            plan.event.lock().unwrap().push(fault);
            plan.stop.lock().unwrap().push(fault);
            let control = h.control.lock().unwrap().clone().unwrap();
            control.do_send(Control::Event(ServiceEvent {
                service: "other".into(),
                state: ServiceState::Restarting,
                restarts: 1,
                cause: None,
            }));
            assert_eq!(h.state().await, (ServiceState::Running, 1), "{fault:?}");
            assert_eq!(h.request().await, Msg::Success(Some("2".into())));
        });
    }
}

#[test]
fn crash_control_restarts_and_intensity_escalates_to_exit_code() {
    let sys = System::new();
    let plan = Arc::new(Plan::default());
    let policy = RestartPolicy {
        max_restarts: 3,
        period: Duration::from_secs(5),
    };
    let control = sys.block_on(async {
        let h = Harness::start(plan.clone(), policy);
        assert_eq!(h.state().await, (ServiceState::Running, 0));
        let c = h.control.lock().unwrap().clone().unwrap();
        c.do_send(Control::Crash {
            requested_by: "test".into(),
        });
        assert_eq!(h.state().await, (ServiceState::Running, 1));
        c
    });
    // Three more failures within the period: the fourth restart is over the limit.
    plan.start
        .lock()
        .unwrap()
        .extend([Fault::Error, Fault::Panic]);
    control.do_send(Control::Crash {
        requested_by: "test".into(),
    });
    let code = sys.run_with_code().unwrap();
    assert_eq!(code, EXIT_ESCALATION);
}
