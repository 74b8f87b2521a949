//! The BP node's signer: a BIP32 master key from a BIP39 mnemonic, its BIP84 (P2WPKH) and BIP86
//! (P2TR key path) accounts, and PSBT signing (BIP174, BIP371) that signs only what is its own.
//!
//! No I/O but the key file ([`keyfile`]); no actix. `actors::bp::signd` serves it on the bus.
//!
//! Secrets stay here: [`Keychain`] has no `Debug` that shows them, no error message carries a
//! key or a word of the mnemonic, and nothing here logs.

pub mod descriptor;
mod example;
pub mod keyfile;
pub mod sign;

use bitcoin::bip32::{ChildNumber, DerivationPath, Fingerprint, Xpriv, Xpub};
use bitcoin::secp256k1::{All, Secp256k1};
use bitcoin::{Address, CompressedPublicKey, Network, ScriptBuf};
use std::fmt;

pub use example::example_psbt;
pub use sign::{sign_psbt, Policy, SignError, Signed};

/// The two account kinds of the signer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountKind {
    /// BIP84: P2WPKH, `m/84'/coin'/0'`.
    Wpkh = 0,
    /// BIP86: P2TR key path, `m/86'/coin'/0'`.
    Tr = 1,
}

impl AccountKind {
    /// Both kinds.
    pub const ALL: [AccountKind; 2] = [AccountKind::Wpkh, AccountKind::Tr];

    /// The BIP purpose (84 or 86).
    pub fn purpose(self) -> u32 {
        match self {
            AccountKind::Wpkh => 84,
            AccountKind::Tr => 86,
        }
    }

    /// `p2wpkh` or `p2tr`.
    pub fn name(self) -> &'static str {
        match self {
            AccountKind::Wpkh => "p2wpkh",
            AccountKind::Tr => "p2tr",
        }
    }

    /// The kind of a wire tag (0 or 1).
    pub fn from_tag(tag: u8) -> Option<AccountKind> {
        match tag {
            0 => Some(AccountKind::Wpkh),
            1 => Some(AccountKind::Tr),
            _ => None,
        }
    }
}

/// One account: its path, xpub and output descriptors (receive `/0/*`, change `/1/*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// P2WPKH or P2TR.
    pub kind: AccountKind,
    /// `m/84'/1'/0'`.
    pub path: DerivationPath,
    /// The account's extended public key.
    pub xpub: Xpub,
    /// `wpkh([fingerprint/84h/1h/0h]tpub…/0/*)#checksum`.
    pub receive: String,
    /// The same with `/1/*`.
    pub change: String,
}

/// An address of an account: chain 0 (receive), at `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressInfo {
    /// The address, for the keychain's network.
    pub address: Address,
    /// Its kind.
    pub kind: AccountKind,
    /// Its index on the receive chain.
    pub index: u32,
    /// Full path from the master key.
    pub path: DerivationPath,
    /// The public key (compressed; for P2TR the internal key is its x coordinate).
    pub pubkey: CompressedPublicKey,
}

impl AddressInfo {
    /// The output script.
    pub fn script(&self) -> ScriptBuf {
        self.address.script_pubkey()
    }
}

/// Why a mnemonic or key file was not accepted (never quoting it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyError(pub String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

/// The master key and what is derived from it, for one network.
pub struct Keychain {
    master: Xpriv,
    fingerprint: Fingerprint,
    network: Network,
    secp: Secp256k1<All>,
    /// The receive and change chains of both accounts, derived once (see [`Keychain::key_at`]).
    chains: Vec<Chain>,
    /// Public keys and Taproot key pairs of paths already used, up to [`MAX_CACHED_KEYS`].
    cache: std::sync::Mutex<KeyCache>,
}

/// Keys derived and multiplied once (a wallet's keys are few and used again: addresses handed
/// out, then their coins signed, often several times).
#[derive(Default)]
struct KeyCache {
    public: std::collections::HashMap<DerivationPath, bitcoin::secp256k1::PublicKey>,
    tweaked: std::collections::HashMap<
        (DerivationPath, Option<bitcoin::taproot::TapNodeHash>),
        (
            bitcoin::secp256k1::Keypair,
            bitcoin::secp256k1::XOnlyPublicKey,
        ),
    >,
}

/// Most public keys (and, apart, Taproot key pairs) the keychain remembers; beyond it they are
/// computed each time. Our own choice: ~100 bytes each, ~10 MB at most.
pub const MAX_CACHED_KEYS: usize = 100_000;

/// One chain of an account (`m/84'/1'/0'/0`): its key and public key, kept so that the key of an
/// address on it costs one HMAC and one scalar addition, no curve multiplication.
struct Chain {
    path: DerivationPath,
    xpriv: Xpriv,
    public: bitcoin::secp256k1::PublicKey,
}

impl fmt::Debug for Keychain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key: only what is public.
        f.debug_struct("Keychain")
            .field("fingerprint", &self.fingerprint)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl Keychain {
    /// The keychain of a BIP39 mnemonic (English words, no passphrase), for `network`.
    pub fn from_mnemonic(words: &str, network: Network) -> Result<Keychain, KeyError> {
        let mnemonic = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, words)
            .map_err(|e| KeyError(format!("not a BIP39 mnemonic: {}", mnemonic_error(&e))))?;
        Keychain::from_seed(&mnemonic.to_seed_normalized(""), network)
    }

    /// The keychain of a BIP32 seed.
    pub fn from_seed(seed: &[u8], network: Network) -> Result<Keychain, KeyError> {
        let master = Xpriv::new_master(network, seed)
            .map_err(|_| KeyError("the seed gives no valid master key".into()))?;
        Ok(Keychain::from_master(master, network))
    }

    /// The keychain of a master key (tests and the BIP174 vectors start from one).
    pub fn from_master(master: Xpriv, network: Network) -> Keychain {
        let secp = Secp256k1::new();
        let fingerprint = master.fingerprint(&secp);
        let mut k = Keychain {
            master,
            fingerprint,
            network,
            secp,
            chains: Vec::new(),
            cache: Default::default(),
        };
        for kind in AccountKind::ALL {
            for chain in 0..2 {
                let path = k
                    .account_path(kind)
                    .child(ChildNumber::from_normal_idx(chain).expect("0 and 1"));
                if let Ok(xpriv) = k.master.derive_priv(&k.secp, &path) {
                    let public = xpriv.private_key.public_key(&k.secp);
                    k.chains.push(Chain {
                        path,
                        xpriv,
                        public,
                    });
                }
            }
        }
        k
    }

    /// A new random 24-word mnemonic (256 bits from the OS's generator).
    pub fn generate_mnemonic() -> String {
        let entropy: [u8; 32] = bitcoin::secp256k1::rand::random();
        bip39::Mnemonic::from_entropy(&entropy)
            .expect("32 bytes are a valid BIP39 entropy length")
            .to_string()
    }

    /// The master key's fingerprint (what PSBT key origins name).
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The BIP44 coin type: 0 on mainnet, 1 on every test network.
    pub fn coin_type(&self) -> u32 {
        if self.network == Network::Bitcoin {
            0
        } else {
            1
        }
    }

    /// `m/purpose'/coin'/0'`.
    pub fn account_path(&self, kind: AccountKind) -> DerivationPath {
        let hardened = |i| ChildNumber::from_hardened_idx(i).expect("below 2^31");
        DerivationPath::from(vec![
            hardened(kind.purpose()),
            hardened(self.coin_type()),
            hardened(0),
        ])
    }

    /// Both accounts.
    pub fn accounts(&self) -> Vec<Account> {
        // An account whose key does not derive (BIP32: probability 2^-127) is left out.
        AccountKind::ALL
            .into_iter()
            .filter_map(|kind| {
                let path = self.account_path(kind);
                let xpub = Xpub::from_priv(&self.secp, &self.derive_checked(&path)?);
                let descriptor =
                    |chain: u32| descriptor::account(kind, self.fingerprint, &path, &xpub, chain);
                Some(Account {
                    kind,
                    receive: descriptor(0),
                    change: descriptor(1),
                    path,
                    xpub,
                })
            })
            .collect()
    }

    /// The receive address of `kind` at `index` (below 2^31).
    pub fn address(&self, kind: AccountKind, index: u32) -> Result<AddressInfo, KeyError> {
        let child = ChildNumber::from_normal_idx(index)
            .map_err(|_| KeyError(format!("index {index} is not below 2^31")))?;
        let path = self
            .account_path(kind)
            .extend([ChildNumber::from_normal_idx(0).expect("0"), child]);
        // From the cached chain key; the public key is cached too, so signing for an address
        // handed out needs no multiplication for it.
        let sk = self.key_at(&path).ok_or_else(|| {
            KeyError(format!(
                "index {index} has no key (an invalid BIP32 child): use the next"
            ))
        })?;
        let pk = self.cached_public(&path, || sk.public_key(&self.secp));
        let pubkey = bitcoin::CompressedPublicKey(pk);
        let address = match kind {
            AccountKind::Wpkh => Address::p2wpkh(&pubkey, self.network),
            AccountKind::Tr => {
                Address::p2tr(&self.secp, pk.x_only_public_key().0, None, self.network)
            }
        };
        Ok(AddressInfo {
            address,
            kind,
            index,
            path,
            pubkey,
        })
    }

    /// The extended private key at `path` from the master, if it derives (it fails with
    /// probability 2^-127: BIP32 skips such a child, and so do we).
    pub(crate) fn derive_checked(&self, path: &DerivationPath) -> Option<Xpriv> {
        self.master.derive_priv(&self.secp, path).ok()
    }

    /// The public key at `path`, computed by `compute` the first time.
    pub(crate) fn cached_public(
        &self,
        path: &DerivationPath,
        compute: impl FnOnce() -> bitcoin::secp256k1::PublicKey,
    ) -> bitcoin::secp256k1::PublicKey {
        if let Some(pk) = self.lock_cache().public.get(path) {
            return *pk;
        }
        let pk = compute();
        let mut c = self.lock_cache();
        if c.public.len() < MAX_CACHED_KEYS {
            c.public.insert(path.clone(), pk);
        }
        pk
    }

    /// The tweaked Taproot key pair at `path` (and its internal key), computed the first time.
    pub(crate) fn cached_tweak(
        &self,
        path: &DerivationPath,
        merkle_root: Option<bitcoin::taproot::TapNodeHash>,
        compute: impl FnOnce() -> (
            bitcoin::secp256k1::Keypair,
            bitcoin::secp256k1::XOnlyPublicKey,
        ),
    ) -> (
        bitcoin::secp256k1::Keypair,
        bitcoin::secp256k1::XOnlyPublicKey,
    ) {
        let key = (path.clone(), merkle_root);
        if let Some(v) = self.lock_cache().tweaked.get(&key) {
            return *v;
        }
        let v = compute();
        let mut c = self.lock_cache();
        if c.tweaked.len() < MAX_CACHED_KEYS {
            c.tweaked.insert(key, v);
        }
        v
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, KeyCache> {
        crate::sync::lock(&self.cache)
    }

    /// The private key at `path` (from the master). An address of an account's chain is derived
    /// from the cached chain key: BIP32's CKDpriv for a normal child is HMAC-SHA512(chain code,
    /// parent public key ‖ index), whose left half is added to the parent key; with the
    /// parent's public key at hand that needs no curve multiplication (bitcoin's
    /// `derive_priv` recomputes every parent's public key, one multiplication per level).
    pub(crate) fn key_at(&self, path: &DerivationPath) -> Option<bitcoin::secp256k1::SecretKey> {
        use bitcoin::hashes::{hmac, sha512, Hash, HashEngine};
        let steps: &[ChildNumber] = path.as_ref();
        if let Some((ChildNumber::Normal { index }, parent)) = steps.split_last() {
            if let Some(c) = self.chains.iter().find(|c| c.path.as_ref() == parent) {
                let mut engine =
                    hmac::HmacEngine::<sha512::Hash>::new(c.xpriv.chain_code.as_bytes());
                engine.input(&c.public.serialize());
                engine.input(&index.to_be_bytes());
                let i = hmac::Hmac::<sha512::Hash>::from_engine(engine).to_byte_array();
                let mut left = [0u8; 32];
                left.copy_from_slice(&i[..32]);
                let tweak = bitcoin::secp256k1::Scalar::from_be_bytes(left).ok()?;
                return c.xpriv.private_key.add_tweak(&tweak).ok();
            }
        }
        Some(self.derive_checked(path)?.private_key)
    }
}

/// A mnemonic error without the words.
fn mnemonic_error(e: &bip39::Error) -> String {
    match e {
        bip39::Error::BadWordCount(n) => format!("{n} words (12, 15, 18, 21 or 24 expected)"),
        bip39::Error::UnknownWord(i) => format!("word {} is not in the English list", i + 1),
        bip39::Error::BadEntropyBitCount(_) => "bad entropy length".into(),
        bip39::Error::InvalidChecksum => "the checksum does not match".into(),
        bip39::Error::AmbiguousLanguages(_) => "ambiguous language".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BIP84 and BIP86 test vectors (mnemonic "abandon … about").
    const ABANDON: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
                           abandon abandon abandon about";

    #[test]
    fn bip84_and_bip86_vectors() {
        let k = Keychain::from_mnemonic(ABANDON, Network::Bitcoin).unwrap();
        let accounts = k.accounts();
        // BIP84 gives the account key as a zpub: the same key with other version bytes.
        let mut zpub = bitcoin::base58::decode_check("zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs").unwrap();
        zpub[..4].copy_from_slice(&[0x04, 0x88, 0xb2, 0x1e]);
        assert_eq!(accounts[0].xpub, Xpub::decode(&zpub).unwrap());
        assert_eq!(
            k.address(AccountKind::Wpkh, 0).unwrap().address.to_string(),
            "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
        );
        assert_eq!(
            k.address(AccountKind::Wpkh, 1).unwrap().address.to_string(),
            "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"
        );
        assert_eq!(accounts[1].xpub.to_string(), "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ");
        assert_eq!(
            k.address(AccountKind::Tr, 0).unwrap().address.to_string(),
            "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"
        );
        assert_eq!(
            k.address(AccountKind::Tr, 1).unwrap().address.to_string(),
            "bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh"
        );
        assert_eq!(k.fingerprint().to_string(), "73c5da0a");
        assert!(format!("{k:?}").contains("73c5da0a"));
        // The cached-chain derivation gives BIP32's keys.
        for path in [
            "m/84'/0'/0'/0/7",
            "m/86'/0'/0'/1/3",
            "m/84'/0'/0'",
            "m/0/1",
            "m/84'/0'/0'/0/5'",
        ] {
            let path: DerivationPath = path.parse().unwrap();
            assert_eq!(
                k.key_at(&path).unwrap(),
                k.derive_checked(&path).unwrap().private_key,
                "{path}"
            );
        }
        assert!(!format!("{k:?}").contains("xprv"));
    }

    #[test]
    fn test_networks_use_coin_type_1_and_bad_mnemonics_are_named_without_words() {
        let k = Keychain::from_mnemonic(ABANDON, Network::Regtest).unwrap();
        assert_eq!(k.account_path(AccountKind::Wpkh).to_string(), "84'/1'/0'");
        assert!(k
            .address(AccountKind::Wpkh, 0)
            .unwrap()
            .address
            .to_string()
            .starts_with("bcrt1q"));
        assert!(k.address(AccountKind::Wpkh, 1 << 31).is_err());
        let e = Keychain::from_mnemonic("abandon zebra", Network::Regtest).unwrap_err();
        assert!(!e.0.contains("abandon") && !e.0.contains("zebra"), "{e}");
        let bad = ABANDON.replace("about", "abandon");
        let e = Keychain::from_mnemonic(&bad, Network::Regtest).unwrap_err();
        assert!(e.0.contains("checksum"), "{e}");
        let words = Keychain::generate_mnemonic();
        assert_eq!(words.split(' ').count(), 24);
        assert!(Keychain::from_mnemonic(&words, Network::Regtest).is_ok());
    }
}
