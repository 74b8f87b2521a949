//! Decoder of bus frames (`[src, dst, payload]`, every message type): never panics, and whatever
//! decodes re-encodes to frames that decode to the same message (round trip).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::wire::api::Envelope;

fuzz_target!(|data: &[u8]| {
    // The first two bytes split the input into three frames.
    if data.len() < 2 {
        return;
    }
    let (a, b) = (data[0] as usize, data[1] as usize);
    let rest = &data[2..];
    let a = a.min(rest.len());
    let b = b.min(rest.len() - a);
    let frames = vec![
        rest[..a].to_vec(),
        rest[a..a + b].to_vec(),
        rest[a + b..].to_vec(),
    ];
    if let Ok(env) = Envelope::decode_frames(&frames) {
        let again = env.encode_frames().expect("a decoded message re-encodes");
        assert_eq!(Envelope::decode_frames(&again).unwrap(), env);
    }
});
