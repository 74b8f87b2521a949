//! The RGB node on the RGB v0.11.1 libraries, through `nodectl rgb …` on running nodes:
//!
//! - a NIA contract issued on A, exported binary and armored, imported by B and C with the
//!   same `state --json`; tampered, truncated and foreign consignments refused with a reason
//!   while the node keeps serving;
//! - a `debug crash` of a `containerd` worker in the middle of a task fails that import only;
//!   the worker restarts and a retry succeeds;
//! - a restart keeps every contract, embedded and in a Storm node's STORE; with that STORE
//!   down, writes fail with the store's error (never a hang), and work again once it is back;
//! - `rgb send` across two Storm nodes and two LNP nodes over Bifrost; a tampered container
//!   sent as the RGB app is refused by the receiver, which says so and imports nothing.

mod common;

use common::*;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

const SEAL: &str = "14295d5bb1a191cdb6286dc0944df938421e3dfcbf0811353ccac4100c2068c5:1";

fn issue(n: &Node, ticker: &str, supply: u64) -> String {
    let out = ok(n.cli(&[
        "issue",
        "--schema",
        "nia",
        "--ticker",
        ticker,
        "--name",
        "Test asset",
        "--precision",
        "8",
        "--supply",
        &supply.to_string(),
        "--seal",
        SEAL,
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["contract_id"].as_str().unwrap().to_string()
}

fn state(n: &Node, id: &str) -> serde_json::Value {
    serde_json::from_str(&ok(n.cli(&["state", id, "--json"]))).unwrap()
}

fn contracts(n: &Node) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&ok(n.cli(&["contracts", "--json"]))).unwrap();
    let mut ids: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn import(n: &Node, file: &std::path::Path) -> std::process::Output {
    n.cli(&["import", file.to_str().unwrap(), "--json"])
}

/// The failure line of a refused import (and that it was refused).
fn refused(out: std::process::Output) -> String {
    assert!(
        !out.status.success(),
        "accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn a_contract_moves_between_nodes_in_both_forms_and_tampered_ones_are_refused() {
    let (a, b, c) = (
        Node::start("rgb", &[]),
        Node::start("rgb", &[]),
        Node::start("rgb", &[]),
    );
    let id = issue(&a, "TEST", 100_000);
    let on_a = state(&a, &id);
    assert_eq!(on_a["ticker"], "TEST");
    assert_eq!(on_a["issued"], 100_000);
    assert_eq!(on_a["allocations"][0]["seal"], SEAL);
    let dir = tempfile::tempdir().unwrap();
    let (bin, asc) = (dir.path().join("c.rgb"), dir.path().join("c.asc"));
    ok(a.cli(&["export", &id, bin.to_str().unwrap()]));
    ok(a.cli(&["export", &id, asc.to_str().unwrap(), "--armored"]));
    let bin_bytes = std::fs::read(&bin).unwrap();
    assert!(bin_bytes.starts_with(b"RGB\0CON"));
    let asc_text = std::fs::read_to_string(&asc).unwrap();
    assert!(asc_text.starts_with("-----BEGIN RGB CONSIGNMENT-----"));

    // B imports the binary form, then the armored one; C the armored one alone: each time the
    // same state as on A.
    for (node, file) in [(&b, &bin), (&b, &asc), (&c, &asc)] {
        let out = ok(import(node, file));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            (v["contract_id"].as_str(), v["valid"].as_bool()),
            (Some(id.as_str()), Some(true))
        );
        assert_eq!(state(node, &id), on_a);
        assert_eq!(contracts(node), vec![id.clone()]);
    }

    // Tampered consignments, each refused with a reason by a node that keeps serving.
    let bad = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let fresh = Node::start("rgb", &[]);
    // A changed supply: the genesis' issued supply (100,000 as u64 LE, its first occurrence).
    let at = bin_bytes
        .windows(8)
        .position(|w| w == 100_000u64.to_le_bytes())
        .expect("the supply in the consignment");
    let mut supply = bin_bytes.clone();
    supply[at..at + 8].copy_from_slice(&200_000u64.to_le_bytes());
    let why = refused(import(&fresh, &bad("supply.rgb", &supply)));
    assert!(why.contains("invalid consignment"), "{why}");
    // A flipped character in the armored payload (past the headers).
    let body = asc_text.find("\n\n").expect("armor headers end") + 40;
    let mut chars: Vec<char> = asc_text.chars().collect();
    chars[body] = if chars[body] == 'A' { 'B' } else { 'A' };
    let flipped: String = chars.into_iter().collect();
    let why = refused(import(&fresh, &bad("flipped.asc", flipped.as_bytes())));
    assert!(why.contains("armored") || why.contains("invalid"), "{why}");
    // A truncated file.
    let why = refused(import(
        &fresh,
        &bad("cut.rgb", &bin_bytes[..bin_bytes.len() / 2]),
    ));
    assert!(why.contains("not a contract consignment"), "{why}");
    // A contract of another network (the nodes here run signet).
    let t = Node::start("rgb", &["--network", "testnet4"]);
    let tid = issue(&t, "TNET", 5);
    let tfile = dir.path().join("t.rgb");
    ok(t.cli(&["export", &tid, tfile.to_str().unwrap()]));
    let why = refused(import(&fresh, &tfile));
    assert!(why.contains("this node runs"), "{why}");
    // Still serving, nothing imported; then the honest one is.
    assert!(contracts(&fresh).is_empty());
    ok(import(&fresh, &bin));
    assert_eq!(state(&fresh, &id), on_a);
    let log = fresh.log_text();
    assert!(
        log.contains("consignment refused: invalid consignment"),
        "{log}"
    );
    assert_eq!(fresh.info_json()["rgb_refused"], 4);
}

#[test]
fn a_worker_crash_in_the_middle_of_an_import_fails_only_that_import() {
    let a = Node::start("rgb", &[]);
    let id = issue(&a, "TEST", 1_000);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.rgb");
    ok(a.cli(&["export", &id, file.to_str().unwrap()]));
    // One worker, and each task waits 3 s first (fault injection only).
    let b = Node::start_env(
        "rgb",
        &["--fault-injection"],
        &[
            ("NODECTL_RGB__WORKERS", "1"),
            ("NODECTL_RGB__FAULT_TASK_DELAY_MS", "3000"),
        ],
    );
    let mut import = Command::new(env!("CARGO_BIN_EXE_nodectl"))
        .args([
            "rgb",
            "import",
            file.to_str().unwrap(),
            "--timeout",
            "20",
            "--data-dir",
        ])
        .arg(&b.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The worker is validating it: its progress says so.
    let mut err = std::io::BufReader::new(import.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("validating"), "progress: {line}");
    ok(b.cli(&["debug", "crash", "containerd-0"]));
    let status = import.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(!status.success());
    assert!(
        rest.contains("containerd-0 stopped while holding the task"),
        "{rest}"
    );
    let info = b.wait_info("containerd-0 restarted", |i| {
        service(i, "containerd-0")["restarts"] == 1
            && service(i, "containerd-0")["state"] == "running"
    });
    assert_eq!(info["contracts"], 0, "nothing was imported");
    // The retry succeeds on the restarted worker.
    let out = ok(b.cli(&[
        "import",
        file.to_str().unwrap(),
        "--timeout",
        "20",
        "--json",
    ]));
    assert!(out.contains(&id));
    assert_eq!(contracts(&b), vec![id]);
}

#[test]
fn a_restart_keeps_every_contract_embedded_and_in_a_storm_store() {
    // Embedded.
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let dir = tmp.path().join("rgb");
    let mut a = Node::spawn_in("rgb", &dir, &[], &[]);
    a.wait_ready();
    for (t, s) in [("AAA", 1), ("BBB", 2), ("CCC", 3)] {
        issue(&a, t, s);
    }
    let before = contracts(&a);
    let states: Vec<_> = before.iter().map(|id| state(&a, id)).collect();
    a.signal("-TERM");
    assert!(a.wait_exit(Duration::from_secs(10)).is_some());
    let mut a = Node::spawn_in("rgb", &dir, &[], &[]);
    a.wait_ready();
    assert_eq!(contracts(&a), before);
    let after: Vec<_> = before.iter().map(|id| state(&a, id)).collect();
    assert_eq!(after, states);
    drop(a);

    // In a Storm node's STORE.
    let stmp = tempfile::tempdir_in("/tmp").unwrap();
    let sdir = stmp.path().join("storm");
    let mut storm = Node::spawn_in("storm", &sdir, &[], &[]);
    storm.wait_ready();
    let store = format!("ipc://{}", sdir.join("store").display());
    let rdir = tmp.path().join("rgb-remote");
    let mut r = Node::spawn_in("rgb", &rdir, &["-S", &store], &[]);
    r.wait_ready();
    assert!(r.info_json()["store"].as_str().unwrap().contains("STORE"));
    for (t, s) in [("DDD", 4), ("EEE", 5)] {
        issue(&r, t, s);
    }
    let before = contracts(&r);
    // The stock is in the Storm node's tables.
    let tables = ok(storm.cli(&["store", "tables", "--json"]));
    let rid = r.info_json()["node_id"].as_str().unwrap().to_string();
    let journal = format!("rgb.{}.signet.journal", &rid[2..18]);
    assert!(tables.contains(&journal), "{tables}");
    assert!(!rdir.join("rgb.redb").exists(), "nothing embedded");
    r.signal("-TERM");
    assert!(r.wait_exit(Duration::from_secs(10)).is_some());
    let mut r = Node::spawn_in("rgb", &rdir, &["-S", &store], &[]);
    r.wait_ready();
    assert_eq!(contracts(&r), before);

    // The STORE goes down: a write fails with the store's error, not a timeout of the client.
    storm.signal("-TERM");
    assert!(storm.wait_exit(Duration::from_secs(10)).is_some());
    let out = r.cli(&[
        "issue",
        "--ticker",
        "FFF",
        "--name",
        "x",
        "--supply",
        "6",
        "--seal",
        SEAL,
        "--timeout",
        "15",
    ]);
    let why = refused(out);
    assert!(why.contains("the store failed"), "{why}");
    assert_eq!(contracts(&r), before, "nothing half-done");
    // Back: writes work again.
    let mut storm = Node::spawn_in("storm", &sdir, &[], &[]);
    storm.wait_ready();
    issue(&r, "GGG", 7);
    assert_eq!(contracts(&r).len(), before.len() + 1);
    drop(storm);
}

fn bus(node: &Node, name: &str) -> String {
    format!("ipc://{}", node.dir.join(name).display())
}

#[test]
fn rgb_send_goes_through_two_storm_and_two_lnp_nodes() {
    let (la, lb) = (Node::start("lnp", &[]), Node::start("lnp", &[]));
    let b_id = lb.info_json()["node_id"].as_str().unwrap().to_string();
    let sa = Node::start("storm", &["--lnp", &bus(&la, "msg")]);
    let sb = Node::start("storm", &["--lnp", &bus(&lb, "msg")]);
    let ra = Node::start("rgb", &["--storm", &bus(&sa, "storm")]);
    let rb = Node::start("rgb", &["--storm", &bus(&sb, "storm")]);
    connect_bifrost(&la, &lb);
    for s in [&sa, &sb] {
        s.wait_info("the LNP node reachable", |i| {
            i["lnp"].as_str().unwrap().ends_with("(reachable)")
        });
    }
    for r in [&ra, &rb] {
        r.wait_info("the Storm node reachable", |i| {
            i["storm"].as_str().unwrap().ends_with("(reachable)")
        });
    }
    let (mut listener, events) = json_lines(&["rgb", "listen", "--json"], &rb.dir, |v| {
        v["event"] == "contract_received"
    });
    std::thread::sleep(Duration::from_millis(300));

    let id = issue(&ra, "SEND", 21_000_000);
    ok(ra.cli(&["send", &b_id, &id]));
    let got = events
        .recv_timeout(Duration::from_secs(20))
        .expect("B's subscriber hears of the contract");
    assert_eq!(got["valid"], true, "{got}");
    assert_eq!(got["contract_id"], id.as_str());
    assert_eq!(got["from"], la.info_json()["node_id"]);
    assert_eq!(contracts(&rb), vec![id.clone()]);
    assert_eq!(state(&rb, &id), state(&ra, &id));

    // A tampered consignment sent as the RGB app: B validates it, refuses it, says so.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.rgb");
    ok(ra.cli(&["export", &id, file.to_str().unwrap()]));
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes
        .windows(8)
        .position(|w| w == 21_000_000u64.to_le_bytes())
        .unwrap();
    bytes[at..at + 8].copy_from_slice(&42_000_000u64.to_le_bytes());
    std::fs::write(&file, &bytes).unwrap();
    let made: serde_json::Value = serde_json::from_str(&ok(sa.cli(&[
        "containerize",
        file.to_str().unwrap(),
        "--json",
    ])))
    .unwrap();
    let container = made["id"].as_str().unwrap().to_string();
    ok(sa.cli(&["send", &b_id, &container, "--app", "0x0010"]));
    let got = events
        .recv_timeout(Duration::from_secs(20))
        .expect("B's subscriber hears of the refusal");
    assert_eq!(got["valid"], false, "{got}");
    assert!(
        got["reasons"][0]
            .as_str()
            .unwrap()
            .contains("invalid consignment"),
        "{got}"
    );
    assert_eq!(contracts(&rb), vec![id], "nothing imported");
    let _ = listener.kill();
    let _ = listener.wait();
}

#[test]
fn tasks_are_served_in_turn_per_client_and_a_full_queue_answers_busy() {
    use lnpbp_nodes::bus::client::Client;
    use lnpbp_nodes::bus::Endpoint;
    use lnpbp_nodes::wire::api::rgb::RgbMsg;
    use lnpbp_nodes::wire::api::{Msg, ServiceId};

    let a = Node::start("rgb", &[]);
    let id = issue(&a, "TEST", 1_000);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.rgb");
    ok(a.cli(&["export", &id, file.to_str().unwrap()]));
    let bytes = std::fs::read(&file).unwrap();
    // One worker (it holds two tasks), three waiting at most, each task 300 ms.
    let b = Node::start_env(
        "rgb",
        &["--fault-injection"],
        &[
            ("NODECTL_RGB__WORKERS", "1"),
            ("NODECTL_RGB__QUEUE", "3"),
            ("NODECTL_RGB__FAULT_TASK_DELAY_MS", "300"),
        ],
    );
    let ctx = zmq::Context::new();
    let ep = Endpoint::Ipc(b.api());
    let (mut ca, mut cb) = (
        Client::connect(&ctx, &ep).unwrap(),
        Client::connect(&ctx, &ep).unwrap(),
    );
    let import = || Msg::from(RgbMsg::Import(bytes.clone()));
    // A: four imports (two with the worker, two waiting); B: one (waiting); A: a fifth, busy.
    let a_ids: Vec<u64> = (0..4)
        .map(|_| ca.send(&ServiceId::Rgbd, import()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let b_id = cb.send(&ServiceId::Rgbd, import()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let a5 = ca.send(&ServiceId::Rgbd, import()).unwrap();
    // Final replies as they come, with the order they came in.
    let mut order = Vec::new();
    let mut busy = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while order.len() < 6 && std::time::Instant::now() < deadline {
        for (who, c) in [("a", &mut ca), ("b", &mut cb)] {
            if let Ok(env) = c.recv(Duration::from_millis(20)) {
                match env.msg {
                    Msg::Progress(_) => {}
                    Msg::Failure { code, .. } if env.request_id == a5 && who == "a" => {
                        busy = Some(code.0);
                        order.push(("a", a5));
                    }
                    Msg::Rgb(RgbMsg::Imported(_)) => order.push((who, env.request_id)),
                    other => panic!("{who}: {other:?}"),
                }
            }
        }
    }
    assert_eq!(busy, Some(0x2001), "the fifth of A finds the queue full");
    let done: Vec<(&str, u64)> = order.into_iter().filter(|(_, id)| *id != a5).collect();
    // A's first three (two held by the worker, then A's turn), then B's, then A's last.
    assert_eq!(
        done,
        vec![
            ("a", a_ids[0]),
            ("a", a_ids[1]),
            ("a", a_ids[2]),
            ("b", b_id),
            ("a", a_ids[3])
        ]
    );
}
