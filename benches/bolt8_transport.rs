//! BOLT-8 transport: encrypt + decrypt through our state machine against raw
//! chacha20poly1305 doing the same AEAD work on the same buffers (two seals and two opens per
//! message: the length header and the body), in the same run. Also handshakes per second.
//!
//! Run: `cargo bench --bench bolt8_transport` (release).

mod common;

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use lnpbp_nodes::wire::ln::bolt8::{Framing, Initiator, Responder, Transport};
use std::time::Instant;

fn key(b: u8) -> SecretKey {
    SecretKey::from_slice(&[b; 32]).unwrap()
}

fn pair() -> (Transport, Transport) {
    let rs = PublicKey::from_secret_key(&Secp256k1::signing_only(), &key(0x21));
    let (a1, i) = Initiator::new(key(0x11), rs, key(0x12)).act_one(Framing::Brontide);
    let (a2, r) = Responder::new(key(0x21), key(0x22), Framing::Brontide)
        .act_one(&a1)
        .unwrap();
    let (a3, ti) = i.act_two(&a2).unwrap();
    let (tr, _) = r.act_three(&a3).unwrap();
    (ti, tr)
}

/// Ours: MB/s of message bytes through encrypt + decrypt.
fn ours(size: usize, count: usize) -> f64 {
    let (mut ti, mut tr) = pair();
    let msg = vec![0x5a; size];
    let mut wire = Vec::with_capacity(size + 64);
    let t = Instant::now();
    for _ in 0..count {
        ti.encrypt_into(&msg, &mut wire).unwrap();
        let out = tr.decrypt(&mut wire).unwrap().unwrap();
        std::hint::black_box(out);
    }
    (size * count) as f64 / t.elapsed().as_secs_f64() / 1e6
}

/// Raw: the same two seals and two opens per message with chacha20poly1305.
fn raw(size: usize, count: usize) -> f64 {
    let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
    let mut len = [0u8; 2];
    let mut body = vec![0x5a; size];
    let t = Instant::now();
    for i in 0..count as u64 {
        let n = |k: u64| {
            let mut b = [0u8; 12];
            b[4..].copy_from_slice(&k.to_le_bytes());
            Nonce::from(b)
        };
        let tag_l = cipher
            .encrypt_in_place_detached(&n(2 * i), &[], &mut len)
            .unwrap();
        let tag_b = cipher
            .encrypt_in_place_detached(&n(2 * i + 1), &[], &mut body)
            .unwrap();
        cipher
            .decrypt_in_place_detached(&n(2 * i), &[], &mut len, &tag_l)
            .unwrap();
        cipher
            .decrypt_in_place_detached(&n(2 * i + 1), &[], &mut body, &tag_b)
            .unwrap();
        std::hint::black_box(&body);
    }
    (size * count) as f64 / t.elapsed().as_secs_f64() / 1e6
}

fn handshakes(count: usize) -> f64 {
    let secp = Secp256k1::signing_only();
    let rs = PublicKey::from_secret_key(&secp, &key(0x21));
    let t = Instant::now();
    for i in 0..count {
        let e = SecretKey::from_slice(&[(i % 200) as u8 + 1; 32]).unwrap();
        let (a1, init) = Initiator::new(key(0x11), rs, e).act_one(Framing::Brontide);
        let (a2, resp) = Responder::new(key(0x21), key(0x22), Framing::Brontide)
            .act_one(&a1)
            .unwrap();
        let (a3, _) = init.act_two(&a2).unwrap();
        std::hint::black_box(resp.act_three(&a3).unwrap());
    }
    count as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let samples = common::samples(11);
    for (size, count) in [(65_535usize, 2_000usize), (100, 200_000)] {
        let (mut r, mut o) = (vec![], vec![]);
        for _ in 0..samples {
            r.push(raw(size, count));
            o.push(ours(size, count));
        }
        let (r, o) = (common::median(r), common::median(o));
        println!("BOLT-8 transport, {size}-byte messages, encrypt + decrypt ({samples} samples x {count})");
        println!("  raw chacha20poly1305 (same AEAD ops) : {r:9.1} MB/s median");
        println!("  wire::bolt8::Transport               : {o:9.1} MB/s median");
        println!(
            "  ratio ours/raw                       : {:9.2}x  (target >= 0.8x)",
            o / r
        );
    }
    let hs = common::median((0..samples).map(|_| handshakes(500)).collect());
    println!(
        "BOLT-8 handshakes, both roles in one process: {hs:.0} /s median ({samples} samples x 500)"
    );
}
