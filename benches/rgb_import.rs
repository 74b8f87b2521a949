//! Imports per second of distinct NIA contracts (genesis consignments, ~4.5 kB each) through a
//! running RGB node, with 1 `containerd` worker and with 2, against loading, validating
//! (rgb-ops `validate`) and importing (`import_contract`) the same consignments in-process into
//! an in-memory stock, in the same run.
//!
//! Through the node every import is an API request from one client that keeps 16 in flight;
//! each is queued by rgbd, validated by a worker and journaled in the node's embedded store
//! (one durable commit) before its reply. Each sample uses a fresh node (a fresh stock).
//!
//! Run: `cargo bench --bench rgb_import` (release). Prints medians and ratios.

mod common;

use lnpbp_nodes::bus::client::Client;
use lnpbp_nodes::bus::Endpoint;
use lnpbp_nodes::rgb::{NiaIssue, NoWitnesses, Rgb};
use lnpbp_nodes::wire::api::rgb::RgbMsg;
use lnpbp_nodes::wire::api::{Msg, MsgKind, ServiceId};
use std::str::FromStr;
use std::time::{Duration, Instant};

const CONTRACTS: usize = 300;
const IN_FLIGHT: usize = 16;

/// `n` distinct NIA contracts of regtest, as binary consignments.
fn consignments(n: usize) -> Vec<Vec<u8>> {
    let mut issuer = Rgb::new(bitcoin::Network::Regtest).unwrap();
    let seal = bitcoin::OutPoint::from_str(
        "14295d5bb1a191cdb6286dc0944df938421e3dfcbf0811353ccac4100c2068c5:1",
    )
    .unwrap();
    (0..n as u64)
        .map(|i| {
            let id = issuer
                .issue_nia(&NiaIssue {
                    ticker: "BENCH".into(),
                    name: "Bench asset".into(),
                    precision: 8,
                    supply: 1_000_000 + i,
                    seal,
                    blinding: i,
                    timestamp: 1_713_261_744,
                })
                .unwrap();
            issuer.export(id, false).unwrap()
        })
        .collect()
}

/// Imports per second in-process (validate + import_contract into a fresh stock).
fn in_process(cs: &[Vec<u8>]) -> f64 {
    let mut stock = Rgb::new(bitcoin::Network::Regtest).unwrap();
    let t = Instant::now();
    for c in cs {
        stock.import(c, &NoWitnesses).unwrap();
    }
    cs.len() as f64 / t.elapsed().as_secs_f64()
}

/// Imports per second through a fresh node with `workers` workers.
fn through_node(cs: &[Vec<u8>], workers: usize) -> f64 {
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let dir = tmp.path().join("rgb");
    let mut node = common::start_node_env(
        "rgb",
        &dir,
        &["--network", "regtest"],
        &[("NODECTL_RGB__WORKERS".into(), workers.to_string())],
    );
    let ctx = zmq::Context::new();
    let mut c = Client::connect(&ctx, &Endpoint::Ipc(dir.join("api"))).unwrap();
    let (mut sent, mut done) = (0, 0);
    let t = Instant::now();
    while done < cs.len() {
        while sent < cs.len() && sent - done < IN_FLIGHT {
            c.send(&ServiceId::Rgbd, RgbMsg::Import(cs[sent].clone()).into())
                .unwrap();
            sent += 1;
        }
        let env = c.recv(Duration::from_secs(30)).expect("a reply");
        match env.msg {
            Msg::Rgb(RgbMsg::Imported(_)) => done += 1,
            ref m if m.kind() == MsgKind::Progress => {}
            other => panic!("import failed: {other:?}"),
        }
    }
    let rate = cs.len() as f64 / t.elapsed().as_secs_f64();
    let _ = node.kill();
    let _ = node.wait();
    rate
}

fn main() {
    let n = common::samples(5);
    let cs = consignments(CONTRACTS);
    println!(
        "{CONTRACTS} distinct NIA contracts ({} bytes each), {n} samples each",
        cs[0].len()
    );
    let (mut bare, mut one, mut two) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        bare.push(in_process(&cs));
        one.push(through_node(&cs, 1));
        two.push(through_node(&cs, 2));
    }
    let (bare, one, two) = (
        common::median(bare),
        common::median(one),
        common::median(two),
    );
    println!("in-process validate + import_contract: {bare:>8.0} imports/s");
    println!(
        "node, 1 worker:                        {one:>8.0} imports/s  {:.2}x",
        one / bare
    );
    println!(
        "node, 2 workers:                       {two:>8.0} imports/s  {:.2}x",
        two / bare
    );
}
