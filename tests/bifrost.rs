//! Bifrost peers of the LNP node (LNPBP-50 over Brontozaur): two nodes connect over Bifrost and
//! Lightning at once, `peers` shows each protocol, `ping` and `disconnect` work on either; a
//! hand-driven Bifrost peer gets an `error` for an app message nobody takes, and a packet
//! announced above the receive limit closes its connection while the nodes keep serving.

mod common;

use bitcoin::secp256k1::{rand, PublicKey, SecretKey};
use common::*;
use lnpbp_nodes::wire::bifrost::BifrostMsg;
use lnpbp_nodes::wire::bolt8::{Framing, Initiator, Transport};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::str::FromStr;
use std::time::Duration;

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

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

/// A Bifrost peer driven by hand: Brontozaur handshake and our init.
struct RawBifrost {
    s: TcpStream,
    t: Transport,
    buf: Vec<u8>,
}

impl RawBifrost {
    fn connect(id: &str, addr: &str) -> RawBifrost {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let key = || SecretKey::new(&mut rand::thread_rng());
        let remote = PublicKey::from_str(id).unwrap();
        let (act1, next) = Initiator::new(key(), remote, key()).act_one(Framing::Brontozaur);
        s.write_all(&act1).unwrap();
        let mut act2 = [0u8; 50];
        s.read_exact(&mut act2).unwrap();
        let (act3, t) = next.act_two(&act2).unwrap();
        s.write_all(&act3).unwrap();
        let mut p = RawBifrost {
            s,
            t,
            buf: Vec::new(),
        };
        let init = p.recv().expect("the node's init");
        assert!(matches!(init, BifrostMsg::Init { .. }), "{init:?}");
        p.send(&BifrostMsg::Init {
            protocols: "storm".into(),
            assets: vec![],
            tlvs: vec![],
        });
        p
    }

    fn send(&mut self, m: &BifrostMsg) {
        let bytes = self.t.encrypt(&m.encode().unwrap()).unwrap();
        self.s.write_all(&bytes).unwrap();
    }

    fn recv(&mut self) -> Option<BifrostMsg> {
        loop {
            if let Some(m) = self.t.decrypt(&mut self.buf).unwrap() {
                return Some(BifrostMsg::decode(&m).unwrap());
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
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
