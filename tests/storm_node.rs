//! The Storm node: `stored` (the STORE RPC), containers and STORM-bus apps, against real
//! `nodectl` processes: a pyzmq client written from docs/API.md, `kill -9` during writes,
//! 64 concurrent clients with a crash of `stored`, and 20 MB through containers.

mod common;

use common::{ok, python, Node};
use lnpbp_nodes::bus::client::{Client, ClientError};
use lnpbp_nodes::bus::Endpoint;
use lnpbp_nodes::storage::stored_id;
use lnpbp_nodes::wire::api::storm::StormMsg;
use lnpbp_nodes::wire::api::{code, Msg};
use lnpbp_nodes::wire::limits::CONTAINER_CHUNK;
use lnpbp_nodes::wire::storm::container::chunk_id;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HELLO_CONTAINER: &str = "77d75cff43f5c07b5eec8b2b1a8461512e24c9a5c468a95e7eb7ee0c9046dab6";

fn store_client(dir: &Path) -> Client {
    let ep = Endpoint::parse(&format!("ipc://{}", dir.join("store").display()), dir).unwrap();
    Client::connect(&zmq::Context::new(), &ep).expect("connect to STORE")
}

/// A small deterministic generator (no dependency for test randomness).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (t.as_nanos() as u64) | 1
}

fn key(a: u64, b: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&a.to_le_bytes());
    k[8..16].copy_from_slice(&b.to_le_bytes());
    k
}

fn get(c: &mut Client, table: &str, k: [u8; 32]) -> Result<Vec<u8>, ClientError> {
    let msg = StormMsg::Get {
        table: table.into(),
        key: k,
    };
    match c.request(&stored_id(), msg.into(), Duration::from_secs(10), |_| ())? {
        Msg::Storm(StormMsg::Value(v)) => Ok(v),
        other => panic!("unexpected reply {other:?}"),
    }
}

#[test]
fn python_client_from_the_docs_uses_the_store_and_the_storm_bus() {
    let node = Node::start("storm", &["--network", "regtest"]);
    // The storm-core vector, end to end: "hello" as text/plain "greeting".
    let hello = node.dir.parent().unwrap().join("hello.txt");
    std::fs::write(&hello, b"hello").unwrap();
    let out = ok(node.cli(&[
        "containerize",
        hello.to_str().unwrap(),
        "--mime",
        "text/plain",
        "--info",
        "greeting",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["container_id"], HELLO_CONTAINER);
    assert_eq!(
        v["id"],
        "storm1wlt4el6r7hq8khhv3v434prp2yhzfjd9c352jhn7klhqeyzxm2mq9tdsq5"
    );
    assert_eq!(v["chunks"], 1);

    for mode in ["store", "app"] {
        let out = Command::new(python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/storm_client.py"
            ))
            .arg(mode)
            .arg(&node.dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success() && text.starts_with("ok "),
            "python {mode}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_str(&text[3..]).unwrap();
        if mode == "store" {
            assert_eq!(
                v["chunk_id"],
                "f28ec83406d9fa6bc8b11b6b4aaccd458d1482a0e1ba5b0c9867df3130465200"
            );
            assert_eq!(v["bad_input_codes"]["bad_table"], "0x1003");
            assert_eq!(v["bad_input_codes"]["oversized_value"], "0x1002");
            assert_eq!(v["bad_input_codes"]["short_key"], "0x1000");
            assert_eq!(v["bad_input_codes"]["unknown_operation"], "0x1001");
            assert_eq!(v["bad_input_codes"]["truncated"], "0x1000");
            assert_eq!(v["serving_after_bad_input"], true);
        } else {
            assert_eq!(v["registered"], true);
            assert_eq!(v["containers"][0]["id"], HELLO_CONTAINER);
            assert_eq!(v["taken_code"], "0x6002");
            assert_eq!(v["unregistered_code"], "0x6001");
            assert_eq!(v["app_message"]["payload"], "hi app");
        }
    }
    // Bad input left nothing behind: nothing restarted.
    let info = node.info_json();
    for s in info["services"].as_array().unwrap() {
        assert_eq!(s["restarts"], 0, "{s}");
    }
    assert_eq!(info["containers"], 1);
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    let tmp = tempfile::Builder::new()
        .prefix("n")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = tmp.path().join("storm");
    let mut rng = Rng(seed());
    let mut acked: Vec<([u8; 32], Vec<u8>)> = Vec::new();
    let cycles = 6;
    for cycle in 0..cycles {
        let mut node = Node::spawn_in("storm", &dir, &["--network", "regtest"], &[]);
        node.wait_ready();
        assert!(
            !node.log_text().contains("cannot open"),
            "{}",
            node.log_text()
        );
        // Everything acknowledged before is there, byte for byte.
        let mut c = store_client(&dir);
        for (k, v) in &acked {
            let got = get(&mut c, "acked", *k)
                .unwrap_or_else(|e| panic!("cycle {cycle}: acknowledged write lost: {e}"));
            assert_eq!(&got, v, "cycle {cycle}: acknowledged write changed");
        }
        if cycle == cycles - 1 {
            break;
        }
        // A writer makes sequential puts; the node is killed at a random moment.
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, dir2, mut wrng) = (stop.clone(), dir.clone(), Rng(rng.next() | 1));
        let writer = std::thread::spawn(move || {
            let mut c = store_client(&dir2);
            let mut done = Vec::new();
            let mut i = 0u64;
            while !stop2.load(Ordering::Relaxed) {
                let k = key(cycle, i);
                let len = 64 + (wrng.next() % 2000) as usize;
                let v = wrng.bytes(len);
                let put = StormMsg::Put {
                    table: "acked".into(),
                    key: k,
                    value: v.clone(),
                };
                match c.request(&stored_id(), put.into(), Duration::from_secs(2), |_| ()) {
                    Ok(Msg::Success(_)) => done.push((k, v)),
                    Ok(other) => panic!("unexpected reply {other:?}"),
                    Err(_) => break, // the node is gone: this write was not acknowledged
                }
                i += 1;
            }
            done
        });
        std::thread::sleep(Duration::from_millis(100 + rng.next() % 400));
        node.child.as_mut().unwrap().kill().unwrap(); // SIGKILL
        node.child.as_mut().unwrap().wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        let done = writer.join().unwrap();
        assert!(!done.is_empty(), "cycle {cycle}: no write was acknowledged");
        acked.extend(done);
    }
    assert!(acked.len() >= 5, "{} writes", acked.len());
}

#[test]
fn sixty_four_clients_get_one_reply_each_and_a_crash_fails_only_requests_in_flight() {
    let node = Node::start("storm", &["--network", "regtest", "--fault-injection"]);
    let stop = Arc::new(AtomicBool::new(false));
    let crash_failures = Arc::new(AtomicUsize::new(0));
    let acked: Arc<Mutex<HashMap<[u8; 32], Vec<u8>>>> = Arc::default();
    let mut threads = Vec::new();
    for t in 0..64u64 {
        let (dir, stop, failures, acked) = (
            node.dir.clone(),
            stop.clone(),
            crash_failures.clone(),
            acked.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut c = store_client(&dir);
            let mut rng = Rng(seed() ^ ((t + 1) * 0x9E37_79B9));
            let mut replies = 0usize;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (k, v) = (key(t, i), rng.bytes(1024));
                let put = StormMsg::Put {
                    table: "many".into(),
                    key: k,
                    value: v.clone(),
                };
                let id = c.send(&stored_id(), put.into()).unwrap();
                // Exactly one final reply to this request, and nothing for any other.
                loop {
                    let env = c.recv(Duration::from_secs(20)).expect("a reply");
                    assert_eq!(env.request_id, id, "a reply to an answered request");
                    match env.msg {
                        Msg::Progress(_) => continue,
                        Msg::Success(_) => {
                            acked.lock().unwrap().insert(k, v);
                        }
                        Msg::Failure { code: c, message } => {
                            assert!(
                                c == code::SERVICE_FAILED || c == code::BUSY,
                                "failure {c:#06x}: {message}"
                            );
                            if c == code::SERVICE_FAILED {
                                failures.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        other => panic!("unexpected reply {other:?}"),
                    }
                    replies += 1;
                    break;
                }
                i += 1;
            }
            // No late second reply arrives.
            assert!(
                c.recv(Duration::from_millis(500)).is_err(),
                "an extra message"
            );
            (replies, i as usize)
        }));
    }
    // Let the writes flow, then crash stored until a crash caught writes in flight.
    std::thread::sleep(Duration::from_millis(500));
    let mut crashes = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while crash_failures.load(Ordering::Relaxed) == 0 {
        assert!(
            Instant::now() < deadline,
            "no crash caught a write in flight"
        );
        ok(node.cli(&["debug", "crash", "stored"]));
        crashes += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let mut sent = 0;
    for th in threads {
        let (replies, requests) = th.join().unwrap();
        assert_eq!(replies, requests, "one reply per request");
        sent += requests;
    }
    // stored restarted, and every acknowledged write is there.
    let info = node.wait_info("stored running again", |i| {
        common::service(i, "stored")["state"] == "running"
    });
    assert!(
        common::service(&info, "stored")["restarts"]
            .as_u64()
            .unwrap()
            >= crashes
    );
    let acked = acked.lock().unwrap();
    let mut c = store_client(&node.dir);
    for (k, v) in acked.iter() {
        assert_eq!(&get(&mut c, "many", *k).unwrap(), v);
    }
    eprintln!(
        "{sent} puts from 64 clients, {} acknowledged, {} failed by {crashes} crash(es)",
        acked.len(),
        crash_failures.load(Ordering::Relaxed)
    );
}

#[test]
fn twenty_megabytes_through_containers_and_an_altered_chunk_is_named() {
    let node = Node::start("storm", &["--network", "regtest"]);
    let work = node.dir.parent().unwrap().to_path_buf();
    let file = work.join("big.bin");
    let content = Rng(seed()).bytes(20_000_000);
    std::fs::write(&file, &content).unwrap();
    let out = ok(node.cli(&["containerize", file.to_str().unwrap(), "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = v["container_id"].as_str().unwrap().to_string();
    assert_eq!(v["size"], 20_000_000);
    assert_eq!(
        v["chunks"].as_u64().unwrap() as usize,
        content.len().div_ceil(CONTAINER_CHUNK)
    );
    let listed = ok(node.cli(&["containers", "--json"]));
    assert!(listed.contains(&id), "{listed}");

    // By hex and by storm1… id: byte-identical.
    let back = work.join("back.bin");
    ok(node.cli(&["assemble", &id, back.to_str().unwrap()]));
    assert!(
        std::fs::read(&back).unwrap() == content,
        "assembled bytes differ"
    );
    let bech = v["id"].as_str().unwrap();
    let back2 = work.join("back2.bin");
    ok(node.cli(&["assemble", bech, back2.to_str().unwrap()]));
    assert!(std::fs::read(&back2).unwrap() == content);

    // Alter chunk #1 in the store: assemble names it and writes nothing.
    let victim = chunk_id(&content[CONTAINER_CHUNK..2 * CONTAINER_CHUNK]);
    let junk = work.join("junk");
    std::fs::write(&junk, b"not the chunk").unwrap();
    let hex: String = victim
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    ok(node.cli(&["store", "put", "chunks", &hex, junk.to_str().unwrap()]));
    let bad = work.join("bad.bin");
    let out = node.cli(&["assemble", &id, bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&hex) && err.contains("#1"), "{err}");
    assert!(err.contains("0x6003"), "{err}");
    assert!(!bad.exists(), "an output file was written");
    let leftovers: Vec<_> = std::fs::read_dir(&work)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
}
