//! The header chain (wire::headers) fed fuzzer-made regtest headers: each 16-byte chunk gives a
//! header's fields (which earlier header it builds on, time step, bits, version, nonce), the
//! hash decides its PoW. Never a panic; the best tip always has the most work; every block the
//! change reports as connected is on the best chain afterwards.
#![no_main]

use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::pow::CompactTarget;
use bitcoin::{Network, TxMerkleNode};
use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::wire::btc::headers::HeaderChain;

fuzz_target!(|data: &[u8]| {
    let mut chain = HeaderChain::new(Network::Regtest);
    let genesis = chain.get(&chain.tip().1).unwrap().header;
    let mut made: Vec<Header> = vec![genesis];
    let now = genesis.time + 10_000_000;
    for c in data.chunks_exact(16) {
        let parent = made[c[0] as usize % made.len()];
        let step = u16::from_le_bytes([c[1], c[2]]) as u32;
        let bits = if c[3] % 8 == 0 {
            CompactTarget::from_consensus(u32::from_le_bytes([c[4], c[5], c[6], c[7]]))
        } else {
            parent.bits
        };
        let h = Header {
            version: Version::from_consensus(i32::from_le_bytes([c[8], c[9], c[10], c[11]])),
            prev_blockhash: parent.block_hash(),
            merkle_root: TxMerkleNode::from_byte_array([c[12]; 32]),
            time: parent.time.wrapping_add(step).wrapping_sub(if c[3] % 5 == 0 { 4_000 } else { 0 }),
            bits,
            nonce: u32::from_le_bytes([c[12], c[13], c[14], c[15]]),
        };
        let accepted = chain.accept(&[h], now);
        if accepted.error.is_none() {
            made.push(h);
        }
        for b in &accepted.change.connected {
            assert!(chain.is_best(&b.hash));
        }
        let (_, tip) = chain.tip();
        let best = chain.get(&tip).unwrap().chainwork;
        for m in &made {
            if let Some(e) = chain.get(&m.block_hash()) {
                assert!(e.chainwork <= best);
            }
        }
    }
});
