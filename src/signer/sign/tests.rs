//! The signer against the BIP174 and BIP341 test vectors (`src/signer/vectors/`), and its own
//! rules on PSBTs built here.

use super::*;
use crate::signer::example_psbt;
use crate::signer::{AccountKind, Keychain};
use bitcoin::bip32::{Fingerprint, Xpriv};
use bitcoin::hex::FromHex;
use bitcoin::secp256k1::{schnorr, Message, XOnlyPublicKey};
use bitcoin::sighash::{Prevouts, SighashCache};
use bitcoin::taproot::TapNodeHash;
use bitcoin::{Amount, Network};
use std::collections::BTreeMap;
use std::str::FromStr;

fn vectors(name: &str) -> serde_json::Value {
    let text = match name {
        "bip174" => include_str!("../vectors/bip174.json"),
        "bip371" => include_str!("../vectors/bip371.json"),
        _ => include_str!("../vectors/bip341.json"),
    };
    serde_json::from_str(text).unwrap()
}

fn psbt_hex(hex: &str) -> Psbt {
    Psbt::deserialize(&Vec::<u8>::from_hex(hex).unwrap()).unwrap()
}

fn path(s: &str) -> DerivationPath {
    DerivationPath::from_str(s).unwrap()
}

#[test]
fn bip174_signer_vectors() {
    let v = vectors("bip174");
    let master = Xpriv::from_str(v["master"].as_str().unwrap()).unwrap();
    let keychain = Keychain::from_master(master, Network::Testnet);
    let updated = Vec::<u8>::from_hex(v["updated"].as_str().unwrap()).unwrap();
    for (roots, expected) in [
        (["m/0'/0'/0'", "m/0'/0'/2'"], "signer1"),
        (["m/0'/0'/1'", "m/0'/0'/3'"], "signer2"),
    ] {
        let policy = Policy {
            roots: roots.iter().map(|r| path(r)).collect(),
            extra_sighash: vec![],
        };
        let out = sign_psbt(&keychain, &policy, &updated, false).unwrap();
        assert_eq!(
            out.psbt.serialize(),
            Vec::<u8>::from_hex(v[expected].as_str().unwrap()).unwrap(),
            "{expected}"
        );
        assert_eq!(out.signed, vec![0, 1], "{expected}: one key of each input");
        // 2 BTC + 1.5 BTC in, 1.4999 + 1 out.
        assert_eq!(out.fee, 10_000);
    }
    // The PSBTs that fail a signer's checks are refused, whatever keys the signer has.
    let policy = Policy {
        roots: vec![path("m/0'/0'")],
        extra_sighash: vec![],
    };
    for case in v["fails"].as_array().unwrap() {
        let mut psbt = psbt_hex(case["hex"].as_str().unwrap());
        if case["case"].as_str().unwrap().starts_with("A Witness UTXO") {
            // Refused only by a signer that would sign it: make input 0 ours.
            let origin = (keychain.fingerprint(), path("m/0'/0'/9'"));
            let sk = keychain.derive_checked(&origin.1).unwrap().to_priv();
            let pk = sk.public_key(&Secp256k1::new()).inner;
            psbt.inputs[0].bip32_derivation.insert(pk, origin);
        }
        let e = sign_with(
            psbt,
            &OurKeys {
                keychain: &keychain,
                policy: &policy,
            },
            &policy,
            false,
        )
        .unwrap_err();
        assert!(
            matches!(e, SignError::Invalid(_)),
            "{}: {e:?}",
            case["case"]
        );
    }
}

/// Raw keys by origin (the BIP341 vectors give private keys, not a BIP32 tree).
struct RawKeys(BTreeMap<KeySource, PrivateKey>);

impl Keys for RawKeys {
    fn key_for(&self, origin: &KeySource) -> Option<PrivateKey> {
        self.0.get(origin).copied()
    }
}

#[test]
fn bip341_key_path_vectors() {
    let v = vectors("bip341");
    let secp = Secp256k1::new();
    for case in v["keyPathSpending"].as_array().unwrap() {
        let given = &case["given"];
        let tx: Transaction = bitcoin::consensus::deserialize(
            &Vec::<u8>::from_hex(given["rawUnsignedTx"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let utxos: Vec<TxOut> = given["utxosSpent"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| TxOut {
                value: Amount::from_sat(u["amountSats"].as_u64().unwrap()),
                script_pubkey: ScriptBuf::from_hex(u["scriptPubKey"].as_str().unwrap()).unwrap(),
            })
            .collect();
        for spend in case["inputSpending"].as_array().unwrap() {
            let g = &spend["given"];
            let i = g["txinIndex"].as_u64().unwrap() as usize;
            let mut psbt = Psbt::from_unsigned_tx(tx.clone()).unwrap();
            for (input, utxo) in psbt.inputs.iter_mut().zip(&utxos) {
                input.witness_utxo = Some(utxo.clone());
            }
            let sk =
                bitcoin::secp256k1::SecretKey::from_str(g["internalPrivkey"].as_str().unwrap())
                    .unwrap();
            let key = PrivateKey::new(sk, Network::Bitcoin);
            let (internal, _) = sk.public_key(&secp).x_only_public_key();
            let origin: KeySource = (Fingerprint::from([1, 2, 3, 4]), path("m/86'/0'/0'/0/0"));
            let hash_type = g["hashType"].as_u64().unwrap() as u32;
            let input = &mut psbt.inputs[i];
            input.tap_internal_key = Some(internal);
            input.tap_merkle_root = g["merkleRoot"]
                .as_str()
                .map(|h| TapNodeHash::from_str(h).unwrap());
            input.sighash_type = Some(PsbtSighashType::from_u32(hash_type));
            input
                .tap_key_origins
                .insert(internal, (vec![], origin.clone()));
            let policy = Policy {
                roots: vec![],
                extra_sighash: vec![PsbtSighashType::from_u32(hash_type)],
            };
            let keys = RawKeys(BTreeMap::from([(origin, key)]));
            let out = sign_with(psbt, &keys, &policy, true).unwrap();
            assert_eq!(out.signed, vec![i as u32]);
            // Our signature is valid for the vector's sighash under the output key.
            let sig = out.psbt.inputs[i]
                .final_script_witness
                .as_ref()
                .expect("a key-path input finalizes")
                .to_vec()
                .remove(0);
            let expected = &spend["expected"]["witness"][0];
            assert_eq!(
                sig.len() * 2,
                expected.as_str().unwrap().len(),
                "sighash byte"
            );
            if sig.len() == 65 {
                assert_eq!(u32::from(sig[64]), hash_type);
            }
            let sighash =
                <[u8; 32]>::from_hex(spend["intermediary"]["sigHash"].as_str().unwrap()).unwrap();
            let output_key =
                XOnlyPublicKey::from_slice(&utxos[i].script_pubkey.as_bytes()[2..34]).unwrap();
            secp.verify_schnorr(
                &schnorr::Signature::from_slice(&sig[..64]).unwrap(),
                &Message::from_digest(sighash),
                &output_key,
            )
            .unwrap_or_else(|e| panic!("input {i}: {e}"));
            // Not every input is ours: no transaction.
            assert!(out.tx.is_none());
        }
    }
}

#[test]
fn bip371_vectors_parse_or_fail_as_the_bip_says() {
    let v = vectors("bip371");
    let k = Keychain::from_mnemonic(ABANDON, Network::Regtest).unwrap();
    let policy = Policy::accounts(&k);
    for case in v["invalid"].as_array().unwrap() {
        let bytes = Vec::<u8>::from_hex(case["hex"].as_str().unwrap()).unwrap();
        let e = sign_psbt(&k, &policy, &bytes, true).unwrap_err();
        assert!(
            matches!(e, SignError::Malformed(_)),
            "{}: {e:?}",
            case["case"]
        );
    }
    for case in v["valid"].as_array().unwrap() {
        let bytes = Vec::<u8>::from_hex(case["hex"].as_str().unwrap()).unwrap();
        let out = sign_psbt(&k, &policy, &bytes, false)
            .unwrap_or_else(|e| panic!("{}: {e}", case["case"]));
        // Someone else's keys: parsed, checked, nothing signed, nothing changed.
        assert!(out.signed.is_empty(), "{}", case["case"]);
        assert_eq!(
            out.psbt,
            Psbt::deserialize(&bytes).unwrap(),
            "{}",
            case["case"]
        );
    }
}

const ABANDON: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
                       abandon abandon abandon about";

#[test]
fn signs_only_ours_reports_the_fee_and_finalizes_single_key_inputs() {
    let k = Keychain::from_mnemonic(ABANDON, Network::Regtest).unwrap();
    let policy = Policy::accounts(&k);
    let secp = Secp256k1::new();

    // Ours and a foreign input: only ours is signed; the PSBT cannot be final.
    let mixed = example_psbt(&k, AccountKind::Wpkh, &[50_000], 1);
    let out = sign_psbt(&k, &policy, &mixed.serialize(), true).unwrap();
    assert_eq!(out.signed, vec![0]);
    assert_eq!(out.fee, 1_000);
    assert_eq!(out.not_final, vec![1]);
    assert!(out.tx.is_none());
    assert!(out.psbt.inputs[1].partial_sigs.is_empty());

    // Two of ours, P2WPKH: a transaction whose signatures verify.
    let psbt = example_psbt(&k, AccountKind::Wpkh, &[50_000, 70_000], 0);
    let out = sign_psbt(&k, &policy, &psbt.serialize(), true).unwrap();
    assert_eq!(out.signed, vec![0, 1]);
    let tx = out.tx.expect("every input final");
    let prevouts: Vec<TxOut> = psbt
        .inputs
        .iter()
        .map(|i| i.witness_utxo.clone().unwrap())
        .collect();
    let mut cache = SighashCache::new(&tx);
    for (i, prev) in prevouts.iter().enumerate() {
        let w = tx.input[i].witness.to_vec();
        assert_eq!(w.len(), 2);
        let pk = bitcoin::PublicKey::from_slice(&w[1]).unwrap();
        let sighash = cache
            .p2wpkh_signature_hash(i, &prev.script_pubkey, prev.value, EcdsaSighashType::All)
            .unwrap();
        let sig = bitcoin::ecdsa::Signature::from_slice(&w[0]).unwrap();
        secp.verify_ecdsa(&Message::from(sighash), &sig.signature, &pk.inner)
            .unwrap();
    }

    // Taproot key path (BIP86): one 64-byte signature under the tweaked key.
    let psbt = example_psbt(&k, AccountKind::Tr, &[80_000], 0);
    let out = sign_psbt(&k, &policy, &psbt.serialize(), true).unwrap();
    let tx = out.tx.expect("final");
    let w = tx.input[0].witness.to_vec();
    assert_eq!(w[0].len(), 64);
    let prev = psbt.inputs[0].witness_utxo.clone().unwrap();
    let sighash = SighashCache::new(&tx)
        .taproot_key_spend_signature_hash(
            0,
            &Prevouts::All(std::slice::from_ref(&prev)),
            TapSighashType::Default,
        )
        .unwrap();
    let key = XOnlyPublicKey::from_slice(&prev.script_pubkey.as_bytes()[2..34]).unwrap();
    secp.verify_schnorr(
        &schnorr::Signature::from_slice(&w[0]).unwrap(),
        &Message::from(sighash),
        &key,
    )
    .unwrap();
}

#[test]
fn refuses_what_a_signer_must_not_sign() {
    let k = Keychain::from_mnemonic(ABANDON, Network::Regtest).unwrap();
    let policy = Policy::accounts(&k);
    let base = example_psbt(&k, AccountKind::Wpkh, &[50_000], 0);

    // No UTXO: the fee is unknown.
    let mut p = base.clone();
    p.inputs[0].witness_utxo = None;
    let e = sign_psbt(&k, &policy, &p.serialize(), false).unwrap_err();
    assert!(
        matches!(&e, SignError::Invalid(m) if m.contains("no UTXO")),
        "{e:?}"
    );

    // Our fingerprint and path with another public key.
    let mut p = base.clone();
    let origin = p.inputs[0]
        .bip32_derivation
        .values()
        .next()
        .unwrap()
        .clone();
    let other = k.address(AccountKind::Wpkh, 5).unwrap().pubkey.0;
    p.inputs[0].bip32_derivation = BTreeMap::from([(other, origin)]);
    let e = sign_psbt(&k, &policy, &p.serialize(), false).unwrap_err();
    assert!(
        matches!(&e, SignError::Invalid(m) if m.contains("is ours")),
        "{e:?}"
    );

    // A sighash type other than ALL: refused unless the policy allows it.
    let mut p = base.clone();
    p.inputs[0].sighash_type = Some(PsbtSighashType::from(EcdsaSighashType::None));
    let e = sign_psbt(&k, &policy, &p.serialize(), false).unwrap_err();
    assert!(matches!(e, SignError::Refused(_)), "{e:?}");
    let lenient = Policy {
        extra_sighash: vec![parse_sighash("none").unwrap()],
        ..policy.clone()
    };
    assert_eq!(
        sign_psbt(&k, &lenient, &p.serialize(), false)
            .unwrap()
            .signed,
        vec![0]
    );

    // Outputs above the inputs.
    let mut p = base.clone();
    p.unsigned_tx.output[0].value = Amount::from_sat(60_000);
    assert!(sign_psbt(&k, &policy, &p.serialize(), false).is_err());

    // A path of ours outside the accounts (m/0/0 with our fingerprint) is not signed.
    let mut p = base.clone();
    let stray = k.derive_checked(&path("m/0/0")).unwrap();
    let pk = stray.to_priv().public_key(&Secp256k1::new()).inner;
    p.inputs[0].bip32_derivation = BTreeMap::from([(pk, (k.fingerprint(), path("m/0/0")))]);
    assert!(sign_psbt(&k, &policy, &p.serialize(), false)
        .unwrap()
        .signed
        .is_empty());

    // Not a PSBT, truncated, one byte flipped: a failure each, never a panic.
    let bytes = base.serialize();
    for bad in [
        b"hello".to_vec(),
        bytes[..bytes.len() / 2].to_vec(),
        vec![0x70, 0x73, 0x62, 0x74, 0xff],
    ] {
        assert!(matches!(
            sign_psbt(&k, &policy, &bad, false),
            Err(SignError::Malformed(_))
        ));
    }
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x55;
        let _ = sign_psbt(&k, &policy, &b, true);
    }
}

#[test]
fn an_input_of_ours_whose_utxo_script_is_not_our_keys_is_refused_by_name() {
    let k = Keychain::from_mnemonic(ABANDON, Network::Regtest).unwrap();
    let policy = Policy::accounts(&k);
    let refused = |p: &Psbt, what: &str| {
        let e = sign_psbt(&k, &policy, &p.serialize(), true).unwrap_err();
        assert!(
            matches!(&e, SignError::Invalid(m) if m.starts_with("input 0:") && m.contains(what)),
            "{e:?}"
        );
    };
    let other_wpkh = k.address(AccountKind::Wpkh, 5).unwrap().script();
    let other_tr = k.address(AccountKind::Tr, 5).unwrap().script();

    // P2WPKH paying another key; P2SH-P2WPKH whose redeemScript is another key's.
    let mut p = example_psbt(&k, AccountKind::Wpkh, &[50_000], 0);
    p.inputs[0].witness_utxo.as_mut().unwrap().script_pubkey = other_wpkh.clone();
    refused(&p, "not the script of the key");
    let mut p = example_psbt(&k, AccountKind::Wpkh, &[50_000], 0);
    p.inputs[0].witness_utxo.as_mut().unwrap().script_pubkey =
        ScriptBuf::new_p2sh(&other_wpkh.script_hash());
    p.inputs[0].redeem_script = Some(other_wpkh.clone());
    refused(&p, "not the script of the key");
    // Nested and honest: signed and final.
    let mut p = example_psbt(&k, AccountKind::Wpkh, &[50_000], 0);
    let own = p.inputs[0]
        .witness_utxo
        .as_ref()
        .unwrap()
        .script_pubkey
        .clone();
    p.inputs[0].witness_utxo.as_mut().unwrap().script_pubkey =
        ScriptBuf::new_p2sh(&own.script_hash());
    p.inputs[0].redeem_script = Some(own);
    let out = sign_psbt(&k, &policy, &p.serialize(), true).unwrap();
    assert!(out.tx.is_some() && out.signed == vec![0]);

    // P2TR paying another key; an ECDSA derivation of ours on a Taproot output; a Taproot
    // origin of ours on a P2WPKH output; no internal key.
    let mut p = example_psbt(&k, AccountKind::Tr, &[50_000], 0);
    p.inputs[0].witness_utxo.as_mut().unwrap().script_pubkey = other_tr.clone();
    refused(&p, "not the Taproot output");
    let mut p = example_psbt(&k, AccountKind::Wpkh, &[50_000], 0);
    p.inputs[0].witness_utxo.as_mut().unwrap().script_pubkey = other_tr;
    refused(&p, "only an ECDSA derivation");
    let mut p = example_psbt(&k, AccountKind::Tr, &[50_000], 0);
    p.inputs[0].witness_utxo.as_mut().unwrap().script_pubkey = other_wpkh;
    refused(&p, "not Taproot");
    let mut p = example_psbt(&k, AccountKind::Tr, &[50_000], 0);
    p.inputs[0].tap_internal_key = None;
    refused(&p, "without its internal key");
}
