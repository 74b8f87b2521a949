//! ESB: one-way messages per second from one local service to another through the bus router,
//! against bare actix messages of the same payload between two actors, in the same run.
//!
//! Run: `cargo bench --bench esb_throughput` (release). Prints medians and the ratio.

mod common;

use actix::prelude::*;
use lnpbp_nodes::bus::{Bus, Deliver};
use lnpbp_nodes::wire::api::{Envelope, Msg, ServiceEvent, ServiceId, ServiceState};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

const MESSAGES: u64 = 500_000;
/// Messages sent before the sender yields to let the receiver drain (below the mailbox bound).
const BURST: u64 = 1_000;

/// Counts what it receives.
struct Sink(Rc<Cell<u64>>);
impl Actor for Sink {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(lnpbp_nodes::bus::limits::MAILBOX_CAPACITY);
    }
}
impl Handler<Deliver> for Sink {
    type Result = ();
    fn handle(&mut self, d: Deliver, _: &mut Context<Self>) {
        std::hint::black_box(&d.env);
        self.0.set(self.0.get() + 1);
    }
}

fn message(i: u64) -> Envelope {
    Envelope {
        src: ServiceId::Lnpd,
        dst: ServiceId::Bpd,
        request_id: i,
        msg: Msg::ServiceEvent(ServiceEvent {
            service: String::new(),
            state: ServiceState::Running,
            restarts: i as u32,
            cause: None,
        }),
    }
}

/// Sends `MESSAGES` with `send`, in bursts; returns messages per second once all arrived.
async fn run(count: Rc<Cell<u64>>, mut send: impl FnMut(u64)) -> f64 {
    count.set(0);
    let t = Instant::now();
    let mut i = 0;
    while i < MESSAGES {
        for _ in 0..BURST {
            send(i);
            i += 1;
        }
        actix_rt::task::yield_now().await;
    }
    while count.get() < MESSAGES {
        actix_rt::task::yield_now().await;
    }
    MESSAGES as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let samples = common::samples(11);
    let sys = System::new();
    sys.block_on(async move {
        let count = Rc::new(Cell::new(0));
        let sink = Sink(count.clone()).start();
        let bus = Bus::new("ctl", Duration::from_secs(10));
        bus.register(ServiceId::Bpd, sink.clone().recipient());
        let (mut bare, mut ours) = (vec![], vec![]);
        for s in 0..=samples {
            let b = run(count.clone(), |i| {
                sink.do_send(Deliver {
                    env: message(i),
                    bus: bus.clone(),
                })
            })
            .await;
            let o = run(count.clone(), |i| bus.send(message(i))).await;
            if s > 0 {
                // sample 0 is the warm-up
                bare.push(b);
                ours.push(o);
            }
        }
        let dropped = bus
            .stats()
            .bounced
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(dropped, 0, "no message bounced");
        let (b, o) = (common::median(bare), common::median(ours));
        println!(
            "ESB one-way messages between two local services ({samples} samples x {MESSAGES})"
        );
        println!("  bare actix do_send A -> B    : {:10.0} msg/s median", b);
        println!("  through the bus router       : {:10.0} msg/s median", o);
        println!(
            "  ratio ours/bare              : {:10.2}x  (target >= 0.5x)",
            o / b
        );
    });
}
