//! PSBT signing (BIP174 signer, BIP371 Taproot fields) with bitcoin's `psbt` types and
//! sighashes: the checks a signer owes before it signs, then signatures for our inputs only
//! (ECDSA for every script type bitcoin's `sighash_ecdsa` knows; Schnorr for Taproot key-path
//! spends, the only kind a BIP86 account makes), then (if asked) finalizing what we can
//! finalize and extracting the transaction.
//!
//! Signing is done here rather than by `Psbt::sign`, which computes each signing key's public
//! key (and Taproot tweak) again after signing: the keychain remembers those, so a key it has
//! seen costs one curve multiplication per signature (the nonce's), as bare signing does.
//!
//! What is ours: a BIP32 derivation (or Taproot key origin) whose master fingerprint is ours,
//! whose path lies under one of the policy's roots (our two accounts), and whose public key is
//! the one that path derives. A derivation naming our fingerprint with another public key is a
//! lie about our keys: the whole PSBT is refused. Anything else is someone else's and is left
//! alone.

use super::Keychain;
use bitcoin::bip32::{DerivationPath, KeySource};
use bitcoin::ecdsa;
use bitcoin::key::TapTweak;
use bitcoin::psbt::{Input, Psbt, PsbtSighashType};
use bitcoin::secp256k1::{All, Keypair, Message, Secp256k1, XOnlyPublicKey};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::taproot::{self, TapNodeHash};
use bitcoin::{CompressedPublicKey, PrivateKey, Script, ScriptBuf, Transaction, TxOut, Witness};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

/// What the signer agrees to sign.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Key origins under these paths are ours (the accounts `m/84'/c'/0'`, `m/86'/c'/0'`).
    pub roots: Vec<DerivationPath>,
    /// Sighash types allowed besides ALL (and Taproot's DEFAULT), from `[signer]` in the config.
    pub extra_sighash: Vec<PsbtSighashType>,
}

impl Policy {
    /// The policy of a keychain: its two accounts, ALL/DEFAULT only.
    pub fn accounts(keychain: &Keychain) -> Policy {
        Policy {
            roots: super::AccountKind::ALL
                .into_iter()
                .map(|k| keychain.account_path(k))
                .collect(),
            extra_sighash: Vec::new(),
        }
    }

    fn sighash_allowed(&self, t: PsbtSighashType) -> bool {
        t == PsbtSighashType::from(EcdsaSighashType::All)
            || t == PsbtSighashType::from(TapSighashType::Default)
            || self.extra_sighash.contains(&t)
    }
}

/// Parses a sighash name of the config (`ALL`, `NONE`, `SINGLE`, each optionally with
/// `|ANYONECANPAY`).
pub fn parse_sighash(name: &str) -> Option<PsbtSighashType> {
    let t = match name.to_ascii_uppercase().replace(' ', "").as_str() {
        "ALL" => EcdsaSighashType::All,
        "NONE" => EcdsaSighashType::None,
        "SINGLE" => EcdsaSighashType::Single,
        "ALL|ANYONECANPAY" => EcdsaSighashType::AllPlusAnyoneCanPay,
        "NONE|ANYONECANPAY" => EcdsaSighashType::NonePlusAnyoneCanPay,
        "SINGLE|ANYONECANPAY" => EcdsaSighashType::SinglePlusAnyoneCanPay,
        _ => return None,
    };
    Some(PsbtSighashType::from(t))
}

/// Where the signer's private keys come from: the key of an origin, if the origin is ours,
/// and (computed, or remembered) what derives from it.
pub trait Keys {
    /// The private key of `origin`, if it is one of ours.
    fn key_for(&self, origin: &KeySource) -> Option<PrivateKey>;

    /// The public key of `sk`, the key of `origin`.
    fn public_for(
        &self,
        origin: &KeySource,
        sk: &PrivateKey,
        secp: &Secp256k1<All>,
    ) -> bitcoin::secp256k1::PublicKey {
        let _ = origin;
        sk.inner.public_key(secp)
    }

    /// The Taproot key pair of `sk` tweaked with `merkle_root` (BIP341), and the untweaked
    /// x-only key (the internal key).
    fn tweaked_for(
        &self,
        origin: &KeySource,
        sk: &PrivateKey,
        merkle_root: Option<TapNodeHash>,
        secp: &Secp256k1<All>,
    ) -> (Keypair, XOnlyPublicKey) {
        let _ = origin;
        tweak(sk, merkle_root, secp)
    }
}

/// The tweaked key pair of `sk` and its internal (untweaked) x-only key.
pub(crate) fn tweak(
    sk: &PrivateKey,
    merkle_root: Option<TapNodeHash>,
    secp: &Secp256k1<All>,
) -> (Keypair, XOnlyPublicKey) {
    let pair = Keypair::from_secret_key(secp, &sk.inner);
    let internal = pair.x_only_public_key().0;
    (pair.tap_tweak(secp, merkle_root).to_keypair(), internal)
}

/// A keychain under a policy: origins with our fingerprint under the policy's roots.
pub struct OurKeys<'a> {
    /// The keychain.
    pub keychain: &'a Keychain,
    /// Its policy.
    pub policy: &'a Policy,
}

impl Keys for OurKeys<'_> {
    fn key_for(&self, (fp, path): &KeySource) -> Option<PrivateKey> {
        if *fp != self.keychain.fingerprint() {
            return None;
        }
        let under_root =
            self.policy.roots.iter().any(|root| {
                path.len() >= root.len() && path.as_ref()[..root.len()] == *root.as_ref()
            });
        if !under_root {
            return None;
        }
        Some(PrivateKey::new(
            self.keychain.key_at(path)?,
            self.keychain.network(),
        ))
    }

    fn public_for(
        &self,
        (_, path): &KeySource,
        sk: &PrivateKey,
        secp: &Secp256k1<All>,
    ) -> bitcoin::secp256k1::PublicKey {
        self.keychain
            .cached_public(path, || sk.inner.public_key(secp))
    }

    fn tweaked_for(
        &self,
        (_, path): &KeySource,
        sk: &PrivateKey,
        merkle_root: Option<TapNodeHash>,
        secp: &Secp256k1<All>,
    ) -> (Keypair, XOnlyPublicKey) {
        self.keychain
            .cached_tweak(path, merkle_root, || tweak(sk, merkle_root, secp))
    }
}

/// [`Keys`] that derive each key once.
struct Memo<'a, K: Keys> {
    keys: &'a K,
    cache: RefCell<HashMap<KeySource, Option<PrivateKey>>>,
}

impl<K: Keys> Keys for Memo<'_, K> {
    fn key_for(&self, origin: &KeySource) -> Option<PrivateKey> {
        if let Some(k) = self.cache.borrow().get(origin) {
            return *k;
        }
        let k = self.keys.key_for(origin);
        self.cache.borrow_mut().insert(origin.clone(), k);
        k
    }

    fn public_for(
        &self,
        origin: &KeySource,
        sk: &PrivateKey,
        secp: &Secp256k1<All>,
    ) -> bitcoin::secp256k1::PublicKey {
        self.keys.public_for(origin, sk, secp)
    }

    fn tweaked_for(
        &self,
        origin: &KeySource,
        sk: &PrivateKey,
        merkle_root: Option<TapNodeHash>,
        secp: &Secp256k1<All>,
    ) -> (Keypair, XOnlyPublicKey) {
        self.keys.tweaked_for(origin, sk, merkle_root, secp)
    }
}

/// Why a PSBT was not signed. The message names the input and the rule, never a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignError {
    /// Not a PSBT (failure 0x1000).
    Malformed(String),
    /// A PSBT that breaks a rule a signer must check (0x1003).
    Invalid(String),
    /// Refused by the signer's policy (0x6000), e.g. a sighash type it was not allowed.
    Refused(String),
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignError::Malformed(s) | SignError::Invalid(s) | SignError::Refused(s) => {
                f.write_str(s)
            }
        }
    }
}

impl std::error::Error for SignError {}

/// A signed PSBT and what was done.
#[derive(Clone, Debug)]
pub struct Signed {
    /// The PSBT with our signatures (and finalized inputs, if asked).
    pub psbt: Psbt,
    /// Inputs we signed.
    pub signed: Vec<u32>,
    /// Sum of the inputs minus the outputs, in satoshis.
    pub fee: u64,
    /// The transaction, when finalizing was asked and every input is final.
    pub tx: Option<Transaction>,
    /// Inputs that are not final (when finalizing was asked).
    pub not_final: Vec<u32>,
}

/// Signs the PSBT `bytes` with `keychain` under `policy`.
pub fn sign_psbt(
    keychain: &Keychain,
    policy: &Policy,
    bytes: &[u8],
    finalize: bool,
) -> Result<Signed, SignError> {
    let psbt = Psbt::deserialize(bytes)
        .map_err(|e| SignError::Malformed(format!("not a PSBT (BIP174 version 0): {e}")))?;
    sign_with(psbt, &OurKeys { keychain, policy }, policy, finalize)
}

/// Signs `psbt` with the keys `keys` gives, under `policy` (the rules of this module).
pub fn sign_with(
    mut psbt: Psbt,
    keys: &impl Keys,
    policy: &Policy,
    finalize: bool,
) -> Result<Signed, SignError> {
    let secp = Secp256k1::new();
    // Each key is derived once per PSBT, however often it is asked for.
    let keys = &Memo {
        keys,
        cache: RefCell::new(HashMap::new()),
    };
    // First every check, on every input; nothing is signed unless all pass.
    let mut utxos = Vec::with_capacity(psbt.inputs.len());
    let mut work: Vec<(usize, Vec<EcdsaJob>, Option<Keypair>)> = Vec::new();
    for i in 0..psbt.inputs.len() {
        let input = &psbt.inputs[i];
        let mut ecdsa = Vec::new();
        for (pk, origin) in &input.bip32_derivation {
            if let Some(sk) = keys.key_for(origin) {
                // A derivation that names our key must give our key's public key.
                if keys.public_for(origin, &sk, &secp) != *pk {
                    return Err(lie(i, origin));
                }
                ecdsa.push((*pk, sk));
            }
        }
        let mut schnorr = None;
        // Whether a key-path Taproot origin of ours is there (signable or not).
        let mut tap_ours = false;
        for (xonly, (leaves, origin)) in &input.tap_key_origins {
            let Some(sk) = keys.key_for(origin) else {
                continue;
            };
            let (pair, internal) = keys.tweaked_for(origin, &sk, input.tap_merkle_root, &secp);
            if internal != *xonly {
                return Err(lie(i, origin));
            }
            // Key path only (BIP86 accounts have no scripts): our key as the internal key.
            if leaves.is_empty() {
                tap_ours = true;
                if input.tap_internal_key == Some(*xonly) {
                    schnorr = Some(pair);
                }
            }
        }
        let mine = !ecdsa.is_empty() || tap_ours;
        // Every input needs its UTXO (the fee); ours must also pass the signer's checks.
        let utxo = check_input(&psbt, i, mine)?;
        if mine {
            if let Some(t) = input.sighash_type {
                if !policy.sighash_allowed(t) {
                    return Err(SignError::Refused(format!(
                        "input {i}: sighash type {t} is not allowed (signer.allowed_sighash)"
                    )));
                }
            }
            check_script_is_ours(input, i, &utxo.script_pubkey, &ecdsa, tap_ours, schnorr)?;
            work.push((i, ecdsa, schnorr));
        }
        utxos.push(utxo);
    }
    let fee = psbt
        .fee()
        .map_err(|e| SignError::Invalid(format!("the fee cannot be computed: {e}")))?
        .to_sat();
    // Then the signatures, each sighash computed once.
    let tx = psbt.unsigned_tx.clone();
    let mut cache = SighashCache::new(&tx);
    let mut signed = Vec::new();
    for (i, ecdsa, schnorr) in work {
        let mut any = false;
        if utxos[i].script_pubkey.is_p2tr() {
            if let Some(pair) = schnorr {
                let ty = match psbt.inputs[i].sighash_type {
                    None => TapSighashType::Default,
                    Some(t) => t
                        .taproot_hash_ty()
                        .map_err(|e| SignError::Invalid(format!("input {i}: {e}")))?,
                };
                let acp = matches!(
                    ty,
                    TapSighashType::AllPlusAnyoneCanPay
                        | TapSighashType::NonePlusAnyoneCanPay
                        | TapSighashType::SinglePlusAnyoneCanPay
                );
                let prevouts = if acp {
                    Prevouts::One(i, utxos[i].clone())
                } else {
                    Prevouts::All(&utxos)
                };
                let hash = cache
                    .taproot_key_spend_signature_hash(i, &prevouts, ty)
                    .map_err(|e| SignError::Invalid(format!("input {i}: {e}")))?;
                let signature = secp.sign_schnorr(&Message::from(hash), &pair);
                psbt.inputs[i].tap_key_sig = Some(taproot::Signature {
                    signature,
                    sighash_type: ty,
                });
                any = true;
            }
        } else if !ecdsa.is_empty() {
            let (msg, ty) = psbt
                .sighash_ecdsa(i, &mut cache)
                .map_err(|e| SignError::Invalid(format!("input {i}: {e}")))?;
            for (pk, sk) in ecdsa {
                let sig = ecdsa::Signature {
                    signature: secp.sign_ecdsa(&msg, &sk.inner),
                    sighash_type: ty,
                };
                psbt.inputs[i]
                    .partial_sigs
                    .insert(bitcoin::PublicKey::new(pk), sig);
            }
            any = true;
        }
        if any {
            signed.push(i as u32);
        }
    }
    let mut not_final = Vec::new();
    let mut tx = None;
    if finalize {
        for i in 0..psbt.inputs.len() {
            let spk = spent(&psbt, i).map(|o| o.script_pubkey.clone());
            let done = spk.is_some_and(|spk| finalize_input(&mut psbt.inputs[i], &spk));
            if !done {
                not_final.push(i as u32);
            }
        }
        if not_final.is_empty() {
            tx = Some(psbt.clone().extract_tx_unchecked_fee_rate());
        }
    }
    Ok(Signed {
        psbt,
        signed,
        fee,
        tx,
        not_final,
    })
}

/// One ECDSA signature to make: the derivation's public key and our key.
type EcdsaJob = (bitcoin::secp256k1::PublicKey, PrivateKey);

fn lie(i: usize, (fp, path): &KeySource) -> SignError {
    SignError::Invalid(format!(
        "input {i}: the key origin {fp}/{path} is ours but its public key is not the one it \
         derives"
    ))
}

/// The signer's check of an input of ours: the script it spends is the script of the key we
/// would sign with (BIP174: a signer must check that the UTXO's script is the one its key
/// and scripts make), else a signature could be valid for nothing, or for something else.
/// P2WPKH, P2SH-P2WPKH and P2PKH: the key's own script; P2TR: the output of our internal key
/// tweaked with the input's merkle root; a script (P2WSH, P2SH): our key is one of its pushes.
/// An input of ours that cannot be signed is refused with the reason, never skipped.
fn check_script_is_ours(
    input: &Input,
    i: usize,
    spk: &Script,
    ecdsa: &[EcdsaJob],
    tap_ours: bool,
    schnorr: Option<Keypair>,
) -> Result<(), SignError> {
    let bad = |why: &str| Err(SignError::Invalid(format!("input {i}: {why}")));
    if spk.is_p2tr() {
        let Some(pair) = schnorr else {
            return if input.tap_internal_key.is_none() && tap_ours {
                bad("a Taproot input of ours without its internal key \
                     (PSBT_IN_TAP_INTERNAL_KEY, BIP371): it cannot be signed")
            } else if tap_ours {
                bad(
                    "its internal key is not the key of our Taproot key origin: it cannot be \
                     signed by key path",
                )
            } else {
                bad("a Taproot output with only an ECDSA derivation of ours \
                     (PSBT_IN_BIP32_DERIVATION): a Taproot key origin \
                     (PSBT_IN_TAP_BIP32_DERIVATION) is needed to sign it")
            };
        };
        let output = pair.x_only_public_key().0.dangerous_assume_tweaked();
        if ScriptBuf::new_p2tr_tweaked(output) != *spk {
            return bad(
                "its UTXO's script is not the Taproot output of the key its key origin \
                        names (tweaked with its merkle root): refused",
            );
        }
        return Ok(());
    }
    if ecdsa.is_empty() {
        return bad("a Taproot key origin of ours on an output that is not Taproot: refused");
    }
    let nested = |rs: &Script| rs.is_p2wpkh() || rs.is_p2wsh();
    for (pk, _) in ecdsa {
        let key = bitcoin::PublicKey::new(*pk);
        let wpkh = CompressedPublicKey(*pk).wpubkey_hash();
        let ok = if spk.is_p2wpkh() {
            *spk == ScriptBuf::new_p2wpkh(&wpkh)
        } else if spk.is_p2pkh() {
            *spk == ScriptBuf::new_p2pkh(&key.pubkey_hash())
        } else if spk.is_p2wsh() {
            match &input.witness_script {
                Some(ws) => pushes(ws, &key),
                None => return bad("a P2WSH input of ours without its witnessScript"),
            }
        } else if spk.is_p2sh() {
            match &input.redeem_script {
                Some(rs) if rs.is_p2wpkh() => *rs == ScriptBuf::new_p2wpkh(&wpkh),
                Some(rs) if rs.is_p2wsh() => match &input.witness_script {
                    Some(ws) => pushes(ws, &key),
                    None => return bad("a P2SH-P2WSH input of ours without its witnessScript"),
                },
                Some(rs) if !nested(rs) => pushes(rs, &key),
                _ => return bad("a P2SH input of ours without its redeemScript"),
            }
        } else {
            pushes(spk, &key)
        };
        if !ok {
            return bad(
                "its UTXO's script is not the script of the key its derivation names \
                        (witness_utxo or non_witness_utxo lies about the output): refused",
            );
        }
    }
    Ok(())
}

/// Whether `script` pushes `key` (compressed or not, as the derivation gives it).
fn pushes(script: &Script, key: &bitcoin::PublicKey) -> bool {
    let bytes = key.to_bytes();
    script.instructions().any(|ins| {
        matches!(ins, Ok(bitcoin::script::Instruction::PushBytes(p)) if p.as_bytes() == bytes)
    })
}

/// The output an input spends, from its UTXO fields.
fn spent(psbt: &Psbt, i: usize) -> Option<&TxOut> {
    let input = &psbt.inputs[i];
    if let Some(out) = &input.witness_utxo {
        return Some(out);
    }
    let prevout = psbt.unsigned_tx.input.get(i)?.previous_output;
    input
        .non_witness_utxo
        .as_ref()?
        .output
        .get(prevout.vout as usize)
}

/// The BIP174 signer's checks of input `i` (its UTXO is there and is the one the transaction
/// spends, its scripts match), refusing the PSBT if one fails, whoever's input it is. A witness
/// UTXO for a non-witness input is refused only if the input is `ours` (we would make a
/// non-witness signature from it); someone else's may carry one, since Taproot sighashes need
/// every input's amount and script. Returns the output the input spends.
fn check_input(psbt: &Psbt, i: usize, ours: bool) -> Result<TxOut, SignError> {
    let bad = |why: String| SignError::Invalid(format!("input {i}: {why}"));
    let input = &psbt.inputs[i];
    let prevout = psbt
        .unsigned_tx
        .input
        .get(i)
        .ok_or_else(|| bad("no such input in the transaction".into()))?
        .previous_output;
    let from_tx = match &input.non_witness_utxo {
        Some(prev) => {
            if prev.compute_txid() != prevout.txid {
                return Err(bad(
                    "its non-witness UTXO is not the transaction it spends".into()
                ));
            }
            Some(
                prev.output
                    .get(prevout.vout as usize)
                    .ok_or_else(|| bad(format!("output {} is not in its UTXO", prevout.vout)))?
                    .clone(),
            )
        }
        None => None,
    };
    let utxo = match (&input.witness_utxo, from_tx) {
        (Some(w), Some(t)) if *w != t => {
            return Err(bad("its witness UTXO and non-witness UTXO differ".into()))
        }
        (_, Some(t)) => t,
        (Some(w), None) => {
            if ours && !is_witness(&w.script_pubkey, input) {
                return Err(bad("a witness UTXO is given for a non-witness input".into()));
            }
            w.clone()
        }
        (None, None) => {
            return Err(bad(
                "no UTXO (witness_utxo or non_witness_utxo): the fee cannot be known".into(),
            ))
        }
    };
    let spk = &utxo.script_pubkey;
    let program = if spk.is_p2sh() {
        match &input.redeem_script {
            Some(rs) if ScriptBuf::new_p2sh(&rs.script_hash()) != *spk => {
                return Err(bad(
                    "its redeemScript does not match the scriptPubKey".into()
                ))
            }
            Some(rs) => rs.clone(),
            None => spk.clone(),
        }
    } else {
        spk.clone()
    };
    if let Some(ws) = &input.witness_script {
        if program.is_p2wsh() && ScriptBuf::new_p2wsh(&ws.wscript_hash()) != program {
            return Err(bad("its witnessScript does not match".into()));
        }
    }
    Ok(utxo)
}

/// Whether `spk` (or the redeem script of a P2SH) is a witness program.
fn is_witness(spk: &Script, input: &Input) -> bool {
    spk.is_witness_program()
        || (spk.is_p2sh()
            && input
                .redeem_script
                .as_ref()
                .is_some_and(|rs| rs.is_witness_program()))
}

/// Finalizes input `input` spending `spk` if it is single-key (P2WPKH, P2SH-P2WPKH, P2TR key
/// path) and signed; returns whether it is final.
fn finalize_input(input: &mut Input, spk: &Script) -> bool {
    if input.final_script_sig.is_some() || input.final_script_witness.is_some() {
        return true;
    }
    if spk.is_p2tr() {
        let Some(sig) = input.tap_key_sig else {
            return false;
        };
        input.final_script_witness = Some(Witness::from_slice(&[sig.to_vec()]));
        clear_after_finalizing(input);
        return true;
    }
    let nested = spk.is_p2sh()
        && input
            .redeem_script
            .as_ref()
            .is_some_and(|rs| rs.is_p2wpkh());
    if !(spk.is_p2wpkh() || nested) || input.partial_sigs.len() != 1 {
        return false;
    }
    let Some((pk, sig)) = input.partial_sigs.iter().next() else {
        return false;
    };
    let Ok(cpk) = CompressedPublicKey::try_from(*pk) else {
        return false;
    };
    let program = ScriptBuf::new_p2wpkh(&cpk.wpubkey_hash());
    let expected = if nested {
        input.redeem_script.clone().unwrap_or_default()
    } else {
        spk.to_owned()
    };
    if program != expected {
        return false;
    }
    input.final_script_witness = Some(Witness::from_slice(&[sig.to_vec(), pk.to_bytes()]));
    if nested {
        let Ok(push) = <&bitcoin::script::PushBytes>::try_from(expected.as_bytes()) else {
            return false;
        };
        input.final_script_sig = Some(
            bitcoin::script::Builder::new()
                .push_slice(push)
                .into_script(),
        );
    }
    clear_after_finalizing(input);
    true
}

/// BIP174 finalizer: only the UTXOs, the final fields and unknown pairs stay.
fn clear_after_finalizing(input: &mut Input) {
    input.partial_sigs.clear();
    input.sighash_type = None;
    input.redeem_script = None;
    input.witness_script = None;
    input.bip32_derivation.clear();
    input.tap_key_sig = None;
    input.tap_script_sigs.clear();
    input.tap_scripts.clear();
    input.tap_key_origins.clear();
    input.tap_internal_key = None;
    input.tap_merkle_root = None;
}

#[cfg(test)]
mod tests;
