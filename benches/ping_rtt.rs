//! Lightning ping round trip on loopback: between two of our LNP nodes (real processes, BOLT-8
//! and BOLT-1, the RTT measured by the pinging peerd), against the same between two pyln-proto
//! endpoints (Core Lightning's Python implementation), in the same run. Also the Bifrost ping
//! round trip (LNPBP-50 over Brontozaur) between the same two nodes, against their Lightning
//! one.
//!
//! Run: `cargo bench --bench ping_rtt` (release; needs .venv with pyln-proto, see .ci/run).
//! Prints medians and the ratio.

mod common;

use lnpbp_nodes::bus::client::Client;
use lnpbp_nodes::bus::Endpoint;
use lnpbp_nodes::wire::api::lnp::{LnpMsg, Protocol};
use lnpbp_nodes::wire::api::Detail;
use lnpbp_nodes::wire::api::{Msg, ServiceId};
use lnpbp_nodes::wire::node_id::NodeId;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const PINGS: usize = 200;

fn start(dir: &Path) -> (Child, Client) {
    let child = common::start_node(
        "lnp",
        dir,
        &["--listen", "127.0.0.1:0", "--bifrost-listen", "127.0.0.1:0"],
    );
    let api = dir.join("api");
    let ctx = zmq::Context::new();
    (child, Client::connect(&ctx, &Endpoint::Ipc(api)).unwrap())
}

fn request(c: &mut Client, msg: Msg) -> Msg {
    c.request(&ServiceId::Lnpd, msg, Duration::from_secs(15), |_| {})
        .expect("request")
}

/// (node-measured RTT median, client-seen `ping` request median), microseconds, over the
/// connection of `protocol`.
fn ours(b: &mut Client, a_id: NodeId, protocol: Protocol) -> (f64, f64) {
    let (mut rtts, mut totals) = (Vec::new(), Vec::new());
    for _ in 0..PINGS {
        let t = Instant::now();
        let Msg::Lnp(LnpMsg::PeerPong { rtt_us }) = request(
            b,
            LnpMsg::PingPeer {
                node_id: a_id,
                num_pong_bytes: 0,
                protocol,
            }
            .into(),
        ) else {
            panic!("no pong");
        };
        totals.push(t.elapsed().as_secs_f64() * 1e6);
        rtts.push(rtt_us as f64);
    }
    (common::median(rtts), common::median(totals))
}

fn pyln() -> f64 {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/ln_peer.py"
        ))
        .args(["ping-bench", &PINGS.to_string()])
        .output()
        .expect("run .venv/bin/python (install with .ci/run)");
    assert!(
        out.status.success(),
        "pyln ping-bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rtts = v["rtts_us"].as_array().unwrap();
    common::median(rtts.iter().map(|x| x.as_f64().unwrap()).collect())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let samples = common::samples(7);
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let (mut a, mut ca) = start(&tmp.path().join("a"));
    let (mut b, mut cb) = start(&tmp.path().join("b"));
    let Msg::NodeInfo(info) = request(&mut ca, Msg::GetInfo) else {
        panic!("info")
    };
    let first = |key: &str| {
        info.details
            .iter()
            .find_map(|(k, v)| match (k.as_str(), v) {
                (k, Detail::List(l)) if k == key => l.first().cloned(),
                _ => None,
            })
            .expect("an address")
    };
    for (protocol, addr) in [
        (Protocol::Lightning, first("listening")),
        (Protocol::Bifrost, first("bifrost_listening")),
    ] {
        request(
            &mut cb,
            LnpMsg::Connect {
                node_id: info.node_id,
                addr,
                protocol,
            }
            .into(),
        );
    }
    ours(&mut cb, info.node_id, Protocol::Lightning); // warm-up
    ours(&mut cb, info.node_id, Protocol::Bifrost);
    let (mut node_rtt, mut client_rtt, mut py, mut bif) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..samples {
        let (n, c) = ours(&mut cb, info.node_id, Protocol::Lightning);
        node_rtt.push(n);
        client_rtt.push(c);
        py.push(pyln());
        bif.push(ours(&mut cb, info.node_id, Protocol::Bifrost).0);
    }
    let bif = common::median(bif);
    let (n, c, p) = (
        common::median(node_rtt),
        common::median(client_rtt),
        common::median(py),
    );
    println!("ping round trip on loopback ({samples} samples x {PINGS} pings, medians)");
    println!("  two pyln-proto endpoints          : {p:8.1} us");
    println!(
        "  two LNP nodes (peerd to peerd)    : {n:8.1} us   ratio {:.2}x of pyln",
        n / p
    );
    println!("  `ping` API request, client to node: {c:8.1} us   (ZMQ API + the peer RTT)");
    println!(
        "  Bifrost ping, same two nodes      : {bif:8.1} us   ratio {:.2}x of their Lightning ping",
        bif / n
    );
    for child in [&mut a, &mut b] {
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let _ = child.wait();
    }
}
