//! The checks a downloaded block passes before it counts, as pure code: the context-free checks
//! of Bitcoin Core's `CheckBlock` and `CheckTransaction` and the BIP141 witness commitment of
//! `ContextualCheckBlock`. Scripts are not run and inputs are not looked up (no UTXO set): for
//! those the BP node trusts the chain with the most work, as SPV wallets do (docs/API.md).
//!
//! The header itself (proof of work, difficulty, time) is checked by
//! [`crate::wire::btc::headers`] before the block is ever asked for; here the block must be the
//! one of that header (its hash) and its body must be the one the header commits to.

use bitcoin::hashes::{sha256d, Hash};
use bitcoin::{Amount, Block, BlockHash, OutPoint, TxMerkleNode};
use std::collections::HashSet;
use std::fmt;

/// Most block weight (BIP141 `MAX_BLOCK_WEIGHT`).
pub const MAX_BLOCK_WEIGHT: u64 = 4_000_000;
/// Most legacy signature operations in a block, scaled (Core `MAX_BLOCK_SIGOPS_COST` / 4
/// counted on scripts without witness, as `CheckBlock` does).
pub const MAX_BLOCK_SIGOPS: usize = 80_000 / 4;
/// A coinbase's script is 2 to 100 bytes (Core `bad-cb-length`).
const COINBASE_SCRIPT: std::ops::RangeInclusive<usize> = 2..=100;
/// Most bitcoin there can ever be (Core `MAX_MONEY`).
const MAX_MONEY: Amount = Amount::MAX_MONEY;

/// Why a block is refused. Each one is the sender's misbehaviour: a header that passed its
/// proof of work with a body that does not belong to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The block's hash is not the one asked for.
    WrongHeader {
        /// Asked for.
        expected: BlockHash,
        /// Got.
        got: BlockHash,
    },
    /// No transactions.
    Empty,
    /// The transactions do not hash to the header's merkle root.
    BadMerkleRoot,
    /// The transaction list is mutated (duplicated hashes, CVE-2012-2459): its root matches,
    /// the block is still invalid.
    Mutated,
    /// Above 4,000,000 weight units (or its stripped size above 1,000,000 bytes).
    TooHeavy {
        /// Its weight.
        weight: u64,
    },
    /// The first transaction is not a coinbase, or another one is.
    Coinbase(&'static str),
    /// A transaction fails `CheckTransaction`.
    BadTx {
        /// Its position in the block.
        pos: usize,
        /// Why.
        why: &'static str,
    },
    /// More legacy signature operations than [`MAX_BLOCK_SIGOPS`].
    TooManySigops(usize),
    /// The BIP141 witness commitment is missing or wrong (a transaction carries a witness).
    BadWitnessCommitment,
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::WrongHeader { expected, got } => {
                write!(f, "block {got} is not the block {expected} asked for")
            }
            BlockError::Empty => f.write_str("block without transactions"),
            BlockError::BadMerkleRoot => {
                f.write_str("the transactions do not match the header's merkle root")
            }
            BlockError::Mutated => {
                f.write_str("mutated transaction list (duplicate hashes, CVE-2012-2459)")
            }
            BlockError::TooHeavy { weight } => {
                write!(
                    f,
                    "block of {weight} weight units, above {MAX_BLOCK_WEIGHT}"
                )
            }
            BlockError::Coinbase(why) => f.write_str(why),
            BlockError::BadTx { pos, why } => write!(f, "transaction {pos}: {why}"),
            BlockError::TooManySigops(n) => {
                write!(f, "{n} signature operations, above {MAX_BLOCK_SIGOPS}")
            }
            BlockError::BadWitnessCommitment => {
                f.write_str("missing or wrong witness commitment (BIP141)")
            }
        }
    }
}

/// The merkle root of `hashes` as Bitcoin Core computes it, and whether the list is mutated:
/// a level where two paired hashes are equal (an odd level's last hash paired with itself is
/// the rule, not a mutation). `None` for an empty list.
pub fn merkle_root(hashes: impl IntoIterator<Item = [u8; 32]>) -> Option<([u8; 32], bool)> {
    let mut level: Vec<[u8; 32]> = hashes.into_iter().collect();
    if level.is_empty() {
        return None;
    }
    let mut mutated = false;
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            let (a, b) = match pair {
                [a, b] => {
                    mutated |= a == b;
                    (a, b)
                }
                [a] => (a, a),
                _ => unreachable!("chunks(2) yields one or two"),
            };
            let mut buf = [0u8; 64];
            buf[..32].copy_from_slice(a);
            buf[32..].copy_from_slice(b);
            next.push(sha256d::Hash::hash(&buf).to_byte_array());
        }
        level = next;
    }
    Some((level[0], mutated))
}

/// Checks `block`, which was asked for as `expected`. Cost: one pass over the transactions
/// (their txids, one merkle tree, and the witness tree when a transaction has a witness).
pub fn check_block(block: &Block, expected: BlockHash) -> Result<(), BlockError> {
    let got = block.block_hash();
    if got != expected {
        return Err(BlockError::WrongHeader { expected, got });
    }
    if block.txdata.is_empty() {
        return Err(BlockError::Empty);
    }
    let txids = block
        .txdata
        .iter()
        .map(|tx| tx.compute_txid().to_byte_array());
    let (root, mutated) = merkle_root(txids).ok_or(BlockError::Empty)?;
    if TxMerkleNode::from_byte_array(root) != block.header.merkle_root {
        return Err(BlockError::BadMerkleRoot);
    }
    if mutated {
        return Err(BlockError::Mutated);
    }
    let weight = block.weight().to_wu();
    let stripped: usize = 80
        + bitcoin::VarInt(block.txdata.len() as u64).size()
        + block.txdata.iter().map(|t| t.base_size()).sum::<usize>();
    if weight > MAX_BLOCK_WEIGHT || stripped as u64 * 4 > MAX_BLOCK_WEIGHT {
        return Err(BlockError::TooHeavy { weight });
    }
    if !block.txdata[0].is_coinbase() {
        return Err(BlockError::Coinbase(
            "the first transaction is not a coinbase",
        ));
    }
    if block.txdata[1..].iter().any(|t| t.is_coinbase()) {
        return Err(BlockError::Coinbase("more than one coinbase"));
    }
    let mut sigops = 0usize;
    for (pos, tx) in block.txdata.iter().enumerate() {
        check_tx(tx).map_err(|why| BlockError::BadTx { pos, why })?;
        for i in &tx.input {
            sigops = sigops.saturating_add(i.script_sig.count_sigops_legacy());
        }
        for o in &tx.output {
            sigops = sigops.saturating_add(o.script_pubkey.count_sigops_legacy());
        }
    }
    if sigops > MAX_BLOCK_SIGOPS {
        return Err(BlockError::TooManySigops(sigops));
    }
    if !block.check_witness_commitment() {
        return Err(BlockError::BadWitnessCommitment);
    }
    Ok(())
}

/// Core's `CheckTransaction`: inputs and outputs present, amounts in range, no input twice,
/// a coinbase script of 2 to 100 bytes, no null prevout outside the coinbase.
fn check_tx(tx: &bitcoin::Transaction) -> Result<(), &'static str> {
    if tx.input.is_empty() {
        return Err("no inputs");
    }
    if tx.output.is_empty() {
        return Err("no outputs");
    }
    let mut total = Amount::ZERO;
    for o in &tx.output {
        if o.value > MAX_MONEY {
            return Err("an output above 21 million bitcoin");
        }
        total = total
            .checked_add(o.value)
            .ok_or("outputs above 21 million bitcoin")?;
        if total > MAX_MONEY {
            return Err("outputs above 21 million bitcoin");
        }
    }
    if tx.input.len() > 1 {
        let mut seen: HashSet<&OutPoint> = HashSet::with_capacity(tx.input.len());
        if !tx.input.iter().all(|i| seen.insert(&i.previous_output)) {
            return Err("the same input twice");
        }
    }
    if tx.is_coinbase() {
        if !COINBASE_SCRIPT.contains(&tx.input[0].script_sig.len()) {
            return Err("a coinbase script outside 2 to 100 bytes");
        }
    } else if tx.input.iter().any(|i| i.previous_output.is_null()) {
        return Err("a null prevout outside the coinbase");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::blockdata::constants::genesis_block;
    use bitcoin::consensus::{deserialize, serialize};
    use bitcoin::{absolute, transaction, Network, ScriptBuf, Sequence, Transaction, TxIn};
    use bitcoin::{TxOut, Witness};

    fn coinbase(tag: u8) -> Transaction {
        Transaction {
            version: transaction::Version::ONE,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::from_bytes(vec![1, tag]),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(50_0000_0000),
                script_pubkey: ScriptBuf::new(),
            }],
        }
    }

    fn spend(tag: u8) -> Transaction {
        let mut tx = coinbase(tag);
        tx.input[0].previous_output = OutPoint {
            txid: bitcoin::Txid::from_byte_array([tag; 32]),
            vout: 0,
        };
        tx
    }

    fn block(txdata: Vec<Transaction>) -> Block {
        let mut b = genesis_block(Network::Regtest);
        b.txdata = txdata;
        b.header.merkle_root = b.compute_merkle_root().unwrap_or(b.header.merkle_root);
        b
    }

    #[test]
    fn genesis_and_a_simple_block_pass() {
        let g = genesis_block(Network::Bitcoin);
        assert_eq!(check_block(&g, g.block_hash()), Ok(()));
        let b = block(vec![coinbase(1), spend(2), spend(3)]);
        assert_eq!(check_block(&b, b.block_hash()), Ok(()));
    }

    #[test]
    fn our_merkle_root_is_the_libraries() {
        for n in 1..20u8 {
            let b = block(
                (0..n)
                    .map(|i| if i == 0 { coinbase(0) } else { spend(i) })
                    .collect(),
            );
            let ours = merkle_root(b.txdata.iter().map(|t| t.compute_txid().to_byte_array()));
            let (root, mutated) = ours.expect("non-empty");
            assert_eq!(TxMerkleNode::from_byte_array(root), b.header.merkle_root);
            assert!(!mutated, "{n} distinct transactions are not a mutation");
        }
        assert_eq!(merkle_root(std::iter::empty()), None);
    }

    #[test]
    fn a_wrong_root_or_header_is_refused() {
        let mut b = block(vec![coinbase(1), spend(2)]);
        let asked = b.block_hash();
        b.txdata[1].output[0].value = Amount::from_sat(1);
        // The header (and its hash) is unchanged: the body does not belong to it.
        assert_eq!(check_block(&b, asked), Err(BlockError::BadMerkleRoot));
        let other = genesis_block(Network::Bitcoin).block_hash();
        assert!(matches!(
            check_block(&b, other),
            Err(BlockError::WrongHeader { .. })
        ));
    }

    #[test]
    fn cve_2012_2459_a_duplicated_tail_is_mutated() {
        // Three transactions and the same three with the last repeated have one merkle root.
        let good = block(vec![coinbase(1), spend(2), spend(3)]);
        let mut bad = good.clone();
        bad.txdata.push(spend(3));
        assert_eq!(bad.compute_merkle_root(), good.compute_merkle_root());
        assert_eq!(
            check_block(&bad, good.block_hash()),
            Err(BlockError::Mutated)
        );
        assert_eq!(check_block(&good, good.block_hash()), Ok(()));
    }

    #[test]
    fn coinbase_rules() {
        let b = block(vec![spend(1), spend(2)]);
        assert!(matches!(
            check_block(&b, b.block_hash()),
            Err(BlockError::Coinbase(_))
        ));
        let b = block(vec![coinbase(1), coinbase(2)]);
        assert!(matches!(
            check_block(&b, b.block_hash()),
            Err(BlockError::Coinbase(_))
        ));
        let mut cb = coinbase(1);
        cb.input[0].script_sig = ScriptBuf::from_bytes(vec![1]);
        let b = block(vec![cb]);
        assert!(matches!(
            check_block(&b, b.block_hash()),
            Err(BlockError::BadTx { pos: 0, .. })
        ));
    }

    #[test]
    fn transaction_rules() {
        let mut twice = spend(2);
        twice.input.push(twice.input[0].clone());
        let mut rich = spend(3);
        rich.output[0].value = Amount::MAX_MONEY + Amount::from_sat(1);
        let mut no_out = spend(4);
        no_out.output.clear();
        let mut null = spend(5);
        null.input.push(coinbase(0).input[0].clone());
        for bad in [twice, rich, no_out, null] {
            let b = block(vec![coinbase(1), bad]);
            assert!(
                matches!(
                    check_block(&b, b.block_hash()),
                    Err(BlockError::BadTx { pos: 1, .. })
                ),
                "{:?}",
                check_block(&b, b.block_hash())
            );
        }
    }

    #[test]
    fn a_witness_needs_its_commitment() {
        let mut tx = spend(2);
        tx.input[0].witness = Witness::from_slice(&[vec![7u8; 33]]);
        let b = block(vec![coinbase(1), tx]);
        assert_eq!(
            check_block(&b, b.block_hash()),
            Err(BlockError::BadWitnessCommitment)
        );
    }

    #[test]
    fn a_committed_witness_passes_and_a_changed_one_does_not() {
        let mut tx = spend(2);
        tx.input[0].witness = Witness::from_slice(&[vec![7u8; 33]]);
        let mut cb = coinbase(1);
        cb.input[0].witness = Witness::from_slice(&[[0u8; 32]]);
        let mut b = block(vec![cb, tx]);
        let root = b.witness_root().expect("witness root");
        let commitment = Block::compute_witness_commitment(&root, &[0u8; 32]);
        let mut script = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
        script.extend_from_slice(commitment.as_byte_array());
        b.txdata[0].output.push(TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::from_bytes(script),
        });
        b.header.merkle_root = b.compute_merkle_root().expect("root");
        assert_eq!(check_block(&b, b.block_hash()), Ok(()));
        // A witness changed in transit: txids (and the header) unchanged, commitment broken.
        b.txdata[1].input[0].witness = Witness::from_slice(&[vec![8u8; 33]]);
        assert_eq!(
            check_block(&b, b.block_hash()),
            Err(BlockError::BadWitnessCommitment)
        );
    }

    #[test]
    fn too_heavy() {
        let mut big = spend(2);
        big.output[0].script_pubkey = ScriptBuf::from_bytes(vec![0x61; 1_000_001]);
        let b = block(vec![coinbase(1), big]);
        assert!(matches!(
            check_block(&b, b.block_hash()),
            Err(BlockError::TooHeavy { .. })
        ));
    }

    #[test]
    fn too_many_sigops() {
        let mut tx = spend(2);
        // OP_CHECKSIG x 20,001 in one output script.
        tx.output[0].script_pubkey = ScriptBuf::from_bytes(vec![0xac; MAX_BLOCK_SIGOPS + 1]);
        let b = block(vec![coinbase(1), tx]);
        assert!(matches!(
            check_block(&b, b.block_hash()),
            Err(BlockError::TooManySigops(_))
        ));
    }

    #[test]
    fn round_trip_does_not_change_the_verdict() {
        let b = block(vec![coinbase(1), spend(2)]);
        let back: Block = deserialize(&serialize(&b)).expect("decodes");
        assert_eq!(check_block(&back, b.block_hash()), Ok(()));
    }
}
