//! Many peers and a handshake flood on a running LNP node (release):
//!
//! 1. RSS per idle authenticated Lightning peer at 1,000 and 10,000 peers, against the node's
//!    RSS before any peer (target: under 32 KiB per peer), and a ping from every one of the
//!    10,000 peers at once: the time until the last pong (target: under 1 s).
//! 2. Honest connects (handshake, init, first pong) with no flood and during a flood of 300
//!    slow handshakes from 30 addresses (tests/python/flood.py): success rate and median
//!    latency.
//!
//! Run: `cargo bench --bench peers`. Needs 2 x PEERS file descriptors (ulimit -n).

mod common;

use bitcoin::secp256k1::{rand, PublicKey, SecretKey};
use lnpbp_nodes::wire::ln::bolt1::{Features, Init, Message};
use lnpbp_nodes::wire::ln::bolt8::{Framing, Initiator, Transport};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

const PEERS: usize = 10_000;

struct Peer {
    s: TcpStream,
    t: Transport,
    buf: Vec<u8>,
}

impl Peer {
    fn connect(id: &PublicKey, addr: &str) -> std::io::Result<Peer> {
        let mut s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let key = || SecretKey::new(&mut rand::thread_rng());
        let (act1, next) = Initiator::new(key(), *id, key()).act_one(Framing::Brontide);
        s.write_all(&act1)?;
        let mut act2 = [0u8; 50];
        s.read_exact(&mut act2)?;
        let (act3, t) = next
            .act_two(&act2)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        s.write_all(&act3)?;
        let mut p = Peer {
            s,
            t,
            buf: Vec::new(),
        };
        p.recv()?; // the node's init
        let init = Message::Init(Init {
            global_features: Features::default(),
            features: Features::default(),
            networks: None,
            remote_addr: None,
            unknown_odd: vec![],
        });
        p.send(&init.encode())?;
        Ok(p)
    }

    fn send(&mut self, m: &[u8]) -> std::io::Result<()> {
        let bytes = self
            .t
            .encrypt(m)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.s.write_all(&bytes)
    }

    fn recv(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(m) = self
                .t
                .decrypt(&mut self.buf)
                .map_err(|e| std::io::Error::other(e.to_string()))?
            {
                return Ok(m);
            }
            let mut chunk = [0u8; 4096];
            let n = self.s.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::other("closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn ping(&mut self) -> std::io::Result<()> {
        self.send(
            &Message::Ping {
                num_pong_bytes: 4,
                ignored: vec![],
            }
            .encode(),
        )
    }

    fn pong(&mut self) -> std::io::Result<()> {
        loop {
            if let Ok(Message::Pong { .. }) = Message::decode(&self.recv()?) {
                return Ok(());
            }
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn info(dir: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .args(["lnp", "info", "--json", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

fn wait_peers(dir: &Path, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while info(dir)["peers"].as_u64().unwrap() < n {
        assert!(Instant::now() < deadline, "{n} peers not ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts an LNP node on `dir` with `config` as DATA_DIR/lnp.toml.
fn start(dir: &Path, config: &str) -> (Child, PublicKey, String) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    std::fs::write(dir.join("lnp.toml"), config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nodectl"));
    cmd.args([
        "start",
        "--node",
        "lnp",
        "--log-level",
        "error",
        "--listen",
        "127.0.0.1:0",
        "--bifrost-listen",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(dir)
    .stdout(Stdio::null());
    let child = cmd.spawn().unwrap();
    assert!(lnpbp_nodes::bus::socket::wait_for_ipc(
        &dir.join("api"),
        Duration::from_secs(30)
    ));
    std::thread::sleep(Duration::from_millis(300));
    let i = info(dir);
    let id = PublicKey::from_str(i["node_id"].as_str().unwrap()).unwrap();
    let addr = i["listening"][0].as_str().unwrap().to_string();
    (child, id, addr)
}

/// (successes, median latency in ms) of `n` honest connects, one every 500 ms.
fn honest(id: &PublicKey, addr: &str, n: usize) -> (usize, f64) {
    let mut ok = 0;
    let mut times = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let r = Peer::connect(id, addr).and_then(|mut p| {
            p.ping()?;
            p.pong()
        });
        if r.is_ok() {
            ok += 1;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    (
        ok,
        if times.is_empty() {
            f64::NAN
        } else {
            common::median(times)
        },
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let tmp = tempfile::tempdir_in(&base).unwrap();

    // 1. Memory per idle peer.
    let dir = tmp.path().join("many");
    // All from 127.0.0.1: trusted, so the per-address caps do not apply.
    let config =
        "[peers]\nmax_peers = 20000\ntrusted = [\"127.0.0.1\"]\nping_interval_secs = 3600\n";
    let (mut node, id, addr) = start(&dir, config);
    let pid = node.id();
    let base_rss = rss_kib(pid);
    let mut peers = Vec::with_capacity(PEERS);
    let t = Instant::now();
    for n in [1_000usize, PEERS] {
        while peers.len() < n {
            peers.push(Peer::connect(&id, &addr).expect("a peer connects"));
        }
        wait_peers(&dir, n as u64);
        std::thread::sleep(Duration::from_secs(1));
        let rss = rss_kib(pid);
        println!(
            "{n:6} idle peers: RSS {rss} KiB (before any peer {base_rss} KiB): {:.1} KiB per peer (target < 32)  [{:.1} s to connect so far]",
            (rss - base_rss) as f64 / n as f64,
            t.elapsed().as_secs_f64()
        );
    }
    // Every peer pings at once; the last pong ends the round.
    let t = Instant::now();
    for p in peers.iter_mut() {
        p.ping().unwrap();
    }
    let mut slowest = Duration::ZERO;
    for p in peers.iter_mut() {
        p.pong().unwrap();
        slowest = t.elapsed();
    }
    println!(
        "{PEERS} pings sent at once: last pong after {:.0} ms (target < 1000 ms)",
        slowest.as_secs_f64() * 1e3
    );
    drop(peers);
    let _ = node.kill();
    let _ = node.wait();

    // 2. Honest connects with and without a flood.
    let dir = tmp.path().join("flood");
    let (mut node, id, addr) = start(&dir, "");
    let (ok, ms) = honest(&id, &addr, 20);
    println!("honest connect, no flood        : {ok}/20 succeed, median {ms:.1} ms");
    let (host, port) = addr.rsplit_once(':').unwrap();
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let mut attack = Command::new(python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/flood.py"))
        .args(["slowloris", host, port, "2", "30", "10", "16"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let (ok, ms) = honest(&id, &addr, 20);
    println!("honest connect, 300 slow sockets: {ok}/20 succeed, median {ms:.1} ms");
    let _ = attack.wait();
    let _ = node.kill();
    let _ = node.wait();
}
