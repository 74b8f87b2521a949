//! Storm between two nodes on loopback: two LNP nodes (Bifrost peers) and two Storm nodes
//! joined to them, four real processes.
//!
//! - A 64 MiB container from A to B (`send_container`, B auto-accepts A; timed from the
//!   request to B's `container_received`), against raw Brontozaur transport of the same bytes
//!   in 60 KiB messages between two sockets (our codec, one writer thread, one reader), in the
//!   same run.
//! - Chat latency: `chat_send` on A to the `chat_message` B's subscriber gets, against the
//!   Bifrost ping round trip between the same two LNP nodes.
//!
//! Run: `cargo bench --bench storm_transfer` (release). Prints medians and ratios.

mod common;

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lnpbp_nodes::bus::client::Client;
use lnpbp_nodes::bus::Endpoint;
use lnpbp_nodes::wire::api::lnp::{LnpMsg, Protocol};
use lnpbp_nodes::wire::api::storm::StormMsg;
use lnpbp_nodes::wire::api::{Detail, Msg, NodeInfo, ServiceId};
use lnpbp_nodes::wire::limits::CONTAINER_CHUNK;
use lnpbp_nodes::wire::ln::bolt8::{Framing, Initiator, Responder};
use lnpbp_nodes::wire::node_id::NodeId;
use lnpbp_nodes::wire::storm::container::ContainerId;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SIZE: usize = 64 << 20;
const CHATS: usize = 50;
const PINGS: usize = 50;

fn client(dir: &Path) -> Client {
    let ctx = zmq::Context::new();
    Client::connect(&ctx, &Endpoint::Ipc(dir.join("api"))).unwrap()
}

fn request(c: &mut Client, dst: &ServiceId, msg: Msg) -> Msg {
    c.request(dst, msg, Duration::from_secs(60), |_| {})
        .expect("request")
}

fn info(c: &mut Client, dst: &ServiceId) -> NodeInfo {
    let Msg::NodeInfo(i) = request(c, dst, Msg::GetInfo) else {
        panic!("info")
    };
    i
}

fn detail(i: &NodeInfo, key: &str) -> Detail {
    i.details
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .expect(key)
}

/// `size` bytes of xorshift output from the odd `seed` (distinct seeds, distinct data).
fn random(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `nodectl storm containerize` of `data` on the node in `dir`: the container id.
fn containerize(dir: &Path, data: &[u8], name: &str) -> ContainerId {
    let file = dir.join(name);
    std::fs::write(&file, data).unwrap();
    let out = common::storm_cli(dir, &["containerize", file.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hex = v["container_id"].as_str().unwrap();
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    std::fs::remove_file(&file).unwrap();
    ContainerId(bytes.try_into().unwrap())
}

/// Seconds from `send_container` on A to `container_received` on B's subscriber.
fn transfer(ca: &mut Client, sub: &mut Client, b_id: NodeId, id: ContainerId) -> f64 {
    let t = Instant::now();
    request(
        ca,
        &ServiceId::Stormd,
        StormMsg::SendContainer {
            node_id: b_id,
            container_id: id,
            app: 2,
        }
        .into(),
    );
    loop {
        let env = sub
            .recv(Duration::from_secs(120))
            .expect("container_received");
        if let Msg::Storm(StormMsg::ContainerReceived(r)) = &env.msg {
            if r.container_id == id {
                assert_eq!(r.have, r.chunks);
                return t.elapsed().as_secs_f64();
            }
        }
    }
}

/// Seconds to move `size` bytes in CONTAINER_CHUNK messages over Brontozaur between two
/// loopback sockets (encrypt, write; read, decrypt).
fn raw_brontozaur(data: &[u8]) -> f64 {
    let secp = Secp256k1::signing_only();
    let key = |b: u8| SecretKey::from_slice(&[b; 32]).unwrap();
    let rs = PublicKey::from_secret_key(&secp, &key(0x21));
    let (a1, i) = Initiator::new(key(0x11), rs, key(0x12)).act_one(Framing::Brontozaur);
    let (a2, r) = Responder::new(key(0x21), key(0x22), Framing::Brontozaur)
        .act_one(&a1)
        .unwrap();
    let (a3, mut ti) = i.act_two(&a2).unwrap();
    let (mut tr, _) = r.act_three(&a3).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let total = data.len();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = Vec::with_capacity(1 << 20);
        let mut chunk = vec![0u8; 1 << 16];
        let mut got = 0;
        while got < total {
            while let Some(m) = tr.decrypt(&mut buf).unwrap() {
                got += m.len();
            }
            if got >= total {
                break;
            }
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "closed early");
            buf.extend_from_slice(&chunk[..n]);
        }
        Instant::now()
    });
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let t = Instant::now();
    let mut wire = Vec::with_capacity(CONTAINER_CHUNK + 64);
    for part in data.chunks(CONTAINER_CHUNK) {
        wire.clear();
        ti.encrypt_into(part, &mut wire).unwrap();
        s.write_all(&wire).unwrap();
    }
    let end = reader.join().unwrap();
    (end - t).as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let samples = common::samples(5);
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let dir = |n: &str| tmp.path().join(n);
    let lnp_args = ["--listen", "127.0.0.1:0", "--bifrost-listen", "127.0.0.1:0"];
    let mut la = common::start_node("lnp", &dir("la"), &lnp_args);
    let mut lb = common::start_node("lnp", &dir("lb"), &lnp_args);
    let (mut cla, mut clb) = (client(&dir("la")), client(&dir("lb")));
    let a_info = info(&mut cla, &ServiceId::Lnpd);
    let b_info = info(&mut clb, &ServiceId::Lnpd);
    let Detail::List(addrs) = detail(&a_info, "bifrost_listening") else {
        panic!("bifrost_listening")
    };
    request(
        &mut clb,
        &ServiceId::Lnpd,
        LnpMsg::Connect {
            node_id: a_info.node_id,
            addr: addrs[0].clone(),
            protocol: Protocol::Bifrost,
        }
        .into(),
    );
    let join = |l: &str| format!("ipc://{}", dir(l).join("msg").display());
    let mut sa = common::start_node("storm", &dir("sa"), &["--lnp", &join("la")]);
    let a_hex = a_info.node_id.to_string();
    // STORM_WINDOW=N: the receiver's `[storm] window` (default: the built-in 16).
    let env: Vec<(String, String)> = std::env::var("STORM_WINDOW")
        .map(|w| vec![("NODECTL_STORM__WINDOW".to_string(), w)])
        .unwrap_or_default();
    let mut sb = common::start_node_env(
        "storm",
        &dir("sb"),
        &["--lnp", &join("lb"), "--auto-accept", &a_hex],
        &env,
    );
    let (mut ca, mut cb) = (client(&dir("sa")), client(&dir("sb")));
    for c in [&mut ca, &mut cb] {
        let t = Instant::now();
        while !matches!(detail(&info(c, &ServiceId::Stormd), "lnp"), Detail::Text(s) if s.ends_with("(reachable)"))
        {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "LNP node unreachable"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let mut sub = client(&dir("sb"));
    sub.send(&ServiceId::Stormd, StormMsg::TransferSubscribe(None).into())
        .unwrap();
    let mut chat_sub = client(&dir("sb"));
    chat_sub
        .send(&ServiceId::Stormd, StormMsg::ChatSubscribe.into())
        .unwrap();

    // Warm-up: one small container.
    let small = containerize(&dir("sa"), &random(1 << 20, 1), "warm.bin");
    transfer(&mut ca, &mut sub, b_info.node_id, small);

    let (mut ours, mut raw) = (Vec::new(), Vec::new());
    for n in 0..samples {
        let data = random(SIZE, 2 * (1000 + n as u64));
        let id = containerize(&dir("sa"), &data, "big.bin");
        ours.push(transfer(&mut ca, &mut sub, b_info.node_id, id));
        raw.push(raw_brontozaur(&data));
    }
    let mb = SIZE as f64 / 1e6;
    let (o, r) = (common::median(ours), common::median(raw));
    println!(
        "Storm container transfer, {} MiB, loopback ({samples} samples, medians)",
        SIZE >> 20
    );
    println!(
        "  raw Brontozaur, 60 KiB messages : {:8.1} MB/s ({:.3} s)",
        mb / r,
        r
    );
    println!(
        "  Storm node A -> B (4 processes) : {:8.1} MB/s ({:.3} s)   ratio {:.2}x of raw",
        mb / o,
        o,
        r / o
    );

    // Chat latency against the Bifrost ping between the same LNP nodes.
    let (mut chat, mut ping) = (Vec::new(), Vec::new());
    for i in 0..CHATS {
        let t = Instant::now();
        request(
            &mut ca,
            &ServiceId::Stormd,
            StormMsg::ChatSend {
                node_id: b_info.node_id,
                text: format!("bench {i}"),
            }
            .into(),
        );
        loop {
            let env = chat_sub
                .recv(Duration::from_secs(10))
                .expect("chat_message");
            if matches!(&env.msg, Msg::Storm(StormMsg::ChatIn(e)) if e.text == format!("bench {i}"))
            {
                break;
            }
        }
        chat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    for _ in 0..PINGS {
        let Msg::Lnp(LnpMsg::PeerPong { rtt_us }) = request(
            &mut clb,
            &ServiceId::Lnpd,
            LnpMsg::PingPeer {
                node_id: a_info.node_id,
                num_pong_bytes: 0,
                protocol: Protocol::Bifrost,
            }
            .into(),
        ) else {
            panic!("no pong");
        };
        ping.push(rtt_us as f64);
    }
    let (c, p) = (common::median(chat), common::median(ping));
    println!("chat latency, send on A to listen on B ({CHATS} messages, medians)");
    println!("  Bifrost ping round trip, LNP nodes : {p:8.1} us");
    println!(
        "  chat_send to chat_message         : {c:8.1} us   ratio {:.2}x of the ping round trip",
        c / p
    );
    for child in [&mut sa, &mut sb, &mut la, &mut lb] {
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let _ = child.wait();
    }
}
