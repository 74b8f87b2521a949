//! The BP signer against bare secp256k1, in the same run: inputs signed per second through
//! `sign_psbt` on a running node (a 100-input PSBT, P2WPKH and P2TR), against in-process
//! ECDSA / Schnorr signing of the same sighashes with keys derived beforehand. The signer's
//! own cost without the bus (`sign_psbt` in-process) is printed too.
//!
//! Run: `cargo bench --bench signer` (release). Prints medians and ratios.

mod common;

use bitcoin::key::TapTweak;
use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{Keypair, Message, Secp256k1};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::{Network, TxOut};
use lnpbp_nodes::actors::bp::signd;
use lnpbp_nodes::bus::client::Client;
use lnpbp_nodes::bus::Endpoint;
use lnpbp_nodes::signer::{example_psbt, sign_psbt, AccountKind, Keychain, Policy};
use lnpbp_nodes::wire::api::bp::BpMsg;
use lnpbp_nodes::wire::api::Msg;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const INPUTS: usize = 100;

/// Inputs per second of one `sign_psbt` through the node.
fn ours(c: &mut Client, psbt: &[u8]) -> f64 {
    let t = Instant::now();
    let reply = c
        .request(
            &signd::id(),
            BpMsg::SignPsbt {
                psbt: psbt.to_vec(),
                finalize: false,
            }
            .into(),
            Duration::from_secs(30),
            |_| (),
        )
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let Msg::Bp(BpMsg::PsbtSigned(s)) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(s.signed.len(), INPUTS);
    INPUTS as f64 / secs
}

/// Inputs per second of the signer in-process (no bus).
fn in_process(k: &Keychain, policy: &Policy, psbt: &[u8]) -> f64 {
    let t = Instant::now();
    let out = sign_psbt(k, policy, psbt, false).unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(out.signed.len(), INPUTS);
    INPUTS as f64 / secs
}

/// Inputs per second of the signer in-process with a fresh keychain (cold: no public key or
/// Taproot tweak remembered yet).
fn in_process_cold(words: &str, psbt: &[u8]) -> f64 {
    let k = Keychain::from_mnemonic(words, Network::Regtest).unwrap();
    let policy = Policy::accounts(&k);
    in_process(&k, &policy, psbt)
}

/// What bare signing needs, prepared outside the timing: the sighash of every input and its
/// key (tweaked for Taproot).
struct Bare {
    ecdsa: Vec<(Message, bitcoin::secp256k1::SecretKey)>,
    schnorr: Vec<(Message, Keypair)>,
}

fn prepare(k: &Keychain, words: &str, wpkh: &Psbt, tr: &Psbt) -> Bare {
    let secp = Secp256k1::new();
    // The keys straight from the mnemonic, with bitcoin's BIP32 (the signer has no call that
    // hands out a private key).
    let seed = bip39::Mnemonic::parse(words).unwrap().to_seed("");
    let master = bitcoin::bip32::Xpriv::new_master(Network::Regtest, &seed).unwrap();
    let key = |kind, i: usize| {
        let a = k.address(kind, i as u32).unwrap();
        master.derive_priv(&secp, &a.path).unwrap().private_key
    };
    let mut cache = SighashCache::new(&wpkh.unsigned_tx);
    let ecdsa = wpkh
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let prev = input.witness_utxo.as_ref().unwrap();
            let h = cache
                .p2wpkh_signature_hash(i, &prev.script_pubkey, prev.value, EcdsaSighashType::All)
                .unwrap();
            (Message::from(h), key(AccountKind::Wpkh, i))
        })
        .collect();
    let prevouts: Vec<TxOut> = tr
        .inputs
        .iter()
        .map(|i| i.witness_utxo.clone().unwrap())
        .collect();
    let mut cache = SighashCache::new(&tr.unsigned_tx);
    let schnorr = (0..tr.inputs.len())
        .map(|i| {
            let h = cache
                .taproot_key_spend_signature_hash(
                    i,
                    &Prevouts::All(&prevouts),
                    TapSighashType::Default,
                )
                .unwrap();
            let kp = Keypair::from_secret_key(&secp, &key(AccountKind::Tr, i))
                .tap_tweak(&secp, None)
                .to_keypair();
            (Message::from(h), kp)
        })
        .collect();
    Bare { ecdsa, schnorr }
}

fn bare_ecdsa(secp: &Secp256k1<bitcoin::secp256k1::All>, b: &Bare) -> f64 {
    let t = Instant::now();
    for (m, k) in &b.ecdsa {
        std::hint::black_box(secp.sign_ecdsa(m, k));
    }
    b.ecdsa.len() as f64 / t.elapsed().as_secs_f64()
}

fn bare_schnorr(secp: &Secp256k1<bitcoin::secp256k1::All>, b: &Bare) -> f64 {
    let t = Instant::now();
    for (m, k) in &b.schnorr {
        std::hint::black_box(secp.sign_schnorr(m, k));
    }
    b.schnorr.len() as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let samples = common::samples(11);
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let tmp = tempfile::tempdir_in(&base).unwrap();
    let dir = tmp.path().join("bp");
    let mut node = common::start_node("bp", &dir, &["--network", "regtest"]);
    let words = std::fs::read_to_string(dir.join("signer.key")).unwrap();
    let k = Keychain::from_mnemonic(words.trim(), Network::Regtest).unwrap();
    let policy = Policy::accounts(&k);
    let wpkh = example_psbt(&k, AccountKind::Wpkh, &[10_000; INPUTS], 0);
    let tr = example_psbt(&k, AccountKind::Tr, &[10_000; INPUTS], 0);
    let (wpkh_bytes, tr_bytes) = (wpkh.serialize(), tr.serialize());
    let bare = prepare(&k, words.trim(), &wpkh, &tr);
    let secp = Secp256k1::new();
    let mut c = Client::connect(&zmq::Context::new(), &Endpoint::Ipc(dir.join("api"))).unwrap();

    for (name, bytes, bare_fn) in [
        (
            "P2WPKH (ECDSA)",
            &wpkh_bytes,
            bare_ecdsa as fn(&_, &Bare) -> f64,
        ),
        ("P2TR key path (Schnorr)", &tr_bytes, bare_schnorr),
    ] {
        // Warm-up, then alternating samples.
        ours(&mut c, bytes);
        let (mut b, mut o, mut p, mut cold) = (vec![], vec![], vec![], vec![]);
        for _ in 0..samples {
            b.push(bare_fn(&secp, &bare));
            o.push(ours(&mut c, bytes));
            p.push(in_process(&k, &policy, bytes));
            cold.push(in_process_cold(words.trim(), bytes));
        }
        let (b, o, p) = (common::median(b), common::median(o), common::median(p));
        let cold = common::median(cold);
        println!("{name}: a {INPUTS}-input PSBT ({samples} samples, inputs signed per second)");
        println!("  bare secp256k1, sighashes and keys ready : {b:10.0} /s median");
        println!(
            "  signer in-process, keys first seen (cold): {cold:10.0} /s median  ({:.2}x)",
            cold / b
        );
        println!(
            "  signer in-process (sign_psbt)            : {p:10.0} /s median  ({:.2}x)",
            p / b
        );
        println!("  sign_psbt through the node (IPC, signd)  : {o:10.0} /s median");
        println!(
            "  ratio ours/bare                          : {:10.2}x  (target >= 0.5x)",
            o / b
        );
    }
    let _ = node.kill();
    let _ = node.wait();
}
