//! BP Node on the Bitcoin network (issue 4): a real full node (bcoin, npm) as the other side on
//! 127.0.0.1 regtest, BLOCKS subscribers, restart from the store, and hostile peers.

mod common;

use common::bcoin::{tip, wait_tip, Bcoin};
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Display-order hex of an internal-order hash.
fn display(hash: &[u8]) -> String {
    hash.iter().rev().map(|b| format!("{b:02x}")).collect()
}

/// (type, height, display hash) of the next BLOCKS event.
fn next_event(sub: &Raw) -> (u16, u32, String) {
    let r = sub.recv_msg();
    assert!(matches!(r.type_id, 0x0311 | 0x0312), "{r:?}");
    assert_eq!(
        r.request_id, 1,
        "events carry the subscription's request id"
    );
    let mut c = Cursor(&r.body);
    let height = c.u32();
    let hash = display(&c.take(32));
    (r.type_id, height, hash)
}

#[test]
fn follows_bcoin_publishes_block_events_reorganises_and_fetches_blocks() {
    let mut bcoin = Bcoin::start(300);
    let node = Node::start("bp", &["--network", "regtest", "--connect", &bcoin.addr()]);
    let t = bcoin.cmd("tip");
    wait_tip(&node, t["hash"].as_str().unwrap());
    assert_eq!(tip(&node).0, 300);
    let peers: serde_json::Value =
        serde_json::from_str(&ok(node.cli(&["peers", "--json"]))).unwrap();
    assert_eq!(peers[0]["user_agent"], "/bcoin:v1.0.2/");
    assert_eq!(peers[0]["direction"], "outbound");
    assert_eq!(node.info_json()["sync"], "100.0%");

    // A subscriber on the BLOCKS bus (written here from docs/API.md), and `nodectl bp watch`.
    let blocks = format!("ipc://{}", node.dir.join("blocks").display());
    let sub = Raw::connect(&blocks, client_id(77));
    sub.send(&manager_id("bp"), &payload(0x0310, 1, &[]));
    assert_eq!(sub.recv_msg().type_id, 0x0001);
    let mut watch = Command::new(NODECTL)
        .args(["bp", "watch", "--json", "--data-dir"])
        .arg(&node.dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut watch_out = BufReader::new(watch.stdout.take().unwrap());
    let mut line = String::new();
    watch_out.read_line(&mut line).unwrap();
    assert!(line.contains("subscribed"), "{line}");

    // One more block: block_connected for it.
    let mined = bcoin.cmd("mine 1");
    let hash301 = mined["hash"].as_str().unwrap().to_string();
    assert_eq!(next_event(&sub), (0x0311, 301, hash301.clone()));

    // A longer competing branch from height 299: 301 and 300 leave, 300' 301' 302' join.
    let r = bcoin.cmd("reorg 2");
    assert_eq!(r["fork"], 299);
    let new_tip = r["hash"].as_str().unwrap().to_string();
    let h300_new = tip_hash_at(&mut bcoin, 300);
    assert_eq!(next_event(&sub), (0x0312, 301, hash301.clone()));
    let (t, h, _) = next_event(&sub);
    assert_eq!((t, h), (0x0312, 300));
    let mut joined = Vec::new();
    for _ in 0..3 {
        let (t, h, hash) = next_event(&sub);
        assert_eq!(t, 0x0311);
        joined.push((h, hash));
    }
    assert_eq!(
        joined.iter().map(|j| j.0).collect::<Vec<_>>(),
        vec![300, 301, 302]
    );
    assert_eq!(joined[0].1, h300_new, "bcoin's new block 300");
    assert_eq!(joined[2].1, new_tip);
    wait_tip(&node, &new_tip);

    // The same events reached `nodectl bp watch`, in order.
    let mut seen = Vec::new();
    for _ in 0..6 {
        line.clear();
        watch_out.read_line(&mut line).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        seen.push((
            v["event"].as_str().unwrap().to_string(),
            v["height"].as_u64().unwrap(),
        ));
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let expect: Vec<(String, u64)> = [
        ("block_connected", 301),
        ("block_disconnected", 301),
        ("block_disconnected", 300),
        ("block_connected", 300),
        ("block_connected", 301),
        ("block_connected", 302),
    ]
    .iter()
    .map(|(e, h)| (e.to_string(), *h))
    .collect();
    assert_eq!(seen, expect);

    // A block fetched from the peer: the same bytes bcoin has, and its hash.
    let raw = ok(node.cli(&["block", &new_tip]));
    let theirs = bcoin.cmd(&format!("block {new_tip}"));
    assert_eq!(raw.trim(), theirs["hex"].as_str().unwrap());
    let summary: serde_json::Value =
        serde_json::from_str(&ok(node.cli(&["block", "302", "--json"]))).unwrap();
    assert_eq!(summary["computed_hash"], new_tip.as_str());
    assert_eq!(summary["tx_count"], 1);
    let header: serde_json::Value =
        serde_json::from_str(&ok(node.cli(&["header", "300", "--json"]))).unwrap();
    assert_eq!(header["hash"], h300_new.as_str());
    let missing = node.cli(&["block", "999"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no block at height 999"));
}

fn tip_hash_at(bcoin: &mut Bcoin, height: u32) -> String {
    bcoin.cmd(&format!("hash {height}"))["hash"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_restart_resumes_from_the_stored_chain_without_fetching_it_again() {
    let mut bcoin = Bcoin::start(200);
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let dir = tmp.path().join("bp");
    let mut node = Node::spawn_in(
        "bp",
        &dir,
        &["--network", "regtest", "--connect", &bcoin.addr()],
        &[],
    );
    node.wait_ready();
    let t = bcoin.cmd("tip");
    wait_tip(&node, t["hash"].as_str().unwrap());
    node.signal("-TERM");
    assert!(node.wait_exit(Duration::from_secs(5)).unwrap().success());

    // No peer at all: the tip is back from the store.
    let mut again = Node::spawn_in("bp", &dir, &["--network", "regtest"], &[]);
    again.wait_ready();
    assert_eq!(tip(&again), (200, t["hash"].as_str().unwrap().to_string()));
    assert_eq!(again.info_json()["peers"], 0);
    assert!(again.log_text().contains("restored=200"));
    // Connected again, it only learns what is new.
    ok(again.cli(&["connect", &bcoin.addr()]));
    let next = bcoin.cmd("mine 1");
    wait_tip(&again, next["hash"].as_str().unwrap());
    assert_eq!(
        again.info_json()["headers"],
        202,
        "genesis + 200 stored + 1 new"
    );
    let log = again.log_text();
    assert_eq!(log.matches("new tip").count(), 1, "{log}");
}

fn hostile(addr: &str, case: &str) -> serde_json::Value {
    hostile_with(addr, case, &[])
}

/// btc_hostile.py CASE with more arguments, to its one JSON line.
fn hostile_with(addr: &str, case: &str, more: &[&std::ffi::OsStr]) -> serde_json::Value {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let out = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/btc_hostile.py"
        ))
        .args([host, port, case])
        .args(more)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "btc_hostile.py {case}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn hostile_peers_are_handled_as_core_does_while_an_honest_peer_is_served() {
    let mut bcoin = Bcoin::start(50);
    let node = Node::start(
        "bp",
        &[
            "--network",
            "regtest",
            "--connect",
            &bcoin.addr(),
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let t = bcoin.cmd("tip");
    wait_tip(&node, t["hash"].as_str().unwrap());
    let addr = node.info_json()["listening"][0]
        .as_str()
        .unwrap()
        .to_string();
    let honest_follows = |bcoin: &mut Bcoin, case: &str| {
        let next = bcoin.cmd("mine 1");
        let hash = next["hash"].as_str().unwrap().to_string();
        wait_until(
            Duration::from_secs(30),
            &format!("honest tip after {case}"),
            || tip(&node).1 == hash,
        );
    };

    // Bad magic: disconnected before anything is read.
    assert_eq!(
        hostile(&addr, "bad_magic"),
        serde_json::json!({"closed": true})
    );
    // Bad checksum: that message is dropped, the peer kept (its next ping is answered).
    assert_eq!(
        hostile(&addr, "bad_checksum"),
        serde_json::json!({"pong": 7})
    );
    // A declared length of 4,000,001: disconnected on the header, no payload awaited.
    assert_eq!(
        hostile(&addr, "oversize"),
        serde_json::json!({"closed": true})
    );
    honest_follows(&mut bcoin, "framing cases");
    // A flood of unknown messages (20 MB): dropped one by one, the peer is still answered.
    let r = hostile(&addr, "junk_flood");
    assert_eq!(r["pong"], 9, "{r}");
    honest_follows(&mut bcoin, "the junk flood");
    // Headers that do not connect: the 10th in a row disconnects and discourages.
    let r = hostile(&addr, "unconnecting");
    assert_eq!(r["closed_after"], 10, "{r}");
    // Headers with bad proof of work: disconnected and discouraged (refused on return).
    let r = hostile(&addr, "bad_pow");
    assert_eq!(
        r,
        serde_json::json!({"closed": true, "refused_after": true})
    );
    honest_follows(&mut bcoin, "the header cases");

    let log = node.log_text();
    assert!(log.contains("bad magic"), "{log}");
    assert!(log.contains("declared payload of 4000001 bytes"));
    assert!(log.contains("does not meet its target"));
    assert!(log.contains("refusing a connection: discouraged"));
    assert_eq!(node.info_json()["peers"], 1, "only bcoin is left");
    // The header store holds the best chain only: the hostile headers were not kept.
    assert_eq!(node.info_json()["headers"], tip(&node).0 + 1);
}

#[test]
fn broadcast_announces_a_transaction_and_serves_it_to_peers() {
    let node = Node::start("bp", &["--network", "regtest", "--listen", "127.0.0.1:0"]);
    let addr = node.info_json()["listening"][0]
        .as_str()
        .unwrap()
        .to_string();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut peer = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/btc_hostile.py"
        ))
        .args([host, port, "take_tx"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(peer.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    wait_until(Duration::from_secs(5), "peer listed", || {
        node.info_json()["peers"] == 1
    });
    // A version-2 transaction: one input (a made-up outpoint), one 1,000-sat output.
    let tx = concat!(
        "02000000",
        "01",
        "1111111111111111111111111111111111111111111111111111111111111111",
        "00000000",
        "00",
        "ffffffff",
        "01",
        "e803000000000000",
        "160014",
        "2222222222222222222222222222222222222222",
        "00000000"
    );
    let said = ok(node.cli(&["broadcast", tx]));
    assert!(said.trim().ends_with("announced to 1 peer(s)"), "{said}");
    line.clear();
    out.read_line(&mut line).unwrap();
    let got: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(got["tx"], tx, "the peer got the same bytes");
    assert_eq!(
        got["inv_type"], 1,
        "by txid: this peer did not send wtxidrelay"
    );
    assert!(peer.wait().unwrap().success());
    // The typed reply (API version 2): the txid and the peer count, as values.
    let again: serde_json::Value =
        serde_json::from_str(&ok(node.cli(&["broadcast", tx, "--json"]))).unwrap();
    let txid = said.split_whitespace().next().unwrap();
    assert_eq!(again["txid"], txid, "{again}");
    assert!(again["peers"].is_u64(), "{again}");
    let bad = node.cli(&["broadcast", "00"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a transaction"));
}

/// The node's `info`, until its index reaches `height` (with nothing left to download).
fn wait_indexed(node: &Node, height: u64) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    wait_until(
        Duration::from_secs(60),
        &format!("indexed to {height}"),
        || {
            last = node.info_json();
            last["indexed"]
                .as_str()
                .is_some_and(|r| r.ends_with(&format!("..={height}")))
        },
    );
    last
}

fn bp_tx(node: &Node, txid: &str) -> serde_json::Value {
    serde_json::from_str(&ok(node.cli(&["tx", txid, "--json"]))).unwrap()
}

#[test]
fn bp_tx_says_where_bcoin_mined_a_transaction_that_is_not_ours() {
    let mut bcoin = Bcoin::start(110);
    let node = Node::start("bp", &["--network", "regtest", "--connect", &bcoin.addr()]);
    // Two payments of bcoin's own wallet to a script of nobody here, in one block.
    let script = format!("0014{}", "22".repeat(20));
    let a = bcoin.cmd(&format!("send {script} 150000"))["txid"]
        .as_str()
        .unwrap()
        .to_string();
    let b = bcoin.cmd(&format!("send {script} 250000"))["txid"]
        .as_str()
        .unwrap()
        .to_string();
    bcoin.cmd("mine 3");
    let info = wait_indexed(&node, 113);
    assert_eq!(info["indexed"], "0..=113");
    // Genesis and 113 coinbases, and the two payments.
    assert_eq!(info["indexed_txs"], 116, "{info}");
    for txid in [&a, &b] {
        let theirs = bcoin.cmd(&format!("txmeta {txid}"));
        let ours = bp_tx(&node, txid);
        assert_eq!(ours["status"], "mined", "{ours}");
        assert_eq!(ours["height"], theirs["height"]);
        assert_eq!(ours["block"], theirs["block"]);
        assert_eq!(ours["position"], theirs["index"]);
        assert_eq!(ours["confirmations"], 3);
        // The body (from the recent blocks in memory); the node checked its txid.
        let raw = ours["tx"].as_str().unwrap();
        let text = String::from_utf8(node.cli(&["tx", txid]).stdout).unwrap();
        assert!(text.contains(raw), "{text}");
        assert!(text.contains("position"), "{text}");
    }
    // A coinbase: position 0.
    let block112 = bcoin.cmd("hash 112")["hash"].as_str().unwrap().to_string();
    let summary: serde_json::Value =
        serde_json::from_str(&ok(node.cli(&["block", &block112, "--json"]))).unwrap();
    let coinbase = summary["txids"][0].as_str().unwrap().to_string();
    let cb = bp_tx(&node, &coinbase);
    assert_eq!(
        (cb["height"].as_u64(), cb["position"].as_u64()),
        (Some(112), Some(0))
    );
    // A txid nobody has: unknown, with the range that was searched.
    let unknown = bp_tx(&node, &"ab".repeat(32));
    assert_eq!(unknown["status"], "unknown");
    assert_eq!(
        unknown["indexed"],
        serde_json::json!({"from": 0, "to": 113})
    );
    assert!(unknown["tx"].is_null());
    let bad = node.cli(&["tx", "xyz"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a txid"));
}

/// The last indexed height, from `info`'s `indexed` ("FROM..=TO").
fn indexed_to(info: &serde_json::Value) -> Option<u64> {
    info["indexed"].as_str()?.split("..=").nth(1)?.parse().ok()
}

#[test]
fn kill_9_five_times_during_the_download_then_every_transaction_is_indexed_once() {
    let mut bcoin = Bcoin::start(0);
    // 2,000 blocks, each (once coinbases mature) with a payment besides its coinbase.
    let filled = bcoin.cmd("fill 2000 1");
    let sent = filled["sent"].as_u64().unwrap();
    let total = 1 + 2000 + sent;
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let dir = tmp.path().join("bp");
    let args = ["--network", "regtest", "--connect", &bcoin.addr()];
    let mut node = Node::spawn_in("bp", &dir, &args, &[]);
    node.wait_ready();
    let mut seen = 0;
    for kill in 1..=5 {
        // Some progress since the last start, then kill -9 mid-download (`info` asked by a raw
        // client on the API socket: a nodectl process per poll would let the download run on).
        let raw = Raw::connect(&node.api_endpoint(), client_id(kill));
        let mut at = 0;
        let mut id = 0;
        // Polled without a pause, so that the kill comes right after the first progress.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while at <= seen {
            assert!(std::time::Instant::now() < deadline, "no download progress");
            id += 1;
            raw.send(&manager_id("bp"), &payload(0x0100, id, &[]));
            at = indexed_to(&node_info_json(&raw.recv_msg().body)).unwrap_or(0);
        }
        node.signal("-KILL");
        node.wait_exit(Duration::from_secs(5)).expect("killed");
        eprintln!("kill {kill}: indexed to {at}");
        // A fast machine may finish the last stretch between two polls: the first three kills
        // must come mid-download, the later ones when they can.
        assert!(
            at < 2000 || kill > 3,
            "the download finished before kill {kill}: nothing to show"
        );
        node = Node::spawn_in("bp", &dir, &args, &[]);
        node.wait_ready();
        // What `info` reported before the kill was committed: the download resumes from there.
        let back = indexed_to(&node.info_json()).unwrap_or(0);
        assert!(back >= at, "kill {kill}: indexed to {at}, back at {back}");
        seen = back;
        if seen >= 2000 {
            break;
        }
    }
    let info = wait_indexed(&node, 2000);
    assert_eq!(info["indexed"], "0..=2000");
    assert_eq!(info["indexed_txs"], total, "every transaction once: {info}");
    // A block of the range that was downloaded across kills: each of its transactions is at
    // its place.
    for height in ["700", "1500"] {
        let block: serde_json::Value =
            serde_json::from_str(&ok(node.cli(&["block", height, "--json"]))).unwrap();
        for (pos, txid) in block["txids"].as_array().unwrap().iter().enumerate() {
            let t = bp_tx(&node, txid.as_str().unwrap());
            assert_eq!(t["height"].to_string(), height);
            assert_eq!(t["position"], pos);
            // Block 700 was indexed before the last restart: its body comes from bcoin.
            assert!(t["tx"].is_string(), "{t}");
        }
    }
}

/// btc_hostile.py's block cases: it serves the chain in `file` with the block at `height` broken.
fn hostile_blocks(
    addr: &str,
    case: &str,
    file: &std::path::Path,
    height: u32,
) -> serde_json::Value {
    let height = height.to_string();
    hostile_with(addr, case, &[file.as_os_str(), height.as_ref()])
}

#[test]
fn hostile_blocks_are_refused_nothing_of_them_is_indexed_and_an_honest_peer_finishes() {
    let mut bcoin = Bcoin::start(110);
    // Block 111 with three transactions (an odd count above one: its list can be mutated).
    let script = format!("0014{}", "44".repeat(20));
    let mut payments = Vec::new();
    for sats in [120_000, 130_000] {
        let r = bcoin.cmd(&format!("send {script} {sats}"));
        payments.push(r["txid"].as_str().unwrap().to_string());
    }
    bcoin.cmd("mine 2");
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let file = tmp.path().join("chain.hex");
    let mut chain = String::new();
    for h in 1..=112 {
        let hash = tip_hash_at(&mut bcoin, h);
        chain.push_str(bcoin.cmd(&format!("block {hash}"))["hex"].as_str().unwrap());
        chain.push('\n');
    }
    std::fs::write(&file, chain).unwrap();
    let node = Node::start("bp", &["--network", "regtest", "--listen", "127.0.0.1:0"]);
    let addr = node.info_json()["listening"][0]
        .as_str()
        .unwrap()
        .to_string();
    let refused = |r: &serde_json::Value, case: &str| {
        assert_eq!(r["closed"], true, "{case}: {r}");
        assert_eq!(r["bad_sent"], true, "{case}: {r}");
        assert_eq!(r["refused_after"], true, "{case}: discouraged: {r}");
    };

    // A block of its own at height 3, above the size limit (valid header and merkle root).
    let r = hostile_blocks(&addr, "heavy", &file, 3);
    refused(&r, "heavy");
    wait_indexed(&node, 2);
    // Block 4 with a changed transaction under the same header.
    let r = hostile_blocks(&addr, "bad_merkle", &file, 4);
    refused(&r, "bad_merkle");
    wait_indexed(&node, 3);
    // Block 111 with its last transaction repeated: the same merkle root.
    let r = hostile_blocks(&addr, "mutated", &file, 111);
    refused(&r, "mutated");
    wait_indexed(&node, 110);
    for txid in &payments {
        assert_eq!(bp_tx(&node, txid)["status"], "unknown");
    }
    // A block nobody asked that peer for.
    let r = hostile_blocks(&addr, "unrequested", &file, 5);
    refused(&r, "unrequested");
    let info = node.info_json();
    assert_eq!(info["indexed"], "0..=110", "{info}");
    assert_eq!(info["indexed_txs"], 111);

    let log = node.log_text();
    for why in [
        "weight units, above 4000000",
        "do not match the header's merkle root",
        "mutated transaction list",
        "which we did not ask for",
    ] {
        assert!(log.contains(why), "{why}: {log}");
    }
    // The honest peer: the download finishes, and 111 is indexed as bcoin has it.
    ok(node.cli(&["connect", &bcoin.addr()]));
    let info = wait_indexed(&node, 112);
    assert_eq!(info["indexed_txs"], 1 + 112 + 2);
    for txid in &payments {
        let t = bp_tx(&node, txid);
        assert_eq!(t["height"], 111);
        assert_eq!(t["block"], tip_hash_at(&mut bcoin, 111));
    }
}

/// `nodectl bp watch ARGS --json` running, and its JSON lines.
struct Watcher {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Watcher {
    fn start(node: &Node, args: &[&str]) -> Watcher {
        let mut child = Command::new(NODECTL)
            .args(["bp", "watch", "--json"])
            .args(args)
            .arg("--data-dir")
            .arg(&node.dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut w = Watcher { child, out };
        assert_eq!(w.next()["event"], "watching");
        w
    }

    /// The next event other than `tx_seen` (whether a relayed transaction arrives before its
    /// block is a race of the peers).
    fn next(&mut self) -> serde_json::Value {
        loop {
            let e = self.next_any();
            if e["event"] != "tx_seen" {
                return e;
            }
        }
    }

    fn next_any(&mut self) -> serde_json::Value {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("bp watch printed `{line}`"))
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watches_report_payments_spends_and_reorganisations_as_they_happen() {
    let mut bcoin = Bcoin::start(110);
    let node = Node::start("bp", &["--network", "regtest", "--connect", &bcoin.addr()]);
    wait_indexed(&node, 110);
    let addr: serde_json::Value =
        serde_json::from_str(&ok(node.cli(&["address", "--json"]))).unwrap();
    let address = addr["address"].as_str().unwrap();
    let script = addr["script"].as_str().unwrap();
    let mut by_address = Watcher::start(&node, &["--address", address]);

    // A payment to our address: seen as bcoin relays it, then mined at 111.
    let paid = bcoin.cmd(&format!("send {script} 150000"));
    let txid = paid["txid"].as_str().unwrap().to_string();
    let seen = by_address.next_any();
    assert_eq!(
        (seen["event"].as_str(), seen["txid"].as_str()),
        (Some("tx_seen"), Some(txid.as_str())),
        "{seen}"
    );
    assert_eq!(bp_tx(&node, &txid)["status"], "mempool");
    let unconfirmed = bp_json(&node, &["balance"]);
    assert_eq!(unconfirmed["unconfirmed"], 150_000, "{unconfirmed}");
    bcoin.cmd("mine 1");
    let e = by_address.next();
    assert_eq!(
        (
            e["event"].as_str(),
            e["txid"].as_str(),
            e["height"].as_u64()
        ),
        (Some("tx_confirmed"), Some(txid.as_str()), Some(111)),
        "{e}"
    );
    let raw = e["tx"].as_str().unwrap().to_string();
    let vout = e["vout"].as_u64().unwrap();
    let tx: bitcoin::Transaction = bitcoin::consensus::deserialize(&hex_decode(&raw)).unwrap();
    assert_eq!(tx.output[vout as usize].value.to_sat(), 150_000);

    // bcoin replaces block 111 by a longer branch without it: tx_unconfirmed.
    bcoin.cmd("reorg 1");
    let e = by_address.next();
    assert_eq!(
        (
            e["event"].as_str(),
            e["txid"].as_str(),
            e["height"].as_u64()
        ),
        (Some("tx_unconfirmed"), Some(txid.as_str()), Some(111)),
        "{e}"
    );
    assert_eq!(bp_tx(&node, &txid)["status"], "unknown");
    // Mined again (bcoin's reset dropped it from its mempool: offered again): confirmed again.
    assert_eq!(bcoin.cmd(&format!("verdict {raw}"))["ok"], true);
    bcoin.cmd("mine 1");
    let e = by_address.next();
    assert_eq!(
        (
            e["event"].as_str(),
            e["txid"].as_str(),
            e["height"].as_u64()
        ),
        (Some("tx_confirmed"), Some(txid.as_str()), Some(113)),
        "{e}"
    );
    assert_eq!(bp_tx(&node, &txid)["height"], 113);

    // An outpoint of bcoin's (the change of a payment) and its spend by a bcoin transaction.
    let other = bcoin.cmd(&format!("send 0014{} 20000", "66".repeat(20)));
    let outpoint = format!("{}:{}", other["txid"].as_str().unwrap(), other["change"]);
    bcoin.cmd("mine 1");
    let mut by_outpoint = Watcher::start(&node, &["--outpoint", &outpoint]);
    let spend = bcoin.cmd(&format!("spend {outpoint}"));
    let spender = spend["txid"].as_str().unwrap();
    let mined = bcoin.cmd("mine 1");
    let e = by_outpoint.next();
    assert_eq!(e["event"], "outpoint_spent", "{e}");
    assert_eq!(e["txid"], spender);
    assert_eq!(e["spent"], outpoint.as_str());
    assert_eq!(e["height"], mined["height"]);
    assert_eq!(e["input"], 0);
    // The payment's own watch is unchanged: nothing new for it.
    let list: serde_json::Value = serde_json::from_str(&ok(node.cli(&["info", "--json"]))).unwrap();
    assert!(list["indexed"]
        .as_str()
        .unwrap()
        .ends_with(&format!("..={}", mined["height"])));
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// An `add_watch` body: owner, id, a script target.
fn add_watch_body(owner: &str, id: &str, script: &[u8]) -> Vec<u8> {
    let mut b = string(owner);
    b.extend(string(id));
    b.push(0);
    b.extend((script.len() as u16).to_le_bytes());
    b.extend_from_slice(script);
    b.push(0); // from_height: none
    b
}

/// A `subscribe_watches` body (without the filtered-block feed).
fn subscribe_watches_body(owner: &str, since: Option<&[u8]>) -> Vec<u8> {
    subscribe_body(owner, since, false)
}

fn subscribe_body(owner: &str, since: Option<&[u8]>, filtered: bool) -> Vec<u8> {
    let mut b = string(owner);
    match since {
        None => b.push(0),
        Some(h) => {
            b.push(1);
            b.extend_from_slice(h);
        }
    }
    b.push(filtered as u8);
    b
}

/// (type, watch id, txid display, height) of a watch event from a raw client.
fn watch_event(raw: &Raw) -> (u16, String, String, u32) {
    let r = raw.recv_msg();
    let mut c = Cursor(&r.body);
    let id = c.string();
    let txid = display(&c.take(32));
    let height = c.u32();
    (r.type_id, id, txid, height)
}

#[test]
fn a_service_watch_survives_restarts_of_both_sides_and_gets_what_it_missed_in_order() {
    let mut bcoin = Bcoin::start(110);
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let dir = tmp.path().join("bp");
    let args = ["--network", "regtest", "--connect", &bcoin.addr()];
    let mut node = Node::spawn_in("bp", &dir, &args, &[]);
    node.wait_ready();
    wait_indexed(&node, 110);
    let script: Vec<u8> = [&[0x00, 0x14][..], &[0x77; 20]].concat();
    let script_hex: String = script.iter().map(|b| format!("{b:02x}")).collect();

    // The service (a raw client written from docs/API.md) keeps a watch and subscribes.
    let service = Raw::connect(&node.api_endpoint(), other_id("chanwatch"));
    service.send(
        &manager_id("bp"),
        &payload(0x0330, 1, &add_watch_body("svc", "w1", &script)),
    );
    let r = service.recv_msg();
    assert_eq!(r.type_id, 0x0331, "{r:?}");
    service.send(
        &manager_id("bp"),
        &payload(0x0335, 2, &subscribe_watches_body("svc", None)),
    );
    let r = service.recv_msg();
    assert_eq!(r.type_id, 0x0336, "watch_synced: {r:?}");
    let mut c = Cursor(&r.body);
    assert_eq!(c.u32(), 0, "nothing to replay");
    assert_eq!(c.u32(), 110);
    let seen = c.take(32);
    // The service goes away.
    drop(service);

    // Payments while it is gone, and a kill -9 of the BP node between them.
    let a = bcoin.cmd(&format!("send {script_hex} 11000"))["txid"]
        .as_str()
        .unwrap()
        .to_string();
    bcoin.cmd("mine 1");
    wait_indexed(&node, 111);
    node.signal("-KILL");
    node.wait_exit(Duration::from_secs(5)).expect("killed");
    let b = bcoin.cmd(&format!("send {script_hex} 12000"))["txid"]
        .as_str()
        .unwrap()
        .to_string();
    bcoin.cmd("mine 2");
    let mut node = Node::spawn_in("bp", &dir, &args, &[]);
    node.wait_ready();
    wait_indexed(&node, 113);

    // It comes back, names the last block it saw, and gets both, in order; then live events.
    let service = Raw::connect(&node.api_endpoint(), other_id("chanwatch"));
    service.send(&manager_id("bp"), &payload(0x0333, 3, &string("svc")));
    let r = service.recv_msg();
    assert_eq!(r.type_id, 0x0334);
    assert_eq!(Cursor(&r.body).u16(), 1, "the watch is kept");
    service.send(
        &manager_id("bp"),
        &payload(0x0335, 4, &subscribe_watches_body("svc", Some(&seen))),
    );
    let r = service.recv_msg();
    assert_eq!(r.type_id, 0x0336);
    let mut c = Cursor(&r.body);
    assert_eq!((c.u32(), c.u32()), (2, 113), "two events, up to 113");
    assert_eq!(watch_event(&service), (0x0337, "w1".into(), a.clone(), 111));
    assert_eq!(watch_event(&service), (0x0337, "w1".into(), b.clone(), 112));
    let c3 = bcoin.cmd(&format!("send {script_hex} 13000"))["txid"]
        .as_str()
        .unwrap()
        .to_string();
    let mined = bcoin.cmd("mine 1");
    assert_eq!(
        watch_event(&service),
        (0x0337, "w1".into(), c3.clone(), 114)
    );
    // It goes away again, and block 114 leaves the best chain meanwhile: coming back with 114
    // as the last block seen, it hears that c3 is unconfirmed, then what the new branch has.
    drop(service);
    let seen114: Vec<u8> = hex_decode(mined["hash"].as_str().unwrap())
        .into_iter()
        .rev()
        .collect();
    bcoin.cmd("reorg 1");
    wait_indexed(&node, 115);
    let service = Raw::connect(&node.api_endpoint(), other_id("chanwatch"));
    service.send(
        &manager_id("bp"),
        &payload(0x0335, 6, &subscribe_watches_body("svc", Some(&seen114))),
    );
    let r = service.recv_msg();
    assert_eq!(r.type_id, 0x0336);
    let mut c = Cursor(&r.body);
    assert_eq!((c.u32(), c.u32()), (1, 115), "one event, up to the new tip");
    assert_eq!(watch_event(&service), (0x0339, "w1".into(), c3, 114));
    // A block it never saw is refused with a reason, not answered with nothing.
    service.send(
        &manager_id("bp"),
        &payload(0x0335, 5, &subscribe_watches_body("svc", Some(&[0xab; 32]))),
    );
    let (code, text) = service.recv_msg().failure();
    assert_eq!(code, 0x6001, "{text}");
    assert!(text.contains("neither on the best chain"), "{text}");
}

fn bp_json(node: &Node, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&ok(node.cli(&a))).unwrap()
}

#[test]
fn bcoin_pays_our_p2wpkh_and_p2tr_addresses_and_the_wallet_follows_a_reorganisation() {
    let mut bcoin = Bcoin::start(110);
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let dir = tmp.path().join("bp");
    let args = ["--network", "regtest", "--connect", &bcoin.addr()];
    let mut node = Node::spawn_in("bp", &dir, &args, &[]);
    node.wait_ready();
    wait_indexed(&node, 110);
    let wpkh = bp_json(&node, &["address"]);
    let tr = bp_json(&node, &["address", "--taproot"]);
    let mut w1 = Watcher::start(&node, &["--address", wpkh["address"].as_str().unwrap()]);
    let mut w2 = Watcher::start(&node, &["--address", tr["address"].as_str().unwrap()]);

    // bcoin pays both in one block (the P2TR payment put in the block by the harness: bcoin's
    // mempool refuses payments to P2TR outputs).
    let p1 = bcoin.cmd(&format!("send {} 150000", wpkh["script"].as_str().unwrap()));
    let p2 = bcoin.cmd(&format!(
        "sendmined {} 250000",
        tr["script"].as_str().unwrap()
    ));
    assert_eq!(p2["height"], 111);
    let e1 = w1.next();
    let e2 = w2.next();
    for (e, p) in [(&e1, &p1), (&e2, &p2)] {
        assert_eq!(e["event"], "tx_confirmed", "{e}");
        assert_eq!(e["txid"], p["txid"]);
        assert_eq!(e["height"], 111);
    }
    let balance = bp_json(&node, &["balance"]);
    assert_eq!(balance["confirmed"], 400_000, "{balance}");
    assert_eq!(balance["unconfirmed"], 0);
    assert_eq!(balance["accounts"][0]["account"], "p2wpkh");
    assert_eq!(balance["accounts"][0]["confirmed"], 150_000);
    assert_eq!(balance["accounts"][1]["account"], "p2tr");
    assert_eq!(balance["accounts"][1]["confirmed"], 250_000);
    let utxos = bp_json(&node, &["utxos"]);
    let got: Vec<(u64, String, u64)> = utxos
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["value"].as_u64().unwrap(),
                u["address"].as_str().unwrap().to_string(),
                u["height"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (150_000, wpkh["address"].as_str().unwrap().to_string(), 111),
            (250_000, tr["address"].as_str().unwrap().to_string(), 111),
        ]
    );
    let history = bp_json(&node, &["history"]);
    let mut amounts: Vec<i64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["amount"].as_i64().unwrap())
        .collect();
    amounts.sort();
    assert_eq!(amounts, vec![150_000, 250_000]);

    // bcoin replaces block 111 by a longer branch without either payment.
    bcoin.cmd("reorg 1");
    for w in [&mut w1, &mut w2] {
        let e = w.next();
        assert_eq!(
            (e["event"].as_str(), e["height"].as_u64()),
            (Some("tx_unconfirmed"), Some(111)),
            "{e}"
        );
    }
    wait_indexed(&node, 112);
    // The confirmed balance drops; as in Bitcoin Core's wallet, the payments are unconfirmed
    // again (from others: untrusted), not forgotten, until mined again or double-spent.
    let balance = bp_json(&node, &["balance"]);
    assert_eq!(balance["confirmed"], 0, "the balance drops: {balance}");
    assert_eq!(balance["unconfirmed"], 400_000, "{balance}");
    let utxos = bp_json(&node, &["utxos"]);
    assert!(
        utxos
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["height"].is_null()),
        "{utxos}"
    );

    // Mined again, in block 113: confirmed again.
    let raw1 = e1["tx"].as_str().unwrap();
    let raw2 = e2["tx"].as_str().unwrap();
    assert_eq!(bcoin.cmd(&format!("verdict {raw1}"))["ok"], true);
    bcoin.cmd(&format!("minewith {raw2}"));
    for w in [&mut w1, &mut w2] {
        let e = w.next();
        assert_eq!(
            (e["event"].as_str(), e["height"].as_u64()),
            (Some("tx_confirmed"), Some(113)),
            "{e}"
        );
    }
    assert_eq!(bp_json(&node, &["balance"])["confirmed"], 400_000);

    // What the wallet knows is durable: after kill -9 it is all there.
    node.signal("-KILL");
    node.wait_exit(Duration::from_secs(5)).expect("killed");
    let mut node = Node::spawn_in("bp", &dir, &["--network", "regtest"], &[]);
    node.wait_ready();
    let balance = bp_json(&node, &["balance"]);
    assert_eq!(balance["confirmed"], 400_000, "{balance}");
    let heights: Vec<u64> = bp_json(&node, &["utxos"])
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["height"].as_u64().unwrap())
        .collect();
    assert_eq!(heights, vec![113, 113]);
}

#[test]
fn bp_send_pays_bcoin_which_mines_it_and_the_change_comes_back() {
    // bcoin's regtest activates segwit at height 432: spends of our P2WPKH outputs need it.
    let mut bcoin = Bcoin::start(440);
    let node = Node::start("bp", &["--network", "regtest", "--connect", &bcoin.addr()]);
    wait_indexed(&node, 440);
    let wpkh = bp_json(&node, &["address"]);
    bcoin.cmd(&format!("send {} 300000", wpkh["script"].as_str().unwrap()));
    bcoin.cmd("mine 1");
    wait_indexed(&node, 441);
    assert_eq!(bp_json(&node, &["balance"])["confirmed"], 300_000);

    // bcoin's own key, as an address of our network.
    let script = hex_decode(bcoin.cmd("ringscript")["script"].as_str().unwrap());
    let to = bitcoin::Address::from_script(
        bitcoin::Script::from_bytes(&script),
        bitcoin::Network::Regtest,
    )
    .unwrap()
    .to_string();
    // A dry run signs and spends nothing.
    let dry = bp_json(&node, &["send", &to, "100000", "--dry-run"]);
    assert_eq!(dry["broadcast"], false);
    let verdict = bcoin.cmd(&format!("verdict {}", dry["tx"].as_str().unwrap()));
    assert_eq!(
        verdict["ok"], true,
        "bcoin's mempool takes what the dry run signed: {verdict}"
    );
    // (bcoin now holds the dry run's transaction: a real send must not conflict with it, so
    // mine it away first: the wallet learns of it from the block, as of any payment.)
    bcoin.cmd("mine 1");
    wait_indexed(&node, 442);
    let after_dry = bp_json(&node, &["balance"]);
    let dry_fee = dry["fee"].as_u64().unwrap();
    assert_eq!(
        after_dry["confirmed"],
        300_000 - 100_000 - dry_fee,
        "{after_dry}"
    );

    let before = after_dry["confirmed"].as_u64().unwrap();
    let sent = bp_json(&node, &["send", &to, "50000", "--fee-rate", "3"]);
    let txid = sent["txid"].as_str().unwrap().to_string();
    let fee = sent["fee"].as_u64().unwrap();
    assert_eq!(sent["broadcast"], true);
    assert_eq!(sent["peers"], 1);
    assert_eq!(sent["account"], "p2wpkh");
    wait_until(Duration::from_secs(30), "bcoin's mempool takes it", || {
        bcoin.cmd(&format!("mempool {txid}"))["in"] == true
    });
    // Spent at once for the wallet: the change is pending (our own), nothing is confirmed.
    let pending = bp_json(&node, &["balance"]);
    assert_eq!(pending["confirmed"], 0, "{pending}");
    assert_eq!(
        pending["accounts"][0]["trusted_pending"],
        before - 50_000 - fee
    );
    assert_eq!(bp_tx(&node, &txid)["status"], "mempool");
    bcoin.cmd("mine 1");
    wait_indexed(&node, 443);
    let got = bcoin.cmd(&format!("received {txid}"));
    assert_eq!(
        (got["value"].as_u64(), got["height"].as_u64()),
        (Some(50_000), Some(443))
    );
    let balance = bp_json(&node, &["balance"]);
    assert_eq!(
        balance["confirmed"],
        before - 50_000 - fee,
        "old balance minus amount and fee"
    );
    let utxos = bp_json(&node, &["utxos"]);
    let change: Vec<_> = utxos
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["chain"] == "change")
        .collect();
    assert_eq!(change.len(), 1, "{utxos}");
    assert_eq!(change[0]["value"], before - 50_000 - fee);
    assert_eq!(change[0]["height"], 443);
    let history = bp_json(&node, &["history"]);
    let ours = history
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["txid"] == txid.as_str())
        .unwrap();
    assert_eq!(ours["amount"].as_i64(), Some(-(50_000 + fee as i64)));
    assert_eq!(ours["fee"], fee);
    // A fee rate of 3 sat/vB over the transaction's vsize, within a vbyte (bdk sizes the
    // signature before it exists: 72 bytes, and a real one may be 71).
    let tx: bitcoin::Transaction =
        bitcoin::consensus::deserialize(&hex_decode(sent["tx"].as_str().unwrap())).unwrap();
    let vsize = tx.vsize() as u64;
    assert!(
        (3 * (vsize - 1)..=3 * (vsize + 1)).contains(&fee),
        "{fee} for {vsize} vB"
    );
    // More than the wallet has: refused with the reason, nothing spent.
    let out = node.cli(&["send", &to, "9000000"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot fund"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bp_fees_come_from_the_config_raised_to_a_peers_feefilter() {
    let node = Node::start("bp", &["--network", "regtest", "--listen", "127.0.0.1:0"]);
    let rates = |node: &Node| -> Vec<(u64, u64, String)> {
        bp_json(node, &["fees"])
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["target_blocks"].as_u64().unwrap(),
                    f["sat_per_vb"].as_u64().unwrap(),
                    f["source"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let config = |t, r| (t, r, "config".to_string());
    assert_eq!(
        rates(&node),
        vec![config(1, 10), config(6, 4), config(144, 2)]
    );
    // A peer whose BIP133 feefilter is 5,000 sat/kvB: nothing below 5 sat/vB would reach it.
    let addr = node.info_json()["listening"][0]
        .as_str()
        .unwrap()
        .to_string();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut peer = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/btc_hostile.py"
        ))
        .args([host, port, "feefilter", "5000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(peer.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let mut got = Vec::new();
    wait_until(Duration::from_secs(30), "the feefilter counts", || {
        got = rates(&node);
        got[1].1 == 5
    });
    assert_eq!(got[0], config(1, 10));
    for (i, target) in [(1, 6), (2, 144)] {
        assert_eq!((got[i].0, got[i].1), (target, 5));
        assert!(
            got[i].2.starts_with("feefilter of 127.0.0.13:"),
            "{:?}",
            got[i]
        );
    }
    drop(peer.stdin.take());
    let _ = peer.wait();
}

/// (height, display hash, number of transactions) of a `filtered_block`, or of a
/// `block_disconnected` (number none).
fn feed_event(raw: &Raw) -> (u16, u32, String, Option<u16>) {
    loop {
        let r = raw.recv_msg();
        let mut c = Cursor(&r.body);
        match r.type_id {
            0x033a => {
                let height = c.u32();
                let hash = display(&c.take(32));
                c.take(80);
                return (r.type_id, height, hash, Some(c.u16()));
            }
            0x0312 => {
                let height = c.u32();
                return (r.type_id, height, display(&c.take(32)), None);
            }
            // tx_confirmed / tx_unconfirmed: the per-watch events, checked elsewhere.
            0x0337..=0x0339 => continue,
            other => panic!("unexpected {other:#06x}"),
        }
    }
}

#[test]
fn the_filtered_block_feed_gives_every_block_with_only_the_watched_transactions() {
    let mut bcoin = Bcoin::start(110);
    let node = Node::start("bp", &["--network", "regtest", "--connect", &bcoin.addr()]);
    wait_indexed(&node, 110);
    let script: Vec<u8> = [&[0x00, 0x14][..], &[0x88; 20]].concat();
    let script_hex: String = script.iter().map(|b| format!("{b:02x}")).collect();
    let feed = Raw::connect(&node.api_endpoint(), other_id("chainlistener"));
    feed.send(
        &manager_id("bp"),
        &payload(0x0330, 1, &add_watch_body("ln", "fund", &script)),
    );
    assert_eq!(feed.recv_msg().type_id, 0x0331);
    feed.send(
        &manager_id("bp"),
        &payload(0x0335, 2, &subscribe_body("ln", None, true)),
    );
    let r = feed.recv_msg();
    assert_eq!(r.type_id, 0x0336);
    let mut c = Cursor(&r.body);
    c.u32();
    assert_eq!(c.u32(), 110);
    let h110 = c.take(32);
    // A payment to the script and two other payments in 111, nothing of ours in 112.
    bcoin.cmd(&format!("send {script_hex} 40000"));
    bcoin.cmd(&format!("send 0014{} 1000", "99".repeat(20)));
    bcoin.cmd(&format!("send 0014{} 2000", "98".repeat(20)));
    let b111 = bcoin.cmd("mine 1")["hash"].as_str().unwrap().to_string();
    let b112 = bcoin.cmd("mine 1")["hash"].as_str().unwrap().to_string();
    assert_eq!(
        feed_event(&feed),
        (0x033a, 111, b111.clone(), Some(1)),
        "only ours of 4"
    );
    assert_eq!(feed_event(&feed), (0x033a, 112, b112.clone(), Some(0)));
    // 112 is replaced by 112' and 113': disconnected, then the new blocks.
    let r = bcoin.cmd("reorg 1");
    assert_eq!(feed_event(&feed), (0x0312, 112, b112, None));
    let (t, h, _, n) = feed_event(&feed);
    assert_eq!((t, h, n), (0x033a, 112, Some(0)));
    assert_eq!(
        feed_event(&feed),
        (
            0x033a,
            113,
            r["hash"].as_str().unwrap().to_string(),
            Some(0)
        )
    );
    // A listener that starts over from 110 gets the same blocks of the best chain again.
    let again = Raw::connect(&node.api_endpoint(), other_id("chainlistener2"));
    again.send(
        &manager_id("bp"),
        &payload(0x0335, 3, &subscribe_body("ln", Some(&h110), true)),
    );
    let r = again.recv_msg();
    assert_eq!(r.type_id, 0x0336);
    assert_eq!(Cursor(&r.body).u32(), 4, "tx_confirmed and three blocks");
    assert_eq!(feed_event(&again), (0x033a, 111, b111, Some(1)));
    assert_eq!(feed_event(&again).1, 112);
    assert_eq!(feed_event(&again).1, 113);
}

#[test]
fn the_header_store_of_an_earlier_version_is_migrated_and_its_address_indexes_kept() {
    // The layout of the versions before the chain store: redb tables `best_chain` (height ->
    // header) and `signer_next_address` (account -> next index) in headers-regtest.redb.
    let mut bcoin = Bcoin::start(30);
    let mut headers = Vec::new();
    for h in 1..=30u32 {
        let hash = tip_hash_at(&mut bcoin, h);
        let raw = hex_decode(bcoin.cmd(&format!("block {hash}"))["hex"].as_str().unwrap());
        headers.push((h, raw[..80].to_vec()));
    }
    drop(bcoin);
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let dir = tmp.path().join("bp");
    std::fs::create_dir_all(&dir).unwrap();
    {
        let best: redb::TableDefinition<u32, &[u8]> = redb::TableDefinition::new("best_chain");
        let next: redb::TableDefinition<u8, u32> =
            redb::TableDefinition::new("signer_next_address");
        let db = redb::Database::create(dir.join("headers-regtest.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(best).unwrap();
            for (h, raw) in &headers {
                t.insert(*h, raw.as_slice()).unwrap();
            }
            let mut n = tx.open_table(next).unwrap();
            n.insert(0, 7).unwrap();
            n.insert(1, 3).unwrap();
        }
        tx.commit().unwrap();
    }
    let mut node = Node::spawn_in("bp", &dir, &["--network", "regtest"], &[]);
    node.wait_ready();
    assert_eq!(tip(&node).0, 30, "the chain is back without a peer");
    assert_eq!(
        bp_json(&node, &["address"])["index"],
        7,
        "never an address twice"
    );
    assert_eq!(bp_json(&node, &["address", "--taproot"])["index"], 3);
    assert!(dir.join("headers-regtest.redb.migrated").exists());
    assert!(!dir.join("headers-regtest.redb").exists());
    assert!(node.log_text().contains("migrated"));
    node.signal("-KILL");
    node.wait_exit(Duration::from_secs(5)).expect("killed");
    let mut node = Node::spawn_in("bp", &dir, &["--network", "regtest"], &[]);
    node.wait_ready();
    assert_eq!(tip(&node).0, 30);
    assert_eq!(bp_json(&node, &["address"])["index"], 8);
}

#[test]
fn a_watch_from_a_height_rescans_what_is_indexed_then_goes_live() {
    let mut bcoin = Bcoin::start(110);
    let node = Node::start("bp", &["--network", "regtest", "--connect", &bcoin.addr()]);
    // In the past: a payment to a script at 111; an outpoint of bcoin's created at 112 and
    // spent at 113.
    let script = format!("0014{}", "ab".repeat(20));
    let paid = bcoin.cmd(&format!("send {script} 70000"))["txid"]
        .as_str()
        .unwrap()
        .to_string();
    bcoin.cmd("mine 1");
    let other = bcoin.cmd(&format!("send 0014{} 5000", "ac".repeat(20)));
    let outpoint = format!("{}:{}", other["txid"].as_str().unwrap(), other["change"]);
    bcoin.cmd("mine 1");
    let spender = bcoin.cmd(&format!("spend {outpoint}"))["txid"]
        .as_str()
        .unwrap()
        .to_string();
    bcoin.cmd("mine 2");
    wait_indexed(&node, 114);

    // Watches added now, from height 100: the blocks 100..=114 are fetched again and scanned.
    let mut by_script = Watcher::start(&node, &["--script", &script, "--from-height", "100"]);
    let e = by_script.next();
    assert_eq!(
        (
            e["event"].as_str(),
            e["txid"].as_str(),
            e["height"].as_u64()
        ),
        (Some("tx_confirmed"), Some(paid.as_str()), Some(111)),
        "{e}"
    );
    let mut by_outpoint = Watcher::start(&node, &["--outpoint", &outpoint, "--from-height", "110"]);
    let e = by_outpoint.next();
    assert_eq!(
        (
            e["event"].as_str(),
            e["txid"].as_str(),
            e["height"].as_u64()
        ),
        (Some("outpoint_spent"), Some(spender.as_str()), Some(113)),
        "{e}"
    );
    // Once caught up, the watch is live: a new payment comes as it is mined.
    let again = bcoin.cmd(&format!("send {script} 80000"))["txid"]
        .as_str()
        .unwrap()
        .to_string();
    bcoin.cmd("mine 1");
    let e = by_script.next();
    assert_eq!(
        (e["txid"].as_str(), e["height"].as_u64()),
        (Some(again.as_str()), Some(115)),
        "{e}"
    );
    assert!(node.log_text().contains("rescan done"));
    // Below the indexed range: refused with the reason.
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let mut late = Node::spawn_in(
        "bp",
        &tmp.path().join("bp"),
        &["--network", "regtest", "--connect", &bcoin.addr()],
        &[("NODECTL_CHAIN__INDEX_FROM", "50")],
    );
    late.wait_ready();
    wait_indexed(&late, 115);
    // (a range that does not start at genesis: the wallet takes its first block too)
    assert_eq!(late.info_json()["indexed"], "50..=115");
    let out = late.cli(&["watch", "--script", &script, "--from-height", "10"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("below the indexed range"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
