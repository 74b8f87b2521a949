//! The API contract of docs/API.md, checked on running nodes:
//!
//! - every message type of the API, sent to every node's manager, gets a final reply (requests),
//!   failure 0x4000 (notifications) or a logged drop (replies that answer no request); the type
//!   table of docs/API.md lists exactly the types the code has, with the same kinds;
//! - every id the docs say a node keeps for itself is refused as the `src` of an external
//!   message with 0x2002, on every bus, while the ids left to others are served;
//! - the Python client written from the docs reads the typed address `listen` answers.

mod common;

use common::*;
use lnpbp_nodes::wire::api::samples;
use lnpbp_nodes::wire::api::{Envelope, Msg, MsgKind, ServiceId};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

const NODES: [&str; 4] = ["lnp", "bp", "rgb", "storm"];

/// Starts the four nodes side by side (each on its own temp dir).
fn start_all() -> Vec<Node> {
    std::thread::scope(|s| {
        let started: Vec<_> = NODES
            .iter()
            .map(|kind| s.spawn(move || Node::start(kind, &[])))
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The type table of docs/API.md section 5: type id → (name, kind as written).
fn documented_types() -> BTreeMap<u16, (String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.md")).unwrap();
    let mut out = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "| `0x0001` | success | final reply | body |"
        if cells.len() < 5 || !cells[1].starts_with("`0x") {
            continue;
        }
        let hex = cells[1].trim_matches('`').trim_start_matches("0x");
        let Ok(id) = u16::from_str_radix(hex, 16) else {
            continue;
        };
        let dup = out.insert(id, (cells[2].to_string(), cells[3].to_string()));
        assert!(dup.is_none(), "docs/API.md lists {id:#06x} twice");
    }
    out
}

fn kind_in_docs(kind: MsgKind) -> &'static str {
    match kind {
        MsgKind::Request => "request",
        MsgKind::Final => "final reply",
        MsgKind::Progress => "intermediate reply",
        MsgKind::OneWay => "notification",
    }
}

#[test]
fn the_docs_list_every_message_type_with_its_kind() {
    let docs = documented_types();
    let all = samples::all();
    samples::covers(&all, &samples::all_type_ids()).unwrap();
    let code: Vec<u16> = all.iter().map(Msg::type_id).collect();
    let listed: Vec<u16> = docs.keys().copied().collect();
    let mut sorted = code.clone();
    sorted.sort_unstable();
    assert_eq!(listed, sorted, "docs/API.md section 5 vs the message sets");
    for m in &all {
        let (name, kind) = &docs[&m.type_id()];
        assert!(
            kind.starts_with(kind_in_docs(m.kind())),
            "{:#06x} ({name}) is a {:?} but docs/API.md says `{kind}`",
            m.type_id(),
            m.kind()
        );
    }
}

/// Receives until the final reply to `id`, skipping progress; every message goes to `seen`.
fn final_reply(raw: &Raw, id: u64, seen: &mut Vec<(u64, u16)>) -> Reply {
    loop {
        let r = raw.recv_msg();
        seen.push((r.request_id, r.type_id));
        if r.request_id == id && r.type_id != 0x0003 {
            return r;
        }
    }
}

#[test]
fn every_message_type_sent_to_every_manager_is_answered_or_dropped_with_a_log_line() {
    let nodes = start_all();
    for (n, node) in nodes.iter().enumerate() {
        let manager = ServiceId::from_bytes(&manager_id(node.kind)).unwrap();
        exercise(node, 0x5eed_0000 + n as u64, &manager);
        if node.kind == "storm" {
            // The Storm node's other service reachable from outside.
            exercise(node, 0x5eed_1000, &ServiceId::named("stored").unwrap());
        }
    }
}

/// Sends every sample to `target` on `node`'s API bus, as client `client`, and checks what the
/// docs promise for its kind.
fn exercise(node: &Node, client: u64, target: &ServiceId) {
    let docs = documented_types();
    let kind = node.kind;
    let me = ServiceId::Client(client);
    let raw = Raw::connect(&node.api_endpoint(), me.to_bytes());
    let mut seen = Vec::new();
    let mut dropped = Vec::new();
    let mut outcomes = Vec::new();
    for (i, msg) in samples::all().into_iter().enumerate() {
        let id = 1_000 + i as u64;
        let ty = msg.type_id();
        let name = &docs[&ty].0;
        let env = Envelope {
            src: me.clone(),
            dst: target.clone(),
            request_id: id,
            msg,
        };
        let kind_of = env.msg.kind();
        if matches!(kind_of, MsgKind::Request | MsgKind::OneWay) {
            let [src, dst, payload] = env.encode_frames().unwrap();
            raw.send_frames(&[&src, &dst, &payload]);
        }
        match kind_of {
            MsgKind::Request => {
                let r = final_reply(&raw, id, &mut seen);
                assert_eq!(r.src, target.to_bytes(), "{kind}: {name}");
                assert_eq!(r.dst, me.to_bytes(), "{kind}: {name}");
                // A final reply: success, failure, or a typed reply (final kind).
                let reply_kind = docs.get(&r.type_id).map(|(_, k)| k.as_str());
                assert!(
                    reply_kind.is_some_and(|k| k.starts_with("final reply")),
                    "{kind}: {name} answered with type {:#06x}",
                    r.type_id
                );
                let shown = if r.type_id == 0x0002 {
                    format!("failure {:#06x}", r.failure().0)
                } else {
                    docs[&r.type_id].0.clone()
                };
                outcomes.push(format!("{name} -> {shown}"));
                if matches!(target, ServiceId::Other(_)) {
                    check_stored_answer(name, &r);
                } else {
                    check_known_answer(kind, name, &r);
                }
            }
            MsgKind::OneWay => {
                let r = final_reply(&raw, id, &mut seen);
                let (code, why) = r.failure();
                assert_eq!(code, 0x4000, "{kind}: notification {name}: {why}");
                outcomes.push(format!("{name} -> failure 0x4000"));
            }
            MsgKind::Final | MsgKind::Progress => {
                // Never answered; `info` behind it shows it was handled (one socket, in
                // order), and the log says why. Each comes from a connection of its own: the
                // node logs at most 5 such lines per connection in 10 s (src/lograte.rs).
                let own = ServiceId::Client(client << 16 | i as u64);
                let one = Raw::connect(&node.api_endpoint(), own.to_bytes());
                let mut env = env;
                env.src = own;
                let [src, dst, payload] = env.encode_frames().unwrap();
                one.send_frames(&[&src, &dst, &payload]);
                let barrier = 900_000 + i as u64;
                one.send(&manager_id(kind), &payload_of_info(barrier));
                let r = final_reply(&one, barrier, &mut seen);
                assert_eq!(r.type_id, 0x0101);
                dropped.push((id, ty, name.clone()));
                outcomes.push(format!("{name} -> dropped, logged"));
            }
        }
    }
    for (id, _, name) in &dropped {
        assert!(
            !seen.iter().any(|(rid, _)| rid == id),
            "{kind}: {name} (id {id}) was answered"
        );
    }
    // The log lines may trail the replies by a moment (the writer is asynchronous).
    let deadline = std::time::Instant::now() + START_DEADLINE;
    loop {
        let log = node.log_text();
        let missing: Vec<&String> = dropped
            .iter()
            .filter(|(id, ty, _)| {
                !log.lines().any(|l| {
                    l.contains("WARN")
                        && l.contains("dropped: a reply type")
                        && l.contains(&format!("dst={target}"))
                        && l.contains(&format!("id={id}"))
                        && l.contains(&format!("ty={ty:#06x}"))
                })
            })
            .map(|(_, _, name)| name)
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{kind}: no WARN line for {missing:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(dropped.len() >= 20, "{kind}: every reply type is tried");
    println!("{kind}, to {target}:\n  {}", outcomes.join("\n  "));
}

/// `stored` handles the STORE requests and refuses every other request with 0x4000.
fn check_stored_answer(name: &str, r: &Reply) {
    let store = [
        "tables",
        "count",
        "put",
        "get",
        "delete",
        "store_chunk",
        "retrieve_chunk",
        "insert",
        "list_ids",
        "check_unknown",
    ];
    if store.contains(&name) {
        // Handled: its reply, or one of its own failures (an absent key is 0x6001).
        if r.type_id == 0x0002 {
            assert_ne!(r.failure().0, 0x4000, "stored: {name}: {:?}", r.failure());
        }
    } else {
        assert_eq!(r.failure().0, 0x4000, "stored: {name}");
    }
}

fn payload_of_info(id: u64) -> Vec<u8> {
    payload(0x0100, id, &[])
}

/// Answers the docs state precisely (the others are covered by each node's own tests).
fn check_known_answer(kind: &str, name: &str, r: &Reply) {
    let own = |prefix: u16| match kind {
        "lnp" => prefix == 0x02,
        "bp" => prefix == 0x03,
        "rgb" => prefix == 0x04,
        "storm" => prefix == 0x05,
        _ => false,
    };
    match name {
        "info" => assert_eq!(r.type_id, 0x0101, "{kind}: info"),
        "subscribe" | "unsubscribe" => assert_eq!(r.type_id, 0x0001, "{kind}: {name}"),
        "debug_crash" => assert_eq!(r.failure().0, 0x6000, "{kind}: no fault injection"),
        "listen" if kind == "lnp" => {
            assert_eq!(r.type_id, 0x0207, "{kind}: listen is typed");
            let addr = Cursor(&r.body).string();
            let port: u16 = addr.strip_prefix("127.0.0.1:").unwrap().parse().unwrap();
            assert_ne!(port, 0, "the bound port, not the asked one");
        }
        "broadcast" if kind == "bp" => {
            // Two bytes are not a transaction.
            assert_eq!(r.failure().0, 0x1000, "{kind}: broadcast of garbage");
        }
        // The sample issues a real contract; the sample consignment is 7 bytes of magic.
        "rgb_issue" if kind == "rgb" => assert_eq!(r.type_id, 0x0401, "{kind}: {name}"),
        "rgb_import" if kind == "rgb" => assert_eq!(r.failure().0, 0x6003, "{kind}: {name}"),
        "rgb_send" if kind == "rgb" => {
            assert_eq!(r.failure().0, 0x6000, "{kind}: {name} without a Storm node")
        }
        "ping" | "disconnect" | "send_peer_message" if kind == "lnp" => {
            assert_eq!(
                r.failure().0,
                0x6001,
                "{kind}: {name} to a peer not connected"
            );
        }
        _ => {}
    }
    // A request of another node's range: the manager does not handle it.
    let type_prefix = |n: &str| -> Option<u16> {
        let ty = documented_types()
            .into_iter()
            .find(|(_, (name, _))| name == n)?
            .0;
        Some(ty >> 8)
    };
    if let Some(p) = type_prefix(name) {
        if p >= 0x02 && !own(p) {
            assert_eq!(
                r.failure().0,
                0x4000,
                "{kind}: {name} belongs to another node"
            );
        }
    }
}

/// The names docs/API.md section 3 says a node keeps, with examples of its name families.
fn kept_ids(kind: &str, info: &serde_json::Value) -> Vec<Vec<u8>> {
    let manager = match kind {
        "lnp" => "lnpd",
        "bp" => "bpd",
        "rgb" => "rgbd",
        _ => "stormd",
    };
    let mut names = vec![manager.to_string()];
    for e in info["endpoints"].as_array().unwrap() {
        let bus = e["bus"].as_str().unwrap();
        names.push(format!("{bus}-router"));
        names.push(format!("{bus}-bridge"));
    }
    match kind {
        "lnp" => names.extend([
            "channeld".into(),
            "peerd-0011223344556677".into(),
            "peerd-#1".into(),
            "bifrost-0011223344556677".into(),
        ]),
        "bp" => names.extend(["signd".into(), "wired-1".into()]),
        "storm" => names.push("stored".into()),
        "rgb" => names.extend(["containerd-0".into(), "containerd-1".into()]),
        _ => {}
    }
    // The rule covers every service `info` lists.
    for s in info["services"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        assert!(
            names.iter().any(|n| n == name),
            "{kind}: `{name}` is listed by info but not by the reservation rule"
        );
    }
    let mut ids = vec![manager_id(kind)];
    ids.extend(names.iter().map(|n| other_id(n)));
    ids
}

#[test]
fn ids_the_node_keeps_for_itself_are_refused_with_0x2002_on_every_bus() {
    let nodes = start_all();
    for node in &nodes {
        let kind = node.kind;
        let info = node.info_json();
        let kept = kept_ids(kind, &info);
        let endpoints = info["endpoints"].as_array().unwrap();
        assert!(endpoints.len() >= 2, "{kind}: {info}");
        for (b, e) in endpoints.iter().enumerate() {
            let bus = e["bus"].as_str().unwrap();
            // The routing identity is a client id of its own: the `src` frame is what counts.
            let raw = Raw::connect(
                e["endpoint"].as_str().unwrap(),
                client_id(0xb000 + b as u64),
            );
            for (i, src) in kept.iter().enumerate() {
                let id = 10 + i as u64;
                raw.send_frames(&[src, &manager_id(kind), &payload(0x0100, id, &[])]);
                let r = raw.recv_msg();
                let (code, why) = r.failure();
                assert_eq!(
                    (r.request_id, code),
                    (id, 0x2002),
                    "{kind} {bus}: src {src:02x?}: {why}"
                );
                assert_eq!(&r.dst, src, "{kind} {bus}: the reply names the refused id");
            }
            // Ids left to clients, extension services and other nodes are served.
            let other_manager = if kind == "lnp" { 0x30 } else { 0x20 };
            let free = [
                client_id(0x77),
                other_id("my-extension"),
                other_id("peer"),
                vec![other_manager],
            ];
            for (i, src) in free.iter().enumerate() {
                let id = 500 + i as u64;
                raw.send_frames(&[src, &manager_id(kind), &payload(0x0100, id, &[])]);
                let r = raw.recv_msg();
                assert_eq!(
                    (r.request_id, r.type_id),
                    (id, 0x0101),
                    "{kind} {bus}: src {src:02x?} is free to use"
                );
                assert_eq!(&r.dst, src);
            }
        }
        let log = node.log_text();
        assert!(
            log.contains("refused: the source id is kept by the node"),
            "{kind}: refusals are logged:\n{log}"
        );
    }
}

#[test]
fn python_client_from_the_docs_reads_the_typed_listen_address() {
    let node = Node::start("lnp", &[]);
    let out = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/api_client.py"
        ))
        .args([&node.api_endpoint(), "lnp", "listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let addr = v["listening"]
        .as_str()
        .expect("a typed address")
        .to_string();
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{v}"
    );
    // It is the address the node listens on: in `info`, and a TCP connect succeeds.
    let info = node.info_json();
    assert!(
        info["listening"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == addr.as_str()),
        "{info}"
    );
    std::net::TcpStream::connect(&addr).expect("the bound address accepts connections");
    assert_eq!(info["api_version"], 6);

    // nodectl shows the same value, as text and as JSON.
    let json = node.cli(&["listen", "127.0.0.1:0", "--json"]);
    assert!(json.status.success());
    let j: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(j["listening"].as_str().unwrap().starts_with("127.0.0.1:"));
    // A host name is not resolved inside the node: failure 0x1003, named.
    let bad = node.cli(&["listen", "localhost:0"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not an IP address and port"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
