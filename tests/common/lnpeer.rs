//! A Lightning peer and a Bifrost peer driven by hand with the crate's own BOLT-8 codec
//! (tests/lnp_peers.rs, tests/admission.rs, tests/bifrost.rs, tests/storm_transfer.rs): honest
//! when asked, misbehaving on purpose otherwise.

use super::Node;
use bitcoin::secp256k1::{rand, PublicKey, SecretKey};
use lnpbp_nodes::wire::bifrost::msg::BifrostMsg;
use lnpbp_nodes::wire::ln::bolt1::{Features, Init, Message};
use lnpbp_nodes::wire::ln::bolt8::{Framing, Initiator, Transport};
use lnpbp_nodes::wire::storm::p2p::StormP2p;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::str::FromStr;
use std::time::Duration;

/// (node id hex, first listening address) of an LNP node.
pub fn target(node: &Node) -> (String, String) {
    let info = node.info_json();
    let id = info["node_id"].as_str().unwrap().to_string();
    let addr = info["listening"][0].as_str().unwrap().to_string();
    (id, addr)
}

/// A peer driven by hand with the crate's own BOLT-8 codec, to misbehave on purpose.
pub struct RawPeer {
    pub s: TcpStream,
    pub t: Option<Transport>,
    pub buf: Vec<u8>,
}

impl RawPeer {
    pub fn tcp(addr: &str) -> TcpStream {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Completes the handshake and reads the node's init; sends nothing more.
    pub fn handshake(node_id: &str, addr: &str) -> RawPeer {
        let mut s = RawPeer::tcp(addr);
        let remote = PublicKey::from_str(node_id).unwrap();
        let key = || SecretKey::new(&mut rand::thread_rng());
        let (act1, next) = Initiator::new(key(), remote, key()).act_one(Framing::Brontide);
        s.write_all(&act1).unwrap();
        let mut act2 = [0u8; 50];
        s.read_exact(&mut act2).unwrap();
        let (act3, t) = next.act_two(&act2).unwrap();
        s.write_all(&act3).unwrap();
        let mut p = RawPeer {
            s,
            t: Some(t),
            buf: Vec::new(),
        };
        let first = p.recv().expect("the node's init");
        assert!(matches!(Message::decode(&first), Ok(Message::Init(_))));
        p
    }

    /// Handshake and our init (on the node's chain).
    pub fn ready(node: &Node) -> RawPeer {
        RawPeer::ready_with(node, Features::default())
    }

    /// Handshake and our init with `features`.
    pub fn ready_with(node: &Node, features: Features) -> RawPeer {
        let (id, addr) = target(node);
        let mut p = RawPeer::handshake(&id, &addr);
        p.send(
            &Message::Init(Init {
                global_features: Features::default(),
                features,
                networks: None,
                remote_addr: None,
                unknown_odd: vec![],
            })
            .encode(),
        );
        p
    }

    pub fn send(&mut self, msg: &[u8]) {
        let bytes = self.t.as_mut().unwrap().encrypt(msg).unwrap();
        self.s.write_all(&bytes).unwrap();
    }

    /// The next message, or `None` when the node closed the connection.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(m) = self.t.as_mut().unwrap().decrypt(&mut self.buf).unwrap() {
                return Some(m);
            }
            let mut chunk = [0u8; 65_536];
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read: {e} (the node neither answered nor closed)"),
            }
        }
    }

    /// Messages until the node closes (it must close within the read timeout).
    pub fn until_closed(&mut self) -> Vec<Message> {
        let mut got = Vec::new();
        while let Some(m) = self.recv() {
            got.push(Message::decode(&m).unwrap());
        }
        got
    }

    pub fn ping(&mut self, n: u16) -> usize {
        self.send(
            &Message::Ping {
                num_pong_bytes: n,
                ignored: vec![],
            }
            .encode(),
        );
        loop {
            match Message::decode(&self.recv().expect("pong")).unwrap() {
                Message::Pong { ignored } => return ignored.len(),
                Message::Ping { num_pong_bytes, .. } => self.send(
                    &Message::Pong {
                        ignored: vec![0; num_pong_bytes as usize],
                    }
                    .encode(),
                ),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

/// Reads raw bytes until EOF; the node must close without sending anything.
pub fn closed_silently(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 128];
    matches!(s.read(&mut b), Ok(0))
        || matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
}

/// A Bifrost peer driven by hand: Brontozaur handshake and our init.
pub struct RawBifrost {
    /// The socket.
    pub s: TcpStream,
    /// The Brontozaur transport after the handshake.
    pub t: Transport,
    buf: Vec<u8>,
    /// Our node id (hex).
    pub node_id: String,
}

impl RawBifrost {
    pub fn connect(id: &str, addr: &str) -> RawBifrost {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let key = || SecretKey::new(&mut rand::thread_rng());
        let remote = PublicKey::from_str(id).unwrap();
        let me = key();
        let node_id = me
            .public_key(&bitcoin::secp256k1::Secp256k1::new())
            .to_string();
        let (act1, next) = Initiator::new(me, remote, key()).act_one(Framing::Brontozaur);
        s.write_all(&act1).unwrap();
        let mut act2 = [0u8; 50];
        s.read_exact(&mut act2).unwrap();
        let (act3, t) = next.act_two(&act2).unwrap();
        s.write_all(&act3).unwrap();
        let mut p = RawBifrost {
            s,
            t,
            buf: Vec::new(),
            node_id,
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

    pub fn send(&mut self, m: &BifrostMsg) {
        let bytes = self.t.encrypt(&m.encode().unwrap()).unwrap();
        self.s.write_all(&bytes).unwrap();
    }

    /// Sends a Storm message (a Bifrost `msg` of app 0x0001).
    pub fn send_storm(&mut self, m: &StormP2p) {
        self.send(&BifrostMsg::Msg {
            app: 0x0001,
            payload: m.encode().unwrap(),
        });
    }

    /// The next Storm message (other messages are skipped); `None` once closed or quiet for
    /// 10 s.
    pub fn recv_storm(&mut self) -> Option<StormP2p> {
        loop {
            if let BifrostMsg::Msg {
                app: 0x0001,
                payload,
            } = self.recv()?
            {
                return Some(StormP2p::decode(&payload).unwrap());
            }
        }
    }

    /// The next message; `None` once closed or quiet for 10 s.
    pub fn recv(&mut self) -> Option<BifrostMsg> {
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

/// A Bifrost listener driven by hand that never sends `init`, as an original lnp-node 0.9
/// listener (`connect = false`): it takes one connection, completes the handshake, answers
/// pings and records what it got (message type ids) until the connection closes.
pub struct SilentBifrost {
    /// Its node id (hex).
    pub id: String,
    /// Its address.
    pub addr: String,
    got: std::thread::JoinHandle<Vec<u16>>,
}

impl SilentBifrost {
    pub fn start() -> SilentBifrost {
        use lnpbp_nodes::wire::ln::bolt8::Responder;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let me = SecretKey::new(&mut rand::thread_rng());
        let id = me
            .public_key(&bitcoin::secp256k1::Secp256k1::new())
            .to_string();
        let got = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut act1 = [0u8; 50];
            s.read_exact(&mut act1).unwrap();
            let e = SecretKey::new(&mut rand::thread_rng());
            let (act2, next) = Responder::new(me, e, Framing::Brontozaur)
                .act_one(&act1)
                .unwrap();
            s.write_all(&act2).unwrap();
            let mut act3 = [0u8; 66];
            s.read_exact(&mut act3).unwrap();
            let (mut t, _) = next.act_three(&act3).unwrap();
            let (mut buf, mut got) = (Vec::new(), Vec::new());
            loop {
                while let Some(m) = t.decrypt(&mut buf).unwrap() {
                    let m = BifrostMsg::decode(&m).unwrap();
                    got.push(m.type_id());
                    if let BifrostMsg::Ping { pong_size, .. } = m {
                        let pong = BifrostMsg::Pong(vec![0; pong_size as usize]);
                        s.write_all(&t.encrypt(&pong.encode().unwrap()).unwrap())
                            .unwrap();
                    }
                }
                let mut chunk = [0u8; 4096];
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => return got,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        });
        SilentBifrost { id, addr, got }
    }

    /// The type ids of what it got, once the connection has closed.
    pub fn got(self) -> Vec<u16> {
        self.got.join().unwrap()
    }
}
