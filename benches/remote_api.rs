//! The remote API: `info` round trips over the encrypted TCP API of a real node process,
//! against a bare zmq DEALER/ROUTER echo over TCP answering a reply of the same size, and
//! against our plaintext IPC round trip to the same node (its CTL bus), in the same run; then
//! session handshakes per second (a new DEALER, the three acts, one `info`).
//!
//! Run: `cargo bench --bench remote_api` (release). Prints medians and ratios.

mod common;

use bitcoin::secp256k1::SecretKey;
use lnpbp_nodes::bus::client::{Client, Remote};
use lnpbp_nodes::bus::Endpoint;
use lnpbp_nodes::wire::api::{Msg, ServiceId};
use std::time::{Duration, Instant};

const ROUND_TRIPS: usize = 2_000;
const HANDSHAKES: usize = 100;

/// A ROUTER echo bound on `endpoint` answering `reply_len` bytes; its bound endpoint.
fn bare_server(
    ctx: &zmq::Context,
    endpoint: &str,
    reply_len: usize,
) -> (String, std::thread::JoinHandle<()>) {
    let sock = ctx.socket(zmq::ROUTER).unwrap();
    sock.set_linger(0).unwrap();
    sock.bind(endpoint).unwrap();
    let port = sock.get_last_endpoint().unwrap().unwrap();
    let t = std::thread::spawn(move || {
        let reply = vec![7u8; reply_len];
        loop {
            let Ok(frames) = sock.recv_multipart(0) else {
                return;
            };
            if frames.len() == 2 && frames[1] == b"stop" {
                return;
            }
            let out = [frames[0].as_slice(), &frames[2], &frames[1], &reply];
            sock.send_multipart(out, 0).unwrap();
        }
    });
    (port, t)
}

fn info(c: &mut Client) -> usize {
    match c.request(
        &ServiceId::Lnpd,
        Msg::GetInfo,
        Duration::from_secs(10),
        |_| {},
    ) {
        Ok(m @ Msg::NodeInfo(_)) => lnpbp_nodes::wire::api::payload_of(0, &m).len(),
        other => panic!("info: {other:?}"),
    }
}

/// Mean round trip in microseconds over `n` sequential `info` requests.
fn rtt_node(c: &mut Client, n: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        info(c);
    }
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn rtt_bare(sock: &zmq::Socket, n: usize) -> f64 {
    let frames = [vec![2u8; 9], vec![0x20], vec![0u8; 10]];
    let t = Instant::now();
    for _ in 0..n {
        sock.send_multipart(&frames, 0).unwrap();
        sock.recv_multipart(0).unwrap();
    }
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let samples = common::samples(5);
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let dir = tmp.path().join("lnp");
    let key_path = tmp.path().join("client.key");
    let (key, public, _) = lnpbp_nodes::actors::datadir::key_file(&key_path).unwrap();
    let allow = bitcoin::hex::DisplayHex::to_lower_hex_string(&public.serialize()[..]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The API on TCP; the CTL bus stays on IPC (a plaintext path to the same node).
    let api = format!("tcp://127.0.0.1:{port}");
    let node = std::process::Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .args([
            "start",
            "--node",
            "lnp",
            "--log-level",
            "warn",
            "--listen",
            "127.0.0.1:0",
        ])
        .args([
            "--bifrost-listen",
            "127.0.0.1:0",
            "-R",
            &api,
            "--rpc-allow",
            &allow,
        ])
        .arg("--data-dir")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut node = scopeguard(node);
    assert!(lnpbp_nodes::bus::socket::wait_for_ipc(
        &dir.join("ctl"),
        Duration::from_secs(30)
    ));
    std::thread::sleep(Duration::from_millis(300));
    let node_key = std::fs::read(dir.join("node.key")).unwrap();
    let node_id = SecretKey::from_slice(&node_key)
        .unwrap()
        .public_key(&bitcoin::secp256k1::Secp256k1::new());
    let remote = Remote::parse(&format!("{node_id}@127.0.0.1:{port}")).unwrap();
    let ctx = zmq::Context::new();
    let mut enc =
        Client::connect_remote(&ctx, &remote, &key, None, Duration::from_secs(5)).unwrap();
    let mut ipc = Client::connect(&ctx, &Endpoint::Ipc(dir.join("ctl"))).unwrap();
    let reply_len = info(&mut enc);
    let bare_ipc_path = format!("ipc://{}", tmp.path().join("bare").display());
    let mut bares = Vec::new();
    let mut threads = Vec::new();
    for ep in ["tcp://127.0.0.1:0", bare_ipc_path.as_str()] {
        let (bound, t) = bare_server(&ctx, ep, reply_len);
        let s = ctx.socket(zmq::DEALER).unwrap();
        s.set_linger(0).unwrap();
        s.connect(&bound).unwrap();
        bares.push((s, bound));
        threads.push(t);
    }
    let (bare, bare_ipc) = (&bares[0].0, &bares[1].0);
    // Warm up all three.
    rtt_node(&mut enc, 200);
    rtt_node(&mut ipc, 200);
    rtt_bare(bare, 200);
    rtt_bare(bare_ipc, 200);
    let (mut e, mut i, mut b, mut bi) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..samples {
        b.push(rtt_bare(bare, ROUND_TRIPS));
        bi.push(rtt_bare(bare_ipc, ROUND_TRIPS));
        e.push(rtt_node(&mut enc, ROUND_TRIPS));
        i.push(rtt_node(&mut ipc, ROUND_TRIPS));
    }
    let (e, i, b, bi) = (
        common::median(e),
        common::median(i),
        common::median(b),
        common::median(bi),
    );
    println!("info round trip ({reply_len}-byte reply), medians of {samples} x {ROUND_TRIPS}:");
    println!("  bare zmq DEALER/ROUTER echo over TCP: {b:>8.1} us");
    println!("  bare zmq DEALER/ROUTER echo over IPC: {bi:>8.1} us");
    println!(
        "  our plaintext IPC (same node):        {i:>8.1} us  {:.2}x bare IPC",
        i / bi
    );
    println!(
        "  our encrypted TCP API:                {e:>8.1} us  {:.2}x bare TCP, {:.2}x our IPC",
        e / b,
        e / i
    );
    let mut rates = Vec::new();
    for _ in 0..samples {
        let t = Instant::now();
        for _ in 0..HANDSHAKES {
            let mut c =
                Client::connect_remote(&ctx, &remote, &key, None, Duration::from_secs(5)).unwrap();
            info(&mut c);
        }
        rates.push(HANDSHAKES as f64 / t.elapsed().as_secs_f64());
    }
    println!(
        "sessions (connect, handshake, one info) per second, median of {samples} x {HANDSHAKES}: {:.0}/s",
        common::median(rates)
    );
    for (_, bound) in &bares {
        let stop = ctx.socket(zmq::DEALER).unwrap();
        stop.connect(bound).unwrap();
        stop.send(&b"stop"[..], 0).unwrap();
    }
    for t in threads {
        let _ = t.join();
    }
    let _ = node.0.kill();
}

/// Kills the node when the bench ends, even on a panic.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scopeguard(c: std::process::Child) -> Guard {
    Guard(c)
}
