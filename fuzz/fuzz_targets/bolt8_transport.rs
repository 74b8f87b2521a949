//! The BOLT-8 / Brontozaur push decoder over an arbitrary received stream: never a panic, never
//! waiting for more than the framing allows; and every message encrypts and decrypts back.
#![no_main]

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::wire::ln::bolt8::{Framing, Initiator, Responder, Transport};

fn pair(framing: Framing) -> (Transport, Transport) {
    let k = |b: u8| SecretKey::from_slice(&[b; 32]).unwrap();
    let rs = PublicKey::from_secret_key(&Secp256k1::signing_only(), &k(0x21));
    let (a1, i) = Initiator::new(k(0x11), rs, k(0x12)).act_one(framing);
    let (a2, r) = Responder::new(k(0x21), k(0x22), framing)
        .act_one(&a1)
        .unwrap();
    let (a3, ti) = i.act_two(&a2).unwrap();
    let (tr, _) = r.act_three(&a3).unwrap();
    (ti, tr)
}

fuzz_target!(|data: &[u8]| {
    let framing = if data.first().is_some_and(|b| b & 1 == 1) {
        Framing::Brontozaur
    } else {
        Framing::Brontide
    };
    let (_, mut tr) = pair(framing);
    // Garbage as the received stream.
    let mut stream = data.to_vec();
    while let Ok(Some(_)) = tr.decrypt(&mut stream) {}
    assert!(tr.needed() <= framing.max_message() + 16);
    // Round trip, split in two reads.
    let (mut ti2, mut tr2) = pair(framing);
    let mut wire = ti2.encrypt(data).unwrap();
    let tail = wire.split_off(wire.len() / 2);
    assert_eq!(tr2.decrypt(&mut wire).unwrap(), None);
    wire.extend_from_slice(&tail);
    assert_eq!(tr2.decrypt(&mut wire).unwrap().as_deref(), Some(data));
});
