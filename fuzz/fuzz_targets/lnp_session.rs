//! One Lightning peer session (wire::lnp_peer) fed by a hostile peer: either raw bytes from the
//! first byte on, or, after a real handshake, a script of messages of fuzzer-chosen types,
//! lengths and contents (init or not first), with the clock moving. Never a panic; whatever
//! the session writes back decrypts on the peer's side.
#![no_main]

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::wire::ln::bolt1::Features;
use lnpbp_nodes::wire::ln::bolt8::{Framing, Initiator};
use lnpbp_nodes::wire::ln::peer::{Session, SessionConfig};
use std::time::{Duration, Instant};

fn secret(b: u8) -> SecretKey {
    SecretKey::from_slice(&[b; 32]).unwrap()
}

fn public_of(b: u8) -> PublicKey {
    PublicKey::from_secret_key(&Secp256k1::signing_only(), &secret(b))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, script)) = data.split_first() else {
        return;
    };
    let now = Instant::now();
    let config = SessionConfig {
        chain: [7; 32],
        features: Features::default(),
        act_timeout: Duration::from_secs(5),
        ping_interval: Duration::from_secs(60),
        pong_timeout: Duration::from_secs(30),
    };
    let mut node = Session::inbound(config, secret(2), secret(4), None, now);
    let wanted = |t: u16| t == 32_768;
    let mut events = Vec::new();
    if mode % 2 == 0 {
        let mut buf = script.to_vec();
        let _ = node.receive(&mut buf, now, &wanted, &mut events);
        let _ = node.tick(now + Duration::from_secs(6));
        return;
    }
    let (act1, next) = Initiator::new(secret(1), public_of(2), secret(3)).act_one(Framing::Brontide);
    let mut buf = act1.to_vec();
    node.receive(&mut buf, now, &wanted, &mut events).unwrap();
    let (act3, mut t) = next.act_two(&node.take_output()).unwrap();
    let mut buf = act3.to_vec();
    node.receive(&mut buf, now, &wanted, &mut events).unwrap();
    let mut from_node = node.take_output();
    let mut rest = script;
    let mut clock = now;
    while rest.len() >= 3 {
        let len = u16::from_le_bytes([rest[0], rest[1]]) as usize % 2048;
        clock += Duration::from_millis(rest[2] as u64 * 100);
        rest = &rest[3..];
        let (msg, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        let mut wire = t.encrypt(msg).unwrap();
        if node.receive(&mut wire, clock, &wanted, &mut events).is_err() {
            break;
        }
        if node.tick(clock).is_err() {
            break;
        }
        let _ = node.ping(msg.len() as u16, clock);
        from_node.extend_from_slice(&node.take_output());
    }
    from_node.extend_from_slice(&node.take_output());
    while let Some(m) = t.decrypt(&mut from_node).expect("the node's output decrypts") {
        let _ = lnpbp_nodes::wire::ln::bolt1::Message::decode(&m);
    }
});
