//! Time to sync N regtest headers from a bcoin node over loopback into our BP node (a real
//! `nodectl` process: handshake, getheaders/headers in batches of 2,000, validation, redb
//! store), and the same chain synced between two bcoin nodes (a bcoin node downloads and
//! validates the blocks too: that is how bcoin syncs), in the same run.
//!
//! Run: `cargo bench --bench header_sync` (release; needs `tests/js/node_modules`, see
//! .ci/run). `BENCH_SYNC_BLOCKS` (default 5,000) and `BENCH_SAMPLES` (default 3).

mod common;

use common::bcoin::{free_pair, Bcoin};
use lnpbp_nodes::bus::client::Client;
use lnpbp_nodes::bus::Endpoint;
use lnpbp_nodes::wire::api::bp::BpMsg;
use lnpbp_nodes::wire::api::Detail;
use lnpbp_nodes::wire::api::ServiceId;
use std::process::Command;
use std::time::{Duration, Instant};

fn tip_height(c: &mut Client) -> u64 {
    match common::bp_detail(c, "tip_height") {
        Some(Detail::U64(h)) => h,
        other => panic!("tip_height: {other:?}"),
    }
}

fn ours(source: &str, n: u64) -> f64 {
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let dir = tmp.path().join("bp");
    let mut node = common::start_node("bp", &dir, &["--network", "regtest"]);
    let ctx = zmq::Context::new();
    let mut c = Client::connect(&ctx, &Endpoint::Ipc(dir.join("api"))).unwrap();
    let t = Instant::now();
    c.request(
        &ServiceId::Bpd,
        BpMsg::BtcConnect {
            addr: source.into(),
        }
        .into(),
        Duration::from_secs(30),
        |_| {},
    )
    .expect("connect");
    while tip_height(&mut c) < n {
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = t.elapsed().as_secs_f64();
    let _ = Command::new("kill").arg(node.id().to_string()).status();
    let _ = node.wait();
    secs
}

fn bcoin_pair(source: &str, port: u16, n: u64) -> f64 {
    let mut b = Bcoin::start(port, 0);
    let t = Instant::now();
    b.cmd(&format!("connect {source}"));
    while b.cmd("tip")["height"].as_u64().unwrap() < n {
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = t.elapsed().as_secs_f64();
    drop(b);
    secs
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: u64 = std::env::var("BENCH_SYNC_BLOCKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000);
    let samples = common::samples(3);
    let source = Bcoin::start(free_pair(), n as u32);
    let addr = format!("127.0.0.1:{}", source.port);
    let (mut o, mut b) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        o.push(ours(&addr, n));
        b.push(bcoin_pair(&addr, free_pair(), n));
    }
    let (o, b) = (common::median(o), common::median(b));
    println!("sync of {n} regtest headers from bcoin over loopback ({samples} samples, medians)");
    println!("  bcoin -> bcoin (headers and blocks) : {b:8.3} s");
    println!(
        "  bcoin -> our BP node (headers)      : {o:8.3} s   ({:.0} headers/s)",
        n as f64 / o
    );
    println!("  ratio ours/bcoin (time)             : {:8.2}x", o / b);
}
