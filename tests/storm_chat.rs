//! Storm nodes joined to LNP nodes, chatting over Bifrost: four processes on loopback. Chat
//! flows both ways, the history survives a restart, and a Storm node whose LNP node goes away
//! says so, fails chat at once, and reconnects by itself when it is back.

mod common;

use common::*;
use std::process::Child;
use std::time::Duration;

fn msg_endpoint(lnp: &Node) -> String {
    format!("ipc://{}", lnp.dir.join("msg").display())
}

fn lnp_state(storm: &Node) -> String {
    storm.info_json()["lnp"].as_str().unwrap().to_string()
}

/// `nodectl storm chat listen --json` on `storm`: its messages, line by line.
fn listen(storm: &Node) -> (Child, std::sync::mpsc::Receiver<serde_json::Value>) {
    json_lines(&["storm", "chat", "listen", "--json"], &storm.dir, |v| {
        v.get("text").is_some()
    })
}

#[test]
fn two_storm_nodes_chat_over_two_lnp_nodes() {
    let (la, lb) = (Node::start("lnp", &[]), Node::start("lnp", &[]));
    let (a_id, b_id) = (
        la.info_json()["node_id"].as_str().unwrap().to_string(),
        lb.info_json()["node_id"].as_str().unwrap().to_string(),
    );
    let sa = Node::start("storm", &["--lnp", &msg_endpoint(&la)]);
    let tmp_b = tempfile::tempdir_in("/tmp").unwrap();
    let sb_dir = tmp_b.path().join("storm");
    let mut sb = Node::spawn_in("storm", &sb_dir, &["--lnp", &msg_endpoint(&lb)], &[]);
    sb.wait_ready();
    connect_bifrost(&la, &lb);
    // `peers` shows the Bifrost connection on both LNP nodes, each naming the other.
    for (lnp, other) in [(&la, &b_id), (&lb, &a_id)] {
        wait_until(Duration::from_secs(10), "the Bifrost peer listed", || {
            let out = ok(lnp.cli(&["peers", "--json"]));
            let list: serde_json::Value = serde_json::from_str(&out).unwrap();
            list.as_array().unwrap().iter().any(|p| {
                p["protocol"] == "bifrost" && p["node_id"].as_str() == Some(other.as_str())
            })
        });
    }
    for s in [&sa, &sb] {
        s.wait_info("the LNP node reachable", |i| {
            i["lnp"].as_str().unwrap().ends_with("(reachable)")
        });
    }

    // A to B, then B to A.
    let (mut lb_listener, from_a) = listen(&sb);
    std::thread::sleep(Duration::from_millis(300));
    ok(sa.cli(&["chat", "send", &b_id, "hello B"]));
    let got = from_a
        .recv_timeout(Duration::from_secs(10))
        .expect("B's Storm node gets A's message");
    assert_eq!(
        (got["from"].as_str(), got["text"].as_str()),
        (Some(a_id.as_str()), Some("hello B"))
    );
    let (mut la_listener, from_b) = listen(&sa);
    std::thread::sleep(Duration::from_millis(300));
    ok(sb.cli(&["chat", "send", &a_id, "hi A"]));
    let got = from_b
        .recv_timeout(Duration::from_secs(10))
        .expect("A gets B's");
    assert_eq!(
        (got["from"].as_str(), got["text"].as_str()),
        (Some(b_id.as_str()), Some("hi A"))
    );
    for l in [&mut lb_listener, &mut la_listener] {
        let _ = l.kill();
        let _ = l.wait();
    }

    // B's history, before and after a restart of B's Storm node.
    let history = |s: &Node| -> Vec<(bool, String)> {
        serde_json::from_str::<serde_json::Value>(&ok(s.cli(&["chat", "history", &a_id, "--json"])))
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["outgoing"].as_bool().unwrap(),
                    e["text"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let before = history(&sb);
    assert_eq!(
        before,
        vec![(false, "hello B".into()), (true, "hi A".into())]
    );
    sb.signal("-TERM");
    assert!(sb.wait_exit(Duration::from_secs(10)).is_some());
    let sb2 = {
        let mut n = Node::spawn_in("storm", &sb_dir, &["--lnp", &msg_endpoint(&lb)], &[]);
        n.wait_ready();
        n
    };
    assert_eq!(history(&sb2), before, "the history survives a restart");
    drop(sb);
}

#[test]
fn an_unreachable_lnp_node_is_said_fails_chat_at_once_and_is_rejoined() {
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let la_dir = tmp.path().join("lnp");
    let mut la = Node::spawn_in("lnp", &la_dir, &[], &[]);
    la.wait_ready();
    let lb = Node::start("lnp", &[]);
    let b_id = lb.info_json()["node_id"].as_str().unwrap().to_string();
    let sa = Node::start("storm", &["--lnp", &msg_endpoint(&la)]);
    connect_bifrost(&la, &lb);
    sa.wait_info("reachable", |i| {
        i["lnp"].as_str().unwrap().ends_with("(reachable)")
    });

    // The LNP node stops: the Storm node says so, and chat fails at once.
    la.signal("-TERM");
    assert!(la.wait_exit(Duration::from_secs(10)).is_some());
    sa.wait_info("unreachable", |i| {
        i["lnp"].as_str().unwrap().ends_with("(unreachable)")
    });
    let t = std::time::Instant::now();
    let fail = sa.cli(&["chat", "send", &b_id, "anyone?", "--timeout", "10"]);
    assert!(!fail.status.success());
    assert!(
        String::from_utf8_lossy(&fail.stderr).contains("not reachable"),
        "{}",
        String::from_utf8_lossy(&fail.stderr)
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "at once, not after a timeout"
    );

    // It comes back on the same data dir: the Storm node rejoins by itself.
    let la2 = {
        let mut n = Node::spawn_in("lnp", &la_dir, &[], &[]);
        n.wait_ready();
        n
    };
    sa.wait_info("reachable again", |i| {
        i["lnp"].as_str().unwrap().ends_with("(reachable)")
    });
    connect_bifrost(&la2, &lb);
    ok(sa.cli(&["chat", "send", &b_id, "back"]));
    assert!(lnp_state(&sa).ends_with("(reachable)"));
    drop(la);
}
