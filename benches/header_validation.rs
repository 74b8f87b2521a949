//! Header validation rate through our chain logic (`wire::headers::HeaderChain::accept`: PoW,
//! required bits, median time past, future limit, best chain, in batches of 2,000 as a
//! `headers` message carries), against the bare double-SHA256 of the same 80-byte headers in
//! the same run: the physical floor of the work.
//!
//! Run: `cargo bench --bench header_validation` (release). Prints medians and the ratio.

mod common;

use bitcoin::block::{Header, Version};
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::{Network, TxMerkleNode};
use lnpbp_nodes::wire::btc::headers::HeaderChain;
use std::time::Instant;

const HEADERS: usize = 20_000;

/// A regtest chain of `n` headers on genesis (regtest's target accepts about half of all
/// hashes, so mining is cheap).
fn chain(n: usize) -> Vec<Header> {
    let c = HeaderChain::new(Network::Regtest);
    let mut prev = c.get(&c.tip().1).unwrap().header;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut h = Header {
            version: Version::from_consensus(0x2000_0000),
            prev_blockhash: prev.block_hash(),
            merkle_root: TxMerkleNode::from_byte_array([(i % 251) as u8; 32]),
            time: prev.time + 600,
            bits: prev.bits,
            nonce: 0,
        };
        while !h.target().is_met_by(h.block_hash()) {
            h.nonce += 1;
        }
        out.push(h);
        prev = h;
    }
    out
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let samples = common::samples(11);
    let headers = chain(HEADERS);
    let raw: Vec<[u8; 80]> = headers
        .iter()
        .map(|h| bitcoin::consensus::serialize(h).try_into().unwrap())
        .collect();
    let now = headers.last().unwrap().time;
    let (mut bare, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        let t = Instant::now();
        let mut acc = 0u8;
        for r in &raw {
            acc ^= sha256d::Hash::hash(r)[0];
        }
        std::hint::black_box(acc);
        bare.push(HEADERS as f64 / t.elapsed().as_secs_f64());

        let mut c = HeaderChain::new(Network::Regtest);
        let t = Instant::now();
        for batch in headers.chunks(2_000) {
            let a = c.accept(batch, now);
            assert!(a.error.is_none());
        }
        ours.push(HEADERS as f64 / t.elapsed().as_secs_f64());
        assert_eq!(c.tip().0 as usize, HEADERS);
    }
    let (b, o) = (common::median(bare), common::median(ours));
    println!("header validation ({samples} samples x {HEADERS} regtest headers, medians)");
    println!("  bare double-SHA256 of the 80 bytes : {b:12.0} headers/s");
    println!("  wire::headers::HeaderChain::accept : {o:12.0} headers/s");
    println!("  ratio ours/bare                    : {:12.2}x", o / b);
}
