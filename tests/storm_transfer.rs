//! Container transfer between two Storm nodes, each joined to its own LNP node, the LNP nodes
//! Bifrost peers: four processes on loopback. A 20 MB random file arrives with the same
//! SHA256; a `kill -9` of the receiving Storm node and a disconnect of the LNP nodes in the
//! middle only pause it, and after the restart only the missing chunks are fetched.

mod common;

use bitcoin::hashes::{sha256, Hash};
use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SIZE: usize = 20_000_000;

fn msg_endpoint(lnp: &Node) -> String {
    format!("ipc://{}", lnp.dir.join("msg").display())
}

fn node_id(lnp: &Node) -> String {
    lnp.info_json()["node_id"].as_str().unwrap().to_string()
}

fn connect_bifrost(from: &Node, to: &Node) {
    let info = to.info_json();
    let id = info["node_id"].as_str().unwrap();
    let addr = info["bifrost_listening"][0].as_str().unwrap();
    ok(from.cli(&["connect", &format!("bifrost://{id}@{addr}")]));
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
    let mut child = Command::new(NODECTL)
        .args(["storm", "download", id, "--wait", "--json", "--data-dir"])
        .arg(&storm.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if tx.send(v).is_err() {
                    return;
                }
            }
        }
    });
    (child, rx)
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
    // disconnected (at most a window, 16, of requests in flight).
    let served = transfer(&sa, &id).unwrap()["served"].as_u64().unwrap() - served_before;
    assert!(
        (chunks - stored..=chunks - stored + 16).contains(&served),
        "A served {served} chunks for {} missing",
        chunks - stored
    );
    assert_eq!(assemble_hash(&sb, &id, tmp.path()), sha, "the same SHA256");
    assert!(transfer(&sb, &id).is_none(), "the download is over");
    assert!(ok(sb.cli(&["containers"])).contains("bytes"));
}
