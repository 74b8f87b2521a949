//! API `info` round trip over IPC through a real node process, against a bare zmq DEALER/ROUTER
//! echo over IPC that answers with a reply of the same size, in the same run.
//!
//! Run: `cargo bench --bench api_roundtrip` (release). Prints medians and the ratio.

mod common;

use lnpbp_nodes::bus::client::Client;
use lnpbp_nodes::bus::Endpoint;
use lnpbp_nodes::wire::api::{Msg, ServiceId};
use std::process::Command;
use std::time::{Duration, Instant};

const ROUND_TRIPS: usize = 2_000;
const IN_FLIGHT: usize = 100;

fn bare_server(
    ctx: zmq::Context,
    endpoint: String,
    reply_len: usize,
) -> std::thread::JoinHandle<()> {
    let sock = ctx.socket(zmq::ROUTER).unwrap();
    sock.set_linger(0).unwrap();
    sock.bind(&endpoint).unwrap();
    std::thread::spawn(move || {
        let reply = vec![7u8; reply_len];
        loop {
            let frames = match sock.recv_multipart(0) {
                Ok(f) => f,
                Err(_) => return,
            };
            if frames.len() == 2 && frames[1] == b"stop" {
                return;
            }
            // Same shape as ours: [routing id, src, dst, payload].
            let out = [frames[0].as_slice(), &frames[2], &frames[1], &reply];
            sock.send_multipart(out, 0).unwrap();
        }
    })
}

/// One side of a request/reply path.
trait Path {
    fn send(&mut self);
    fn recv(&mut self);
}

/// The bare path: a DEALER talking to the echo server.
struct Bare {
    sock: zmq::Socket,
    frames: [Vec<u8>; 3],
}

impl Path for Bare {
    fn send(&mut self) {
        let [a, b, c] = &self.frames;
        self.sock.send_multipart([a, b, c], 0).unwrap();
    }
    fn recv(&mut self) {
        self.sock.recv_multipart(0).unwrap();
    }
}

/// Our path: the API client talking to lnpd through the node.
struct Ours(Client);

impl Path for Ours {
    fn send(&mut self) {
        self.0.send(&ServiceId::Lnpd, Msg::GetInfo).unwrap();
    }
    fn recv(&mut self) {
        let env = self.0.recv(Duration::from_secs(5)).unwrap();
        assert!(matches!(env.msg, Msg::NodeInfo(_)), "{:?}", env.msg);
    }
}

/// Lock-step: microseconds per round trip over `n` trips.
fn lockstep(p: &mut dyn Path, n: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        p.send();
        p.recv();
    }
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// Pipelined: requests per second with `IN_FLIGHT` outstanding.
fn pipelined(p: &mut dyn Path, n: usize) -> f64 {
    let t = Instant::now();
    let (mut sent, mut got) = (0, 0);
    while got < n {
        while sent < n && sent - got < IN_FLIGHT {
            p.send();
            sent += 1;
        }
        p.recv();
        got += 1;
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let samples = common::samples(11);
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let dir = tmp.path().join("lnp");
    let mut node = common::start_node(
        "lnp",
        &dir,
        &["--listen", "127.0.0.1:0", "--bifrost-listen", "127.0.0.1:0"],
    );
    let api = dir.join("api");
    let ctx = zmq::Context::new();
    let mut client = Client::connect(&ctx, &Endpoint::Ipc(api.clone())).unwrap();
    let info = client
        .request(
            &ServiceId::Lnpd,
            Msg::GetInfo,
            Duration::from_secs(5),
            |_| {},
        )
        .unwrap();
    let Msg::NodeInfo(info) = info else {
        panic!("not info")
    };
    let reply_len = lnpbp_nodes::wire::api::payload_of(1, &Msg::NodeInfo(info)).len();

    let bare_ep = format!("ipc://{}", tmp.path().join("bare").display());
    let server = bare_server(ctx.clone(), bare_ep.clone(), reply_len);
    let sock = ctx.socket(zmq::DEALER).unwrap();
    sock.set_linger(0).unwrap();
    sock.connect(&bare_ep).unwrap();
    let request = lnpbp_nodes::wire::api::payload_of(1, &Msg::GetInfo);
    let frames = [
        ServiceId::Client(1).to_bytes(),
        ServiceId::Lnpd.to_bytes(),
        request,
    ];
    let mut bare = Bare { sock, frames };
    let mut ours = Ours(client);
    lockstep(&mut bare, 200);
    lockstep(&mut ours, 200);

    // Samples alternate between the two paths so that machine noise hits both alike.
    let (mut b_rt, mut o_rt, mut b_tp, mut o_tp) = (vec![], vec![], vec![], vec![]);
    for _ in 0..samples {
        b_rt.push(lockstep(&mut bare, ROUND_TRIPS));
        o_rt.push(lockstep(&mut ours, ROUND_TRIPS));
        b_tp.push(pipelined(&mut bare, ROUND_TRIPS * 5));
        o_tp.push(pipelined(&mut ours, ROUND_TRIPS * 5));
    }
    let (b_rt, o_rt) = (common::median(b_rt), common::median(o_rt));
    let (b_tp, o_tp) = (common::median(b_tp), common::median(o_tp));
    println!("api info round trip over IPC ({samples} samples x {ROUND_TRIPS} lock-step round trips, reply {reply_len} B)");
    println!("  bare zmq DEALER/ROUTER echo : {b_rt:8.1} us median");
    println!("  nodectl API `info`          : {o_rt:8.1} us median");
    println!(
        "  ratio ours/bare             : {:8.2}x  (target <= 2x)",
        o_rt / b_rt
    );
    println!(
        "api info pipelined, {IN_FLIGHT} in flight ({} requests per sample)",
        ROUND_TRIPS * 5
    );
    println!("  bare zmq DEALER/ROUTER echo : {b_tp:8.0} req/s median");
    println!("  nodectl API `info`          : {o_tp:8.0} req/s median");
    println!("  ratio ours/bare             : {:8.2}x", o_tp / b_tp);

    let stopper = ctx.socket(zmq::DEALER).unwrap();
    stopper.set_linger(100).unwrap();
    stopper.connect(&bare_ep).unwrap();
    stopper.send("stop", 0).unwrap();
    let _ = server.join();
    let _ = Command::new("kill").arg(node.id().to_string()).status();
    let _ = node.wait();
}
