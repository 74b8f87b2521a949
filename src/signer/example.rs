//! An example PSBT, as a wallet built on the signer's accounts would make one.

use super::{AccountKind, Keychain};
use bitcoin::hashes::Hash;
use bitcoin::psbt::Psbt;
use bitcoin::{
    absolute, transaction, Amount, Network, OutPoint, Sequence, Transaction, TxIn, TxOut, Txid,
};

/// A PSBT spending `amounts` from `k`'s receive addresses of `kind` (index = position; made-up
/// prevouts), plus `foreign` P2WPKH inputs of someone else's (10,000 sats each), to one output of
/// ours paying the total minus 1,000 sats: what a wallet of this keychain would hand the signer.
/// For tests, benchmarks and fuzz seeds.
pub fn example_psbt(k: &Keychain, kind: AccountKind, amounts: &[u64], foreign: usize) -> Psbt {
    let mut inputs = Vec::new();
    let mut details = Vec::new();
    for (n, amount) in amounts.iter().enumerate() {
        let a = k.address(kind, n as u32).expect("valid example");
        inputs.push(OutPoint::new(Txid::from_byte_array([n as u8 + 1; 32]), 0));
        details.push((a.script(), *amount, Some(a)));
    }
    for n in 0..foreign {
        let other = Keychain::from_seed(&[9u8; 32], Network::Regtest).expect("valid example");
        let a = other
            .address(AccountKind::Wpkh, n as u32)
            .expect("valid example");
        inputs.push(OutPoint::new(
            Txid::from_byte_array([0xf0 + n as u8; 32]),
            1,
        ));
        details.push((a.script(), 10_000, None));
    }
    let total: u64 = details.iter().map(|d| d.1).sum();
    let tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: inputs
            .into_iter()
            .map(|o| TxIn {
                previous_output: o,
                sequence: Sequence::MAX,
                ..Default::default()
            })
            .collect(),
        output: vec![TxOut {
            value: Amount::from_sat(total - 1_000),
            script_pubkey: k
                .address(AccountKind::Wpkh, 99)
                .expect("valid example")
                .script(),
        }],
    };
    let mut psbt = Psbt::from_unsigned_tx(tx).expect("valid example");
    for (input, (spk, amount, ours)) in psbt.inputs.iter_mut().zip(details) {
        input.witness_utxo = Some(TxOut {
            value: Amount::from_sat(amount),
            script_pubkey: spk,
        });
        let Some(a) = ours else {
            // Someone else's key origin.
            let other = Keychain::from_seed(&[9u8; 32], Network::Regtest).expect("valid example");
            let pk = other
                .address(AccountKind::Wpkh, 0)
                .expect("valid example")
                .pubkey;
            input.bip32_derivation.insert(
                pk.0,
                (other.fingerprint(), other.account_path(AccountKind::Wpkh)),
            );
            continue;
        };
        let origin = (k.fingerprint(), a.path.clone());
        match kind {
            AccountKind::Wpkh => {
                input.bip32_derivation.insert(a.pubkey.0, origin);
            }
            AccountKind::Tr => {
                let (x, _) = a.pubkey.0.x_only_public_key();
                input.tap_internal_key = Some(x);
                input.tap_key_origins.insert(x, (vec![], origin));
            }
        }
    }
    psbt
}
