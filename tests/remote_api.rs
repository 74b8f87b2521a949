//! The remote API: a node's TCP bus is always encrypted (Noise_XK acts as the first ZMQ
//! messages, then Brontozaur packets; docs/API.md, "Remote API") and serves only the client
//! keys on its allow-list.
//!
//! - an allowed client runs `info`, an LNP `connect` and `peers` remotely (the API bound on
//!   0.0.0.0); an unknown key gets a clear error within its timeout, and the node logs it;
//! - a relay between client and node records every byte: no plaintext of the requests or
//!   replies crosses it;
//! - hostile sessions end alone while an allowed client is served: a half-done handshake, garbage
//!   instead of act one, a replayed act one, a flipped bit after the handshake, 500 concurrent
//!   handshakes;
//! - `rpc allow` / `rpc revoke` over the local API take effect at once and survive a restart;
//!   over TCP they are refused.

mod common;

use common::*;
use lnpbp_nodes::bus::client::{Client, Remote};
use lnpbp_nodes::wire::api::session::ClientHandshake;
use lnpbp_nodes::wire::api::{Msg, ServiceId};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bitcoin::secp256k1::{PublicKey, SecretKey};

/// An LNP node with its API on `tcp://0.0.0.0:<port>`, allowing `allow`.
struct Remote1 {
    node: Node,
    port: u16,
    id: String,
    _tmp: tempfile::TempDir,
}

fn start_remote(allow: &[&str]) -> Remote1 {
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let dir = tmp.path().join("lnp");
    let allow: Vec<String> = allow.iter().map(|k| k.to_string()).collect();
    let (node, port) = spawn_on_free_port("lnp", &dir, |port| {
        let mut args = vec!["-R".to_string(), format!("tcp://0.0.0.0:{port}")];
        for k in &allow {
            args.extend(["--rpc-allow".to_string(), k.clone()]);
        }
        args
    });
    let id = node_id_of(&dir).expect("the node key");
    Remote1 {
        node,
        port,
        id,
        _tmp: tmp,
    }
}

impl Remote1 {
    /// `nodectl lnp ARGS --remote ID@127.0.0.1:PORT --key KEY`.
    fn cli(&self, key: &Path, args: &[&str]) -> std::process::Output {
        self.cli_via(key, self.port, args)
    }

    fn cli_via(&self, key: &Path, port: u16, args: &[&str]) -> std::process::Output {
        Command::new(NODECTL)
            .arg("lnp")
            .args(args)
            .arg("--key")
            .arg(key)
            .args(["--remote", &format!("{}@127.0.0.1:{port}", self.id)])
            .output()
            .unwrap()
    }

    /// `nodectl lnp ARGS` over the node's local CTL bus (IPC).
    fn local(&self, args: &[&str]) -> std::process::Output {
        let ctl = format!("ipc://{}", self.node.dir.join("ctl").display());
        Command::new(NODECTL)
            .arg("lnp")
            .args(args)
            .args(["-R", &ctl])
            .output()
            .unwrap()
    }

    /// An encrypted session as the key in `key`.
    fn client(&self, ctx: &zmq::Context, key: &Path) -> Client {
        let (r, k) = (self.remote(), secret_of(key));
        Client::connect_remote(ctx, &r, &k, None, Duration::from_secs(5)).unwrap()
    }

    fn remote(&self) -> Remote {
        Remote::parse(&format!("{}@127.0.0.1:{}", self.id, self.port)).unwrap()
    }
}

fn key_file(dir: &Path, name: &str) -> (PathBuf, String) {
    let p = dir.join(name);
    let k = client_key(&p);
    (p, k)
}

fn secret_of(path: &Path) -> SecretKey {
    SecretKey::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn info_ok(c: &mut Client) {
    match c.request(
        &ServiceId::Lnpd,
        Msg::GetInfo,
        Duration::from_secs(5),
        |_| {},
    ) {
        Ok(Msg::NodeInfo(_)) => {}
        other => panic!("the allowed client is not served: {other:?}"),
    }
}

#[test]
fn an_allowed_client_runs_info_connect_and_peers_remotely_and_an_unknown_key_is_refused() {
    let keys = tempfile::tempdir().unwrap();
    let (k1, p1) = key_file(keys.path(), "allowed.key");
    let (k2, p2) = key_file(keys.path(), "unknown.key");
    let a = start_remote(&[&p1]);
    let b = Node::start("lnp", &[]);
    let info: serde_json::Value =
        serde_json::from_str(&ok(a.cli(&k1, &["info", "--json"]))).unwrap();
    assert_eq!(info["node_id"], a.id.as_str());
    assert!(info["endpoints"].to_string().contains("tcp://0.0.0.0:"));
    let b_info = b.info_json();
    let (b_id, b_addr) = (
        b_info["node_id"].as_str().unwrap(),
        b_info["listening"][0].as_str().unwrap(),
    );
    ok(a.cli(&k1, &["connect", &format!("{b_id}@{b_addr}")]));
    let peers = ok(a.cli(&k1, &["peers", "--json"]));
    assert!(peers.contains(b_id), "{peers}");

    // An unknown key: a clear error within the client's timeout; the node logs key and address.
    let t = Instant::now();
    let out = a.cli(&k2, &["info", "--timeout", "3"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("allow-list"), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "bounded by its timeout"
    );
    wait_until(Duration::from_secs(5), "the refusal in the log", || {
        let log = a.node.log_text();
        log.lines().any(|l| {
            l.contains("refused an encrypted session") && l.contains(&p2) && l.contains("127.0.0.1")
        })
    });
    // The allowed client is still served.
    ok(a.cli(&k1, &["info"]));
}

/// A TCP relay on loopback to `port`; every byte in both directions goes to the recording.
fn relay(port: u16) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let local = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let rec = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
                continue;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                let rec = rec.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        rec.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    (local, seen)
}

#[test]
fn no_plaintext_crosses_the_wire() {
    let keys = tempfile::tempdir().unwrap();
    let (k1, p1) = key_file(keys.path(), "allowed.key");
    let a = start_remote(&[&p1]);
    let b = Node::start("lnp", &[]);
    let (via, seen) = relay(a.port);
    let info = ok(a.cli_via(&k1, via, &["info", "--json"]));
    let b_info = b.info_json();
    let (b_id, b_addr) = (
        b_info["node_id"].as_str().unwrap().to_string(),
        b_info["listening"][0].as_str().unwrap().to_string(),
    );
    ok(a.cli_via(&k1, via, &["connect", &format!("{b_id}@{b_addr}")]));
    let peers = ok(a.cli_via(&k1, via, &["peers", "--json"]));
    let bytes = seen.lock().unwrap().clone();
    assert!(
        bytes.len() > 1_000,
        "the relay carried the session ({} bytes)",
        bytes.len()
    );
    // Strings the client sent or got back in clear (it printed them), none of them on the wire.
    let dir = a.node.dir.display().to_string();
    let b_raw = bitcoin::hex::FromHex::from_hex(&b_id)
        .map(|v: Vec<u8>| v)
        .unwrap();
    let known: Vec<(&str, Vec<u8>)> = vec![
        (
            "the version",
            serde_json::from_str::<serde_json::Value>(&info).unwrap()["version"]
                .as_str()
                .unwrap()
                .as_bytes()
                .to_vec(),
        ),
        ("a service name", b"api-router".to_vec()),
        ("the data dir", dir.as_bytes().to_vec()),
        ("the network", b"signet".to_vec()),
        ("the peer's address", b_addr.as_bytes().to_vec()),
        ("the peer's id", b_raw),
    ];
    for (what, plain) in &known {
        let shown = String::from_utf8_lossy(plain);
        assert!(
            info.contains(&*shown) || peers.contains(&*shown) || what.contains("id"),
            "{what} was in a reply"
        );
        assert!(
            !bytes.windows(plain.len()).any(|w| w == plain.as_slice()),
            "{what} crossed the wire in clear"
        );
    }
}

/// A raw DEALER on the node's TCP bus.
fn dealer(ctx: &zmq::Context, port: u16) -> zmq::Socket {
    let s = ctx.socket(zmq::DEALER).unwrap();
    s.set_linger(0).unwrap();
    s.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
    s
}

fn recv_within(s: &zmq::Socket, ms: i64) -> Option<Vec<u8>> {
    if s.poll(zmq::POLLIN, ms).unwrap() == 0 {
        return None;
    }
    Some(s.recv_bytes(0).unwrap())
}

/// A handshake up to act two as `key`: act one sent, act two received.
fn act_two(
    s: &zmq::Socket,
    key: &SecretKey,
    node: PublicKey,
) -> (Vec<u8>, ClientHandshake, Vec<u8>) {
    let e = SecretKey::new(&mut bitcoin::secp256k1::rand::thread_rng());
    let (act1, hs) = ClientHandshake::start(*key, node, e, 1 << 20);
    s.send(&act1, 0).unwrap();
    let act2 = recv_within(s, 5_000).expect("act two");
    (act1, hs, act2)
}

fn log_has(node: &Node, what: &str) {
    wait_until(Duration::from_secs(10), what, || {
        node.log_text().contains(what)
    });
}

#[test]
fn hostile_sessions_end_alone_while_an_allowed_client_is_served() {
    let keys = tempfile::tempdir().unwrap();
    let (k1, p1) = key_file(keys.path(), "allowed.key");
    let a = start_remote(&[&p1]);
    let node_key = PublicKey::from_slice(
        &bitcoin::hex::FromHex::from_hex(&a.id)
            .map(|v: Vec<u8>| v)
            .unwrap(),
    )
    .unwrap();
    let ctx = zmq::Context::new();
    let mut served = a.client(&ctx, &k1);
    info_ok(&mut served);

    // A half-done handshake (act one, then nothing): dropped after the act timeout.
    let half = dealer(&ctx, a.port);
    let _ = act_two(&half, &secret_of(&k1), node_key);
    info_ok(&mut served);
    log_has(&a.node, "a handshake act did not come within 5 s");
    info_ok(&mut served);

    // Garbage instead of act one.
    let g = dealer(&ctx, a.port);
    g.send(&b"GET / HTTP/1.1\r\n\r\n"[..], 0).unwrap();
    log_has(&a.node, "instead of act one");
    assert!(recv_within(&g, 300).is_none(), "garbage gets no answer");
    info_ok(&mut served);

    // A replayed act one: on the same connection where act three is due, and on a new
    // connection followed by the act three recorded from the first.
    let r = dealer(&ctx, a.port);
    let (act1, hs, act2) = act_two(&r, &secret_of(&k1), node_key);
    let (act3, _) = hs.on_act_two(&act2).unwrap();
    r.send(&act1, 0).unwrap();
    log_has(&a.node, "50 bytes instead of act three");
    let r2 = dealer(&ctx, a.port);
    r2.send(&act1, 0).unwrap();
    assert!(
        recv_within(&r2, 5_000).is_some(),
        "a new act two (a new ephemeral key)"
    );
    r2.send(&act3, 0).unwrap();
    log_has(&a.node, "encrypted session ended: handshake");
    info_ok(&mut served);

    // A flipped bit in a packet after the handshake: that session ends, nothing answers it.
    let f = dealer(&ctx, a.port);
    let (_, hs, act2) = act_two(&f, &secret_of(&k1), node_key);
    let (act3, mut session) = hs.on_act_two(&act2).unwrap();
    f.send(&act3, 0).unwrap();
    let me = ServiceId::Client(7).to_bytes();
    let info = lnpbp_nodes::wire::api::payload_of(1, &Msg::GetInfo);
    let good = session
        .seal(&me, &ServiceId::Lnpd.to_bytes(), &info)
        .unwrap();
    f.send(&good, 0).unwrap();
    let reply = recv_within(&f, 5_000).expect("the good packet is answered");
    assert_eq!(session.open(&reply).unwrap()[1], me);
    let mut bad = session
        .seal(&me, &ServiceId::Lnpd.to_bytes(), &info)
        .unwrap();
    let n = bad.len() / 2;
    bad[n] ^= 0x04;
    f.send(&bad, 0).unwrap();
    log_has(&a.node, "encrypted session ended: transport");
    let next = session
        .seal(&me, &ServiceId::Lnpd.to_bytes(), &info)
        .unwrap();
    f.send(&next, 0).unwrap();
    assert!(recv_within(&f, 500).is_none(), "the session is over");
    info_ok(&mut served);

    // 500 concurrent handshakes (act one each, none finished).
    let flood: Vec<zmq::Socket> = (0..500).map(|_| dealer(&ctx, a.port)).collect();
    for s in &flood {
        let e = SecretKey::new(&mut bitcoin::secp256k1::rand::thread_rng());
        let (act1, _) = ClientHandshake::start(secret_of(&k1), node_key, e, 1 << 20);
        s.send(act1, 0).unwrap();
    }
    info_ok(&mut served);
    let mut answered = 0;
    for s in &flood {
        if recv_within(s, 50).is_some() {
            answered += 1;
        }
    }
    assert!(answered > 0, "the flood was served act twos");
    info_ok(&mut served);
    // A newcomer with the allowed key still gets in.
    let mut fresh = a.client(&ctx, &k1);
    info_ok(&mut fresh);
    drop(flood);
    info_ok(&mut served);
}

#[test]
fn rpc_allow_and_revoke_take_effect_at_once_and_survive_a_restart() {
    let keys = tempfile::tempdir().unwrap();
    let (k1, p1) = key_file(keys.path(), "first.key");
    let (k2, p2) = key_file(keys.path(), "second.key");
    let mut a = start_remote(&[&p1]);
    ok(a.cli(&k1, &["info"]));
    assert!(!a.cli(&k2, &["info", "--timeout", "2"]).status.success());
    // Allowed at run time, over the local API: served at once.
    ok(a.local(&["rpc", "allow", &p2]));
    ok(a.cli(&k2, &["info"]));
    // Revoked: its next session is refused.
    ok(a.local(&["rpc", "revoke", &p1]));
    assert!(!a.cli(&k1, &["info", "--timeout", "2"]).status.success());
    let list: Vec<String> = serde_json::from_str(&ok(a.local(&["rpc", "list", "--json"]))).unwrap();
    assert_eq!(list, vec![p2.clone()]);
    // Over TCP, the allow-list does not change.
    let out = a.cli(&k2, &["rpc", "allow", &p1]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("local API only"),
        "{err}"
    );

    // A restart keeps both changes, although the flags still allow the first key.
    a.node.signal("-TERM");
    assert!(a.node.wait_exit(Duration::from_secs(10)).is_some());
    let dir = a.node.dir.clone();
    let api = format!("tcp://0.0.0.0:{}", a.port);
    a.node = Node::spawn_in("lnp", &dir, &["-R", &api, "--rpc-allow", &p1], &[]);
    wait_until(Duration::from_secs(20), "restarted", || {
        a.cli(&k2, &["info", "--timeout", "1"]).status.success()
    });
    assert!(!a.cli(&k1, &["info", "--timeout", "2"]).status.success());
    assert!(std::fs::read_to_string(dir.join("rpc-allow"))
        .unwrap()
        .contains(&p2));
}

#[test]
fn a_python_client_written_from_the_docs_gets_info_over_the_encrypted_api() {
    let keys = tempfile::tempdir().unwrap();
    let (k1, p1) = key_file(keys.path(), "python.key");
    let a = start_remote(&[&p1]);
    let out = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/remote_client.py"
        ))
        .args([&a.id, "127.0.0.1", &a.port.to_string()])
        .arg(&k1)
        .args(["lnp", "info"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        a.node.log_text()
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["node"], "lnp");
    assert_eq!(info["node_id"], a.id.as_str());
}

#[test]
fn a_storm_node_joins_an_lnp_node_on_another_host_over_its_encrypted_msg_bus() {
    // LNP node A serves its MSG bus on TCP; B is local to its own Storm node.
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let a_dir = tmp.path().join("lnp-a");
    let (mut la, msg_port) = spawn_on_free_port("lnp", &a_dir, |port| {
        vec!["-M".into(), format!("tcp://0.0.0.0:{port}")]
    });
    la.wait_ready();
    let a_id = la.info_json()["node_id"].as_str().unwrap().to_string();
    let lb = Node::start("lnp", &[]);
    let b_id = lb.info_json()["node_id"].as_str().unwrap().to_string();
    // Storm node SA joins A over TCP, as a service of another host: not allowed yet.
    let join = format!("bronze://{a_id}@127.0.0.1:{msg_port}");
    let sa = Node::start("storm", &["--lnp", &join]);
    let sa_id = sa.info_json()["node_id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(sa.info_json()["lnp"]
        .as_str()
        .unwrap()
        .ends_with("(unreachable)"));
    wait_until(Duration::from_secs(10), "the refusal in A's log", || {
        la.log_text().contains(&sa_id)
    });
    // Allowed at run time over A's local API: SA joins (its next handshake after a silence).
    ok(la.cli(&["rpc", "allow", &sa_id]));
    sa.wait_info("A reachable over TCP", |i| {
        i["lnp"].as_str().unwrap().ends_with("(reachable)")
    });
    let sb = Node::start(
        "storm",
        &["--lnp", &format!("ipc://{}", lb.dir.join("msg").display())],
    );
    connect_bifrost(&la, &lb);
    sb.wait_info("B reachable", |i| {
        i["lnp"].as_str().unwrap().ends_with("(reachable)")
    });
    let (mut listener, got) = json_lines(&["storm", "chat", "listen", "--json"], &sb.dir, |v| {
        v.get("text").is_some()
    });
    std::thread::sleep(Duration::from_millis(300));
    ok(sa.cli(&["chat", "send", &b_id, "over an encrypted MSG bus"]));
    let m = got
        .recv_timeout(Duration::from_secs(10))
        .expect("B gets A's chat");
    assert_eq!(m["text"], "over an encrypted MSG bus");
    assert_eq!(m["from"], a_id.as_str());
    let _ = listener.kill();
    let _ = listener.wait();
}

#[test]
fn subscriptions_work_remotely() {
    let keys = tempfile::tempdir().unwrap();
    let (k1, p1) = key_file(keys.path(), "events.key");
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let dir = tmp.path().join("lnp");
    let (mut node, port) = spawn_on_free_port("lnp", &dir, |port| {
        vec![
            "-R".into(),
            format!("tcp://0.0.0.0:{port}"),
            "--rpc-allow".into(),
            p1.clone(),
            "--fault-injection".into(),
        ]
    });
    let id = node_id_of(&dir).expect("the node key");
    let remote = format!("{id}@127.0.0.1:{port}");
    let key = k1.to_str().unwrap().to_string();
    // `nodectl lnp events --json --remote …` left running; its events as they come (the data
    // dir json_lines adds is not used by a remote client).
    let (mut child, rx) = json_lines(
        &[
            "lnp", "events", "--json", "--key", &key, "--remote", &remote,
        ],
        &dir,
        |v| v.get("service").is_some(),
    );
    std::thread::sleep(Duration::from_millis(800));
    let crash = Command::new(NODECTL)
        .args([
            "lnp",
            "debug",
            "crash",
            "ctl-router",
            "--key",
            &key,
            "--remote",
            &remote,
        ])
        .output()
        .unwrap();
    ok(crash);
    let ev = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a service event over the encrypted session");
    assert_eq!(ev["service"], "ctl-router");
    let _ = child.kill();
    let _ = child.wait();
    node.signal("-TERM");
    let _ = node.wait_exit(Duration::from_secs(10));
}

#[test]
fn an_rgb_node_keeps_its_stock_in_the_store_of_a_storm_node_on_another_host() {
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    // The RGB node's key made beforehand (the same file format as `nodectl key show`'s), to
    // put on the Storm node's allow-list.
    let rdir = tmp.path().join("rgb");
    let rgb_id = client_key(&rdir.join("node.key"));
    let sdir = tmp.path().join("storm");
    let (storm, port) = spawn_on_free_port("storm", &sdir, |port| {
        vec![
            "-S".into(),
            format!("tcp://0.0.0.0:{port}"),
            "--rpc-allow".into(),
            rgb_id.clone(),
        ]
    });
    let storm_id = node_id_of(&sdir).unwrap();
    let store = format!("{storm_id}@127.0.0.1:{port}");
    let mut rgb = Node::spawn_in("rgb", &rdir, &["-S", &store], &[]);
    rgb.wait_ready();
    assert_eq!(rgb.info_json()["node_id"], rgb_id.as_str());
    let out = ok(rgb.cli(&[
        "issue",
        "--ticker",
        "FAR",
        "--name",
        "Far away",
        "--supply",
        "5",
        "--seal",
        "14295d5bb1a191cdb6286dc0944df938421e3dfcbf0811353ccac4100c2068c5:1",
        "--json",
    ]));
    assert!(out.contains("rgb:"), "{out}");
    let tables = ok(storm.cli(&["store", "tables", "--json"]));
    assert!(
        tables.contains(&format!("rgb.{}.signet.journal", &rgb_id[2..18])),
        "{tables}"
    );
    assert!(storm.log_text().contains("encrypted session open"));
    // A plain TCP endpoint for -S is refused at start: TCP buses are encrypted.
    let other = tmp.path().join("rgb2");
    let out = Command::new(NODECTL)
        .args([
            "start",
            "--node",
            "rgb",
            "-S",
            &format!("tcp://127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&other)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("node id"), "{err}");
}
