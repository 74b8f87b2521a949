//! The server side of an encrypted bus session (wire::rpc_session) fed by a hostile client:
//! either raw ZMQ messages from the first one on (garbage where the handshake acts belong), or,
//! after a real handshake, a script of messages that are each a properly encrypted packet of
//! fuzzer-chosen plaintext (frames that may not parse), a raw message, or a packet with a byte
//! flipped. Never a panic; a message the session accepts yields frames that re-seal and parse
//! back the same; after an error the session stays ended.
#![no_main]

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::wire::api::session::{
    open_frames, seal_frames, ClientHandshake, ServerSession, ServerStep,
};

fn secret(b: u8) -> SecretKey {
    SecretKey::from_slice(&[b; 32]).unwrap()
}

fn public_of(b: u8) -> PublicKey {
    PublicKey::from_secret_key(&Secp256k1::signing_only(), &secret(b))
}

/// Splits `script` into (kind, message) pairs: u8 kind, u16 LE length, bytes.
fn messages(mut rest: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while rest.len() >= 3 {
        let kind = rest[0];
        let len = u16::from_le_bytes([rest[1], rest[2]]) as usize % 8192;
        rest = &rest[3..];
        let (msg, tail) = rest.split_at(len.min(rest.len()));
        out.push((kind, msg));
        rest = tail;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, script)) = data.split_first() else {
        return;
    };
    let node = secret(2);
    let mut server = ServerSession::new(1 << 20);
    if mode % 2 == 0 {
        let mut ended = false;
        for (_, msg) in messages(script) {
            let r = server.on_message(msg, &node, secret(4));
            if ended {
                assert!(r.is_err(), "an ended session stays ended");
            }
            ended |= r.is_err();
        }
        return;
    }
    let (act1, hs) = ClientHandshake::start(secret(1), public_of(2), secret(3), 1 << 20);
    let Ok(ServerStep::Reply(act2)) = server.on_message(&act1, &node, secret(4)) else {
        panic!("act one of a real client")
    };
    let (act3, mut client) = hs.on_act_two(&act2).unwrap();
    assert!(matches!(
        server.on_message(&act3, &node, secret(5)),
        Ok(ServerStep::Authenticated(k)) if k == public_of(1)
    ));
    for (kind, msg) in messages(script) {
        let wire = match kind % 3 {
            0 => client.seal_plain(msg).unwrap(),
            1 => msg.to_vec(),
            _ => {
                let mut p = client.seal_plain(msg).unwrap();
                let at = msg.len() % p.len();
                p[at] ^= 0x80;
                p
            }
        };
        match server.on_message(&wire, &node, secret(6)) {
            Ok(ServerStep::Frames([src, dst, payload])) => {
                let again = seal_frames(&src, &dst, &payload).unwrap();
                assert_eq!(open_frames(&again).unwrap(), [src, dst, payload]);
                // The reply direction works too.
                let back = server.seal(b"\x20", b"\x02", b"ok").unwrap();
                assert_eq!(client.open(&back).unwrap()[2], b"ok");
            }
            Ok(_) => panic!("a handshake step after the handshake"),
            Err(_) => break,
        }
    }
});
