//! Hold the door (issues 15 and 26): admission under a handshake flood, per-address caps, Tor
//! listeners, and logs that a flood cannot grow. Attackers (tests/python/flood.py) connect from
//! 127.0.0.2 and up, or from 127.0.0.1 with the honest peers, as every peer of a Tor hidden
//! service does.

mod common;

use common::lnpeer::{target, RawPeer};
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn flood(args: &[&str]) -> Command {
    let mut c = Command::new(python());
    c.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/flood.py"
    ))
    .args(args)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    c
}

fn json_of(child: Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "flood.py failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn host_port(addr: &str) -> (String, String) {
    let (h, p) = addr.rsplit_once(':').unwrap();
    (h.to_string(), p.to_string())
}

fn log_len(node: &Node) -> usize {
    node.log_text().len()
}

/// Ten fresh honest peers, one every 0.5 s, while `attack` (a slowloris flood, for 12 s)
/// runs: how many got in (handshake, init, pings), with the flood's figures. The peer `old`,
/// connected before, must keep its pings throughout.
fn honest_peers_during(
    node: &Node,
    addr: &str,
    old: &mut RawPeer,
    attack: &[&str],
) -> (usize, serde_json::Value) {
    let id = node.info_json()["node_id"].as_str().unwrap().to_string();
    let attack = flood(attack).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let (mut ok, mut tries) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(8);
    while tries < 10 && Instant::now() < deadline {
        tries += 1;
        let fresh = std::panic::catch_unwind(|| {
            let mut p = RawPeer::handshake(&id, addr);
            p.send(
                &lnpbp_nodes::wire::ln::bolt1::Message::Init(lnpbp_nodes::wire::ln::bolt1::Init {
                    global_features: Default::default(),
                    features: Default::default(),
                    networks: None,
                    remote_addr: None,
                    unknown_odd: vec![],
                })
                .encode(),
            );
            p.ping(2)
        });
        ok += usize::from(matches!(fresh, Ok(2)));
        assert_eq!(old.ping(8), 8, "the connected peer keeps its pings");
        std::thread::sleep(Duration::from_millis(500));
    }
    let stats = json_of(attack);
    assert!(
        tries == 10,
        "ran out of time after {tries} tries (the flood ended): {stats}"
    );
    assert!(
        stats["opened"].as_u64().unwrap() >= 300,
        "the flood was a flood: {stats}"
    );
    let info = node.info_json();
    assert!(info["evicted_handshakes"].as_u64().unwrap() > 0, "{info}");
    assert_eq!(old.ping(1), 1);
    (ok, stats)
}

#[test]
fn honest_peers_get_in_during_a_slow_handshake_flood() {
    let node = Node::start("lnp", &["--listen", "127.0.0.1:0"]);
    let (_, addr) = target(&node);
    let (host, port) = host_port(&addr);
    let mut old = RawPeer::ready(&node);
    assert_eq!(old.ping(4), 4);
    // 300 slow handshakes from 30 addresses (10 each, the per-address cap).
    let attack = ["slowloris", &host, &port, "2", "30", "10", "12"];
    let (ok, stats) = honest_peers_during(&node, &addr, &mut old, &attack);
    assert!(
        ok >= 9,
        "{ok} of 10 honest peers got in during the flood ({stats})"
    );
}

/// An LNP node whose Lightning listener on 127.0.0.1 fronts a Tor hidden service (or not),
/// and its listening address.
fn tor_facing_node(onion: bool) -> (Node, String) {
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let dir = tmp.path().join("lnp");
    let file = tmp.path().join("lnp-config.toml");
    let (mut node, port) = spawn_on_free_port("lnp", &dir, |port| {
        let listed = if onion {
            format!("[\"127.0.0.1:{port}\"]")
        } else {
            "[]".into()
        };
        std::fs::write(&file, format!("[peers]\nonion_inbound = {listed}\n")).unwrap();
        vec![
            "--config".into(),
            file.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
        ]
    });
    node.keep_dir(tmp);
    node.wait_ready();
    (node, format!("127.0.0.1:{port}"))
}

#[test]
fn tor_peers_all_from_127_0_0_1_get_in_beside_300_slow_handshakes_from_it_on_an_onion_listener() {
    let (node, addr) = tor_facing_node(true);
    let (host, port) = host_port(&addr);
    let mut old = RawPeer::ready(&node);
    // Attackers and honest peers all from 127.0.0.1, as every peer of a hidden service.
    let attack = ["slowloris", &host, &port, "1", "1", "300", "12"];
    let (ok, stats) = honest_peers_during(&node, &addr, &mut old, &attack);
    assert!(
        ok >= 9,
        "{ok} of 10 honest peers got in on the onion listener ({stats})"
    );
}

#[test]
fn honest_peers_from_127_0_0_1_get_in_beside_300_slow_handshakes_from_it_on_a_plain_listener() {
    let (node, addr) = tor_facing_node(false);
    let (host, port) = host_port(&addr);
    let mut old = RawPeer::ready(&node);
    // The per-address cap of 10 pending handshakes holds, by eviction within the address.
    let attack = ["slowloris", &host, &port, "1", "1", "300", "12"];
    let (ok, stats) = honest_peers_during(&node, &addr, &mut old, &attack);
    assert!(
        ok >= 9,
        "{ok} of 10 honest peers got in on the plain listener ({stats})"
    );
}

#[test]
fn a_thousand_idle_peers_from_127_0_0_1_all_connect_on_an_onion_listener() {
    let (node, _) = tor_facing_node(true);
    // 1,000 is the default max_peers: all of them, none refused by max_peers_per_ip (100).
    let mut peers: Vec<RawPeer> = (0..1000).map(|_| RawPeer::ready(&node)).collect();
    let info = node.wait_info("1,000 peers ready", |i| i["peers"] == 1000);
    assert_eq!(info["refused_connections"], 0, "{info}");
    for p in peers.iter_mut().step_by(100) {
        assert_eq!(p.ping(2), 2, "an idle peer is served");
    }
}

#[test]
fn the_eleventh_pending_handshake_from_one_address_evicts_its_oldest_while_others_get_in() {
    let node = Node::start_env(
        "lnp",
        &["--listen", "127.0.0.1:0"],
        // Silent connections must stay pending for the whole test.
        &[("NODECTL_PEERS__HANDSHAKE_TIMEOUT_MS", "60000")],
    );
    let (_, addr) = target(&node);
    let (host, port) = host_port(&addr);
    let mut holder = flood(&["hold", &host, &port, "127.0.0.3", "11", "0.3"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let bools = |k: &str| -> Vec<bool> {
        let a = v[k].as_array().unwrap().iter();
        a.map(|b| b.as_bool().unwrap()).collect()
    };
    assert_eq!(bools("closed"), [false; 11], "each is let in: {v}");
    // The eleventh took the place of the one with the least progress for its age: the
    // oldest of these silent ones; ten stay pending.
    let by_end = bools("closed_by_end");
    assert!(by_end[0], "the oldest is evicted: {v}");
    assert_eq!(
        by_end[1..],
        [false; 10],
        "ten pending handshakes are kept: {v}"
    );
    // Another address still gets in, and so does an honest peer.
    let other = flood(&["hold", &host, &port, "127.0.0.4", "1"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut other = other;
    BufReader::new(other.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("[false]"), "127.0.0.4 is not refused: {line}");
    let mut honest = RawPeer::ready(&node);
    assert_eq!(honest.ping(3), 3);
    let info = node.info_json();
    assert_eq!(info["evicted_handshakes"], 1, "{info}");
    assert_eq!(info["refused_connections"], 0, "{info}");
    for mut c in [holder, other] {
        drop(c.stdin.take());
        let _ = c.wait();
    }
    let _ = std::io::stdout().flush();
}

#[test]
fn floods_of_refused_connections_and_bad_frames_barely_grow_the_log() {
    // Ten silent handshakes from a trusted address (never evicted) take all the slots.
    let cfg = config_file("[peers]\nmax_handshakes = 10\ntrusted = [\"127.0.0.6\"]\n");
    let node = Node::start_env(
        "lnp",
        &["--listen", "127.0.0.1:0", "--config", &cfg.path],
        &[("NODECTL_PEERS__HANDSHAKE_TIMEOUT_MS", "60000")],
    );
    let (_, addr) = target(&node);
    let (host, port) = host_port(&addr);
    let mut holder = flood(&["hold", &host, &port, "127.0.0.6", "10", "0.05"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(!line.contains("true"), "the trusted ones are kept: {line}");

    // 10,000 connections from another address: refused, nothing to evict.
    let before = log_len(&node);
    let v = json_of(
        flood(&["refused", &host, &port, "127.0.0.5", "0", "10000"])
            .spawn()
            .unwrap(),
    );
    let connected = v["connected"].as_u64().unwrap();
    assert!(connected >= 9_000, "{v}");
    let info = node.wait_info("refusals counted", |i| {
        i["refused_connections"].as_u64().unwrap() >= connected * 9 / 10
    });
    // A window closes after 10 s with its summary line.
    std::thread::sleep(Duration::from_millis(10_500));
    let grown = log_len(&node) - before;
    let log = node.log_text()[before..].to_string();
    let refusals = log.matches("refusing a connection").count();
    // At most 5 lines per 10 s window; a slow machine may spread the flood over more than one
    // (each closed window wrote one summary line; the last may still be open).
    let windows = log.matches("connections refused in the last 10 s").count() + 1;
    assert!(
        grown <= 8_192 * windows && refusals <= 5 * windows,
        "{grown} bytes of log, {refusals} refusal lines in {windows} windows for {connected} refusals:\n{log}"
    );
    assert!(
        log.contains("connections refused in the last 10 s"),
        "a summary line: {log}"
    );
    assert!(info["refused_connections"].as_u64().unwrap() <= connected + 20);

    // 100,000 garbage frames on the API socket.
    let before = log_len(&node);
    let api = node.api_endpoint();
    let sent = json_of(flood(&["frames", &api, "100000", "20"]).spawn().unwrap());
    assert_eq!(sent["sent"], 100_000);
    // flood.py returns once the node answered an `info` sent after the garbage.
    assert!(node.info_json()["bad_frames"].as_u64().unwrap() >= 100_000);
    std::thread::sleep(Duration::from_millis(10_500));
    let grown = log_len(&node) - before;
    let log = node.log_text()[before..].to_string();
    assert!(
        grown <= 8_192,
        "{grown} bytes of log for 100,000 bad frames:\n{log}"
    );
    assert!(log.contains("bad bus frames in the last 10 s"), "{log}");
    // Still serving.
    assert_eq!(node.info_json()["node"], "lnp");
    drop(holder.stdin.take());
    let _ = holder.wait();
}
