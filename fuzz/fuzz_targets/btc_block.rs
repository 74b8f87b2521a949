//! Block decoding and the block checks (wire::btc::block) on fuzzer-made bytes: never a panic;
//! our merkle root is the `bitcoin` crate's; a block that passes has the header's merkle root,
//! a valid witness commitment and a weight within the limit; and a passing block with a
//! repeated last transaction (when that keeps the root) is refused as mutated.
#![no_main]

use bitcoin::hashes::Hash;
use bitcoin::{Block, TxMerkleNode};
use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::wire::btc::block::{check_block, merkle_root, BlockError, MAX_BLOCK_WEIGHT};

fuzz_target!(|data: &[u8]| {
    let Ok(block) = bitcoin::consensus::deserialize::<Block>(data) else {
        return;
    };
    let hash = block.block_hash();
    let verdict = check_block(&block, hash);
    let ours = merkle_root(block.txdata.iter().map(|t| t.compute_txid().to_byte_array()));
    assert_eq!(
        ours.map(|(r, _)| TxMerkleNode::from_byte_array(r)),
        block.compute_merkle_root()
    );
    if verdict.is_ok() {
        assert!(block.check_merkle_root());
        assert!(block.check_witness_commitment());
        assert!(block.weight().to_wu() <= MAX_BLOCK_WEIGHT);
        let n = block.txdata.len();
        if n > 1 && n % 2 == 1 {
            let mut mutated = block.clone();
            mutated.txdata.push(block.txdata[n - 1].clone());
            assert_eq!(check_block(&mutated, hash), Err(BlockError::Mutated));
        }
    }
});
