//! The channel messages at the peer boundary (`ldk::codec::decode`, what `channeld` does with
//! every BOLT-2 message a peer sends): never a panic, and a message that decodes re-encodes
//! (as LDK writes it) to bytes that decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::ldk::codec::{decode, TYPES};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    // The first byte picks one of the channel types (so every decoder is reached), the rest is
    // the payload; the raw two-byte type is tried too.
    let picked = TYPES[data[0] as usize % TYPES.len()];
    let raw = u16::from_be_bytes([data[0], data[1]]);
    for (t, payload) in [(picked, &data[1..]), (raw, &data[2..])] {
        if let Ok(m) = decode(t, payload) {
            let (t2, bytes) = m.encode();
            assert_eq!(t2, t);
            let again = decode(t2, &bytes).expect("a re-encoded message decodes");
            assert_eq!(again, m);
        }
    }
});
