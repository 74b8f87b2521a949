//! Lightning channels (issue "Lightning channels"): our LNP node's `channeld`, with a BP node
//! beside it as its chain and wallet, against LDK (tests/ldk_peer: the `lightning` crate with
//! its own keys, wallet and chain from bcoin) and against another LNP node of ours; bcoin on
//! regtest is the chain of everyone.

mod common;

use common::bcoin::Bcoin;
use common::ldk::Ldk;
use common::{ok, wait_until, Node};
use serde_json::json;
use std::time::Duration;

/// bcoin's regtest activates segwit at 432: the wallets' P2WPKH spends need it.
const SEGWIT: u32 = 440;

fn cli_json(node: &Node, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let out = node.cli(&a);
    if !out.status.success() {
        panic!(
            "nodectl {args:?} failed: {}\n--- the node's log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            node.log_text()
        );
    }
    serde_json::from_str(&ok(out)).unwrap()
}

fn wait_indexed(bp: &Node, height: u64) {
    wait_until(
        Duration::from_secs(60),
        &format!("BP indexed to {height}"),
        || {
            bp.info_json()["indexed"]
                .as_str()
                .is_some_and(|r| r.ends_with(&format!("..={height}")))
        },
    );
}

/// A BP node on bcoin and an LNP node on it, with `sats` in the BP wallet.
struct Side {
    bp: Node,
    bp_dir: std::path::PathBuf,
    bcoin_addr: String,
    lnp: Node,
    /// The LNP node's data dir (kept across its restarts).
    lnp_dir: std::path::PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for Side {
    /// A failing test shows the end of this side's LNP log (its node removes it next).
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.lnp.log_text();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(200)..];
            eprintln!(
                "--- the end of the LNP node's log ({}) ---\n{}",
                self.lnp_dir.display(),
                tail.join("\n")
            );
        }
    }
}

impl Side {
    fn start(bcoin: &mut Bcoin, sats: u64) -> Side {
        let tmp = tempfile::Builder::new()
            .prefix("ch")
            .tempdir_in("/tmp")
            .unwrap();
        let bp_dir = tmp.path().join("bp");
        let mut bp = Node::spawn_in(
            "bp",
            &bp_dir,
            &["--network", "regtest", "--connect", &bcoin.addr()],
            &[],
        );
        bp.wait_ready();
        let tip = bcoin.cmd("tip")["height"].as_u64().unwrap();
        wait_indexed(&bp, tip);
        if sats > 0 {
            let a = cli_json(&bp, &["address"]);
            bcoin.cmd(&format!("send {} {sats}", a["script"].as_str().unwrap()));
            bcoin.cmd("mine 1");
            wait_indexed(&bp, tip + 1);
        }
        let lnp_dir = tmp.path().join("lnp");
        let lnp = Side::spawn_lnp(&bp, &lnp_dir, &[]);
        Side {
            bp,
            bp_dir,
            bcoin_addr: bcoin.addr(),
            lnp,
            lnp_dir,
            _tmp: tmp,
        }
    }

    fn spawn_lnp(bp: &Node, dir: &std::path::Path, env: &[(&str, &str)]) -> Node {
        let api = bp.api_endpoint();
        let mut lnp = Node::spawn_in(
            "lnp",
            dir,
            &["--network", "regtest", "--bp", &api, "--fault-injection"],
            env,
        );
        lnp.wait_ready();
        wait_until(Duration::from_secs(30), "channels ready", || {
            let i = lnp.info_json();
            i["channels_engine"] == "ready" && i["chain_reachable"] == 1
        });
        lnp
    }

    /// kill -9 of the LNP node, and a new one on the same data dir.
    fn restart_lnp(&mut self, env: &[(&str, &str)]) {
        self.lnp.signal("-KILL");
        assert!(self.lnp.wait_exit(Duration::from_secs(10)).is_some());
        // (The old handle removes its log file when dropped: the new node's log is that file.)
        let _ = std::fs::remove_file(&self.lnp.log);
        self.lnp.log = self.lnp.log.with_extension("old");
        self.lnp = Side::spawn_lnp(&self.bp, &self.lnp_dir, env);
    }

    /// kill -9 of the BP node (`restart`: and a new one on the same data dir).
    fn kill_bp(&mut self) {
        self.bp.signal("-KILL");
        assert!(self.bp.wait_exit(Duration::from_secs(10)).is_some());
    }

    fn start_bp(&mut self) {
        let _ = std::fs::remove_file(&self.bp.log);
        self.bp.log = self.bp.log.with_extension("old");
        let mut bp = Node::spawn_in(
            "bp",
            &self.bp_dir,
            &["--network", "regtest", "--connect", &self.bcoin_addr],
            &[],
        );
        bp.wait_ready();
        self.bp = bp;
    }

    /// `nodectl lnp connect` to the LDK peer.
    fn connect(&self, ldk: &Ldk) {
        ok(self
            .lnp
            .cli(&["connect", &format!("{}@{}", ldk.node_id, ldk.addr)]));
    }

    fn channels(&self) -> Vec<serde_json::Value> {
        cli_json(&self.lnp, &["channels"])
            .as_array()
            .unwrap()
            .clone()
    }

    fn node_id(&self) -> String {
        self.lnp.info_json()["node_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn wait_height(&self, h: u64) {
        wait_until(Duration::from_secs(60), &format!("channeld at {h}"), || {
            self.lnp.info_json()["channels_height"].as_u64() == Some(h)
        });
    }
}

/// Mines `n` blocks, feeds them to LDK, waits for our channeld to see them.
fn mine(bcoin: &mut Bcoin, ldk: &mut Ldk, side: &Side, n: u32) {
    ldk.relay(bcoin);
    let tip = bcoin.cmd(&format!("mine {n}"))["height"].as_u64().unwrap();
    ldk.sync(bcoin);
    side.wait_height(tip);
}

fn pay_ldk_invoice(side: &Side, ldk: &mut Ldk, msat: u64) {
    let inv = ldk.cmd(json!({"cmd": "invoice", "msat": msat}));
    let p = cli_json(
        &side.lnp,
        &["pay", inv["bolt11"].as_str().unwrap(), "--wait"],
    );
    assert_eq!(p["status"], "succeeded", "{p}");
    let hash = inv["hash"].as_str().unwrap().to_string();
    ldk.wait_event("payment_claimed", Duration::from_secs(30), |e| {
        e["hash"] == hash
    });
}

fn ldk_pays_us(side: &Side, ldk: &mut Ldk, msat: u64) {
    let inv = cli_json(
        &side.lnp,
        &["invoice", &msat.to_string(), "--description", "test"],
    );
    let r = ldk.cmd(json!({"cmd": "pay", "bolt11": inv["bolt11"]}));
    let hash = r["hash"].as_str().unwrap().to_string();
    ldk.wait_event("payment_sent", Duration::from_secs(30), |e| {
        e["hash"] == hash
    });
    wait_until(Duration::from_secs(30), "our payment record", || {
        cli_json(&side.lnp, &["payments"])
            .as_array()
            .unwrap()
            .iter()
            .any(|p| {
                p["payment_hash"] == hash.as_str()
                    && p["status"] == "succeeded"
                    && p["direction"] == "in"
            })
    });
}

/// Our view and LDK's of every channel agree to the msat (once the last commitment dance
/// has settled: a payment ends for its payer before the final revoke_and_ack).
fn balances_agree(side: &Side, ldk: &mut Ldk) {
    agree_within(side, ldk, None);
}

/// Like [`balances_agree`], for one channel.
fn balances_agree_with(side: &Side, ldk: &mut Ldk, id: &str) {
    agree_within(side, ldk, Some(id));
}

fn agree_within(side: &Side, ldk: &mut Ldk, only: Option<&str>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let ours: Vec<_> = side
            .channels()
            .into_iter()
            .filter(|c| only.is_none_or(|id| c["channel_id"] == id))
            .collect();
        let theirs: Vec<_> = ldk
            .channels()
            .into_iter()
            .filter(|c| only.is_none_or(|id| c["channel_id"] == id))
            .collect();
        let agree = ours.len() == theirs.len()
            && ours.iter().all(|c| {
                theirs.iter().any(|t| {
                    t["channel_id"] == c["channel_id"]
                        && c["local_msat"] == t["remote_msat"]
                        && c["remote_msat"] == t["local_msat"]
                })
            });
        if agree {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "balances disagree: ours {ours:?} theirs {theirs:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_channel_with_ldk_both_ways_and_payments_that_agree_to_the_msat() {
    let mut bcoin = Bcoin::start(SEGWIT);
    let side = Side::start(&mut bcoin, 2_000_000);
    let mut ldk = Ldk::start();
    // LDK's own wallet: coinbases of bcoin, mature after 100 blocks.
    let info = ldk.cmd(json!({"cmd": "info"}));
    bcoin.cmd(&format!("mineto 1 {}", info["script"].as_str().unwrap()));
    bcoin.cmd("mine 100");
    ldk.sync(&mut bcoin);
    let tip = bcoin.cmd("tip")["height"].as_u64().unwrap();
    side.wait_height(tip);

    // We connect and open, funded by our BP wallet.
    side.connect(&ldk);
    let opened = cli_json(
        &side.lnp,
        &[
            "channel",
            "open",
            &ldk.node_id,
            "500000",
            "--push-msat",
            "10000000",
        ],
    );
    let ours = opened["channel_id"].as_str().unwrap().to_string();
    ldk.wait_event("channel_pending", Duration::from_secs(30), |e| {
        e["channel_id"] == ours.as_str()
    });
    let ch = side.channels();
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0]["state"], "pending");
    // LDK asks 1 confirmation; we ask 3 of a channel LDK funds, LDK accepts up to 144 of ours.
    mine(&mut bcoin, &mut ldk, &side, 1);
    mine(&mut bcoin, &mut ldk, &side, 2);
    wait_until(Duration::from_secs(30), "our channel ready", || {
        side.channels()[0]["state"] == "ready"
    });
    ldk.wait_event("channel_ready", Duration::from_secs(30), |e| {
        e["channel_id"] == ours.as_str()
    });

    // LDK opens one to us: we accept.
    // (LDK pushes us 50,000 sat: both balances stay above the reserves, where LDK tells them
    // to the msat.)
    ldk.cmd(
        json!({"cmd": "open", "node_id": side.node_id(), "sats": 300000, "push_msat": 50_000_000}),
    );
    let pending = ldk.wait_event("channel_pending", Duration::from_secs(30), |_| true);
    let second = pending["channel_id"].as_str().unwrap().to_string();
    mine(&mut bcoin, &mut ldk, &side, 3);
    wait_until(Duration::from_secs(30), "both channels ready", || {
        let c = side.channels();
        c.len() == 2 && c.iter().all(|c| c["state"] == "ready")
    });
    ldk.wait_event("channel_ready", Duration::from_secs(30), |e| {
        e["channel_id"] == second.as_str()
    });
    balances_agree(&side, &mut ldk);

    // An LDK invoice paid by us, one of ours paid by LDK.
    let start: u64 = side
        .channels()
        .iter()
        .map(|c| c["local_msat"].as_u64().unwrap())
        .sum();
    pay_ldk_invoice(&side, &mut ldk, 1_234_567);
    ldk_pays_us(&side, &mut ldk, 7_654_321);
    balances_agree(&side, &mut ldk);
    // Then 100 payments each way.
    let mut paid = 1_234_567;
    let mut got = 7_654_321;
    for i in 0..100u64 {
        pay_ldk_invoice(&side, &mut ldk, 10_000 + i);
        paid += 10_000 + i;
        ldk_pays_us(&side, &mut ldk, 20_000 + i);
        got += 20_000 + i;
    }
    balances_agree(&side, &mut ldk);
    let end: u64 = side
        .channels()
        .iter()
        .map(|c| c["local_msat"].as_u64().unwrap())
        .sum();
    assert_eq!(
        end,
        start - paid + got,
        "our balance moved by what we paid and got"
    );
    let payments = cli_json(&side.lnp, &["payments"]);
    let list = payments.as_array().unwrap();
    assert_eq!(list.len(), 202);
    assert!(
        list.iter().all(|p| p["status"] == "succeeded"),
        "{payments}"
    );
}

fn bp_confirmed(side: &Side) -> u64 {
    cli_json(&side.bp, &["balance"])["confirmed"]
        .as_u64()
        .unwrap()
}

/// Opens a channel of `sats` from us to LDK (pushing `push_msat`) and returns its id once
/// pending on both sides.
/// [`open_to_ldk`], the funding mined (LDK asks 1 confirmation), the channel ready.
fn ready_channel_to_ldk(
    bcoin: &mut Bcoin,
    side: &Side,
    ldk: &mut Ldk,
    sats: u64,
    push_msat: u64,
) -> String {
    let id = open_to_ldk(side, ldk, sats, push_msat);
    wait_mempool(bcoin, &channel(side, &id)["funding"]);
    mine(bcoin, ldk, side, 1);
    wait_until(Duration::from_secs(30), "the channel ready", || {
        channel(side, &id)["state"] == "ready"
    });
    id
}

fn open_to_ldk(side: &Side, ldk: &mut Ldk, sats: u64, push_msat: u64) -> String {
    let o = cli_json(
        &side.lnp,
        &[
            "channel",
            "open",
            &ldk.node_id,
            &sats.to_string(),
            "--push-msat",
            &push_msat.to_string(),
        ],
    );
    let id = o["channel_id"].as_str().unwrap().to_string();
    ldk.wait_event("channel_pending", Duration::from_secs(30), |e| {
        e["channel_id"] == id.as_str()
    });
    id
}

/// Waits until bcoin's mempool has the transaction of `funding` ("txid:vout", or a txid).
fn wait_mempool(bcoin: &mut Bcoin, funding: &serde_json::Value) {
    let txid = funding
        .as_str()
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_string();
    wait_until(
        Duration::from_secs(30),
        &format!("{txid} in bcoin's mempool"),
        || bcoin.cmd(&format!("mempool {txid}"))["in"] == true,
    );
}

fn channel(side: &Side, id: &str) -> serde_json::Value {
    side.channels()
        .into_iter()
        .find(|c| c["channel_id"] == id)
        .unwrap_or(serde_json::Value::Null)
}

#[test]
fn closes_cooperative_and_forced_both_ways_give_our_funds_to_the_bp_wallet() {
    let mut bcoin = Bcoin::start(SEGWIT);
    let side = Side::start(&mut bcoin, 3_000_000);
    let mut ldk = Ldk::start();
    let info = ldk.cmd(json!({"cmd": "info"}));
    bcoin.cmd(&format!("mineto 2 {}", info["script"].as_str().unwrap()));
    bcoin.cmd("mine 100");
    ldk.sync(&mut bcoin);
    side.wait_height(bcoin.cmd("tip")["height"].as_u64().unwrap());
    wait_until(Duration::from_secs(30), "a sweep address", || {
        side.lnp.info_json()["channels_engine"] == "ready"
    });
    side.connect(&ldk);

    let coop = open_to_ldk(&side, &mut ldk, 400_000, 50_000_000);
    let forced = open_to_ldk(&side, &mut ldk, 300_000, 10_000_000);
    ldk.cmd(
        json!({"cmd": "open", "node_id": side.node_id(), "sats": 250000, "push_msat": 100_000_000}),
    );
    let theirs = ldk.wait_event("channel_pending", Duration::from_secs(30), |_| true)["channel_id"]
        .as_str()
        .unwrap()
        .to_string();
    mine(&mut bcoin, &mut ldk, &side, 3);
    wait_until(Duration::from_secs(30), "three channels ready", || {
        let c = side.channels();
        c.len() == 3 && c.iter().all(|c| c["state"] == "ready")
    });
    balances_agree(&side, &mut ldk);
    let before = bp_confirmed(&side);

    // Cooperative: the closing transaction is mined and our share is in `bp balance`.
    let share = channel(&side, &coop)["local_msat"].as_u64().unwrap() / 1000;
    ok(side.lnp.cli(&["close", &coop]));
    ldk.wait_event("channel_closed", Duration::from_secs(30), |e| {
        e["channel_id"] == coop.as_str()
    });
    let closing = ldk.next_broadcast(&mut bcoin);
    wait_mempool(&mut bcoin, &json!(closing));
    mine(&mut bcoin, &mut ldk, &side, 1);
    wait_until(
        Duration::from_secs(30),
        "our share of the cooperative close",
        || {
            let now = bp_confirmed(&side);
            // We funded it: the closing fee is ours (a few thousand sat at most on regtest).
            now > before + share - 10_000 && now <= before + share
        },
    );
    let after_coop = bp_confirmed(&side);

    // A force close by us: our output waits LDK's to_self_delay (144), then is swept.
    let ours = channel(&side, &forced)["local_msat"].as_u64().unwrap() / 1000;
    ok(side.lnp.cli(&["close", &forced, "--force"]));
    std::thread::sleep(Duration::from_millis(500));
    mine(&mut bcoin, &mut ldk, &side, 1);
    let b = cli_json(&side.lnp, &["balance"]);
    assert!(b["onchain_claimable_sat"].as_u64().unwrap() > 0, "{b}");
    // A force close by LDK: our output (static_remotekey) is ours at once, swept too.
    let their_share = channel(&side, &theirs)["local_msat"].as_u64().unwrap() / 1000;
    ldk.cmd(
        json!({"cmd": "close", "channel_id": theirs, "node_id": side.node_id(), "force": true}),
    );
    for _ in 0..16 {
        mine(&mut bcoin, &mut ldk, &side, 10);
    }
    wait_until(
        Duration::from_secs(60),
        "both force-closed channels swept",
        || {
            mine(&mut bcoin, &mut ldk, &side, 1);
            let now = bp_confirmed(&side);
            now > after_coop + ours + their_share - 20_000
        },
    );
    let now = bp_confirmed(&side);
    assert!(
        now <= after_coop + ours + their_share,
        "no more than our balances: {now}"
    );
}

fn payment(side: &Side, hash: &str) -> Option<serde_json::Value> {
    cli_json(&side.lnp, &["payments"])
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["payment_hash"] == hash)
        .cloned()
}

#[test]
fn kill_9_during_a_payment_at_three_moments_then_it_ends_once_and_balances_agree() {
    let mut bcoin = Bcoin::start(SEGWIT);
    let mut side = Side::start(&mut bcoin, 2_000_000);
    let mut ldk = Ldk::start();
    ldk.sync(&mut bcoin);
    side.connect(&ldk);
    let id = ready_channel_to_ldk(&mut bcoin, &side, &mut ldk, 600_000, 100_000_000);
    // Moments of a payment of ours: our update_add_htlc left (its commitment_signed not yet);
    // our commitment_signed left; LDK's revoke_and_ack handled; our revoke_and_ack left.
    for point in ["sent:128", "sent:132", "received:133", "sent:133"] {
        side.restart_lnp(&[("NODECTL_CHANNELS__FAULT_POINT", point)]);
        wait_until(Duration::from_secs(30), "the channel reestablished", || {
            channel(&side, &id)["state"] == "ready"
        });
        let before = channel(&side, &id)["local_msat"].as_u64().unwrap();
        let inv = ldk.cmd(json!({"cmd": "invoice", "msat": 3_000_000}));
        let hash = inv["hash"].as_str().unwrap().to_string();
        let bolt11 = inv["bolt11"].as_str().unwrap().to_string();
        let payer = std::thread::spawn({
            let exe = side.lnp.dir.clone();
            move || {
                let _ = std::process::Command::new(common::NODECTL)
                    .args(["lnp", "pay", &bolt11, "--wait", "--data-dir"])
                    .arg(&exe)
                    .output();
            }
        });
        let want = format!("fault point {point} reached");
        wait_until(Duration::from_secs(30), &want, || {
            side.lnp.log_text().contains(&want)
        });
        std::thread::sleep(Duration::from_millis(300));
        side.restart_lnp(&[]);
        let _ = payer.join();
        wait_until(Duration::from_secs(60), "the payment ends", || {
            payment(&side, &hash).is_some_and(|p| p["status"] != "pending")
        });
        let p = payment(&side, &hash).unwrap();
        assert_eq!(p["status"], "succeeded", "{point}: {p}");
        ldk.wait_event("payment_claimed", Duration::from_secs(30), |e| {
            e["hash"] == hash.as_str()
        });
        wait_until(Duration::from_secs(30), "settled", || {
            channel(&side, &id)["local_msat"].as_u64() == Some(before - 3_000_000)
        });
        balances_agree(&side, &mut ldk);
    }
    // Each payment was claimed by LDK once.
    std::thread::sleep(Duration::from_millis(500));
    let list = cli_json(&side.lnp, &["payments"]);
    assert_eq!(list.as_array().unwrap().len(), 4, "{list}");
    assert!(
        ldk.try_take("payment_claimed").is_none(),
        "a payment claimed twice"
    );
}

#[test]
fn kill_9_of_the_bp_node_then_no_block_is_missed_and_a_payment_and_a_close_still_work() {
    let mut bcoin = Bcoin::start(SEGWIT);
    let mut side = Side::start(&mut bcoin, 2_000_000);
    let mut ldk = Ldk::start();
    ldk.sync(&mut bcoin);
    side.connect(&ldk);
    let id = ready_channel_to_ldk(&mut bcoin, &side, &mut ldk, 500_000, 100_000_000);

    side.kill_bp();
    wait_until(Duration::from_secs(30), "the chain unreachable", || {
        side.lnp.info_json()["chain_reachable"] == 0
    });
    let refused = side.lnp.cli(&["channel", "open", &ldk.node_id, "100000"]);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("unreachable"), "{why}");
    // Blocks mined while the BP node is down.
    bcoin.cmd("mine 3");
    ldk.sync(&mut bcoin);
    let tip = bcoin.cmd("tip")["height"].as_u64().unwrap();
    side.start_bp();
    side.wait_height(tip);
    assert_eq!(side.lnp.info_json()["chain_reachable"], 1);
    assert_eq!(channel(&side, &id)["confirmations"], 4);

    pay_ldk_invoice(&side, &mut ldk, 2_500_000);
    balances_agree(&side, &mut ldk);
    let before = bp_confirmed(&side);
    let share = channel(&side, &id)["local_msat"].as_u64().unwrap() / 1000;
    ok(side.lnp.cli(&["close", &id]));
    ldk.wait_event("channel_closed", Duration::from_secs(30), |e| {
        e["channel_id"] == id.as_str()
    });
    let closing = ldk.next_broadcast(&mut bcoin);
    wait_mempool(&mut bcoin, &json!(closing));
    mine(&mut bcoin, &mut ldk, &side, 1);
    wait_until(Duration::from_secs(30), "our share of the close", || {
        bp_confirmed(&side) > before + share - 10_000
    });
}

#[test]
fn two_of_our_lnp_nodes_open_a_channel_and_pay_each_other() {
    let mut bcoin = Bcoin::start(SEGWIT);
    let a = Side::start(&mut bcoin, 2_000_000);
    let b = Side::start(&mut bcoin, 0);
    let (b_id, b_addr) = common::lnpeer::target(&b.lnp);
    ok(a.lnp.cli(&["connect", &format!("{b_id}@{b_addr}")]));
    let o = cli_json(
        &a.lnp,
        &[
            "channel",
            "open",
            &b_id,
            "400000",
            "--push-msat",
            "20000000",
        ],
    );
    let id = o["channel_id"].as_str().unwrap().to_string();
    wait_mempool(&mut bcoin, &o["funding"]);
    // B asks 3 confirmations ([channels] min_depth).
    let tip = bcoin.cmd("mine 3")["height"].as_u64().unwrap();
    a.wait_height(tip);
    b.wait_height(tip);
    wait_until(Duration::from_secs(30), "ready on both sides", || {
        channel(&a, &id)["state"] == "ready" && channel(&b, &id)["state"] == "ready"
    });
    // An extension service on A's CHNL bus hears the channel and payment events.
    let chnl = format!("ipc://{}", a.lnp.dir.join("chnl").display());
    let ext = common::Raw::connect(&chnl, common::other_id("chnl-ext"));
    ext.send(
        &common::other_id("channeld"),
        &common::payload(0x022d, 7, &[]),
    );
    let r = ext.recv_msg();
    assert_eq!(r.type_id, 0x0001, "subscribed: {:?}", r.failure());
    let inv = cli_json(&b.lnp, &["invoice", "5000000", "--description", "from a"]);
    let p = cli_json(&a.lnp, &["pay", inv["bolt11"].as_str().unwrap(), "--wait"]);
    assert_eq!(p["status"], "succeeded", "{p}");
    // channel_event "payment sent" (kind 4) with the payment hash, for the subscription.
    let sent = ext.recv_msg();
    assert_eq!((sent.type_id, sent.request_id), (0x022e, 7));
    assert_eq!(sent.body[0], 4, "payment sent");
    assert_eq!(
        sent.body[1..33]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
        inv["payment_hash"].as_str().unwrap()
    );
    let inv = cli_json(&a.lnp, &["invoice", "1000000"]);
    let p = cli_json(&b.lnp, &["pay", inv["bolt11"].as_str().unwrap(), "--wait"]);
    assert_eq!(p["status"], "succeeded", "{p}");
    let got = ext.recv_msg();
    assert_eq!((got.type_id, got.body[0]), (0x022e, 3), "payment received");
    wait_until(Duration::from_secs(30), "both sides agree", || {
        let (ca, cb) = (channel(&a, &id), channel(&b, &id));
        ca["local_msat"] == cb["remote_msat"] && ca["remote_msat"] == cb["local_msat"]
    });
    let cb = channel(&b, &id);
    assert_eq!(cb["local_msat"], 20_000_000 + 5_000_000 - 1_000_000, "{cb}");
    // A crash of channeld: it restarts, opens its state again, reconnects and reestablishes.
    ok(a.lnp.cli(&["debug", "crash", "channeld"]));
    a.lnp.wait_info("channeld back", |i| {
        common::service(i, "channeld")["restarts"] == 1 && i["channels_engine"] == "ready"
    });
    wait_until(Duration::from_secs(30), "the channel reestablished", || {
        channel(&a, &id)["state"] == "ready" && channel(&b, &id)["state"] == "ready"
    });
    let inv = cli_json(&b.lnp, &["invoice", "3000"]);
    let p = cli_json(&a.lnp, &["pay", inv["bolt11"].as_str().unwrap(), "--wait"]);
    assert_eq!(p["status"], "succeeded", "{p}");
    // A payment to a node that is not a channel peer fails with that reason.
    let mut ldk = Ldk::start();
    let inv = ldk.cmd(json!({"cmd": "invoice", "msat": 1000}));
    let r = a.lnp.cli(&["pay", inv["bolt11"].as_str().unwrap()]);
    assert!(!r.status.success());
    let why = String::from_utf8_lossy(&r.stderr);
    assert!(why.contains("direct channel peers"), "{why}");
}

/// The features LDK requires of a peer (ours, with `--bp`).
fn ldk_features() -> lnpbp_nodes::wire::ln::bolt1::Features {
    let cfg = lnpbp_nodes::ldk::engine::EngineConfig {
        network: bitcoin::Network::Regtest,
        node_secret: bitcoin::secp256k1::SecretKey::from_slice(&[1; 32]).unwrap(),
        min_depth: 1,
        to_self_delay: 144,
        seed: [2; 32],
    };
    lnpbp_nodes::wire::ln::bolt1::Features(lnpbp_nodes::ldk::engine::init_features(&cfg))
}

fn typed(t: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = t.to_be_bytes().to_vec();
    m.extend_from_slice(payload);
    m
}

#[test]
fn hostile_channel_messages_are_answered_as_bolt2_says_and_other_channels_go_on() {
    use common::lnpeer::RawPeer;
    let mut bcoin = Bcoin::start(SEGWIT);
    let side = Side::start(&mut bcoin, 2_000_000);
    let mut bad = Ldk::start();
    let mut good = Ldk::start();
    bad.sync(&mut bcoin);
    good.sync(&mut bcoin);
    side.connect(&bad);
    side.connect(&good);
    let a = open_to_ldk(&side, &mut bad, 400_000, 100_000_000);
    let b = open_to_ldk(&side, &mut good, 400_000, 100_000_000);
    wait_mempool(&mut bcoin, &channel(&side, &a)["funding"]);
    wait_mempool(&mut bcoin, &channel(&side, &b)["funding"]);
    bcoin.cmd("mine 1");
    good.sync(&mut bcoin);
    mine(&mut bcoin, &mut bad, &side, 0);
    wait_until(Duration::from_secs(30), "both ready", || {
        channel(&side, &a)["state"] == "ready" && channel(&side, &b)["state"] == "ready"
    });

    // A message for a channel that does not exist: an error about that channel; the
    // connection stays.
    let mut raw = RawPeer::ready_with(&side.lnp, ldk_features());
    let mut funding_signed = vec![0x11; 32];
    funding_signed.extend_from_slice(&[1; 64]);
    raw.send(&typed(35, &funding_signed));
    let reply = loop {
        let m = raw
            .recv()
            .expect("an answer to a message for an unknown channel");
        let t = u16::from_be_bytes([m[0], m[1]]);
        if t == 1 || t == 17 {
            break m;
        }
    };
    assert_eq!(&reply[2..34], &[0x11; 32], "the answer names the channel");
    assert!(raw.ping(4) == 4, "the connection stays");
    // A malformed open_channel: a warning, and the connection closes.
    raw.send(&typed(32, &[0; 10]));
    let rest = raw.until_closed();
    assert!(
        rest.iter().any(|m| m.type_id() == 1),
        "a warning before the close: {rest:?}"
    );

    // A bad signature in commitment_signed: we fail that channel (BOLT-2) and broadcast our
    // commitment; our other channel goes on.
    let before = channel(&side, &a)["local_msat"].as_u64().unwrap();
    bad.cmd(json!({"cmd": "tamper"}));
    let inv = cli_json(&side.lnp, &["invoice", "1000000"]);
    let _ = bad.try_cmd(json!({"cmd": "pay", "bolt11": inv["bolt11"]}));
    bad.wait_event("tampered", Duration::from_secs(30), |_| true);
    bad.wait_event("channel_closed", Duration::from_secs(30), |e| {
        e["channel_id"] == a.as_str()
    });
    wait_until(Duration::from_secs(30), "the channel failed", || {
        channel(&side, &a).is_null()
    });
    wait_until(
        Duration::from_secs(30),
        "our funds claimed on chain",
        || {
            cli_json(&side.lnp, &["balance"])["onchain_claimable_sat"]
                .as_u64()
                .unwrap()
                >= before / 1000 - 10_000
        },
    );
    assert_eq!(channel(&side, &b)["state"], "ready");
    pay_ldk_invoice(&side, &mut good, 2_000_000);
    balances_agree_with(&side, &mut good, &b);
    let info = side.lnp.info_json();
    let ch = common::service(&info, "channeld");
    assert_eq!(ch["restarts"], 0, "no panic: {ch}");
}
