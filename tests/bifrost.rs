//! Bifrost peers of the LNP node (LNPBP-50 over Brontozaur): two nodes connect over Bifrost and
//! Lightning at once, `peers` shows each protocol, `ping` and `disconnect` work on either; a
//! hand-driven Bifrost peer gets an `error` for an app message nobody takes, and a packet
//! announced above the receive limit closes its connection while the nodes keep serving.

mod common;

use common::lnpeer::{RawBifrost, SilentBifrost};
use common::*;
use lnpbp_nodes::wire::api::lnp::{AppMessage, LnpMsg};
use lnpbp_nodes::wire::api::{Envelope, ServiceId};
use lnpbp_nodes::wire::bifrost::msg::BifrostMsg;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn peers(node: &Node) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(&ok(node.cli(&["peers", "--json"])))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// (node id, Lightning address, Bifrost address).
fn addresses(node: &Node) -> (String, String, String) {
    let info = node.info_json();
    (
        info["node_id"].as_str().unwrap().into(),
        info["listening"][0].as_str().unwrap().into(),
        info["bifrost_listening"][0].as_str().unwrap().into(),
    )
}

#[test]
fn two_nodes_over_bifrost_and_lightning_at_once() {
    let (a, b) = (Node::start("lnp", &[]), Node::start("lnp", &[]));
    let (b_id, b_ln, b_bifrost) = addresses(&b);
    let (a_id, _, _) = addresses(&a);
    let said = ok(a.cli(&["connect", &format!("bifrost://{b_id}@{b_bifrost}")]));
    assert!(
        said.contains("connected to") && said.contains("Bifrost"),
        "{said}"
    );
    ok(a.cli(&["connect", &format!("bolt://{b_id}@{b_ln}")]));
    wait_until(
        Duration::from_secs(10),
        "both connections on both sides",
        || {
            let (pa, pb) = (peers(&a), peers(&b));
            let kinds = |p: &[serde_json::Value], id: &str| {
                let mut k: Vec<String> = p
                    .iter()
                    .filter(|x| x["node_id"] == id)
                    .map(|x| x["protocol"].as_str().unwrap().to_string())
                    .collect();
                k.sort();
                k
            };
            kinds(&pa, &b_id) == ["bifrost", "lightning"]
                && kinds(&pb, &a_id) == ["bifrost", "lightning"]
        },
    );
    let on_b: Vec<_> = peers(&b)
        .into_iter()
        .filter(|p| p["protocol"] == "bifrost")
        .collect();
    assert_eq!(on_b[0]["direction"], "inbound");
    assert!(on_b[0]["service"].as_str().unwrap().starts_with("bifrost-"));

    // Ping works on both kinds of peer.
    let bif = ok(a.cli(&["ping", &b_id, "--bifrost", "--json"]));
    assert!(bif.contains("rtt_us"), "{bif}");
    let ln = ok(a.cli(&["ping", &b_id, "--json"]));
    assert!(ln.contains("rtt_us"), "{ln}");
    // Connecting again over Bifrost is not a second connection.
    let again = ok(a.cli(&["connect", &format!("bifrost://{b_id}@{b_bifrost}")]));
    assert!(again.contains("already connected"), "{again}");

    // Disconnect the Bifrost connection only.
    ok(a.cli(&["disconnect", &b_id, "--bifrost"]));
    wait_until(Duration::from_secs(10), "only Lightning left", || {
        peers(&a)
            .iter()
            .filter(|p| p["node_id"] == b_id.as_str())
            .map(|p| p["protocol"].clone())
            .collect::<Vec<_>>()
            == [serde_json::json!("lightning")]
    });
    let gone = a.cli(&["ping", &b_id, "--bifrost"]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not connected"));
}

/// A service in another process on a node's MSG bus (frames built with the crate's codec).
fn msg_bus_client(node: &Node, name: &str) -> (Raw, ServiceId) {
    let me = ServiceId::named(name).unwrap();
    let endpoint = format!("ipc://{}", node.dir.join("msg").display());
    (Raw::connect(&endpoint, me.to_bytes()), me)
}

fn request(raw: &Raw, me: &ServiceId, id: u64, msg: LnpMsg) -> Reply {
    let env = Envelope {
        src: me.clone(),
        dst: ServiceId::Lnpd,
        request_id: id,
        msg: msg.into(),
    };
    let [src, dst, payload] = env.encode_frames().unwrap();
    raw.send_frames(&[&src, &dst, &payload]);
    loop {
        let r = raw.recv_msg();
        if r.request_id == id && r.type_id != 0x0003 {
            return r;
        }
    }
}

#[test]
fn app_messages_cross_from_one_nodes_msg_bus_to_the_others() {
    let (a, b) = (Node::start("lnp", &[]), Node::start("lnp", &[]));
    let (a_id, _, _) = addresses(&a);
    let (b_id, _, b_bifrost) = addresses(&b);
    ok(a.cli(&["connect", &format!("bifrost://{b_id}@{b_bifrost}")]));
    wait_until(Duration::from_secs(10), "B sees A", || {
        peers(&b).iter().any(|p| p["protocol"] == "bifrost")
    });
    // On B, a service takes app 0x0001; on A, a service sends to B.
    let (app_b, me_b) = msg_bus_client(&b, "storm-app");
    let r = request(
        &app_b,
        &me_b,
        7,
        LnpMsg::SubscribeBifrostApps { apps: vec![1] },
    );
    assert_eq!(r.type_id, 0x0001, "subscribed");
    let (app_a, me_a) = msg_bus_client(&a, "storm-app");
    let node = |hex: &str| -> [u8; 33] {
        let v: Vec<u8> = (0..33)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        v.try_into().unwrap()
    };
    let send = |app: u16, payload: &[u8], id: u64| {
        request(
            &app_a,
            &me_a,
            id,
            LnpMsg::SendBifrostApp(AppMessage {
                node_id: node(&b_id).into(),
                app,
                payload: payload.to_vec(),
            }),
        )
    };
    assert_eq!(send(1, b"hello", 1).type_id, 0x0001);
    let got = app_b.recv_msg();
    assert_eq!(
        (got.type_id, got.request_id),
        (0x0214, 7),
        "with the subscription's id"
    );
    let mut c = Cursor(&got.body);
    assert_eq!(c.take(33), node(&a_id), "from A's node id");
    assert_eq!(c.u16(), 1);
    let n = c.u16() as usize;
    assert_eq!(c.take(n), b"hello");
    // An app nobody takes on B: B tells A with a Bifrost error, which A logs.
    assert_eq!(send(2, b"?", 2).type_id, 0x0001);
    wait_until(Duration::from_secs(10), "A logs B's error", || {
        a.log_text().contains("no service takes Bifrost app 0x0002")
    });
    // Sending to a node A has no Bifrost connection with: 0x6001.
    let r = request(
        &app_a,
        &me_a,
        3,
        LnpMsg::SendBifrostApp(AppMessage {
            node_id: node(&a_id).into(),
            app: 1,
            payload: vec![],
        }),
    );
    assert_eq!(r.failure().0, 0x6001);
}

#[test]
fn a_hand_driven_bifrost_peer_gets_errors_and_bad_packets_close_it() {
    let node = Node::start("lnp", &[]);
    let (id, _, addr) = addresses(&node);
    let mut p = RawBifrost::connect(&id, &addr);
    // Our ping is answered with the bytes asked.
    p.send(&BifrostMsg::Ping {
        ignored: vec![],
        pong_size: 5,
    });
    assert_eq!(p.recv(), Some(BifrostMsg::Pong(vec![0; 5])));
    // An app message nobody takes: an error back, and the connection stays.
    p.send(&BifrostMsg::Msg {
        app: 0x0001,
        payload: b"hi".to_vec(),
    });
    match p.recv() {
        Some(BifrostMsg::Error { message, .. }) => {
            assert!(message.unwrap().contains("no service takes"))
        }
        other => panic!("expected an error, got {other:?}"),
    }
    p.send(&BifrostMsg::Ping {
        ignored: vec![],
        pong_size: 1,
    });
    assert_eq!(p.recv(), Some(BifrostMsg::Pong(vec![0])));
    // An unknown even type: an error, then the node closes.
    let bytes = p.t.encrypt(&[0x40, 0x00]).unwrap();
    p.s.write_all(&bytes).unwrap();
    assert!(matches!(p.recv(), Some(BifrostMsg::Error { .. })));
    assert_eq!(p.recv(), None, "closed");

    // A packet whose header announces more than the limit: closed without its body.
    let mut q = RawBifrost::connect(&id, &addr);
    let big = q.t.encrypt(&vec![0x13; 100_000]).unwrap();
    q.s.write_all(&big[..19]).unwrap();
    assert_eq!(q.recv(), None, "closed on the header");
    // Garbage instead of act one: closed.
    let mut g = TcpStream::connect(&addr).unwrap();
    g.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    g.write_all(&[0xAB; 50]).unwrap();
    let mut b = [0u8; 64];
    assert!(matches!(g.read(&mut b), Ok(0) | Err(_)));
    // The node still serves.
    let mut fine = RawBifrost::connect(&id, &addr);
    fine.send(&BifrostMsg::Ping {
        ignored: vec![],
        pong_size: 2,
    });
    assert_eq!(fine.recv(), Some(BifrostMsg::Pong(vec![0; 2])));
    assert_eq!(node.info_json()["node"], "lnp");
}

#[test]
fn a_bifrost_listener_that_never_sends_init_is_connected_listed_and_pinged() {
    let node = Node::start("lnp", &[]);
    let silent = SilentBifrost::start();
    // It answered our first ping instead of sending init: connected (not a 5 s timeout).
    let said = ok(node.cli(&[
        "connect",
        &format!("bifrost://{}@{}", silent.id, silent.addr),
    ]));
    assert!(
        said.contains("connected to") && said.contains("Bifrost"),
        "{said}"
    );
    let listed: Vec<_> = peers(&node)
        .into_iter()
        .filter(|p| p["node_id"] == silent.id.as_str())
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let p = &listed[0];
    assert_eq!(
        (
            p["protocol"].as_str(),
            p["direction"].as_str(),
            p["init"].as_bool()
        ),
        (Some("bifrost"), Some("outbound"), Some(false)),
        "{p}"
    );
    let text = ok(node.cli(&["peers"]));
    assert!(text.contains("no init"), "{text}");
    let pong = ok(node.cli(&["ping", &silent.id, "--bifrost", "--json"]));
    assert!(pong.contains("rtt_us"), "{pong}");
    ok(node.cli(&["disconnect", &silent.id, "--bifrost"]));
    // It got our init first, then our pings (the first one, and the one asked).
    let got = silent.got();
    assert_eq!(got[0], 0x0010, "init first: {got:x?}");
    assert!(
        got.iter().filter(|t| **t == 0x0012).count() >= 2,
        "{got:x?}"
    );
}
