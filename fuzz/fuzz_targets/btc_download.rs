//! The block download scheduler (wire::btc::download) driven by fuzzer-chosen events on a fake
//! clock: peers come and go, blocks arrive (asked for or not), requests stall, the chain
//! reorganises. Never a panic; no peer has more requests in flight than its share; blocks come
//! out in height order, each on the chain of the moment.
#![no_main]

use bitcoin::blockdata::constants::genesis_block;
use bitcoin::{Block, BlockHash, Network};
use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::wire::btc::download::{Arrival, Downloader, Limits};
use std::time::{Duration, Instant};

fn block(branch: u8, height: u32) -> Block {
    let mut b = genesis_block(Network::Regtest);
    b.header.nonce = height;
    b.header.time = branch as u32;
    b
}

fn at(branch: &[u8], tip: u32) -> impl Fn(u32) -> Option<BlockHash> + '_ {
    move |h: u32| (h <= tip).then(|| block(branch[h as usize], h).block_hash())
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        window: 24,
        per_peer: 4,
        max_buffered: 2_000,
        stall: Duration::from_millis(1_000),
    };
    let t0 = Instant::now();
    let mut now = t0;
    let mut d = Downloader::new(limits, 1);
    // The chain: heights 1..=tip on branch `branch[h]`.
    let mut branch = vec![0u8; 64];
    let mut tip = 40u32;
    let mut asked: Vec<(u64, BlockHash)> = Vec::new();
    let mut next = 1u32;
    for op in data.chunks_exact(3) {
        match op[0] % 8 {
            0 => d.add_peer(op[1] as u64 % 4),
            1 => d.remove_peer(op[1] as u64 % 4),
            2 => now += Duration::from_millis(op[1] as u64 * 20),
            3 => {
                let p = d.poll(now, tip, at(&branch, tip));
                for (peer, hashes) in p.requests {
                    assert!(hashes.len() <= 4);
                    asked.extend(hashes.into_iter().map(|h| (peer, h)));
                }
            }
            4 if !asked.is_empty() => {
                let (peer, hash) = asked.swap_remove(op[1] as usize % asked.len());
                if let Arrival::Expected(h) = d.received(peer, &hash) {
                    let b = block(branch[h as usize], h);
                    if b.block_hash() == hash {
                        if op[2] % 5 == 0 {
                            d.failed(peer, h);
                        } else {
                            d.deliver(h, b, 100);
                        }
                    }
                }
            }
            5 => {
                // A reorganisation from a height within the window.
                let from = (next + op[1] as u32 % 8).min(63);
                for b in branch.iter_mut().skip(from as usize) {
                    *b = b.wrapping_add(1);
                }
                tip = (from + op[2] as u32 % 20).min(63);
                d.rewind(from);
                next = next.min(from);
            }
            6 if !asked.is_empty() => {
                let (peer, hash) = asked[op[1] as usize % asked.len()];
                d.not_found(peer, &hash);
            }
            _ => {}
        }
        while let Some((h, b)) = d.pop(at(&branch, tip)) {
            assert_eq!(h, next, "in height order");
            assert_eq!(Some(b.block_hash()), at(&branch, tip)(h), "on the chain of the moment");
            next += 1;
        }
        assert_eq!(d.next(), next);
        assert!(d.in_flight() <= 4 * 4);
    }
});
