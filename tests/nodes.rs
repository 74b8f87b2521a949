//! Black-box tests of the spine: real `nodectl` processes, real sockets, a raw ZMQ client written
//! in this file and a pyzmq script written from docs/API.md.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const EXPECTED: [(&str, &[&str]); 4] = [
    (
        "lnp",
        &[
            "msg-router",
            "ctl-router",
            "chnl-router",
            "api-router",
            "channeld",
            "lnpd",
            "msg-bridge",
            "ctl-bridge",
            "chnl-bridge",
            "api-bridge",
        ],
    ),
    (
        "bp",
        &[
            "blocks-router",
            "api-router",
            "sign-router",
            "signd",
            "bpd",
            "blocks-bridge",
            "api-bridge",
            "sign-bridge",
        ],
    ),
    (
        "rgb",
        &[
            "ctl-router",
            "api-router",
            "containerd-0",
            "containerd-1",
            "rgbd",
            "ctl-bridge",
            "api-bridge",
        ],
    ),
    (
        "storm",
        &[
            "store-router",
            "storm-router",
            "api-router",
            "stored",
            "stormd",
            "store-bridge",
            "storm-bridge",
            "api-bridge",
        ],
    ),
];

#[test]
fn every_node_answers_info_to_nodectl_raw_zmq_and_python() {
    let python = python();
    for (kind, services) in EXPECTED {
        let node = Node::start(kind, &[]);
        let info = node.info_json();
        assert_eq!(info["node"], kind);
        assert_eq!(info["network"], "signet");
        assert_eq!(info["node_id"].as_str().unwrap().len(), 66);
        let names: Vec<&str> = info["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, services, "{kind}: services in start order");
        for s in info["services"].as_array().unwrap() {
            assert_eq!(s["state"], "running", "{kind}: {s}");
            assert_eq!(s["restarts"], 0);
        }
        let buses = info["endpoints"].as_array().unwrap().len();
        assert_eq!(
            buses,
            services.iter().filter(|s| s.ends_with("-bridge")).count()
        );
        let key = std::fs::read(node.dir.join("node.key")).unwrap();
        assert_eq!(key.len(), 32);

        // Raw ZMQ client, frames built by hand.
        let raw = Raw::connect(&node.api_endpoint(), client_id(0xabcdef));
        raw.send(&manager_id(kind), &payload(0x0100, 77, &[]));
        let reply = raw.recv_msg();
        assert_eq!(reply.request_id, 77);
        assert_eq!(reply.type_id, 0x0101);
        assert_eq!(reply.src, manager_id(kind));
        assert_eq!(reply.dst, client_id(0xabcdef));
        let raw_info = node_info_json(&reply.body);
        assert_eq!(stable(raw_info), stable(info.clone()), "{kind}: raw client");

        // pyzmq script written from docs/API.md.
        let out = Command::new(&python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/api_client.py"
            ))
            .args([&node.api_endpoint(), kind, "info"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let py: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(stable(py), stable(info), "{kind}: python client");

        // Human output names every service too.
        let text = node.cli(&["info"]);
        assert!(text.status.success());
        let text = String::from_utf8(text.stdout).unwrap();
        for s in services {
            assert!(text.contains(s), "{kind}: `{s}` missing from:\n{text}");
        }
    }
}

#[test]
fn crash_restarts_the_service_and_fails_only_the_request_in_flight() {
    let node = Node::start("lnp", &["--fault-injection"]);
    let raw = Raw::connect(&node.api_endpoint(), client_id(1));
    let lnpd = manager_id("lnp");
    // Three requests in flight at once; the second makes lnpd panic while handling it.
    raw.send(&lnpd, &payload(0x0100, 1, &[]));
    raw.send(&lnpd, &payload(0x01F0, 2, &string("lnpd")));
    raw.send(&lnpd, &payload(0x0100, 3, &[]));
    let mut replies: Vec<Reply> = (0..3).map(|_| raw.recv_msg()).collect();
    replies.sort_by_key(|r| r.request_id);
    assert_eq!(
        replies[0].type_id, 0x0101,
        "request before the crash: answered"
    );
    let (code, message) = replies[1].failure();
    assert_eq!(
        code, 0x5000,
        "the request in flight gets SERVICE_FAILED: {message}"
    );
    assert!(message.contains("lnpd failed"), "{message}");
    assert_eq!(
        replies[2].type_id, 0x0101,
        "request queued behind the crash: answered"
    );
    assert!(
        raw.recv(Duration::from_millis(300)).is_none(),
        "exactly one reply each"
    );
    let info = node.wait_info("lnpd restarted", |i| {
        service(i, "lnpd")["restarts"] == 1 && service(i, "lnpd")["state"] == "running"
    });
    let cause = service(&info, "lnpd")["last_failure"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(cause.contains("debug crash of lnpd"), "{cause}");

    // Crash every other kind of service through the CLI; each comes back with restarts = 1.
    for name in ["api-router", "msg-bridge", "api-bridge"] {
        let out = node.cli(&["debug", "crash", name]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let info = node.wait_info(&format!("{name} restarted"), |i| {
            service(i, name)["restarts"] == 1 && service(i, name)["state"] == "running"
        });
        let cause = service(&info, name)["last_failure"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(cause.contains("debug crash"), "{cause}");
    }
    node.wait_info("all running", |i| {
        i["services"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "running")
    });
    // The restarted api-bridge bound its socket again: a fresh raw client is served.
    let raw = Raw::connect(&node.api_endpoint(), client_id(2));
    raw.send(&lnpd, &payload(0x0100, 9, &[]));
    assert_eq!(raw.recv_msg().type_id, 0x0101);

    // Unknown service and the log lines.
    let out = node.cli(&["debug", "crash", "nosuch"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no service named `nosuch`"));
    let log = node.log_text();
    assert!(log.contains("restarting after failure"), "{log}");
}

#[test]
fn subscribers_get_service_events() {
    let node = Node::start("bp", &["--fault-injection"]);
    let raw = Raw::connect(&node.api_endpoint(), client_id(5));
    let bpd = manager_id("bp");
    raw.send(&bpd, &payload(0x0010, 40, &[]));
    assert_eq!(raw.recv_msg().type_id, 0x0001);
    let out = node.cli(&["debug", "crash", "sign-router"]);
    assert!(out.status.success());
    let mut states = Vec::new();
    while states.len() < 2 {
        let ev = raw.recv_msg();
        assert_eq!(ev.type_id, 0x0020);
        assert_eq!(
            ev.request_id, 40,
            "notifications echo the subscribe request id"
        );
        let mut c = Cursor(&ev.body);
        assert_eq!(c.string(), "sign-router");
        states.push(c.u8());
        assert_eq!(c.u32(), 1);
    }
    assert_eq!(states, [1, 0], "restarting, then running");
    // The subscription survives a crash of the manager itself.
    assert!(node.cli(&["debug", "crash", "bpd"]).status.code() == Some(1));
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = raw.recv_msg();
        let mut c = Cursor(&ev.body);
        seen.push((c.string(), c.u8()));
    }
    assert_eq!(seen, [("bpd".to_string(), 1), ("bpd".to_string(), 0)]);
}

#[test]
fn without_fault_injection_debug_crash_is_refused() {
    let node = Node::start("rgb", &[]);
    let out = node.cli(&["debug", "crash", "rgbd"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fault injection is disabled"));
    assert_eq!(service(&node.info_json(), "rgbd")["restarts"], 0);
    // The pyzmq client gets the same typed failure.
    let out = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/api_client.py"
        ))
        .args([&node.api_endpoint(), "rgb", "crash", "rgbd"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["code"], 0x6000);
}

#[test]
fn crashing_past_the_intensity_limit_stops_the_node_non_zero() {
    let mut node = Node::start_env(
        "storm",
        &["--fault-injection"],
        &[
            ("NODECTL_SUPERVISOR__MAX_RESTARTS", "2"),
            ("NODECTL_SUPERVISOR__PERIOD_SECS", "60"),
        ],
    );
    for i in 1..=3 {
        let out = node.cli(&["debug", "crash", "stormd"]);
        assert!(
            !out.status.success(),
            "crash {i}: the request in flight fails"
        );
    }
    let status = node
        .wait_exit(Duration::from_secs(20))
        .expect("node exits after escalation");
    assert_eq!(status.code(), Some(2), "escalation exit code");
    let log = node.log_text();
    assert!(
        log.contains("stormd failed 3 times within 60 s (limit 2)"),
        "{log}"
    );
    assert!(
        !node.dir.join("api").exists(),
        "sockets removed after escalation"
    );
}

#[test]
fn sigterm_exits_zero_within_two_seconds_and_removes_sockets() {
    let mut node = Node::start("lnp", &[]);
    for bus in ["msg", "ctl", "chnl", "api"] {
        assert!(node.dir.join(bus).exists());
    }
    // A client that connected and never reads must not hold up shutdown.
    let _idle = Raw::connect(&node.api_endpoint(), client_id(3));
    node.signal("-TERM");
    let status = node
        .wait_exit(Duration::from_secs(2))
        .expect("exit within 2 s of SIGTERM");
    assert_eq!(status.code(), Some(0));
    for bus in ["msg", "ctl", "chnl", "api"] {
        assert!(!node.dir.join(bus).exists(), "{bus} socket file removed");
    }
    let mut node = Node::start("bp", &[]);
    node.signal("-INT");
    let status = node
        .wait_exit(Duration::from_secs(2))
        .expect("exit within 2 s of SIGINT");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn second_instance_is_refused_and_stale_sockets_do_not_block() {
    let mut node = Node::start("rgb", &[]);
    let out = Command::new(NODECTL)
        .args(["start", "--node", "rgb", "--data-dir"])
        .arg(&node.dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another node is already running on data dir"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    node.info_json(); // the first one still serves

    // kill -9 leaves the socket files behind; the next start must not trip on them.
    node.signal("-KILL");
    node.wait_exit(Duration::from_secs(10)).unwrap();
    assert!(node.api().exists(), "stale socket left by kill -9");
    let out = node.cli(&["info"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
    let dir = node.dir.clone();
    let mut again = Node::spawn_in("rgb", &dir, &[], &[]);
    again.wait_ready();
    let info = again.info_json();
    assert_eq!(
        info["node_id"],
        node_id_of(&dir).expect("the key file"),
        "same identity after restart"
    );
}

fn start_fails(kind: &str, dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(NODECTL);
    cmd.args(["start", "--node", kind, "--data-dir"])
        .arg(dir)
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "must fail: {out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    for bus in [
        "msg", "ctl", "chnl", "api", "blocks", "sign", "store", "storm",
    ] {
        assert!(!dir.join(bus).exists(), "nothing bound before the error");
    }
    err
}

#[test]
fn bad_configuration_is_reported_with_its_key_before_binding() {
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let dir = tmp.path().join("lnp");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lnp.toml");

    std::fs::write(&file, "[supervisor]\nmax_restarts = \"many\"\n").unwrap();
    let err = start_fails("lnp", &dir, &[], &[]);
    assert!(err.contains("supervisor.max_restarts"), "{err}");
    assert!(err.contains("lnp.toml"), "names the file: {err}");

    std::fs::write(&file, "network = \"mainnet\"\n").unwrap();
    let err = start_fails("lnp", &dir, &[], &[]);
    assert!(err.contains("network"), "{err}");

    std::fs::write(&file, "[endpoints]\napi = \"http://x\"\n").unwrap();
    let err = start_fails("lnp", &dir, &[], &[]);
    assert!(
        err.contains("endpoints.api") && err.contains("lnp.toml"),
        "{err}"
    );

    std::fs::write(&file, "typo_key = 1\n").unwrap();
    let err = start_fails("lnp", &dir, &[], &[]);
    assert!(err.contains("typo_key"), "{err}");

    std::fs::remove_file(&file).unwrap();
    let err = start_fails(
        "lnp",
        &dir,
        &[],
        &[("NODECTL_BUS__REQUEST_TIMEOUT_MS", "999999")],
    );
    assert!(
        err.contains("bus.request_timeout_ms") && err.contains("NODECTL_BUS__REQUEST_TIMEOUT_MS"),
        "{err}"
    );

    let err = start_fails("lnp", &dir, &["--rpc-allow", "02abcd"], &[]);
    assert!(
        err.contains("rpc.allow") && err.contains("flag --rpc-allow"),
        "{err}"
    );

    let err = start_fails("lnp", &dir, &["-N", "/tmp/blocks"], &[]);
    assert!(err.contains("not a bus of the lnp node"), "{err}");

    // Peer settings (LNP): ranges, addresses, and --listen on a node without peers.
    let err = start_fails("lnp", &dir, &[], &[("NODECTL_PEERS__MAX_PEERS", "0")]);
    assert!(
        err.contains("peers.max_peers") && err.contains("NODECTL_PEERS__MAX_PEERS"),
        "{err}"
    );
    let err = start_fails("lnp", &dir, &["--listen", "localhost"], &[]);
    assert!(
        err.contains("peers.listen") && err.contains("flag --listen"),
        "{err}"
    );
    let rgb = tmp.path().join("rgb");
    let err = start_fails("rgb", &rgb, &["--listen", "127.0.0.1:0"], &[]);
    assert!(
        err.contains("--listen is for the lnp and bp nodes"),
        "{err}"
    );
    let err = start_fails("lnp", &dir, &["--connect", "127.0.0.1:18444"], &[]);
    assert!(err.contains("--connect is for the bp node"), "{err}");
    let bp = tmp.path().join("bp");
    let err = start_fails("bp", &bp, &[], &[("NODECTL_WIRE__MAX_PEERS", "0")]);
    assert!(err.contains("wire.max_peers"), "{err}");

    let missing = tmp.path().join("nope.toml");
    let err = start_fails("lnp", &dir, &["--config", missing.to_str().unwrap()], &[]);
    assert!(err.contains("nope.toml"), "{err}");
}

#[test]
fn config_file_and_flags_are_applied() {
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let dir = tmp.path().join("bp");
    std::fs::create_dir_all(&dir).unwrap();
    let custom = tmp.path().join("custom.toml");
    std::fs::write(
        &custom,
        "network = \"regtest\"\n[endpoints]\nsign = \"ipc://{data_dir}/signer\"\n",
    )
    .unwrap();
    let key = tmp.path().join("client.key");
    let client = client_key(&key);
    let (mut node, port) = spawn_on_free_port("bp", &dir, |port| {
        vec![
            "--config".into(),
            custom.to_str().unwrap().into(),
            "-R".into(),
            format!("tcp://127.0.0.1:{port}"),
            "--network".into(),
            "testnet4".into(),
            "--rpc-allow".into(),
            client.clone(),
        ]
    });
    let api = format!("tcp://127.0.0.1:{port}");
    // Reach it over (encrypted) TCP via -R, as a remote client.
    let deadline = std::time::Instant::now() + START_DEADLINE;
    let info = loop {
        let out = node_id_of(&dir).map(|id| {
            Command::new(NODECTL)
                .args(["bp", "info", "--json", "--timeout", "1", "--key"])
                .arg(&key)
                .args(["--remote", &format!("{id}@127.0.0.1:{port}")])
                .output()
                .unwrap()
        });
        if let Some(out) = out.filter(|o| o.status.success()) {
            break serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "{}", node.log_text());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(info["network"], "testnet4", "the flag beats the file");
    let eps = info["endpoints"].to_string();
    assert!(eps.contains(&api), "{eps}");
    assert!(eps.contains("signer"), "the file beats the defaults: {eps}");
    node.signal("-TERM");
    assert_eq!(
        node.wait_exit(Duration::from_secs(5)).unwrap().code(),
        Some(0)
    );
}

#[test]
fn client_never_hangs_and_exits_non_zero() {
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    // No node at all.
    let out = Command::new(NODECTL)
        .args(["lnp", "info", "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not running") && err.lines().count() == 1,
        "{err}"
    );

    // Something listens but never answers: the client gives up at its timeout.
    let ctx = zmq::Context::new();
    let mute = ctx.socket(zmq::ROUTER).unwrap();
    let path = tmp.path().join("api");
    mute.bind(&format!("ipc://{}", path.display())).unwrap();
    let out = Command::new(NODECTL)
        .args(["lnp", "info", "--timeout", "0.5", "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did not answer within 0.5 s"));
}

#[test]
fn bad_api_input_gets_an_error_or_is_dropped_and_the_node_keeps_serving() {
    let node = Node::start("lnp", &[]);
    let lnpd = manager_id("lnp");
    let me = client_id(11);
    let raw = Raw::connect(&node.api_endpoint(), me.clone());

    // Wrong frame counts: dropped with a log line.
    raw.send_frames(&[b"garbage"]);
    raw.send_frames(&[&me, &lnpd]);
    raw.send_frames(&[&me, &lnpd, &payload(0x0100, 1, &[]), b"extra", b"more"]);
    // Truncated payload header: failure with request id 0.
    raw.send(&lnpd, &[0x00, 0x01, 0x05]);
    let (code, msg) = raw.recv_msg().failure();
    assert_eq!(code, 0x1000, "{msg}");
    // Unknown type id: failure echoing the request id.
    raw.send(&lnpd, &payload(0x7777, 21, &[]));
    let r = raw.recv_msg();
    assert_eq!(r.request_id, 21);
    assert_eq!(r.failure().0, 0x1001);
    // Truncated body (declared string longer than what follows).
    raw.send(&lnpd, &payload(0x01F0, 22, &[10, 0, b'a']));
    let r = raw.recv_msg();
    assert_eq!((r.request_id, r.failure().0), (22, 0x1000));
    // Declared length above the limit of a service name (64).
    let mut long = 65u16.to_le_bytes().to_vec();
    long.extend_from_slice(&[b'x'; 65]);
    raw.send(&lnpd, &payload(0x01F0, 23, &long));
    let r = raw.recv_msg();
    assert_eq!((r.request_id, r.failure().0), (23, 0x1002));
    // Trailing bytes.
    raw.send(&lnpd, &payload(0x0100, 24, &[0]));
    assert_eq!(raw.recv_msg().failure().0, 0x1000);
    // Bad source and destination ids: still answered, frames swapped as given.
    raw.send_frames(&[&[0x99], &lnpd, &payload(0x0100, 25, &[])]);
    let r = raw.recv_msg();
    assert_eq!((r.dst.as_slice(), r.failure().0), (&[0x99u8][..], 0x1000));
    // Absent destination: NO_ROUTE.
    raw.send(&other_id("nobody"), &payload(0x0100, 26, &[]));
    let r = raw.recv_msg();
    assert_eq!((r.request_id, r.failure().0), (26, 0x2000));
    // A remote may not speak as a service of the node.
    raw.send_frames(&[&lnpd, &lnpd, &payload(0x0100, 27, &[])]);
    assert_eq!(raw.recv_msg().failure().0, 0x2002);
    // Same request id twice while the first is in flight would be ambiguous; sequential reuse is fine.
    raw.send(&lnpd, &payload(0x0100, 28, &[]));
    assert_eq!(raw.recv_msg().type_id, 0x0101);

    // A frame above the API bus limit (5 MiB): libzmq drops that connection; nothing is
    // answered, nothing is allocated by the node for it.
    let big = Raw::connect(&node.api_endpoint(), client_id(12));
    let mut huge = payload(0x0100, 30, &[]);
    huge.resize((5 << 20) + 1, 0);
    big.send(&lnpd, &huge);
    assert!(big.recv(Duration::from_millis(500)).is_none());

    // The node keeps serving the same client and new ones.
    raw.send(&lnpd, &payload(0x0100, 31, &[]));
    assert_eq!(raw.recv_msg().type_id, 0x0101);
    let info = node.info_json();
    for s in info["services"].as_array().unwrap() {
        assert_eq!(s["restarts"], 0, "bad input crashed nothing: {s}");
    }
    let log = node.log_text();
    assert!(log.contains("dropped a message of 1 frames"), "{log}");
    assert!(log.contains("dropped a message of 2 frames"), "{log}");
    assert!(log.contains("dropped a message of 5 frames"), "{log}");
    assert!(log.contains("unknown type id 0x7777"), "{log}");
}

/// Two external services `ext-a` and `ext-b` on the node's CTL bus; `b` has already sent a
/// message (the router learns where a remote is from its first message).
fn ext_pair(node: &Node) -> (Raw, Raw) {
    let ctl = format!("ipc://{}", node.dir.join("ctl").display());
    let a = Raw::connect(&ctl, other_id("ext-a"));
    let b = Raw::connect(&ctl, other_id("ext-b"));
    b.send(&manager_id(node.kind), &payload(0x0100, 1, &[]));
    assert_eq!(b.recv_msg().type_id, 0x0101);
    (a, b)
}

#[test]
fn external_services_reach_each_other_and_the_manager_on_an_esb_bus() {
    let node = Node::start("lnp", &[]);
    let (a, b) = ext_pair(&node);
    // a asks b; the router carries the request to b and b's reply back to a.
    a.send(&other_id("ext-b"), &payload(0x0100, 5, &[]));
    let req = b.recv_msg();
    assert_eq!(
        (req.src.clone(), req.request_id, req.type_id),
        (other_id("ext-a"), 5, 0x0100)
    );
    b.send(
        &other_id("ext-a"),
        &payload(0x0001, 5, &[1, 2, 0, b'h', b'i']),
    );
    let rep = a.recv_msg();
    assert_eq!(
        (rep.src, rep.type_id, rep.request_id),
        (other_id("ext-b"), 0x0001, 5)
    );
    // b answers twice: the second is dropped (exactly one reply per request).
    b.send(&other_id("ext-a"), &payload(0x0001, 5, &[0]));
    assert!(a.recv(Duration::from_millis(300)).is_none());
    // When b does not answer, a gets a timeout failure from the router.
    let slow = Node::start_env("rgb", &[], &[("NODECTL_BUS__REQUEST_TIMEOUT_MS", "300")]);
    let (a, b) = ext_pair(&slow);
    a.send(&other_id("ext-b"), &payload(0x0100, 6, &[]));
    assert_eq!(b.recv_msg().request_id, 6);
    let r = a.recv_msg();
    assert_eq!((r.request_id, r.failure().0), (6, 0x3000));
}

#[test]
fn ten_thousand_requests_with_a_crash_every_thousand_get_exactly_one_reply_each() {
    let node = Node::start_env(
        "lnp",
        &["--fault-injection"],
        &[("NODECTL_SUPERVISOR__MAX_RESTARTS", "100")],
    );
    let raw = Raw::connect(&node.api_endpoint(), client_id(77));
    let lnpd = manager_id("lnp");
    const TOTAL: u64 = 10_000;
    const WINDOW: u64 = 256;
    let mut replies = std::collections::HashMap::new();
    let (mut sent, mut got) = (0u64, 0u64);
    while got < TOTAL {
        while sent < TOTAL && sent - got < WINDOW {
            sent += 1;
            if sent % 1000 == 0 {
                raw.send(&lnpd, &payload(0x01F0, sent, &string("lnpd")));
            } else {
                raw.send(&lnpd, &payload(0x0100, sent, &[]));
            }
        }
        let r = raw.recv_msg();
        assert!(
            replies.insert(r.request_id, r.type_id).is_none(),
            "second reply to {}",
            r.request_id
        );
        got += 1;
    }
    assert!(
        raw.recv(Duration::from_millis(300)).is_none(),
        "no reply beyond one per request"
    );
    for id in 1..=TOTAL {
        let t = replies[&id];
        if id % 1000 == 0 {
            assert_eq!(t, 0x0002, "request {id} (the crash) fails");
        } else {
            assert_eq!(t, 0x0101, "request {id} answered");
        }
    }
    let info = node.wait_info("10 restarts", |i| service(i, "lnpd")["restarts"] == 10);
    assert_eq!(service(&info, "lnpd")["state"], "running");
}

#[test]
fn garbage_bytes_and_half_sent_greetings_are_closed_while_the_node_serves() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let node = Node::start("lnp", &[]);
    // Not ZMTP at all: the connection is closed.
    let mut junk = UnixStream::connect(node.api()).unwrap();
    junk.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    junk.write_all(&[0x42; 200]).unwrap();
    // A greeting cut short: closed once the 5 s handshake interval passes.
    let mut half = UnixStream::connect(node.api()).unwrap();
    half.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    half.write_all(&[0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f])
        .unwrap();
    // Meanwhile a real client is served.
    let raw = Raw::connect(&node.api_endpoint(), client_id(8));
    raw.send(&manager_id("lnp"), &payload(0x0100, 1, &[]));
    assert_eq!(raw.recv_msg().type_id, 0x0101);
    for (name, mut s) in [("garbage", junk), ("half greeting", half)] {
        let mut buf = [0u8; 256];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue, // the node's own greeting
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false, // read timeout: still open after 20 s
            }
        };
        assert!(closed, "{name}: the node closes the connection");
    }
    raw.send(&manager_id("lnp"), &payload(0x0100, 2, &[]));
    assert_eq!(raw.recv_msg().type_id, 0x0101);
}

#[test]
fn a_subscriber_that_never_reads_is_bounded_and_blocks_nobody() {
    let node = Node::start_env(
        "rgb",
        &["--fault-injection"],
        &[("NODECTL_SUPERVISOR__MAX_RESTARTS", "100000")],
    );
    let pid = node.child.as_ref().unwrap().id();
    let rgbd = manager_id("rgb");
    // A subscriber that never reads, and one that does.
    let deaf = Raw::connect(&node.api_endpoint(), client_id(90));
    deaf.send(&rgbd, &payload(0x0010, 1, &[]));
    let reader = Raw::connect(&node.api_endpoint(), client_id(91));
    reader.send(&rgbd, &payload(0x0010, 1, &[]));
    assert_eq!(reader.recv_msg().type_id, 0x0001);
    let before = rss_kib(pid);
    // 1,500 crashes of the CTL router = 3,000 events, three times the per-client queue.
    let crasher = Raw::connect(&node.api_endpoint(), client_id(92));
    let mut events = 0;
    for i in 0..1_500u64 {
        crasher.send(&rgbd, &payload(0x01F0, i + 1, &string("ctl-router")));
        assert_eq!(crasher.recv_msg().type_id, 0x0001);
        while let Some(frames) = reader.recv(Duration::from_millis(0)) {
            assert_eq!(Reply::parse(frames).type_id, 0x0020);
            events += 1;
        }
    }
    while let Some(frames) = reader.recv(Duration::from_millis(500)) {
        assert_eq!(Reply::parse(frames).type_id, 0x0020);
        events += 1;
    }
    assert_eq!(events, 3_000, "the reading subscriber got every event");
    let grown = rss_kib(pid).saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "RSS grew by {grown} KiB for a subscriber that never reads"
    );
    let info = node.info_json();
    assert_eq!(service(&info, "ctl-router")["restarts"], 1_500);
    drop(deaf);
}

#[test]
fn regression_a_closed_stdout_ends_the_client_quietly() {
    // `nodectl lnp info | head -1` used to panic with "failed printing to stdout".
    let node = Node::start("lnp", &[]);
    for json in [false, true] {
        let mut cmd = Command::new(NODECTL);
        cmd.args(["lnp", "info", "--data-dir"]).arg(&node.dir);
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before the answer arrives
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(out.status.code(), Some(0), "{err}");
    }
}

#[test]
fn a_client_with_12000_requests_to_a_mute_service_gets_busy_beyond_its_share_and_others_are_served()
{
    let node = Node::start("lnp", &[]);
    let api = node.api_endpoint();
    let lnpd = manager_id("lnp");
    // An external named service that takes requests and never answers (the router learns its
    // route from its first message).
    let mute = Raw::connect(&api, other_id("mute"));
    mute.send(&lnpd, &payload(0x0100, 1, &[]));
    assert_eq!(mute.recv_msg().type_id, 0x0101);
    // It reads what it gets (its queue never fills), counting, until 2 s of silence.
    let mute = std::thread::spawn(move || {
        let mut got = 0;
        while mute.recv(Duration::from_secs(2)).is_some() {
            got += 1;
        }
        got
    });
    let flooder = Raw::connect(&api, client_id(5));
    // Beyond its share (2,500 of the bus's 10,000) each request is refused at once. The
    // flooder reads its replies as it sends (ZMQ would drop what it does not read).
    let check = |r: Reply| {
        let (code, why) = r.failure();
        assert_eq!(code, 0x2001, "{why}");
        assert!(
            r.request_id > 2_500,
            "the first 2,500 are in flight: {} {why}",
            r.request_id
        );
        assert!(why.contains("its share"), "{why}");
        1
    };
    let mut busy = 0;
    for id in 1..=12_000u64 {
        flooder.send(&other_id("mute"), &payload(0x0100, id, &[]));
        while let Some(frames) = flooder.recv(Duration::ZERO) {
            busy += check(Reply::parse(frames));
        }
    }
    while busy < 9_500 {
        busy += check(flooder.recv_msg());
    }
    // Another client, and the CLI, are served while the flooder's 2,500 are in flight.
    let other = Raw::connect(&api, client_id(6));
    other.send(&lnpd, &payload(0x0100, 1, &[]));
    assert_eq!(other.recv_msg().type_id, 0x0101);
    let info = node.info_json();
    assert_eq!(info["node"], "lnp");
    // The mute service got exactly the flooder's share.
    assert_eq!(mute.join().unwrap(), 2_500);
}
