//! The Bitcoin message stream (wire::btc::Codec) and peer session (wire::btc_peer) fed arbitrary
//! bytes: first raw from the start (before any handshake), or after a real version/verack
//! exchange, cut into arbitrary chunks. Never a panic; a declared length above 4,000,000 is
//! refused before its payload; every frame the codec takes re-encodes to a frame that decodes.
#![no_main]

use bitcoin::p2p::Magic;
use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::wire::btc::stream::{Codec, Frame, MAX_MESSAGE};
use lnpbp_nodes::wire::btc::peer::{Session, Timers};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = Instant::now();
    let timers = Timers {
        handshake: Duration::from_secs(60),
        inactivity: Duration::from_secs(1200),
        ping_interval: Duration::from_secs(120),
    };
    if mode % 3 == 0 {
        // The codec alone: whatever it frames re-encodes and decodes again.
        let codec = Codec::new(Magic::REGTEST);
        let mut buf = rest.to_vec();
        while let Ok(Some(frame)) = codec.decode(&mut buf) {
            if let Frame::Message(m) = frame {
                let mut again = Vec::new();
                codec.encode(m, &mut again);
                assert!(matches!(codec.decode(&mut again), Ok(Some(_))));
            }
        }
        if buf.len() >= 24 {
            let len = u32::from_le_bytes(buf[16..20].try_into().unwrap()) as usize;
            assert!(len <= MAX_MESSAGE || codec.decode(&mut buf.clone()).is_err());
        }
        return;
    }
    let mut node = Session::new(Magic::REGTEST, timers.clone(), false, None, 1, 0, 0, now, false);
    let mut events = Vec::new();
    if mode % 3 == 2 {
        let mut peer = Session::new(Magic::REGTEST, timers, true, None, 2, 0, 0, now, false);
        for _ in 0..3 {
            let mut to_node = peer.take_output();
            let _ = node.receive(&mut to_node, now, usize::MAX, &mut events);
            let mut to_peer = node.take_output();
            let _ = peer.receive(&mut to_peer, now, usize::MAX, &mut events);
        }
    }
    let mut buf = Vec::new();
    for chunk in rest.chunks(1 + (mode as usize % 61)) {
        buf.extend_from_slice(chunk);
        if node.receive(&mut buf, now, 1 << 20, &mut events).is_err() {
            return;
        }
        let _ = node.take_output();
    }
    let _ = node.tick(now + Duration::from_secs(30), 7);
});
