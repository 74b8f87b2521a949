//! One Bifrost peer session (wire::bifrost_peer) fed by a hostile peer: either raw bytes from
//! the first byte on, or, after a real Brontozaur handshake, a script of packets of
//! fuzzer-chosen lengths and contents (init or not first, any type, app messages), with the
//! clock moving. Never a panic; whatever the session writes back decrypts on the peer's side
//! and decodes as Bifrost.
#![no_main]

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::wire::bifrost::msg::BifrostMsg;
use lnpbp_nodes::wire::bifrost::peer::{BifrostConfig, Session};
use lnpbp_nodes::wire::ln::bolt8::{Framing, Initiator};
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
    let config = BifrostConfig {
        protocols: "storm".into(),
        act_timeout: Duration::from_secs(5),
        ping_interval: Duration::from_secs(60),
        pong_timeout: Duration::from_secs(30),
    };
    let mut node = Session::inbound(config, secret(2), secret(4), now);
    let mut events = Vec::new();
    if mode % 2 == 0 {
        let mut buf = script.to_vec();
        let _ = node.receive(&mut buf, now, &mut events, usize::MAX);
        let _ = node.tick(now + Duration::from_secs(6));
        return;
    }
    let (act1, next) =
        Initiator::new(secret(1), public_of(2), secret(3)).act_one(Framing::Brontozaur);
    let mut buf = act1.to_vec();
    node.receive(&mut buf, now, &mut events, usize::MAX).unwrap();
    let (act3, mut t) = next.act_two(&take(&mut node)).unwrap();
    let mut buf = act3.to_vec();
    node.receive(&mut buf, now, &mut events, usize::MAX).unwrap();
    let mut from_node = take(&mut node);
    let mut rest = script;
    let mut clock = now;
    while rest.len() >= 3 {
        let len = u16::from_le_bytes([rest[0], rest[1]]) as usize % 4096;
        clock += Duration::from_millis(rest[2] as u64 * 100);
        rest = &rest[3..];
        let (msg, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        let mut wire = t.encrypt(msg).unwrap();
        if node.receive(&mut wire, clock, &mut events, 1 << 20).is_err() {
            break;
        }
        if node.tick(clock).is_err() {
            break;
        }
        let _ = node.ping(msg.len() as u16, clock);
        let _ = node.send_app(1, msg.to_vec());
        from_node.extend_from_slice(&take(&mut node));
    }
    from_node.extend_from_slice(&take(&mut node));
    while let Some(m) = t.decrypt(&mut from_node).expect("the node's output decrypts") {
        BifrostMsg::decode(&m).expect("the node writes valid Bifrost");
    }
});

fn take(s: &mut Session) -> Vec<u8> {
    lnpbp_nodes::wire::session::PeerSession::take_output(s)
}
