//! The signer on hostile PSBTs (docs/API.md, `sign_psbt`): never panics, signs only inputs
//! that exist, and claims a transaction only when every input is final.
//!
//! The first byte picks how the rest is used: as a whole PSBT, or as edits (position, byte)
//! of a valid PSBT of the signer's own (P2WPKH, P2TR and foreign inputs), so that the fuzzer
//! reaches the signing and finalizing code and not only the parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lnpbp_nodes::signer::{example_psbt, sign_psbt, AccountKind, Keychain, Policy};
use std::sync::OnceLock;

struct Fixture {
    keychain: Keychain,
    policy: Policy,
    base: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let keychain = Keychain::from_seed(&[1u8; 32], bitcoin::Network::Regtest).unwrap();
        let policy = Policy::accounts(&keychain);
        let mut psbt = example_psbt(&keychain, AccountKind::Wpkh, &[50_000, 60_000], 1);
        let tr = example_psbt(&keychain, AccountKind::Tr, &[70_000], 0);
        psbt.unsigned_tx.input.extend(tr.unsigned_tx.input);
        psbt.inputs.extend(tr.inputs);
        psbt.unsigned_tx.output[0].value += bitcoin::Amount::from_sat(70_000);
        Fixture {
            keychain,
            policy,
            base: psbt.serialize(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let mut b = f.base.clone();
        for edit in rest.chunks_exact(3) {
            let pos = u16::from_le_bytes([edit[0], edit[1]]) as usize % b.len();
            b[pos] = edit[2];
        }
        b
    };
    let finalize = mode & 2 != 0;
    if let Ok(out) = sign_psbt(&f.keychain, &f.policy, &bytes, finalize) {
        let n = out.psbt.inputs.len() as u32;
        assert!(out.signed.iter().all(|i| *i < n));
        if let Some(tx) = &out.tx {
            assert!(finalize && out.not_final.is_empty());
            assert_eq!(tx.input.len() as u32, n);
        }
    }
});
