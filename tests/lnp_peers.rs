//! LNP Node on the Lightning network (issue 3): real nodes on 127.0.0.1, Core Lightning's
//! pyln-proto as the other side, hand-driven hostile peers, and a peer crash.

mod common;

use common::lnpeer::{closed_silently, target, RawPeer};
use common::*;
use lnpbp_nodes::wire::ln::bolt1::{Features, Init, Message};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// BOLT chain hash of regtest (genesis hash in internal byte order).
const REGTEST: &str = "06226e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f";

fn peers(node: &Node) -> Vec<serde_json::Value> {
    let out = node.cli(&["peers", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn has_peer(node: &Node, id: &str) -> bool {
    peers(node).iter().any(|p| p["node_id"] == id)
}

fn ln_peer() -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/ln_peer.py"
    ));
    cmd
}

fn run_json(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "ln_peer.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn pyln_proto_connects_exchanges_init_and_gets_pongs_of_the_asked_length() {
    let node = Node::start("lnp", &["--network", "regtest"]);
    let (id, addr) = target(&node);
    let (host, port) = addr.rsplit_once(':').unwrap();
    let r = run_json(ln_peer().args(["connect", &id, host, port, REGTEST]));
    // Our init came first, offering regtest, and told pyln how we see it (remote_addr, IPv4).
    assert_eq!(
        r["their_init"]["tlvs"]["networks"]["chains"][0], REGTEST,
        "{r}"
    );
    assert!(r["their_init"]["tlvs"]["remote_addr"]["data"]
        .as_str()
        .unwrap()
        .starts_with("017f000001"));
    assert_eq!(r["pongs"]["1000"], 1000);
    // A ping asking 65,532 bytes is ignored; the next ping's pong comes back.
    assert_eq!(r["pongs"]["after_65532_then_4"], 4);

    // An unknown required feature, and no common chain: a warning saying why, then close.
    let features_bit_100 = format!("10{}", "00".repeat(12));
    let r = run_json(ln_peer().args(["bad-init", &id, host, port, REGTEST, &features_bit_100]));
    assert_eq!(
        r["received"],
        serde_json::json!([
            ["warning", "unknown required feature bit 100"],
            ["closed", null]
        ])
    );
    let signet_chain = "f61eee3b63a380a477a063af32b2bbc97c9ff9f01f2c4225e973988108000000";
    let r = run_json(ln_peer().args(["bad-init", &id, host, port, signet_chain, ""]));
    let warning = r["received"][0][1].as_str().unwrap_or_default();
    assert!(warning.starts_with("no common chain"), "{r}");
    assert_eq!(r["received"][1][0], "closed");
    assert!(node
        .log_text()
        .contains("ignored a ping asking 65532 bytes"));
}

/// A pyln-proto responder in a child process: (child, its node id, its port, its stdout).
fn pyln_responder(
    pings: u32,
) -> (
    std::process::Child,
    String,
    u16,
    BufReader<std::process::ChildStdout>,
) {
    let mut child = ln_peer()
        .args(["serve", REGTEST, &pings.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let hello: serde_json::Value = serde_json::from_str(&line).expect("serve prints its address");
    let id = hello["node_id"].as_str().unwrap().to_string();
    (child, id, hello["port"].as_u64().unwrap() as u16, out)
}

#[test]
fn nodectl_connects_to_a_pyln_responder_and_pings_it() {
    let env = [("NODECTL_PEERS__HANDSHAKE_TIMEOUT_MS", "1000")];
    let node = Node::start_env("lnp", &["--network", "regtest"], &env);
    let (mut child, id, port, mut out) = pyln_responder(0);
    let target = format!("{id}@127.0.0.1:{port}");
    let connect = node.cli(&["connect", &target]);
    let stderr = String::from_utf8_lossy(&connect.stderr).to_string();
    assert_eq!(ok(connect).trim(), format!("connected to {id}"));
    assert!(
        stderr.contains("... connecting to 127.0.0.1:"),
        "progress: {stderr}"
    );
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let seen: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(seen["their_init"]["tlvs"]["networks"]["chains"][0], REGTEST);

    let pong = ok(node.cli(&["ping", &id, "--bytes", "100"]));
    assert!(
        pong.starts_with("pong in ") && pong.trim().ends_with(" ms"),
        "{pong}"
    );
    let list = peers(&node);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["node_id"], id.as_str());
    assert_eq!(list[0]["direction"], "outbound");
    assert!(list[0]["ping_rtt_us"].as_u64().unwrap() > 0);
    assert!(list[0]["bytes_in"].as_u64().unwrap() > 50 + 100);
    assert_eq!(node.info_json()["peers"], 1);

    ok(node.cli(&["disconnect", &id]));
    assert!(
        child.wait().unwrap().success(),
        "pyln saw the connection end"
    );
    wait_until(Duration::from_secs(5), "peer gone", || {
        peers(&node).is_empty()
    });

    // A dead address fails with the reason, within the handshake timeout.
    let dead = node.cli(&["connect", &format!("{id}@127.0.0.1:1")]);
    assert!(!dead.status.success());
    let why = String::from_utf8_lossy(&dead.stderr);
    assert!(why.contains("cannot connect to 127.0.0.1:1"), "{why}");
    // A listener that accepts and then says nothing: the handshake timeout (1 s) ends it.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_addr = mute.local_addr().unwrap();
    let stuck = node.cli(&["connect", &format!("{id}@{mute_addr}")]);
    assert!(!stuck.status.success());
    let why = String::from_utf8_lossy(&stuck.stderr);
    assert!(
        why.contains("handshake act two did not arrive within 1000 ms"),
        "{why}"
    );
    drop(mute);
}

#[test]
fn two_lnp_nodes_connect_and_see_each_other_in_peers() {
    let a = Node::start("lnp", &[]);
    let b = Node::start("lnp", &[]);
    let (a_id, a_addr) = target(&a);
    let b_id = b.info_json()["node_id"].as_str().unwrap().to_string();
    ok(b.cli(&["connect", &format!("{a_id}@{a_addr}")]));
    wait_until(Duration::from_secs(5), "a sees b", || has_peer(&a, &b_id));
    let on_a = peers(&a);
    let on_b = peers(&b);
    assert_eq!((on_a.len(), on_b.len()), (1, 1));
    assert_eq!(on_a[0]["direction"], "inbound");
    assert_eq!(on_b[0]["direction"], "outbound");
    assert_eq!(on_b[0]["node_id"], a_id.as_str());
    assert_eq!(on_b[0]["addr"], a_addr.as_str());
    // Connected once: a second connect says so and adds nothing.
    let again = ok(b.cli(&["connect", &format!("{a_id}@{a_addr}")]));
    assert!(again.starts_with("already connected"), "{again}");
    assert_eq!(b.info_json()["peers"], 1);
    // Pings both ways.
    ok(a.cli(&["ping", &b_id]));
    ok(b.cli(&["ping", &a_id]));
    // Text output names the peer.
    assert!(ok(a.cli(&["peers"])).contains(&b_id));
    ok(a.cli(&["disconnect", &b_id]));
    wait_until(Duration::from_secs(5), "both sides see the end", || {
        peers(&a).is_empty() && peers(&b).is_empty()
    });
    let missing = a.cli(&["ping", &b_id]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not connected"));
}

fn warning_text(msgs: &[Message]) -> String {
    match msgs {
        [Message::Warning(w)] => w.printable(),
        other => panic!("expected one warning before close, got {other:?}"),
    }
}

#[test]
fn bad_peers_end_as_the_spec_says_and_the_node_keeps_serving() {
    let env = [
        ("NODECTL_PEERS__HANDSHAKE_TIMEOUT_MS", "1000"),
        ("NODECTL_PEERS__PING_INTERVAL_SECS", "1"),
        ("NODECTL_PEERS__PONG_TIMEOUT_SECS", "1"),
    ];
    let node = Node::start_env("lnp", &[], &env);
    let honest = Node::start("lnp", &[]);
    let (id, addr) = target(&node);
    let honest_id = honest.info_json()["node_id"].as_str().unwrap().to_string();
    ok(honest.cli(&["connect", &format!("{id}@{addr}")]));
    let still_served = |case: &str| {
        let out = honest.cli(&["ping", &id]);
        assert!(
            out.status.success(),
            "honest peer not served after {case}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    // Garbage act one: closed, nothing written (BOLT-8).
    let mut s = RawPeer::tcp(&addr);
    s.write_all(&[0xAB; 50]).unwrap();
    assert!(closed_silently(&mut s), "garbage act one");
    still_served("garbage act one");

    // Half a handshake: dropped once the act timeout (1 s here) passes, not before.
    let mut s = RawPeer::tcp(&addr);
    let started = Instant::now();
    s.write_all(&[0u8; 20]).unwrap();
    assert!(closed_silently(&mut s), "half-sent act one");
    assert!(started.elapsed() >= Duration::from_millis(900));
    still_served("half-sent handshake");

    // First message not init: a warning, then close.
    let mut p = RawPeer::handshake(&id, &addr);
    p.send(
        &Message::Ping {
            num_pong_bytes: 1,
            ignored: vec![],
        }
        .encode(),
    );
    assert!(warning_text(&p.until_closed()).contains("not init"));

    // Unknown odd type: ignored. Unknown even type: a warning, then close.
    let mut p = RawPeer::ready(&node);
    p.send(&[0x80, 0x01, 1, 2, 3]);
    assert_eq!(p.ping(8), 8, "still connected after an odd message");
    p.send(&[0x80, 0x02]);
    assert!(warning_text(&p.until_closed()).contains("unknown even message type 32770"));
    still_served("unknown even type");

    // A message of the largest size a frame can carry is read; one whose inner length runs
    // past its frame is malformed: a warning, then close.
    let mut p = RawPeer::ready(&node);
    let mut big = vec![0x80, 0x03];
    big.resize(65_535, 7);
    p.send(&big);
    assert_eq!(
        p.ping(65_531),
        65_531,
        "max-size frame read, 65,531-byte pong"
    );
    p.send(&[0x00, 0x12, 0x00, 0x04, 0xFF, 0xF0]); // ping: 65,520 ignored bytes declared, none sent
    assert!(warning_text(&p.until_closed()).contains("malformed"));

    // A bad MAC mid-stream: closed without a word.
    let mut p = RawPeer::ready(&node);
    assert_eq!(p.ping(1), 1);
    let mut bytes = p.t.as_mut().unwrap().encrypt(&[0x80, 0x01]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    p.s.write_all(&bytes).unwrap();
    assert!(p.until_closed().is_empty(), "nothing sent after a bad MAC");
    still_served("bad MAC");

    // A peer that stops answering our pings is dropped (ping after 1 s idle, 1 s to answer).
    let mut p = RawPeer::ready(&node);
    let quiet = Instant::now();
    let got = p.until_closed();
    assert!(matches!(got.as_slice(), [Message::Ping { .. }]), "{got:?}");
    assert!(quiet.elapsed() >= Duration::from_millis(1900));
    assert!(node.log_text().contains("no pong within 1000 ms"));

    // The honest peer was served throughout and nothing restarted.
    still_served("all the above");
    assert!(has_peer(&node, &honest_id));
    let info = node.info_json();
    for s in info["services"].as_array().unwrap() {
        assert_eq!(
            (s["state"].as_str(), s["restarts"].as_u64()),
            (Some("running"), Some(0)),
            "{s}"
        );
    }
}

#[test]
fn a_flood_of_pings_from_a_peer_that_never_reads_is_bounded() {
    let env = [
        ("NODECTL_PEERS__PING_INTERVAL_SECS", "2"),
        ("NODECTL_PEERS__PONG_TIMEOUT_SECS", "2"),
    ];
    let node = Node::start_env("lnp", &[], &env);
    let honest = Node::start("lnp", &[]);
    let (id, addr) = target(&node);
    ok(honest.cli(&["connect", &format!("{id}@{addr}")]));
    let pid = node.child.as_ref().unwrap().id();
    let before = rss_kib(pid);

    // 10,000 pings asking 65,531 bytes each (655 MB of pongs if we queued them all), and
    // never a read on our side.
    let mut p = RawPeer::ready(&node);
    p.s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    let ping = Message::Ping {
        num_pong_bytes: 65_531,
        ignored: vec![],
    }
    .encode();
    let mut flood = Vec::new();
    for _ in 0..10_000 {
        flood.extend_from_slice(&p.t.as_mut().unwrap().encrypt(&ping).unwrap());
    }
    let _ = p.s.write_all(&flood); // stalls (times out) once the node stops reading
    ok(honest.cli(&["ping", &id]));
    let peak = rss_kib(pid);
    assert!(
        peak < before + 32 * 1024,
        "RSS grew from {before} KiB to {peak} KiB"
    );
    // It is dropped when its pong does not come (the ping waits behind the unread pongs).
    wait_until(Duration::from_secs(15), "flooder dropped", || {
        peers(&node).len() == 1
    });
    ok(honest.cli(&["ping", &id]));
}

#[test]
fn crashing_one_peerd_drops_only_that_peer() {
    let node = Node::start("lnp", &["--fault-injection"]);
    let b = Node::start("lnp", &[]);
    let c = Node::start("lnp", &[]);
    let (id, addr) = target(&node);
    let b_id = b.info_json()["node_id"].as_str().unwrap().to_string();
    let c_id = c.info_json()["node_id"].as_str().unwrap().to_string();
    ok(b.cli(&["connect", &format!("{id}@{addr}")]));
    ok(c.cli(&["connect", &format!("{id}@{addr}")]));
    wait_until(Duration::from_secs(5), "two peers", || {
        peers(&node).len() == 2
    });
    let service = peers(&node)
        .into_iter()
        .find(|p| p["node_id"] == b_id.as_str())
        .unwrap()["service"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(service, format!("peerd-{}", &b_id[..16]));
    let out = ok(node.cli(&["debug", "crash", &service]));
    assert!(out.contains("crash injected"));
    wait_until(Duration::from_secs(5), "b dropped", || {
        !has_peer(&node, &b_id)
    });
    wait_until(Duration::from_secs(5), "b sees the drop", || {
        peers(&b).is_empty()
    });
    // c is untouched, the node's services too, and b can come back.
    assert!(has_peer(&node, &c_id));
    ok(node.cli(&["ping", &c_id]));
    let info = node.info_json();
    for s in info["services"].as_array().unwrap() {
        assert_eq!(s["restarts"], 0, "{s}");
    }
    assert!(node
        .log_text()
        .contains(&format!("{service} failed: panic: debug crash")));
    ok(b.cli(&["connect", &format!("{id}@{addr}")]));
    wait_until(Duration::from_secs(5), "b back", || has_peer(&node, &b_id));
}

#[test]
fn services_on_the_msg_bus_get_the_messages_they_asked_for_and_can_answer() {
    let node = Node::start("lnp", &[]);
    let msg_bus = format!("ipc://{}", node.dir.join("msg").display());
    let ext = Raw::connect(&msg_bus, other_id("channeld-ext"));
    // subscribe_peer_messages [32768 (even!), 32769]
    let body = [2u8, 0, 0x00, 0x80, 0x01, 0x80];
    ext.send(&manager_id("lnp"), &payload(0x0210, 3, &body));
    assert_eq!(ext.recv_msg().type_id, 0x0001);

    let mut p = RawPeer::ready(&node);
    p.send(&[0x80, 0x00, 0xAA]); // even, but wanted: forwarded, not fatal
    p.send(&[0x80, 0x01, 0xBB, 0xCC]);
    let mut their_id = Vec::new();
    for (type_id, data) in [(0x8000u16, vec![0xAA]), (0x8001, vec![0xBB, 0xCC])] {
        let m = ext.recv_msg();
        assert_eq!((m.type_id, m.request_id), (0x0211, 3));
        let mut c = Cursor(&m.body);
        their_id = c.take(33);
        assert_eq!(c.u16(), type_id);
        let n = c.u16() as usize;
        assert_eq!(c.take(n), data);
    }
    // The extension answers through lnpd: the peer receives it.
    let mut body = their_id.clone();
    body.extend_from_slice(&0x8005u16.to_le_bytes());
    body.extend_from_slice(&[2, 0, 0x01, 0x02]);
    ext.send(&manager_id("lnp"), &payload(0x0212, 4, &body));
    assert_eq!(ext.recv_msg().type_id, 0x0001);
    assert_eq!(p.recv().unwrap(), vec![0x80, 0x05, 0x01, 0x02]);
    assert_eq!(p.ping(2), 2);
}

#[test]
fn caps_on_handshakes_and_peers_refuse_the_extra_connection_and_the_node_goes_on() {
    // Pending handshakes of a trusted address are never evicted (a silent one from elsewhere
    // would be, for a newcomer: tests/admission.rs).
    let cfg =
        config_file("[peers]\nmax_handshakes = 2\nmax_peers = 3\ntrusted = [\"127.0.0.1\"]\n");
    let node = Node::start("lnp", &["--config", &cfg.path]);
    let (_, addr) = target(&node);
    // Two silent connections fill the handshake slots: a third is closed at once.
    let mut slow: Vec<TcpStream> = (0..2).map(|_| RawPeer::tcp(&addr)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut third = RawPeer::tcp(&addr);
    assert!(closed_silently(&mut third), "third handshake refused");
    assert!(node
        .log_text()
        .contains("handshakes in progress (max_handshakes)"));
    // Once they are gone, handshakes go through again, up to max_peers connections.
    for s in slow.drain(..) {
        drop(s);
    }
    wait_until(Duration::from_secs(5), "slots freed", || {
        let mut p = RawPeer::tcp(&addr);
        p.write_all(&[0; 1]).is_ok() && {
            p.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut b = [0u8; 1];
            // Still open after 200 ms: accepted (a refused one reads EOF at once).
            matches!(p.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        }
    });
    // Let the node see the last probe's close before counting connections again.
    std::thread::sleep(Duration::from_millis(300));
    let _a = RawPeer::ready(&node);
    let _b = RawPeer::ready(&node);
    let _c = RawPeer::ready(&node);
    wait_until(Duration::from_secs(5), "three peers", || {
        peers(&node).len() == 3
    });
    let mut fourth = RawPeer::tcp(&addr);
    assert!(closed_silently(&mut fourth), "fourth connection refused");
    assert!(node.log_text().contains("connections (max_peers)"));
    assert_eq!(peers(&node).len(), 3);
}

#[test]
fn listen_at_run_time_and_a_port_in_use_at_start() {
    let node = Node::start("lnp", &[]);
    let out = ok(node.cli(&["listen", "127.0.0.1:0"]));
    assert!(out.starts_with("listening on 127.0.0.1:"), "{out}");
    let listening = node.info_json()["listening"].as_array().unwrap().clone();
    assert_eq!(listening.len(), 2);
    let (id, _) = target(&node);
    let second = listening[1].as_str().unwrap();
    let mut p = RawPeer::handshake(&id, second);
    p.send(
        &Message::Init(Init {
            global_features: Features::default(),
            features: Features::default(),
            networks: None,
            remote_addr: None,
            unknown_odd: vec![],
        })
        .encode(),
    );
    assert_eq!(p.ping(3), 3, "a peer on the second listener is served");
    // A port that is taken: `listen` fails with the reason; at start the node exits 1.
    let taken = listening[0].as_str().unwrap();
    let again = node.cli(&["listen", taken]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("cannot listen on"));
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let mut other = Node::spawn_in("lnp", &tmp.path().join("lnp"), &["--listen", taken], &[]);
    let status = other.wait_exit(Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(1));
    assert!(other
        .log_text()
        .contains(&format!("cannot listen on {taken}")));
}
