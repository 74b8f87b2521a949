//! The Bitcoin P2P message stream (v1 transport) as a push decoder over the `bitcoin` crate's
//! `p2p` message types: 24-byte header (magic, command, length, checksum), then the payload.
//!
//! The magic and the declared length are checked on the header alone, before a byte of the
//! payload is waited for or stored (Core: bad magic or a length above 4,000,000 disconnects). A
//! bad checksum or a payload that does not decode drops that message only (Core keeps the peer).

use bitcoin::consensus::encode;
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::p2p::message::{NetworkMessage, RawNetworkMessage};
use bitcoin::p2p::Magic;
use std::fmt;

pub use crate::wire::limits::BTC_MAX_MESSAGE as MAX_MESSAGE;
/// Header length.
pub const HEADER_LEN: usize = 24;
/// The protocol version we speak (the crate's `PROTOCOL_VERSION` constant is stale, 70001).
pub const PROTOCOL_VERSION: u32 = 70_016;
pub use crate::wire::limits::{
    BTC_MAX_ADDR as MAX_ADDR, BTC_MAX_HEADERS as MAX_HEADERS, BTC_MAX_INV as MAX_INV,
};

/// A stream error that ends the connection (nothing after it can be framed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// The magic is not our network's.
    BadMagic([u8; 4]),
    /// The declared payload length is above [`MAX_MESSAGE`].
    TooLarge(usize),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::BadMagic(m) => write!(f, "bad magic {:02x?}", m),
            StreamError::TooLarge(n) => {
                write!(f, "declared payload of {n} bytes is above {MAX_MESSAGE}")
            }
        }
    }
}

impl std::error::Error for StreamError {}

/// One framed message.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// A message that decoded (unknown commands come as `NetworkMessage::Unknown`).
    Message(NetworkMessage),
    /// The checksum did not match: the message is dropped, the peer kept.
    BadChecksum {
        /// Its command.
        command: String,
    },
    /// The checksum matched but the payload did not decode: dropped, peer kept.
    Undecodable {
        /// Its command.
        command: String,
        /// Why.
        reason: String,
    },
}

/// The push decoder and encoder of one connection.
#[derive(Clone, Copy, Debug)]
pub struct Codec {
    magic: Magic,
}

fn command_of(header: &[u8]) -> String {
    let raw = &header[4..16];
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

impl Codec {
    /// A codec for the network with `magic`.
    pub fn new(magic: Magic) -> Codec {
        Codec { magic }
    }

    /// Bytes needed before the next message can be framed (at least 1 once a header is in).
    pub fn needed(&self, buf: &[u8]) -> usize {
        if buf.len() < HEADER_LEN {
            return HEADER_LEN - buf.len();
        }
        let len = u32::from_le_bytes(buf[16..20].try_into().expect("4 bytes")) as usize;
        (HEADER_LEN + len).saturating_sub(buf.len())
    }

    /// Takes one message from the front of `buf` if complete (`Ok(None)`: need more bytes).
    pub fn decode(&self, buf: &mut Vec<u8>) -> Result<Option<Frame>, StreamError> {
        if buf.len() < HEADER_LEN {
            // A wrong magic is known from the first four bytes: no need to wait for more.
            if buf.len() >= 4 && buf[..4] != self.magic.to_bytes() {
                return Err(StreamError::BadMagic(buf[..4].try_into().expect("4 bytes")));
            }
            return Ok(None);
        }
        if buf[..4] != self.magic.to_bytes() {
            return Err(StreamError::BadMagic(buf[..4].try_into().expect("4 bytes")));
        }
        let len = u32::from_le_bytes(buf[16..20].try_into().expect("4 bytes")) as usize;
        if len > MAX_MESSAGE {
            return Err(StreamError::TooLarge(len));
        }
        if buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let command = command_of(&buf[..HEADER_LEN]);
        let checksum = sha256d::Hash::hash(&buf[HEADER_LEN..HEADER_LEN + len]);
        let frame = if checksum[..4] != buf[20..24] {
            Frame::BadChecksum { command }
        } else {
            match encode::deserialize::<RawNetworkMessage>(&buf[..HEADER_LEN + len]) {
                Ok(raw) => Frame::Message(raw.into_payload()),
                Err(e) => Frame::Undecodable {
                    command,
                    reason: e.to_string(),
                },
            }
        };
        buf.drain(..HEADER_LEN + len);
        Ok(Some(frame))
    }

    /// Appends one framed message to `out`.
    pub fn encode(&self, msg: NetworkMessage, out: &mut Vec<u8>) {
        let raw = RawNetworkMessage::new(self.magic, msg);
        out.extend_from_slice(&encode::serialize(&raw));
    }
}

/// Whether a decoded message breaks a collection limit (Core discourages and disconnects).
pub fn oversized(msg: &NetworkMessage) -> Option<String> {
    let (what, n, max) = match msg {
        NetworkMessage::Inv(v) => ("inv", v.len(), MAX_INV),
        NetworkMessage::GetData(v) => ("getdata", v.len(), MAX_INV),
        NetworkMessage::NotFound(v) => ("notfound", v.len(), MAX_INV),
        NetworkMessage::Headers(v) => ("headers", v.len(), MAX_HEADERS),
        NetworkMessage::Addr(v) => ("addr", v.len(), MAX_ADDR),
        NetworkMessage::AddrV2(v) => ("addrv2", v.len(), MAX_ADDR),
        _ => return None,
    };
    (n > max).then(|| format!("{what} with {n} items (limit {max})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn mainnet_verack_vector_and_split_input() {
        let c = Codec::new(Magic::BITCOIN);
        let mut out = Vec::new();
        c.encode(NetworkMessage::Verack, &mut out);
        let vector = unhex("f9beb4d976657261636b000000000000000000005df6e0e2");
        assert_eq!(out, vector);
        // Byte by byte: need more until the last byte.
        let mut buf = Vec::new();
        for (i, b) in vector.iter().enumerate() {
            buf.push(*b);
            let got = c.decode(&mut buf).unwrap();
            if i + 1 < vector.len() {
                assert_eq!(got, None);
            } else {
                assert_eq!(got, Some(Frame::Message(NetworkMessage::Verack)));
            }
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn bad_magic_and_oversize_fail_on_the_header_alone() {
        let c = Codec::new(Magic::REGTEST);
        let mut buf = unhex("f9beb4d9");
        assert_eq!(
            c.decode(&mut buf),
            Err(StreamError::BadMagic([0xf9, 0xbe, 0xb4, 0xd9]))
        );
        let mut header = Magic::REGTEST.to_bytes().to_vec();
        header.extend_from_slice(b"block\0\0\0\0\0\0\0");
        header.extend_from_slice(&4_000_001u32.to_le_bytes());
        header.extend_from_slice(&[0; 4]);
        assert_eq!(
            c.decode(&mut header.clone()),
            Err(StreamError::TooLarge(4_000_001))
        );
        let mut ok = header.clone();
        ok[16..20].copy_from_slice(&4_000_000u32.to_le_bytes());
        assert_eq!(c.decode(&mut ok), Ok(None), "4,000,000 is allowed: wait");
        assert_eq!(c.needed(&ok), 4_000_000);
    }

    #[test]
    fn bad_checksum_and_undecodable_payloads_drop_only_the_message() {
        let c = Codec::new(Magic::REGTEST);
        let mut buf = Vec::new();
        c.encode(NetworkMessage::Ping(7), &mut buf);
        buf[20] ^= 1;
        c.encode(NetworkMessage::Pong(7), &mut buf);
        assert_eq!(
            c.decode(&mut buf).unwrap(),
            Some(Frame::BadChecksum {
                command: "ping".into()
            })
        );
        assert_eq!(
            c.decode(&mut buf).unwrap(),
            Some(Frame::Message(NetworkMessage::Pong(7)))
        );
        // A ping of 3 bytes with a valid checksum: does not decode.
        let mut raw = Magic::REGTEST.to_bytes().to_vec();
        raw.extend_from_slice(b"ping\0\0\0\0\0\0\0\0");
        raw.extend_from_slice(&3u32.to_le_bytes());
        raw.extend_from_slice(&sha256d::Hash::hash(&[1, 2, 3])[..4]);
        raw.extend_from_slice(&[1, 2, 3]);
        assert!(matches!(
            c.decode(&mut raw).unwrap(),
            Some(Frame::Undecodable { command, .. }) if command == "ping"
        ));
        assert!(raw.is_empty());
    }

    #[test]
    fn unknown_commands_are_kept_and_collections_are_bounded() {
        let c = Codec::new(Magic::REGTEST);
        let mut raw = Magic::REGTEST.to_bytes().to_vec();
        raw.extend_from_slice(b"junk\0\0\0\0\0\0\0\0");
        raw.extend_from_slice(&2u32.to_le_bytes());
        raw.extend_from_slice(&sha256d::Hash::hash(&[9, 9])[..4]);
        raw.extend_from_slice(&[9, 9]);
        assert!(matches!(
            c.decode(&mut raw).unwrap(),
            Some(Frame::Message(NetworkMessage::Unknown { .. }))
        ));
        let inv = vec![bitcoin::p2p::message_blockdata::Inventory::Error; MAX_INV + 1];
        assert!(oversized(&NetworkMessage::Inv(inv)).is_some());
        assert!(oversized(&NetworkMessage::Inv(vec![])).is_none());
    }
}
