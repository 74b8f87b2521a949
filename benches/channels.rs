//! Payments over one channel between our LNP node (channeld, with a BP node on bcoin as its
//! chain) and LDK (tests/ldk_peer, another process, over BOLT-8 on loopback TCP), against the
//! bare library: two LDK nodes in one process (`ldk-peer --bench`, the same lightning crate
//! over loopback TCP, no buses, no processes between the API and the channel), in the same
//! run. Each payment to completion (the payer has the preimage), one at a time, then 10 in
//! flight. Also the time from `channel open` to ready at a depth of 1, mining excluded.
//!
//!     cargo build --release --manifest-path tests/ldk_peer/Cargo.toml --target-dir target
//!     cargo bench --bench channels
//!
//! `BENCH_SAMPLES` (3) samples of `BENCH_PAYMENTS` (100) payments each; medians.

mod common;

use common::bcoin::{free_pair, Bcoin};
use common::ldk::Ldk;
use common::{median, samples, start_node};
use lnpbp_nodes::bus::client::Client;
use lnpbp_nodes::bus::Endpoint;
use lnpbp_nodes::wire::api::lnp::LnpMsg;
use lnpbp_nodes::wire::api::Msg;
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/ldk-peer");

fn peer_program() -> &'static str {
    assert!(
        std::path::Path::new(PEER).is_file(),
        "build the LDK peer first: cargo build --release --manifest-path tests/ldk_peer/Cargo.toml --target-dir target"
    );
    PEER
}

/// A node process, killed and reaped when the benchmark ends.
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cli(dir: &std::path::Path, args: &[&str]) -> Value {
    serde_json::from_str(&common::nodectl(dir, args)).unwrap()
}

fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn info(dir: &std::path::Path) -> Value {
    cli(dir, &["lnp", "info"])
}

fn main() {
    let n: usize = std::env::var("BENCH_PAYMENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let k = samples(3);
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let port = free_pair();
    let mut bcoin = Bcoin::start(port, 440);
    let bp = tmp.path().join("bp");
    let _bp = Proc(start_node(
        "bp",
        &bp,
        &[
            "--network",
            "regtest",
            "--connect",
            &format!("127.0.0.1:{port}"),
        ],
    ));
    wait("the BP index", || {
        cli(&bp, &["bp", "info"])["indexed"]
            .as_str()
            .is_some_and(|r| r.ends_with("..=440"))
    });
    let a = cli(&bp, &["bp", "address"]);
    bcoin.cmd(&format!("send {} 5000000", a["script"].as_str().unwrap()));
    bcoin.cmd("mine 1");
    wait("the BP wallet", || {
        cli(&bp, &["bp", "balance"])["confirmed"] == 5_000_000
    });
    let lnp = tmp.path().join("lnp");
    let api = format!("ipc://{}", bp.join("api").display());
    let _lnp = Proc(start_node(
        "lnp",
        &lnp,
        &[
            "--network",
            "regtest",
            "--bp",
            &api,
            "--listen",
            "127.0.0.1:0",
            "--bifrost-listen",
            "127.0.0.1:0",
        ],
    ));
    wait("channeld ready", || {
        info(&lnp)["channels_engine"] == "ready"
    });
    let mut ldk = Ldk::start_program(std::path::Path::new(peer_program()));
    ldk.feed(&mut bcoin, 441);
    cli(
        &lnp,
        &["lnp", "connect", &format!("{}@{}", ldk.node_id, ldk.addr)],
    );

    // Open to ready at a depth of 1 (LDK asks 1), mining excluded: from the request to the
    // funding broadcast, plus from the block to both sides ready.
    let t = Instant::now();
    let o = cli(&lnp, &["lnp", "channel", "open", &ldk.node_id, "3000000"]);
    let opened = t.elapsed();
    let txid = o["funding"]
        .as_str()
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_string();
    wait("the funding in bcoin's mempool", || {
        bcoin.cmd(&format!("mempool {txid}"))["in"] == true
    });
    let h = bcoin.cmd("mine 1")["height"].as_u64().unwrap();
    let t = Instant::now();
    ldk.feed(&mut bcoin, h);
    wait("ready", || {
        cli(&lnp, &["lnp", "channels"])[0]["state"] == "ready"
    });
    let ready = t.elapsed();

    let ctx = zmq::Context::new();
    let mut c = Client::connect(&ctx, &Endpoint::Ipc(lnp.join("api"))).unwrap();
    let channeld = lnpbp_nodes::wire::api::lnp::CHANNELD;
    let invoices = |ldk: &mut Ldk, n: usize| -> Vec<String> {
        (0..n)
            .map(|i| {
                ldk.cmd(json!({"cmd": "invoice", "msat": 1000 + i}))["bolt11"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let pay = |b: &str| {
        Msg::Lnp(LnpMsg::Pay {
            bolt11: b.into(),
            amount_msat: None,
            wait: true,
        })
    };
    let (mut seq, mut par, mut bseq, mut bpar) = (vec![], vec![], vec![], vec![]);
    for _ in 0..k {
        let inv = invoices(&mut ldk, n);
        let t = Instant::now();
        for b in &inv {
            let r = c
                .request(&channeld, pay(b), Duration::from_secs(30), |_| {})
                .unwrap();
            assert!(
                matches!(r, Msg::Lnp(LnpMsg::PaymentInfo(ref p)) if p.status == 1),
                "{r:?}"
            );
        }
        seq.push(n as f64 / t.elapsed().as_secs_f64());
        let inv = invoices(&mut ldk, n);
        let t = Instant::now();
        c.pipeline(
            &channeld,
            inv.iter().map(|b| pay(b)),
            10,
            Duration::from_secs(30),
            |_, r| match r {
                Msg::Lnp(LnpMsg::PaymentInfo(p)) if p.status == 1 => Ok(()),
                other => Err(format!("{other:?}")),
            },
        )
        .unwrap();
        par.push(n as f64 / t.elapsed().as_secs_f64());
        ldk.forget_events();
        let out = Command::new(peer_program())
            .args(["--bench", &n.to_string()])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        bseq.push(v["sequential_per_s"].as_f64().unwrap());
        bpar.push(v["in_flight_10_per_s"].as_f64().unwrap());
    }
    let (s, p, bs, bp_) = (median(seq), median(par), median(bseq), median(bpar));
    println!("channel payments, {n} per sample, {k} samples (medians):");
    println!(
        "  one at a time:  ours {s:8.1}/s  bare LDK {bs:8.1}/s  ratio {:.2}x",
        s / bs
    );
    println!(
        "  10 in flight:   ours {p:8.1}/s  bare LDK {bp_:8.1}/s  ratio {:.2}x",
        p / bp_
    );
    println!("channel open to ready (depth 1, mining excluded): {:.0} ms (open request {:.0} ms, block to ready {:.0} ms)",
        (opened + ready).as_secs_f64() * 1e3, opened.as_secs_f64() * 1e3, ready.as_secs_f64() * 1e3);
}
