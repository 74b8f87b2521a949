//! Container transfer between two Storm nodes, each joined to its own LNP node, the LNP nodes
//! Bifrost peers: four processes on loopback. A 20 MB random file arrives with the same
//! SHA256; a `kill -9` of the receiving Storm node and a disconnect of the LNP nodes in the
//! middle only pause it, and after the restart only the missing chunks are fetched. A hostile
//! Bifrost peer (driven by hand) is refused case by case while an honest transfer completes; a
//! `kill -9` of the sending Storm node pauses a transfer, which resumes once it is back.

mod common;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::hex::FromHex;
use common::lnpeer::RawBifrost;
use common::*;
use lnpbp_nodes::wire::bifrost::msg::BifrostMsg;
use lnpbp_nodes::wire::storm::container::{
    chunk_id, container_id_bech32, Container, ContainerHeader, ContainerId,
};
use lnpbp_nodes::wire::storm::p2p::{FullId, MessageId, StormP2p};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

const SIZE: usize = 20_000_000;

fn msg_endpoint(lnp: &Node) -> String {
    format!("ipc://{}", lnp.dir.join("msg").display())
}

fn node_id(lnp: &Node) -> String {
    lnp.info_json()["node_id"].as_str().unwrap().to_string()
}

fn reachable(storm: &Node) {
    storm.wait_info("the LNP node reachable", |i| {
        i["lnp"].as_str().unwrap().ends_with("(reachable)")
    });
}

/// A random file of `size` bytes in `dir`, and its SHA256.
fn random_file(dir: &Path, size: usize) -> (std::path::PathBuf, sha256::Hash) {
    let mut data = vec![0u8; size];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ std::process::id() as u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let path = dir.join("random.bin");
    std::fs::write(&path, &data).unwrap();
    (path, sha256::Hash::hash(&data))
}

fn containerize(storm: &Node, file: &Path) -> (String, u64) {
    let out = ok(storm.cli(&["containerize", file.to_str().unwrap(), "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    (
        v["container_id"].as_str().unwrap().to_string(),
        v["chunks"].as_u64().unwrap(),
    )
}

fn transfer(storm: &Node, id: &str) -> Option<serde_json::Value> {
    let out = ok(storm.cli(&["transfers", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|t| t["container_id"] == id)
        .cloned()
}

/// `nodectl storm download ID --wait --json` on `storm`, its lines as they come.
fn follow(storm: &Node, id: &str) -> (Child, std::sync::mpsc::Receiver<serde_json::Value>) {
    json_lines(
        &["storm", "download", id, "--wait", "--json"],
        &storm.dir,
        |_| true,
    )
}

/// Waits for the `container_received` line (failing on a `failed` one).
fn received(rx: &std::sync::mpsc::Receiver<serde_json::Value>) -> serde_json::Value {
    loop {
        let v = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the download ends within 2 minutes");
        assert_ne!(v["state"], "failed", "{v}");
        if v["event"] == "container_received" {
            return v;
        }
    }
}

fn assemble_hash(storm: &Node, id: &str, dir: &Path) -> sha256::Hash {
    let out = dir.join("assembled.bin");
    ok(storm.cli(&["assemble", id, out.to_str().unwrap()]));
    sha256::Hash::hash(&std::fs::read(&out).unwrap())
}

fn chunks_stored(storm: &Node) -> u64 {
    ok(storm.cli(&["store", "count", "chunks"]))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn twenty_megabytes_survive_a_kill_of_the_receiver_and_a_disconnect() {
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let (la, lb) = (Node::start("lnp", &[]), Node::start("lnp", &[]));
    let (a_id, b_id) = (node_id(&la), node_id(&lb));
    let sa = Node::start("storm", &["--lnp", &msg_endpoint(&la)]);
    // B downloads at most 2 MB/s, so the test can act in the middle of a transfer.
    let sb_dir = tmp.path().join("storm-b");
    let rate = [("NODECTL_STORM__MAX_DOWNLOAD_RATE", "2000000")];
    let start_b = |extra: &[&str]| {
        let mut n = Node::spawn_in("storm", &sb_dir, extra, &rate);
        n.wait_ready();
        n
    };
    let mut sb = start_b(&["--lnp", &msg_endpoint(&lb)]);
    connect_bifrost(&la, &lb);
    reachable(&sa);
    reachable(&sb);

    let (file, sha) = random_file(tmp.path(), SIZE);
    let (id, chunks) = containerize(&sa, &file);

    // An offer waits for `accept`.
    ok(sa.cli(&["send", &b_id, &id]));
    wait_until(Duration::from_secs(10), "B sees the offer", || {
        transfer(&sb, &id).is_some_and(|t| t["state"] == "offered")
    });
    let offer = transfer(&sb, &id).unwrap();
    assert_eq!(offer["peer"], a_id.as_str());
    assert_eq!(offer["size"], SIZE as u64);
    assert_eq!(chunks_stored(&sb), 0, "nothing is fetched before accept");
    ok(sb.cli(&["accept", &id]));

    // kill -9 of B's Storm node in the middle.
    wait_until(
        Duration::from_secs(60),
        "a third of the chunks on B",
        || transfer(&sb, &id).is_some_and(|t| t["have"].as_u64().unwrap() >= chunks / 3),
    );
    sb.signal("-KILL");
    assert!(sb.wait_exit(Duration::from_secs(10)).is_some());
    // Restarted alone first: how many chunks made it to disk.
    let alone = start_b(&[]);
    let stored = chunks_stored(&alone);
    assert!(stored > 0 && stored < chunks, "{stored} of {chunks}");
    drop(alone);
    let served_before = transfer(&sa, &id).unwrap()["served"].as_u64().unwrap();

    let sb = start_b(&["--lnp", &msg_endpoint(&lb)]);
    let (mut follower, events) = follow(&sb, &id);
    // A disconnect of the LNP nodes in the middle of the rest.
    wait_until(
        Duration::from_secs(60),
        "more chunks after the restart",
        || transfer(&sb, &id).is_some_and(|t| t["have"].as_u64().unwrap() >= stored + chunks / 6),
    );
    ok(lb.cli(&["disconnect", &a_id, "--bifrost"]));
    wait_until(Duration::from_secs(30), "B's download waits", || {
        transfer(&sb, &id).is_some_and(|t| t["state"] == "waiting")
    });
    let paused = transfer(&sb, &id).unwrap();
    assert!(paused["have"].as_u64().unwrap() < chunks, "{paused}");
    connect_bifrost(&la, &lb);

    let done = received(&events);
    let _ = follower.kill();
    let _ = follower.wait();
    assert_eq!(done["chunks"], chunks);
    assert_eq!(done["had"], stored, "the restart planned from the store");
    assert_eq!(
        done["fetched"].as_u64().unwrap(),
        chunks - stored,
        "only the missing chunks were fetched after the restart"
    );
    // A served each missing chunk, and again only those lost on the wire when the LNP nodes
    // disconnected (at most a window, 64, of requests in flight).
    let served = transfer(&sa, &id).unwrap()["served"].as_u64().unwrap() - served_before;
    assert!(
        (chunks - stored..=chunks - stored + 64).contains(&served),
        "A served {served} chunks for {} missing",
        chunks - stored
    );
    assert_eq!(assemble_hash(&sb, &id, tmp.path()), sha, "the same SHA256");
    assert!(transfer(&sb, &id).is_none(), "the download is over");
    assert!(ok(sb.cli(&["containers"])).contains("bytes"));
}

#[test]
fn a_hostile_bifrost_peer_is_refused_while_an_honest_transfer_completes() {
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let (la, lb) = (Node::start("lnp", &[]), Node::start("lnp", &[]));
    let b_id = node_id(&lb);
    let sa = Node::start("storm", &["--lnp", &msg_endpoint(&la)]);
    // B downloads at most 2 MB/s: the honest transfer lasts while the hostile peer acts.
    let sb = Node::start_env(
        "storm",
        &["--lnp", &msg_endpoint(&lb)],
        &[("NODECTL_STORM__MAX_DOWNLOAD_RATE", "2000000")],
    );
    connect_bifrost(&la, &lb);
    reachable(&sa);
    reachable(&sb);
    let (file, sha) = random_file(tmp.path(), 10_000_000);
    let (id, _) = containerize(&sa, &file);
    ok(sa.cli(&["send", &b_id, &id]));
    wait_until(Duration::from_secs(10), "B sees the offer", || {
        transfer(&sb, &id).is_some()
    });
    ok(sb.cli(&["accept", &id]));
    let (mut follower, events) = follow(&sb, &id);
    let addr = lb.info_json()["bifrost_listening"][0]
        .as_str()
        .unwrap()
        .to_string();

    // The transport: a garbage act, a bad MAC, a length above the limit: each closed.
    let mut g = TcpStream::connect(&addr).unwrap();
    g.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    g.write_all(&[0xAB; 50]).unwrap();
    assert!(
        matches!(g.read(&mut [0u8; 64]), Ok(0) | Err(_)),
        "garbage act"
    );
    let mut h = RawBifrost::connect(&b_id, &addr);
    let ping = BifrostMsg::Ping {
        ignored: vec![],
        pong_size: 1,
    };
    let mut bytes = h.t.encrypt(&ping.encode().unwrap()).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    h.s.write_all(&bytes).unwrap();
    assert_eq!(h.recv(), None, "bad MAC");
    let mut h = RawBifrost::connect(&b_id, &addr);
    let big = h.t.encrypt(&vec![0x13; 100_000]).unwrap();
    h.s.write_all(&big[..19]).unwrap();
    assert_eq!(h.recv(), None, "a length above the limit");
    // An unknown even type: an error, then closed.
    let mut h = RawBifrost::connect(&b_id, &addr);
    let bytes = h.t.encrypt(&[0x40, 0x00]).unwrap();
    h.s.write_all(&bytes).unwrap();
    assert!(matches!(h.recv(), Some(BifrostMsg::Error { .. })));
    assert_eq!(h.recv(), None, "unknown even type");

    // Storm messages from a peer that stays connected.
    let mut h = RawBifrost::connect(&b_id, &addr);
    // A PushChunk whose data does not match its chunk id, from the peer B downloads from: H
    // offers a container of two chunks and answers B's pulls, first with other data.
    let parts: [&[u8]; 2] = [&[0xA1; 3000], &[0xB2; 2000]];
    let offered = Container {
        header: ContainerHeader {
            version: 0,
            mime: "application/octet-stream".into(),
            info: "from a hostile peer".into(),
            size: 5000,
        },
        chunks: parts.iter().map(|p| chunk_id(p)).collect(),
    };
    let cid = offered.id().unwrap();
    let cid_hex = cid.to_string();
    h.send_storm(&StormP2p::AnnounceContainer(
        2,
        offered.header.clone(),
        FullId {
            message_id: MessageId::default(),
            container_id: cid,
        },
    ));
    wait_until(Duration::from_secs(10), "B sees H's offer", || {
        transfer(&sb, &cid_hex).is_some()
    });
    ok(sb.cli(&["accept", &cid_hex]));
    assert!(matches!(h.recv_storm(), Some(StormP2p::PullContainer(2, f)) if f.container_id == cid));
    h.send_storm(&StormP2p::PushContainer(2, offered.clone()));
    // Both chunks asked for (in one request, or two when B's rate cap spaces them).
    let mut asked = std::collections::BTreeSet::new();
    while asked.len() < 2 {
        let Some(StormP2p::PullChunk { chunk_ids, .. }) = h.recv_storm() else {
            panic!("B pulls the chunks");
        };
        asked.extend(chunk_ids);
    }
    assert_eq!(asked, offered.chunks.iter().copied().collect());
    let push = |n: usize, data: &[u8]| StormP2p::PushChunk {
        app: 2,
        container_id: cid,
        chunk_id: offered.chunks[n],
        data: data.to_vec(),
    };
    h.send_storm(&push(0, b"not the data of chunk 0"));
    h.send_storm(&push(1, parts[1]));
    let Some(StormP2p::PullChunk { chunk_ids, .. }) = h.recv_storm() else {
        panic!("B asks again for the chunk whose data did not match");
    };
    assert_eq!(chunk_ids, vec![offered.chunks[0]]);
    h.send_storm(&push(0, parts[0]));
    wait_until(Duration::from_secs(10), "H's container received", || {
        ok(sb.cli(&["download", &cid_hex, "--json"])).contains("\"received\"")
    });
    let out = tmp.path().join("from-h.bin");
    ok(sb.cli(&["assemble", &cid_hex, out.to_str().unwrap()]));
    assert_eq!(std::fs::read(&out).unwrap(), [parts[0], parts[1]].concat());

    // A chunk list that cannot hold the header's size (2 chunks, 1 byte): the download fails
    // on the list, before a chunk is asked for.
    let liar = Container {
        header: ContainerHeader {
            size: 1,
            ..offered.header.clone()
        },
        chunks: offered.chunks.clone(),
    };
    let liar_id = liar.id().unwrap();
    let liar_hex = liar_id.to_string();
    let full = FullId {
        message_id: MessageId::default(),
        container_id: liar_id,
    };
    h.send_storm(&StormP2p::AnnounceContainer(2, liar.header.clone(), full));
    wait_until(Duration::from_secs(10), "B sees the lying offer", || {
        transfer(&sb, &liar_hex).is_some()
    });
    ok(sb.cli(&["accept", &liar_hex]));
    assert!(matches!(h.recv_storm(), Some(StormP2p::PullContainer(2, f)) if f == full));
    h.send_storm(&StormP2p::PushContainer(2, liar));
    wait_until(
        Duration::from_secs(10),
        "the lying download given up",
        || transfer(&sb, &liar_hex).is_none(),
    );
    assert!(!ok(sb.cli(&["containers"])).contains(&container_id_bech32(&liar_id)));

    // Garbage in a Storm payload; chunks nobody asked for (of the honest transfer's
    // container, and of one nobody downloads); a flood of announcements.
    h.send(&BifrostMsg::Msg {
        app: 0x0001,
        payload: vec![0xFF; 40],
    });
    let honest: [u8; 32] = FromHex::from_hex(&id).unwrap();
    for container_id in [honest, [7; 32]] {
        h.send_storm(&StormP2p::PushChunk {
            app: 2,
            container_id: ContainerId(container_id),
            chunk_id: chunk_id(b"junk"),
            data: b"junk".to_vec(),
        });
    }
    for i in 0u32..200 {
        h.send_storm(&StormP2p::AnnounceContainer(
            2,
            ContainerHeader {
                version: 0,
                mime: "application/octet-stream".into(),
                info: String::new(),
                size: 1000,
            },
            FullId {
                message_id: MessageId::default(),
                container_id: ContainerId(sha256::Hash::hash(&i.to_le_bytes()).to_byte_array()),
            },
        ));
    }
    // H is still connected (nothing it sent was worth a close) ...
    h.send(&ping);
    assert_eq!(h.recv(), Some(BifrostMsg::Pong(vec![0])));
    // ... and B kept 16 of its offers, refused the rest and counted each refusal.
    wait_until(Duration::from_secs(10), "H's offers bounded", || {
        let out = ok(sb.cli(&["transfers", "--json"]));
        let list: serde_json::Value = serde_json::from_str(&out).unwrap();
        let from_h = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["peer"] == h.node_id.as_str() && t["state"] == "offered")
            .count();
        assert!(from_h <= 16, "{from_h} offers kept");
        from_h == 16
    });
    let refused = sb.info_json()["storm_refused"].as_u64().unwrap();
    assert!(refused > 1 + 2 + 184, "{refused} refusals counted");
    let junk = sb.cli(&["store", "get", "chunks", &chunk_id(b"junk").to_string()]);
    assert!(!junk.status.success(), "unasked chunks are not stored");

    // The honest transfer completes, intact.
    let done = received(&events);
    let _ = follower.kill();
    let _ = follower.wait();
    assert_eq!(done["container_id"], id.as_str());
    assert_eq!(assemble_hash(&sb, &id, tmp.path()), sha);
}

#[test]
fn python_apps_on_two_storm_nodes_exchange_messages_and_a_container() {
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let (la, lb) = (Node::start("lnp", &[]), Node::start("lnp", &[]));
    let (a_id, b_id) = (node_id(&la), node_id(&lb));
    let sa = Node::start("storm", &["--lnp", &msg_endpoint(&la)]);
    let sb = Node::start("storm", &["--lnp", &msg_endpoint(&lb)]);
    connect_bifrost(&la, &lb);
    reachable(&sa);
    reachable(&sb);
    let (file, _) = random_file(tmp.path(), 300_000);
    let (id, chunks) = containerize(&sa, &file);
    let out = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/storm_client.py"
        ))
        .arg("peer")
        .args([&sa.dir, &sb.dir])
        .args([&a_id, &b_id, &id])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && text.starts_with("ok "),
        "python peer: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&text[3..]).unwrap();
    assert_eq!(v["ping from A"]["from"], a_id.as_str());
    assert_eq!(v["pong from B"]["from"], b_id.as_str());
    assert_eq!(v["container_received"]["chunks"], chunks);
    assert_eq!(v["container_received"]["fetched"], chunks);
    assert_eq!(
        assemble_hash(&sb, &id, tmp.path()),
        sha256::Hash::hash(&std::fs::read(&file).unwrap())
    );
}

#[test]
fn a_kill_of_the_sending_storm_node_only_pauses_the_transfer() {
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let (la, lb) = (Node::start("lnp", &[]), Node::start("lnp", &[]));
    let (a_id, b_id) = (node_id(&la), node_id(&lb));
    let sa_dir = tmp.path().join("storm-a");
    let start_a = || {
        let mut n = Node::spawn_in("storm", &sa_dir, &["--lnp", &msg_endpoint(&la)], &[]);
        n.wait_ready();
        n
    };
    let mut sa = start_a();
    // B accepts A's containers by itself, downloads at most 2 MB/s and gives a chunk 1 s.
    let sb = Node::start_env(
        "storm",
        &["--lnp", &msg_endpoint(&lb), "--auto-accept", &a_id],
        &[
            ("NODECTL_STORM__MAX_DOWNLOAD_RATE", "2000000"),
            ("NODECTL_STORM__CHUNK_TIMEOUT_MS", "1000"),
        ],
    );
    connect_bifrost(&la, &lb);
    reachable(&sa);
    reachable(&sb);
    let (file, sha) = random_file(tmp.path(), 8_000_000);
    let (id, chunks) = containerize(&sa, &file);
    let (mut follower, events) = follow(&sb, &id);
    ok(sa.cli(&["send", &b_id, &id]));
    wait_until(
        Duration::from_secs(30),
        "a quarter of the chunks on B",
        || transfer(&sb, &id).is_some_and(|t| t["have"].as_u64().unwrap() >= chunks / 4),
    );
    sa.signal("-KILL");
    assert!(sa.wait_exit(Duration::from_secs(10)).is_some());
    // B's requests go unanswered: the download waits and retries by itself.
    wait_until(Duration::from_secs(30), "B's download waits", || {
        transfer(&sb, &id).is_some_and(|t| t["state"] == "waiting")
    });
    let sa = start_a();
    reachable(&sa);
    let done = received(&events);
    let _ = follower.kill();
    let _ = follower.wait();
    assert_eq!(done["chunks"], chunks);
    assert_eq!(done["fetched"], chunks, "each chunk fetched once");
    assert_eq!(assemble_hash(&sb, &id, tmp.path()), sha);
    // The restarted A still knows it shared the container with B (STORE table `shares`).
    assert_eq!(transfer(&sa, &id).unwrap()["state"], "shared");
}
