//! BP Node SIGN: `signd` (issue 13). bcoin is the judge of a spend signed by signd; PSBTs
//! mixing our inputs with others', malformed ones and ones without UTXOs; the key file across
//! a restart; a crash in the middle of signing; and no secret in any log line or reply.
//!
//! The PSBTs are built here as a wallet would: from the account xpub `signer xpub` shows (never
//! from the node's keys), with the bitcoin crate.

mod common;

use bitcoin::bip32::{ChildNumber, DerivationPath, Fingerprint, Xpub};
use bitcoin::hashes::Hash;
use bitcoin::hex::FromHex;
use bitcoin::key::TapTweak;
use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{
    absolute, transaction, Amount, Block, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut,
    Txid,
};
use common::bcoin::{wait_tip, Bcoin};
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use std::str::FromStr;
use std::time::Duration;

/// Every reply printed by nodectl in a test, for the secret grep at the end.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn run(&mut self, node: &Node, args: &[&str]) -> Output {
        let out = node.cli(args);
        self.0
            .push(String::from_utf8_lossy(&out.stdout).into_owned());
        self.0
            .push(String::from_utf8_lossy(&out.stderr).into_owned());
        out
    }

    fn ok(&mut self, node: &Node, args: &[&str]) -> String {
        let out = self.run(node, args);
        assert!(
            out.status.success(),
            "nodectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&mut self, node: &Node, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(node, args)).unwrap()
    }

    fn fails(&mut self, node: &Node, args: &[&str]) -> String {
        let out = self.run(node, args);
        assert!(!out.status.success(), "nodectl {args:?} should fail");
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8(out.stderr).unwrap()
    }
}

/// The P2WPKH account as a wallet sees it: fingerprint, path and xpub.
struct Account {
    fingerprint: Fingerprint,
    path: DerivationPath,
    xpub: Xpub,
}

impl Account {
    fn of(seen: &mut Seen, node: &Node) -> Account {
        Account::kind(seen, node, "p2wpkh")
    }

    /// The account of `kind` (`p2wpkh`, `p2tr`).
    fn kind(seen: &mut Seen, node: &Node, kind: &str) -> Account {
        let v = seen.json(node, &["signer", "xpub", "--json"]);
        let list = v["accounts"].as_array().unwrap();
        let a = list
            .iter()
            .find(|a| a["kind"] == kind)
            .expect("the account");
        Account {
            fingerprint: Fingerprint::from_str(v["fingerprint"].as_str().unwrap()).unwrap(),
            path: DerivationPath::from_str(a["path"].as_str().unwrap()).unwrap(),
            xpub: Xpub::from_str(a["xpub"].as_str().unwrap()).unwrap(),
        }
    }

    /// (output script, public key, full path) of receive index `i`.
    fn key(&self, i: u32) -> (ScriptBuf, bitcoin::secp256k1::PublicKey, DerivationPath) {
        let secp = Secp256k1::new();
        let child = [
            ChildNumber::from_normal_idx(0).unwrap(),
            ChildNumber::from_normal_idx(i).unwrap(),
        ];
        let pk = self.xpub.derive_pub(&secp, &child).unwrap().to_pub();
        let script = ScriptBuf::new_p2wpkh(&pk.wpubkey_hash());
        (script, pk.0, self.path.extend(child))
    }
}

/// A PSBT spending one coin of `value` at receive index `i` of the Taproot account `acct`
/// (BIP86 key path: internal key, key origin, the tweaked output as the UTXO's script).
fn taproot_psbt(acct: &Account, coin: OutPoint, value: u64, i: u32, to: ScriptBuf) -> Psbt {
    let secp = Secp256k1::new();
    let (_, pk, path) = acct.key(i);
    let internal = pk.x_only_public_key().0;
    let tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: coin,
            sequence: Sequence::MAX,
            ..Default::default()
        }],
        output: vec![TxOut {
            value: Amount::from_sat(value - 1_000),
            script_pubkey: to,
        }],
    };
    let mut p = Psbt::from_unsigned_tx(tx).unwrap();
    let input = &mut p.inputs[0];
    input.witness_utxo = Some(TxOut {
        value: Amount::from_sat(value),
        script_pubkey: ScriptBuf::new_p2tr(&secp, internal, None),
    });
    input.tap_internal_key = Some(internal);
    input
        .tap_key_origins
        .insert(internal, (vec![], (acct.fingerprint, path)));
    p
}

/// A PSBT spending `coins` (outpoint, value, receive index of ours or None for a stranger's)
/// to `to`, paying `fee`.
fn psbt(acct: &Account, coins: &[(OutPoint, u64, Option<u32>)], to: ScriptBuf, fee: u64) -> Psbt {
    let total: u64 = coins.iter().map(|c| c.1).sum();
    let tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: coins
            .iter()
            .map(|c| TxIn {
                previous_output: c.0,
                sequence: Sequence::MAX,
                ..Default::default()
            })
            .collect(),
        output: vec![TxOut {
            value: Amount::from_sat(total - fee),
            script_pubkey: to,
        }],
    };
    let mut p = Psbt::from_unsigned_tx(tx).unwrap();
    let secp = Secp256k1::new();
    for (input, (_, value, index)) in p.inputs.iter_mut().zip(coins) {
        let (script, pk, origin) = match index {
            Some(i) => {
                let (script, pk, path) = acct.key(*i);
                (script, pk, (acct.fingerprint, path))
            }
            None => {
                // A stranger's key: its own fingerprint and key.
                let sk = bitcoin::secp256k1::SecretKey::from_slice(&[7; 32]).unwrap();
                let pk = sk.public_key(&secp);
                let cpk = bitcoin::CompressedPublicKey(pk);
                let path = DerivationPath::from_str("m/84'/1'/0'/0/0").unwrap();
                (
                    ScriptBuf::new_p2wpkh(&cpk.wpubkey_hash()),
                    pk,
                    (Fingerprint::from([9; 4]), path),
                )
            }
        };
        input.witness_utxo = Some(TxOut {
            value: Amount::from_sat(*value),
            script_pubkey: script,
        });
        input.bip32_derivation.insert(pk, origin);
    }
    p
}

fn coinbase_of(bcoin: &mut Bcoin, height: u32) -> (OutPoint, TxOut) {
    let hash = bcoin.cmd(&format!("hash {height}"))["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let hex = bcoin.cmd(&format!("block {hash}"))["hex"]
        .as_str()
        .unwrap()
        .to_string();
    let block: Block =
        bitcoin::consensus::deserialize(&Vec::<u8>::from_hex(&hex).unwrap()).unwrap();
    let cb = &block.txdata[0];
    (OutPoint::new(cb.compute_txid(), 0), cb.output[0].clone())
}

#[test]
fn bcoin_accepts_and_mines_a_spend_that_signd_signed() {
    let mut seen = Seen::default();
    // bcoin's regtest activates segwit by BIP9 signalling: active from height 432 (three
    // 144-block periods). Before that it refuses witness spends ("no-witness-yet").
    const SEGWIT: u32 = 432;
    let mut bcoin = Bcoin::start(SEGWIT + 8);
    let node = Node::start("bp", &["--network", "regtest", "--connect", &bcoin.addr()]);
    wait_until(Duration::from_secs(30), "bcoin ready", || {
        node.info_json()["peers"] == 1
    });
    let acct = Account::of(&mut seen, &node);
    let first = seen.json(&node, &["address", "--json"]);
    let second = seen.json(&node, &["address", "--json"]);
    assert_eq!(
        (first["index"].as_u64(), second["index"].as_u64()),
        (Some(0), Some(1))
    );
    assert!(first["address"].as_str().unwrap().starts_with("bcrt1q"));
    // The address is the xpub's: a wallet holding only the xpub derives the same script.
    let (script0, _, _) = acct.key(0);
    assert_eq!(first["script"], script0.to_hex_string());

    // bcoin's miner pays two coinbases to it; 100 blocks more make them spendable.
    bcoin.cmd(&format!("mineto 2 {}", script0.to_hex_string()));
    let t = bcoin.cmd("mine 100");
    wait_tip(&node, t["hash"].as_str().unwrap());
    let coins: Vec<(OutPoint, u64, Option<u32>)> = (SEGWIT + 9..=SEGWIT + 10)
        .map(|h| {
            let (outpoint, out) = coinbase_of(&mut bcoin, h);
            assert_eq!(out.script_pubkey, script0, "coinbase {h} pays us");
            (outpoint, out.value.to_sat(), Some(0))
        })
        .collect();
    let (script1, _, _) = acct.key(1);
    let p = psbt(&acct, &coins, script1, 10_000);

    let signed = seen.json(&node, &["sign", &p.to_string(), "--finalize", "--json"]);
    assert_eq!(signed["signed"], serde_json::json!([0, 1]), "{signed}");
    assert_eq!(signed["fee"], 10_000);
    assert_eq!(signed["finalized"], true);
    let tx_hex = signed["data"].as_str().unwrap().to_string();
    let txid = signed["txid"].as_str().unwrap().to_string();

    seen.ok(&node, &["broadcast", &tx_hex]);
    let taken = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        bcoin.cmd(&format!("mempool {txid}"))["in"] == true
    });
    // If not, bcoin's own reason shows what is wrong with the transaction.
    assert!(
        taken,
        "bcoin refused it: {}",
        bcoin.cmd(&format!("verdict {tx_hex}"))
    );
    let mined = bcoin.cmd("mine 1");
    let hash = mined["hash"].as_str().unwrap().to_string();
    let hex = bcoin.cmd(&format!("block {hash}"))["hex"]
        .as_str()
        .unwrap()
        .to_string();
    let block: Block =
        bitcoin::consensus::deserialize(&Vec::<u8>::from_hex(&hex).unwrap()).unwrap();
    assert!(
        block
            .txdata
            .iter()
            .any(|tx| tx.compute_txid() == Txid::from_str(&txid).unwrap()),
        "bcoin mined our transaction"
    );
    // Our BP node follows bcoin onto that block.
    wait_tip(&node, &hash);
    no_secret_in(&node, &seen);
}

#[test]
fn only_our_inputs_are_signed_bad_psbts_fail_and_the_key_survives_a_restart() {
    let mut seen = Seen::default();
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let dir = tmp.path().join("bp");
    let mut node = Node::spawn_in("bp", &dir, &["--network", "regtest"], &[]);
    node.wait_ready();
    let acct = Account::of(&mut seen, &node);
    let coin = |n: u8, ours: Option<u32>| {
        (
            OutPoint::new(Txid::from_byte_array([n; 32]), 0),
            100_000,
            ours,
        )
    };
    let (to, _, _) = acct.key(3);

    // Ours and a stranger's: only ours signed, and the reply says so.
    let mixed = psbt(&acct, &[coin(1, Some(0)), coin(2, None)], to.clone(), 2_000);
    let v = seen.json(&node, &["sign", &mixed.to_string(), "--json"]);
    assert_eq!(v["signed"], serde_json::json!([0]), "{v}");
    assert_eq!(v["fee"], 2_000);
    let back = Psbt::from_str(v["data"].as_str().unwrap()).unwrap();
    assert_eq!(back.inputs[0].partial_sigs.len(), 1);
    assert!(back.inputs[1].partial_sigs.is_empty());
    // --finalize cannot: the stranger's input is not final, so the PSBT comes back.
    let v = seen.json(&node, &["sign", &mixed.to_string(), "--finalize", "--json"]);
    assert_eq!(
        (v["finalized"].clone(), v["not_final"].clone()),
        (false.into(), serde_json::json!([1]))
    );

    // From a file, binary.
    let file = tmp.path().join("ours.psbt");
    std::fs::write(
        &file,
        psbt(&acct, &[coin(3, Some(2))], to.clone(), 500).serialize(),
    )
    .unwrap();
    let v = seen.json(
        &node,
        &["sign", file.to_str().unwrap(), "--finalize", "--json"],
    );
    assert_eq!(v["finalized"], true, "{v}");

    // A missing UTXO, a lie about our key, a sighash not allowed, garbage: failures, named.
    let mut no_utxo = mixed.clone();
    no_utxo.inputs[1].witness_utxo = None;
    let e = seen.fails(&node, &["sign", &no_utxo.to_string()]);
    assert!(e.contains("0x1003") && e.contains("no UTXO"), "{e}");
    let mut lie = psbt(&acct, &[coin(4, Some(0))], to.clone(), 500);
    let origin = lie.inputs[0]
        .bip32_derivation
        .values()
        .next()
        .unwrap()
        .clone();
    let (_, other_pk, _) = acct.key(9);
    lie.inputs[0].bip32_derivation = [(other_pk, origin)].into_iter().collect();
    let e = seen.fails(&node, &["sign", &lie.to_string()]);
    assert!(e.contains("is ours but its public key"), "{e}");
    let mut none = psbt(&acct, &[coin(5, Some(0))], to.clone(), 500);
    none.inputs[0].sighash_type = Some(bitcoin::EcdsaSighashType::None.into());
    let e = seen.fails(&node, &["sign", &none.to_string()]);
    assert!(e.contains("0x6000") && e.contains("allowed_sighash"), "{e}");
    let e = seen.fails(&node, &["sign", "cHNidP8BAA=="]);
    assert!(e.contains("0x1000"), "{e}");
    let e = seen.fails(&node, &["sign", "not base64 !"]);
    assert!(e.contains("neither a file nor a base64 PSBT"), "{e}");
    // The same garbage from a raw client, and a PSBT cut short: failure replies, node serving.
    let raw = Raw::connect(&node.api_endpoint(), client_id(0x51));
    let bytes = mixed.serialize();
    for (id, body) in [
        (1u64, b"\x00\x01\x02".to_vec()),
        (2, bytes[..bytes.len() / 2].to_vec()),
    ] {
        let mut msg = (body.len() as u32).to_le_bytes().to_vec();
        msg.extend_from_slice(&body);
        msg.push(0);
        raw.send(&other_id("signd"), &payload(0x0324, id, &msg));
        let r = raw.recv_msg();
        assert_eq!((r.request_id, r.failure().0), (id, 0x1000));
    }
    assert_eq!(node.info_json()["node"], "bp");

    // The key file: mode 0600, the same keys after a restart; the address index kept.
    let key = dir.join("signer.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let before = seen.json(&node, &["signer", "xpub", "--json"]);
    let a = seen.json(&node, &["address", "--json"]);
    node.signal("-TERM");
    assert!(node.wait_exit(Duration::from_secs(10)).is_some());
    let mut again = Node::spawn_in("bp", &dir, &["--network", "regtest"], &[]);
    again.wait_ready();
    assert_eq!(seen.json(&again, &["signer", "xpub", "--json"]), before);
    let b = seen.json(&again, &["address", "--json"]);
    assert_eq!(
        b["index"].as_u64(),
        a["index"].as_u64().map(|i| i + 1),
        "{a} {b}"
    );

    // Import: refused while a key is there; accepted into an empty data dir, same accounts.
    let words = std::fs::read_to_string(&key).unwrap();
    let e = import(&dir, &words);
    assert!(!e.status.success());
    let fresh = tmp.path().join("restored");
    let out = import(&fresh, &words);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    seen.0
        .push(String::from_utf8_lossy(&out.stdout).into_owned());
    let mut restored = Node::spawn_in("bp", &fresh, &["--network", "regtest"], &[]);
    restored.wait_ready();
    assert_eq!(seen.json(&restored, &["signer", "xpub", "--json"]), before);
    let bad = import(&tmp.path().join("bad"), "abandon abandon zoo");
    assert!(!bad.status.success());
    assert!(!String::from_utf8_lossy(&bad.stderr).contains("zoo"));
    drop(restored);
    no_secret_in(&again, &seen);
    no_secret_in(&node, &seen);
}

/// `nodectl bp signer import --data-dir DIR` with `words` on stdin.
fn import(dir: &std::path::Path, words: &str) -> Output {
    use std::io::Write;
    let mut child = std::process::Command::new(NODECTL)
        .args(["bp", "signer", "import", "--data-dir"])
        .arg(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(words.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_crash_while_signing_fails_that_request_and_signd_comes_back_with_the_same_key() {
    let mut seen = Seen::default();
    let node = Node::start("bp", &["--network", "regtest", "--fault-injection"]);
    let acct = Account::of(&mut seen, &node);
    let before = seen.json(&node, &["signer", "xpub", "--json"]);
    // 2,000 inputs of ours: signing takes long enough for the crash to land meanwhile.
    let coins: Vec<_> = (0..2_000u32)
        .map(|n| {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&n.to_le_bytes());
            (
                OutPoint::new(Txid::from_byte_array(id), 0),
                10_000,
                Some(n % 7),
            )
        })
        .collect();
    let (to, _, _) = acct.key(0);
    let big = psbt(&acct, &coins, to.clone(), 1_000).serialize();
    let raw = Raw::connect(&node.api_endpoint(), client_id(0x52));
    let mut body = (big.len() as u32).to_le_bytes().to_vec();
    body.extend_from_slice(&big);
    body.push(0);
    raw.send(&other_id("signd"), &payload(0x0324, 1, &body));
    raw.send(&manager_id("bp"), &payload(0x01F0, 2, &string("signd")));
    let mut replies = std::collections::HashMap::new();
    while replies.len() < 2 {
        let r = raw.recv_msg();
        replies.insert(r.request_id, r);
    }
    assert_eq!(replies[&2].type_id, 0x0001, "the crash was injected");
    let (code, why) = replies[&1].failure();
    assert_eq!(code, 0x5000, "the request being signed fails: {why}");
    let info = node.wait_info("signd back", |i| {
        let s = service(i, "signd");
        s["state"] == "running" && s["restarts"] == 1
    });
    assert!(service(&info, "signd")["last_failure"]
        .as_str()
        .unwrap()
        .contains("debug crash"));
    // The same key, and it signs again.
    assert_eq!(seen.json(&node, &["signer", "xpub", "--json"]), before);
    let small = psbt(&acct, &coins[..2], to, 1_000);
    let v = seen.json(&node, &["sign", &small.to_string(), "--finalize", "--json"]);
    assert_eq!(v["signed"], serde_json::json!([0, 1]));
    no_secret_in(&node, &seen);
}

/// Neither the mnemonic nor an extended private key of it is in the node's log or in any
/// reply the test saw.
fn no_secret_in(node: &Node, seen: &Seen) {
    let words = std::fs::read_to_string(node.dir.join("signer.key")).unwrap();
    let words = words.trim();
    let mnemonic = bip39::Mnemonic::parse(words).unwrap();
    let master =
        bitcoin::bip32::Xpriv::new_master(bitcoin::NetworkKind::Test, &mnemonic.to_seed(""))
            .unwrap();
    let secp = Secp256k1::new();
    let mut secrets = vec![words.to_string(), master.to_string()];
    for purpose in [84, 86] {
        let path = DerivationPath::from_str(&format!("m/{purpose}'/1'/0'")).unwrap();
        secrets.push(master.derive_priv(&secp, &path).unwrap().to_string());
    }
    // Three words in a row are already a leak.
    let first3: Vec<&str> = words.split(' ').take(3).collect();
    secrets.push(first3.join(" "));
    let log = node.log_text();
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "a secret in the log");
        for reply in &seen.0 {
            assert!(!reply.contains(s.as_str()), "a secret in a reply");
        }
    }
}

#[test]
fn psbts_that_lie_about_the_utxo_script_are_refused_naming_the_input_and_honest_ones_sign() {
    let mut seen = Seen::default();
    let node = Node::start("bp", &["--network", "regtest"]);
    let wpkh = Account::of(&mut seen, &node);
    let tr = Account::kind(&mut seen, &node, "p2tr");
    let coin = |n: u8| OutPoint::new(Txid::from_byte_array([n; 32]), 0);
    let (to, _, _) = wpkh.key(3);
    let secp = Secp256k1::new();

    // P2TR, honest: signed and final.
    let honest = taproot_psbt(&tr, coin(1), 50_000, 0, to.clone());
    let v = seen.json(
        &node,
        &["sign", &honest.to_string(), "--finalize", "--json"],
    );
    assert_eq!(
        (v["signed"].clone(), v["finalized"].clone()),
        (serde_json::json!([0]), true.into()),
        "{v}"
    );
    // `data` as docs/API.md names it: the raw transaction (hex) once final, with its txid.
    let tx: Transaction =
        bitcoin::consensus::deserialize(&Vec::<u8>::from_hex(v["data"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(v["txid"], tx.compute_txid().to_string());
    assert_eq!(tx.input[0].witness.len(), 1, "one key-path signature");

    // P2TR whose witness_utxo is the output of another key (ours, index 9; the key origin
    // still names index 0), and of the untweaked internal key: refused, the input named.
    let (_, other, _) = tr.key(9);
    for script in [
        ScriptBuf::new_p2tr(&secp, other.x_only_public_key().0, None),
        ScriptBuf::new_p2tr_tweaked(
            honest.inputs[0]
                .tap_internal_key
                .unwrap()
                .dangerous_assume_tweaked(),
        ),
    ] {
        let mut lie = taproot_psbt(&tr, coin(2), 50_000, 0, to.clone());
        lie.inputs[0].witness_utxo.as_mut().unwrap().script_pubkey = script;
        let e = seen.fails(&node, &["sign", &lie.to_string(), "--finalize"]);
        assert!(
            e.contains("0x1003") && e.contains("input 0") && e.contains("not the Taproot output"),
            "{e}"
        );
    }

    // P2WPKH whose witness_utxo pays another key of ours: refused, the second input named;
    // the honest first one alone still signs.
    let two = psbt(
        &wpkh,
        &[(coin(3), 40_000, Some(0)), (coin(4), 40_000, Some(1))],
        to.clone(),
        1_000,
    );
    let v = seen.json(&node, &["sign", &two.to_string(), "--finalize", "--json"]);
    assert_eq!(
        (v["signed"].clone(), v["finalized"].clone()),
        (serde_json::json!([0, 1]), true.into()),
        "{v}"
    );
    let mut lie = two.clone();
    let (other_script, _, _) = wpkh.key(7);
    lie.inputs[1].witness_utxo.as_mut().unwrap().script_pubkey = other_script;
    let e = seen.fails(&node, &["sign", &lie.to_string(), "--finalize"]);
    assert!(
        e.contains("0x1003") && e.contains("input 1") && e.contains("not the script of the key"),
        "{e}"
    );

    // A Taproot input of ours without its internal key: not skipped, refused with the reason.
    let mut bare = taproot_psbt(&tr, coin(5), 50_000, 0, to.clone());
    bare.inputs[0].tap_internal_key = None;
    let e = seen.fails(&node, &["sign", &bare.to_string()]);
    assert!(
        e.contains("input 0") && e.contains("without its internal key"),
        "{e}"
    );

    // Unfinalized: `data` is the signed PSBT (base64).
    let v = seen.json(&node, &["sign", &honest.to_string(), "--json"]);
    let back = Psbt::from_str(v["data"].as_str().unwrap()).unwrap();
    assert!(back.inputs[0].tap_key_sig.is_some(), "{v}");
    assert!(v["txid"].is_null());
    no_secret_in(&node, &seen);
}
