//! BOLT-8 (Brontide): the Noise_XK handshake for both roles and the encrypted, framed transport
//! with key rotation; also the Brontozaur framing (same handshake, 3-byte little-endian length).
//! Sans-I/O: bytes in, bytes out (BOLT-8; Brontozaur framing as in LNPBP-18).
//!
//! The handshake is a chain of states, each holding only what is valid there; every transition
//! consumes the previous state:
//!
//! ```text
//! initiator: Initiator::new ─act_one()─> AwaitingActTwo ─act_two(50 B)─> (act 3, Transport)
//! responder: Responder::new ─act_one(50 B)─> (act 2, AwaitingActThree) ─act_three(66 B)─> Transport
//! ```
//!
//! Every failure (short read, bad version, bad key, bad MAC) is a [`HandshakeError`]; the spec
//! says to close the connection without sending anything.

use bitcoin::secp256k1::{ecdh::SharedSecret, PublicKey, Secp256k1, SecretKey};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use std::fmt;

/// Length of act one and act two.
pub const ACT_ONE_LEN: usize = 50;
/// Length of act two.
pub const ACT_TWO_LEN: usize = 50;
/// Length of act three.
pub const ACT_THREE_LEN: usize = 66;
/// Poly1305 tag length.
pub const MAC_LEN: usize = 16;
/// A key's nonce at which it rotates (every 500 messages: 2 nonces a message).
pub const ROTATE_AT: u64 = 1000;

const PROTOCOL_NAME: &[u8] = b"Noise_XK_secp256k1_ChaChaPoly_SHA256";
const PROLOGUE: &[u8] = b"lightning";

/// How messages are framed after the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// BOLT-8: 2-byte big-endian length, messages up to 65,535 bytes.
    Brontide,
    /// Brontozaur (rust-internet2): 3-byte little-endian length, messages up to 16,777,215 bytes.
    Brontozaur,
}

impl Framing {
    /// Bytes of the length field.
    pub fn len_bytes(self) -> usize {
        match self {
            Framing::Brontide => 2,
            Framing::Brontozaur => 3,
        }
    }

    /// Bytes of the encrypted length header (length field + MAC).
    pub fn header_len(self) -> usize {
        self.len_bytes() + MAC_LEN
    }

    /// Largest message.
    pub fn max_message(self) -> usize {
        match self {
            Framing::Brontide => crate::wire::limits::BOLT8_MAX_MESSAGE,
            Framing::Brontozaur => crate::wire::limits::BRONTOZAUR_MAX_MESSAGE,
        }
    }

    fn encode_len(self, len: usize, out: &mut [u8]) {
        match self {
            Framing::Brontide => out.copy_from_slice(&(len as u16).to_be_bytes()),
            Framing::Brontozaur => out.copy_from_slice(&(len as u32).to_le_bytes()[..3]),
        }
    }

    fn decode_len(self, b: &[u8]) -> usize {
        match self {
            Framing::Brontide => u16::from_be_bytes([b[0], b[1]]) as usize,
            Framing::Brontozaur => u32::from_le_bytes([b[0], b[1], b[2], 0]) as usize,
        }
    }
}

/// Why a handshake failed. In every case the connection is closed without a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// The act was not of its exact length.
    ShortRead {
        /// Act number (1, 2 or 3).
        act: u8,
        /// Its length.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// The version byte was not 0.
    BadVersion {
        /// Act number.
        act: u8,
        /// The version byte.
        version: u8,
    },
    /// A public key did not parse.
    BadKey {
        /// Act number.
        act: u8,
    },
    /// A MAC did not verify.
    BadMac {
        /// Act number.
        act: u8,
    },
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::ShortRead { act, expected, got } => {
                write!(f, "act {act}: expected {expected} bytes, got {got}")
            }
            HandshakeError::BadVersion { act, version } => {
                write!(f, "act {act}: unknown handshake version {version}")
            }
            HandshakeError::BadKey { act } => write!(f, "act {act}: invalid public key"),
            HandshakeError::BadMac { act } => write!(f, "act {act}: MAC check failed"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Why an encrypted message could not be read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// A MAC did not verify: the stream is corrupt or forged; disconnect.
    BadMac,
    /// A message above the framing's maximum was given to encrypt.
    TooLarge(usize),
    /// The peer announced a message longer than our receive limit (refused on the decrypted
    /// length, before its body is read).
    TooLong {
        /// The length announced.
        len: usize,
        /// Our limit.
        max: usize,
    },
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::BadMac => f.write_str("MAC check failed"),
            TransportError::TooLarge(n) => write!(f, "message of {n} bytes is too large"),
            TransportError::TooLong { len, max } => {
                write!(
                    f,
                    "the peer announced a message of {len} bytes (we take {max})"
                )
            }
        }
    }
}

impl std::error::Error for TransportError {}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn hkdf2(salt: &[u8; 32], ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    let mut okm = [0u8; 64];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(&[], &mut okm)
        .expect("64 bytes is a valid HKDF-SHA256 output length");
    let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
    a.copy_from_slice(&okm[..32]);
    b.copy_from_slice(&okm[32..]);
    (a, b)
}

fn nonce(n: u64) -> Nonce {
    let mut b = [0u8; 12];
    b[4..].copy_from_slice(&n.to_le_bytes());
    Nonce::from(b)
}

/// Encrypts `buf` in place and returns its tag.
fn seal(key: &[u8; 32], n: u64, ad: &[u8], buf: &mut [u8]) -> Tag {
    ChaCha20Poly1305::new(key.into())
        .encrypt_in_place_detached(&nonce(n), ad, buf)
        .expect("ChaCha20-Poly1305 takes any buffer below 256 GiB")
}

/// Decrypts `buf` in place, checking `tag`.
fn open(key: &[u8; 32], n: u64, ad: &[u8], buf: &mut [u8], tag: &[u8]) -> Result<(), ()> {
    ChaCha20Poly1305::new(key.into())
        .decrypt_in_place_detached(&nonce(n), ad, buf, Tag::from_slice(tag))
        .map_err(|_| ())
}

fn ecdh(sk: &SecretKey, pk: &PublicKey) -> [u8; 32] {
    // libsecp256k1's default ECDH hash is SHA256(compressed point): BOLT-8's ECDH.
    SharedSecret::new(pk, sk).secret_bytes()
}

/// The Noise symmetric state: chaining key and handshake hash.
#[derive(Clone)]
struct Symmetric {
    ck: [u8; 32],
    h: [u8; 32],
}

impl Symmetric {
    fn new(responder_static: &PublicKey) -> Symmetric {
        let ck = sha256(&[PROTOCOL_NAME]);
        let h = sha256(&[&ck, PROLOGUE]);
        let h = sha256(&[&h, &responder_static.serialize()]);
        Symmetric { ck, h }
    }

    fn mix_hash(&mut self, data: &[u8]) {
        self.h = sha256(&[&self.h, data]);
    }

    /// `ck, temp_k = HKDF(ck, ss)`.
    fn mix_key(&mut self, ss: &[u8; 32]) -> [u8; 32] {
        let (ck, k) = hkdf2(&self.ck, ss);
        self.ck = ck;
        k
    }
}

/// Checks an act's length and version; returns it.
fn check_act(act: u8, input: &[u8], len: usize) -> Result<&[u8], HandshakeError> {
    if input.len() != len {
        return Err(HandshakeError::ShortRead {
            act,
            expected: len,
            got: input.len(),
        });
    }
    if input[0] != 0 {
        return Err(HandshakeError::BadVersion {
            act,
            version: input[0],
        });
    }
    Ok(&input[1..])
}

/// Reads an ephemeral-key act (1 or 2): `0 ‖ e.pub(33) ‖ tag(16)`; mixes it into `sym` with
/// `our_key` and returns the remote ephemeral key and the act's temporary key.
fn read_key_act(
    act: u8,
    input: &[u8],
    sym: &mut Symmetric,
    our_key: &SecretKey,
) -> Result<(PublicKey, [u8; 32]), HandshakeError> {
    let body = check_act(act, input, ACT_ONE_LEN)?;
    let re = PublicKey::from_slice(&body[..33]).map_err(|_| HandshakeError::BadKey { act })?;
    sym.mix_hash(&re.serialize());
    let temp = sym.mix_key(&ecdh(our_key, &re));
    open(&temp, 0, &sym.h, &mut [], &body[33..]).map_err(|_| HandshakeError::BadMac { act })?;
    sym.mix_hash(&body[33..]);
    Ok((re, temp))
}

/// Writes an ephemeral-key act: `0 ‖ e.pub ‖ tag`, with `ss` the act's shared secret; returns
/// it and the act's temporary key.
fn write_key_act(
    sym: &mut Symmetric,
    e_pub: &PublicKey,
    ss: &[u8; 32],
) -> ([u8; ACT_ONE_LEN], [u8; 32]) {
    let mut out = [0u8; ACT_ONE_LEN];
    out[1..34].copy_from_slice(&e_pub.serialize());
    sym.mix_hash(&out[1..34]);
    let temp = sym.mix_key(ss);
    let tag = seal(&temp, 0, &sym.h, &mut []);
    out[34..].copy_from_slice(&tag);
    sym.mix_hash(&out[34..]);
    (out, temp)
}

/// Initiator, before act one.
pub struct Initiator {
    ls: SecretKey,
    e: SecretKey,
    rs: PublicKey,
    sym: Symmetric,
}

/// Initiator, after act one, waiting for act two.
pub struct AwaitingActTwo {
    ls: SecretKey,
    e: SecretKey,
    sym: Symmetric,
    framing: Framing,
}

impl Initiator {
    /// Starts a handshake with the node whose static key is `rs`; `e` is a fresh random
    /// ephemeral key (passed in so that the clock and randomness stay outside).
    pub fn new(ls: SecretKey, rs: PublicKey, e: SecretKey) -> Initiator {
        Initiator {
            ls,
            e,
            sym: Symmetric::new(&rs),
            rs,
        }
    }

    /// Act one: the 50 bytes to send.
    pub fn act_one(mut self, framing: Framing) -> ([u8; ACT_ONE_LEN], AwaitingActTwo) {
        let secp = Secp256k1::signing_only();
        let e_pub = PublicKey::from_secret_key(&secp, &self.e);
        let ss = ecdh(&self.e, &self.rs);
        let (act, _) = write_key_act(&mut self.sym, &e_pub, &ss);
        let next = AwaitingActTwo {
            ls: self.ls,
            e: self.e,
            sym: self.sym,
            framing,
        };
        (act, next)
    }
}

impl AwaitingActTwo {
    /// Reads act two; returns act three (66 bytes to send) and the transport.
    pub fn act_two(
        mut self,
        input: &[u8],
    ) -> Result<([u8; ACT_THREE_LEN], Transport), HandshakeError> {
        let (re, temp_k2) = read_key_act(2, input, &mut self.sym, &self.e)?;
        let secp = Secp256k1::signing_only();
        let mut out = [0u8; ACT_THREE_LEN];
        out[1..34].copy_from_slice(&PublicKey::from_secret_key(&secp, &self.ls).serialize());
        let tag = seal(&temp_k2, 1, &self.sym.h, &mut out[1..34]);
        out[34..50].copy_from_slice(&tag);
        self.sym.mix_hash(&out[1..50]);
        let temp_k3 = self.sym.mix_key(&ecdh(&self.ls, &re));
        let tag = seal(&temp_k3, 0, &self.sym.h, &mut []);
        out[50..].copy_from_slice(&tag);
        let (sk, rk) = hkdf2(&self.sym.ck, &[]);
        Ok((out, Transport::new(self.sym.ck, sk, rk, self.framing)))
    }
}

/// Responder, waiting for act one.
pub struct Responder {
    ls: SecretKey,
    e: SecretKey,
    sym: Symmetric,
    framing: Framing,
}

/// Responder, after act two, waiting for act three.
pub struct AwaitingActThree {
    e: SecretKey,
    sym: Symmetric,
    temp_k2: [u8; 32],
    framing: Framing,
}

impl Responder {
    /// Waits for a handshake to our static key `ls`; `e` is a fresh random ephemeral key.
    pub fn new(ls: SecretKey, e: SecretKey, framing: Framing) -> Responder {
        let secp = Secp256k1::signing_only();
        let sym = Symmetric::new(&PublicKey::from_secret_key(&secp, &ls));
        Responder {
            ls,
            e,
            sym,
            framing,
        }
    }

    /// Reads act one; returns act two (50 bytes to send).
    pub fn act_one(
        mut self,
        input: &[u8],
    ) -> Result<([u8; ACT_TWO_LEN], AwaitingActThree), HandshakeError> {
        let (re, _) = read_key_act(1, input, &mut self.sym, &self.ls)?;
        let secp = Secp256k1::signing_only();
        let e_pub = PublicKey::from_secret_key(&secp, &self.e);
        let mut sym = self.sym;
        let (act, temp_k2) = write_key_act(&mut sym, &e_pub, &ecdh(&self.e, &re));
        Ok((
            act,
            AwaitingActThree {
                e: self.e,
                sym,
                temp_k2,
                framing: self.framing,
            },
        ))
    }
}

impl AwaitingActThree {
    /// Reads act three; returns the transport and the initiator's static key (its node id).
    pub fn act_three(mut self, input: &[u8]) -> Result<(Transport, PublicKey), HandshakeError> {
        let body = check_act(3, input, ACT_THREE_LEN)?;
        let mut rs = [0u8; 33];
        rs.copy_from_slice(&body[..33]);
        open(&self.temp_k2, 1, &self.sym.h, &mut rs, &body[33..49])
            .map_err(|_| HandshakeError::BadMac { act: 3 })?;
        let rs = PublicKey::from_slice(&rs).map_err(|_| HandshakeError::BadKey { act: 3 })?;
        self.sym.mix_hash(&body[..49]);
        let temp_k3 = self.sym.mix_key(&ecdh(&self.e, &rs));
        open(&temp_k3, 0, &self.sym.h, &mut [], &body[49..])
            .map_err(|_| HandshakeError::BadMac { act: 3 })?;
        let (rk, sk) = hkdf2(&self.sym.ck, &[]);
        Ok((Transport::new(self.sym.ck, sk, rk, self.framing), rs))
    }
}

/// One direction of the transport: key, nonce and chaining key for rotation.
#[derive(Clone)]
struct CipherState {
    k: [u8; 32],
    n: u64,
    ck: [u8; 32],
}

impl CipherState {
    /// Encrypts with the current key and nonce, then advances (rotating after use).
    fn seal(&mut self, buf: &mut [u8]) -> Tag {
        let k = self.k;
        seal(&k, self.next(), &[], buf)
    }

    /// Decrypts with the current key and nonce, then advances (rotating after use).
    fn open(&mut self, buf: &mut [u8], tag: &[u8]) -> Result<(), TransportError> {
        let k = self.k;
        open(&k, self.next(), &[], buf, tag).map_err(|_| TransportError::BadMac)
    }

    fn next(&mut self) -> u64 {
        let n = self.n;
        self.n += 1;
        if self.n == ROTATE_AT {
            let (ck, k) = hkdf2(&self.ck, &self.k);
            self.ck = ck;
            self.k = k;
            self.n = 0;
        }
        n
    }
}

/// The encrypted transport after a handshake. [`Transport::encrypt`] frames outgoing messages;
/// [`Transport::decrypt`] is a push decoder over received bytes.
pub struct Transport {
    send: CipherState,
    recv: CipherState,
    framing: Framing,
    /// Length of the body whose header was already decrypted (the header's nonce is spent).
    body_len: Option<usize>,
    /// Longest message we accept (the framing's maximum unless lowered).
    max_receive: usize,
}

impl Transport {
    fn new(ck: [u8; 32], sk: [u8; 32], rk: [u8; 32], framing: Framing) -> Transport {
        Transport {
            send: CipherState { k: sk, n: 0, ck },
            recv: CipherState { k: rk, n: 0, ck },
            framing,
            body_len: None,
            max_receive: framing.max_message(),
        }
    }

    /// Lowers the longest message accepted: a longer one is refused on its decrypted length,
    /// before its body is waited for (Brontozaur allows 16 MiB; a node need not buffer that
    /// for a stranger).
    pub fn set_max_receive(&mut self, max: usize) {
        self.max_receive = max.min(self.framing.max_message());
    }

    /// The framing in use.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Encrypts one message: `enc(len) ‖ enc(msg)`, appended to `out`.
    pub fn encrypt_into(&mut self, msg: &[u8], out: &mut Vec<u8>) -> Result<(), TransportError> {
        if msg.len() > self.framing.max_message() {
            return Err(TransportError::TooLarge(msg.len()));
        }
        let hl = self.framing.len_bytes();
        let start = out.len();
        out.resize(start + hl + MAC_LEN + msg.len() + MAC_LEN, 0);
        let packet = &mut out[start..];
        self.framing.encode_len(msg.len(), &mut packet[..hl]);
        let tag = self.send.seal(&mut packet[..hl]);
        packet[hl..hl + MAC_LEN].copy_from_slice(&tag);
        let body = &mut packet[hl + MAC_LEN..];
        let (text, mac) = body.split_at_mut(msg.len());
        text.copy_from_slice(msg);
        let tag = self.send.seal(text);
        mac.copy_from_slice(&tag);
        Ok(())
    }

    /// Encrypts one message into a new buffer.
    pub fn encrypt(&mut self, msg: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut out = Vec::with_capacity(msg.len() + self.framing.header_len() + MAC_LEN);
        self.encrypt_into(msg, &mut out)?;
        Ok(out)
    }

    /// Bytes needed before the next step of decoding can run (header, or body + MAC).
    pub fn needed(&self) -> usize {
        match self.body_len {
            None => self.framing.header_len(),
            Some(len) => len + MAC_LEN,
        }
    }

    /// Push decoder: takes a complete message from the front of `buf` if there is one
    /// (`Ok(None)` = need more bytes). The declared length is bounded by the framing (u16 or
    /// u24), so at most `max_message + 16` bytes are ever waited for.
    pub fn decrypt(&mut self, buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, TransportError> {
        if self.body_len.is_none() {
            let hl = self.framing.header_len();
            if buf.len() < hl {
                return Ok(None);
            }
            let lb = self.framing.len_bytes();
            let mut len = [0u8; 3];
            len[..lb].copy_from_slice(&buf[..lb]);
            self.recv.open(&mut len[..lb], &buf[lb..hl])?;
            buf.drain(..hl);
            let n = self.framing.decode_len(&len[..lb]);
            if n > self.max_receive {
                return Err(TransportError::TooLong {
                    len: n,
                    max: self.max_receive,
                });
            }
            self.body_len = Some(n);
        }
        let len = self.body_len.expect("set above");
        if buf.len() < len + MAC_LEN {
            return Ok(None);
        }
        let mut msg: Vec<u8> = buf.drain(..len + MAC_LEN).collect();
        let (text, mac) = msg.split_at_mut(len);
        self.recv.open(text, mac)?;
        msg.truncate(len);
        self.body_len = None;
        Ok(Some(msg))
    }
}

#[cfg(test)]
mod tests {
    //! Vectors of BOLT-8 Appendix A (lightning/bolts `08-transport.md`) and the derived
    //! Brontozaur vectors (LNPBP-18 framing: a 3-byte little-endian length).
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_slice(&[byte; 32]).unwrap()
    }

    const RS_PUB: &str = "028d7500dd4c12685d1f568b4c2b5048e8534b873319f3a8daa612b469132ec7f7";
    const LS_PUB: &str = "034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa";
    const ACT1: &str = "00036360e856310ce5d294e8be33fc807077dc56ac80d95d9cd4ddbd21325eff73f70df6086551151f58b8afe6c195782c6a";
    const ACT2: &str = "0002466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f276e2470b93aac583c9ef6eafca3f730ae";
    const ACT3: &str = "00b9e3a702e93e3a9948c2ed6e5fd7590a6e1c3a0344cfc9d5b57357049aa22355361aa02e55a8fc28fef5bd6d71ad0c38228dc68b1c466263b47fdf31e560e139ba";
    const SK: &str = "969ab31b4d288cedf6218839b27a3e2140827047f2c0f01bf5c04435d43511a9";
    const RK: &str = "bb9020b8965f4df047e07f955f3c4b88418984aadc5cdb35096b9ea8fa5c3442";
    const CK: &str = "919219dbb2920afa8db80f9a51787a840bcf111ed8d588caf9ab4be716e42b01";

    fn initiator(framing: Framing) -> AwaitingActTwo {
        let rs = PublicKey::from_slice(&unhex(RS_PUB)).unwrap();
        let (act1, next) = Initiator::new(key(0x11), rs, key(0x12)).act_one(framing);
        assert_eq!(hex(&act1), ACT1);
        next
    }

    fn responder(framing: Framing) -> AwaitingActThree {
        let (act2, next) = Responder::new(key(0x21), key(0x22), framing)
            .act_one(&unhex(ACT1))
            .unwrap();
        assert_eq!(hex(&act2), ACT2);
        next
    }

    #[test]
    fn initiator_successful_handshake() {
        let (act3, t) = initiator(Framing::Brontide).act_two(&unhex(ACT2)).unwrap();
        assert_eq!(hex(&act3), ACT3);
        assert_eq!(hex(&t.send.k), SK);
        assert_eq!(hex(&t.recv.k), RK);
        assert_eq!(hex(&t.send.ck), CK);
    }

    #[test]
    fn responder_successful_handshake() {
        let (t, rs) = responder(Framing::Brontide)
            .act_three(&unhex(ACT3))
            .unwrap();
        assert_eq!(hex(&rs.serialize()), LS_PUB);
        // Responder: rk and sk swapped.
        assert_eq!(hex(&t.recv.k), SK);
        assert_eq!(hex(&t.send.k), RK);
        assert_eq!(hex(&t.recv.ck), CK);
    }

    #[test]
    fn initiator_act_two_failures() {
        let good = unhex(ACT2);
        let run = |input: &[u8]| {
            initiator(Framing::Brontide)
                .act_two(input)
                .map(|_| ())
                .unwrap_err()
        };
        assert_eq!(
            run(&good[..49]),
            HandshakeError::ShortRead {
                act: 2,
                expected: 50,
                got: 49
            }
        );
        let mut v = good.clone();
        v[0] = 1;
        assert_eq!(run(&v), HandshakeError::BadVersion { act: 2, version: 1 });
        let mut v = good.clone();
        v[1] = 4;
        assert_eq!(run(&v), HandshakeError::BadKey { act: 2 });
        let mut v = good.clone();
        v[49] ^= 1; // ...730ae -> ...730af
        assert_eq!(run(&v), HandshakeError::BadMac { act: 2 });
    }

    #[test]
    fn responder_act_one_failures() {
        let run = |s: &str| {
            Responder::new(key(0x21), key(0x22), Framing::Brontide)
                .act_one(&unhex(s))
                .map(|_| ())
                .unwrap_err()
        };
        // The four inputs of the appendix, verbatim.
        assert_eq!(
            run("00036360e856310ce5d294e8be33fc807077dc56ac80d95d9cd4ddbd21325eff73f70df6086551151f58b8afe6c195782c"),
            HandshakeError::ShortRead { act: 1, expected: 50, got: 49 }
        );
        assert_eq!(
            run("01036360e856310ce5d294e8be33fc807077dc56ac80d95d9cd4ddbd21325eff73f70df6086551151f58b8afe6c195782c6a"),
            HandshakeError::BadVersion { act: 1, version: 1 }
        );
        assert_eq!(
            run("00046360e856310ce5d294e8be33fc807077dc56ac80d95d9cd4ddbd21325eff73f70df6086551151f58b8afe6c195782c6a"),
            HandshakeError::BadKey { act: 1 }
        );
        assert_eq!(
            run("00036360e856310ce5d294e8be33fc807077dc56ac80d95d9cd4ddbd21325eff73f70df6086551151f58b8afe6c195782c6b"),
            HandshakeError::BadMac { act: 1 }
        );
    }

    #[test]
    fn responder_act_three_failures() {
        let run = |s: &str| {
            responder(Framing::Brontide)
                .act_three(&unhex(s))
                .map(|_| ())
                .unwrap_err()
        };
        // The five inputs of the appendix, verbatim.
        assert_eq!(
            run("01b9e3a702e93e3a9948c2ed6e5fd7590a6e1c3a0344cfc9d5b57357049aa22355361aa02e55a8fc28fef5bd6d71ad0c38228dc68b1c466263b47fdf31e560e139ba"),
            HandshakeError::BadVersion { act: 3, version: 1 }
        );
        assert_eq!(
            run("00b9e3a702e93e3a9948c2ed6e5fd7590a6e1c3a0344cfc9d5b57357049aa22355361aa02e55a8fc28fef5bd6d71ad0c38228dc68b1c466263b47fdf31e560e139"),
            HandshakeError::ShortRead { act: 3, expected: 66, got: 65 }
        );
        assert_eq!(
            run("00c9e3a702e93e3a9948c2ed6e5fd7590a6e1c3a0344cfc9d5b57357049aa22355361aa02e55a8fc28fef5bd6d71ad0c38228dc68b1c466263b47fdf31e560e139ba"),
            HandshakeError::BadMac { act: 3 }
        );
        assert_eq!(
            run("00bfe3a702e93e3a9948c2ed6e5fd7590a6e1c3a0344cfc9d5b57357049aa2235536ad09a8ee351870c2bb7f78b754a26c6cef79a98d25139c856d7efd252c2ae73c"),
            HandshakeError::BadKey { act: 3 }
        );
        assert_eq!(
            run("00b9e3a702e93e3a9948c2ed6e5fd7590a6e1c3a0344cfc9d5b57357049aa22355361aa02e55a8fc28fef5bd6d71ad0c38228dc68b1c466263b47fdf31e560e139bb"),
            HandshakeError::BadMac { act: 3 }
        );
    }

    fn message_test(framing: Framing, expected: &[(usize, &str)]) {
        let (_, mut init) = initiator(framing).act_two(&unhex(ACT2)).unwrap();
        let (mut resp, _) = responder(framing).act_three(&unhex(ACT3)).unwrap();
        let mut wire = Vec::new();
        for i in 0..1002 {
            let packet = init.encrypt(b"hello").unwrap();
            if let Some((_, want)) = expected.iter().find(|(n, _)| *n == i) {
                assert_eq!(hex(&packet), *want, "{framing:?} message {i}");
            }
            wire.extend_from_slice(&packet);
            // The responder decrypts every message, across both key rotations.
            assert_eq!(
                resp.decrypt(&mut wire).unwrap().as_deref(),
                Some(&b"hello"[..])
            );
            assert!(wire.is_empty());
        }
    }

    #[test]
    fn brontide_message_vectors_with_key_rotation() {
        message_test(
            Framing::Brontide,
            &[
                (0, "cf2b30ddf0cf3f80e7c35a6e6730b59fe802473180f396d88a8fb0db8cbcf25d2f214cf9ea1d95"),
                (1, "72887022101f0b6753e0c7de21657d35a4cb2a1f5cde2650528bbc8f837d0f0d7ad833b1a256a1"),
                (500, "178cb9d7387190fa34db9c2d50027d21793c9bc2d40b1e14dcf30ebeeeb220f48364f7a4c68bf8"),
                (501, "1b186c57d44eb6de4c057c49940d79bb838a145cb528d6e8fd26dbe50a60ca2c104b56b60e45bd"),
                (1000, "4a2f3cc3b5e78ddb83dcb426d9863d9d9a723b0337c89dd0b005d89f8d3c05c52b76b29b740f09"),
                (1001, "2ecd8c8a5629d0d02ab457a0fdd0f7b90a192cd46be5ecb6ca570bfc5e268338b1a16cf4ef2d36"),
            ],
        );
    }

    #[test]
    fn brontozaur_message_vectors() {
        message_test(
            Framing::Brontozaur,
            &[
                (0, "ca2e580692e08268762d0f338644810ffb1a42473180f396d88a8fb0db8cbcf25d2f214cf9ea1d95"),
                (1, "778d4566c1e1bcae1fba28d44e69c7f87346032a1f5cde2650528bbc8f837d0f0d7ad833b1a256a1"),
                (500, "128902aaa681698acc46878136ad14d4f3340b9bc2d40b1e14dcf30ebeeeb220f48364f7a4c68bf8"),
                (1000, "4f2aa8f9d64589085be4ab74d6c5fcfb35bd0e3b0337c89dd0b005d89f8d3c05c52b76b29b740f09"),
            ],
        );
    }

    #[test]
    fn push_decoder_handles_split_input_and_rejects_bad_macs() {
        let (_, mut init) = initiator(Framing::Brontide).act_two(&unhex(ACT2)).unwrap();
        let (mut resp, _) = responder(Framing::Brontide)
            .act_three(&unhex(ACT3))
            .unwrap();
        let packet = init.encrypt(&[7u8; 300]).unwrap();
        let mut wire = Vec::new();
        for (i, b) in packet.iter().enumerate() {
            wire.push(*b);
            let got = resp.decrypt(&mut wire).unwrap();
            assert_eq!(got.is_some(), i == packet.len() - 1, "byte {i}");
        }
        assert!(init.encrypt(&vec![0; 65_536]).is_err(), "above 65535 bytes");
        let mut bad = init.encrypt(b"x").unwrap();
        bad[20] ^= 0x80; // inside the body
        assert_eq!(resp.decrypt(&mut bad), Err(TransportError::BadMac));
        let (_, mut init) = initiator(Framing::Brontide).act_two(&unhex(ACT2)).unwrap();
        let (mut resp, _) = responder(Framing::Brontide)
            .act_three(&unhex(ACT3))
            .unwrap();
        let mut bad = init.encrypt(b"x").unwrap();
        bad[0] ^= 1; // inside the length header
        assert_eq!(resp.decrypt(&mut bad), Err(TransportError::BadMac));
    }

    #[test]
    fn random_keys_interoperate() {
        let secp = Secp256k1::new();
        let (ls_i, ls_r) = (key(0x31), key(0x32));
        let rs = PublicKey::from_secret_key(&secp, &ls_r);
        let (a1, i) = Initiator::new(ls_i, rs, key(0x33)).act_one(Framing::Brontozaur);
        let (a2, r) = Responder::new(ls_r, key(0x34), Framing::Brontozaur)
            .act_one(&a1)
            .unwrap();
        let (a3, mut ti) = i.act_two(&a2).unwrap();
        let (mut tr, their) = r.act_three(&a3).unwrap();
        assert_eq!(their, PublicKey::from_secret_key(&secp, &ls_i));
        let big = vec![9u8; 100_000];
        let mut wire = ti.encrypt(&big).unwrap();
        assert_eq!(tr.decrypt(&mut wire).unwrap(), Some(big));
        let mut wire = tr.encrypt(b"back").unwrap();
        assert_eq!(
            ti.decrypt(&mut wire).unwrap().as_deref(),
            Some(&b"back"[..])
        );
    }
}
