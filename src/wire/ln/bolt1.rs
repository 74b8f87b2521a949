//! BOLT-1: message framing (u16 big-endian type), BigSize, TLV streams, the setup and control
//! messages (`init`, `error`, `warning`, `ping`, `pong`) and feature bits. Sans-I/O.
//!
//! Any message type this module does not know is kept as [`Message::Unknown`] with its raw
//! payload so that peerd can forward it (channel, gossip, custom messages); whether an unknown
//! *even* type ends the connection is the caller's decision ([`Message::must_understand`]).

use std::fmt;

/// Type ids of the messages decoded here.
pub mod msg_type {
    /// `warning`.
    pub const WARNING: u16 = 1;
    /// `init`.
    pub const INIT: u16 = 16;
    /// `error`.
    pub const ERROR: u16 = 17;
    /// `ping`.
    pub const PING: u16 = 18;
    /// `pong`.
    pub const PONG: u16 = 19;
}

/// A `ping` asking this many pong bytes or more is not answered (65,535 − 2 type − 2 length).
pub const PONG_BYTES_IGNORED_FROM: u16 = 65_532;

/// Why bytes are not a valid BOLT-1 message or TLV stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a field.
    ShortRead,
    /// A BigSize was not minimally encoded.
    NonCanonical,
    /// TLV types were not strictly increasing (or repeated).
    NotAscending,
    /// An unknown even TLV type: "it's OK to be odd".
    UnknownEvenTlv(u64),
    /// A field had a value it may not have.
    InvalidValue(&'static str),
    /// A known message had a bad length field (e.g. `networks` not a multiple of 32).
    BadLengthDescriptor,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::ShortRead => f.write_str("message truncated"),
            DecodeError::NonCanonical => f.write_str("BigSize not minimally encoded"),
            DecodeError::NotAscending => f.write_str("TLV types not strictly increasing"),
            DecodeError::UnknownEvenTlv(t) => write!(f, "unknown even TLV type {t}"),
            DecodeError::InvalidValue(what) => write!(f, "invalid value: {what}"),
            DecodeError::BadLengthDescriptor => f.write_str("bad length descriptor"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A cursor over a message; every read checks the length first.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::ShortRead);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    /// A u16 length, then that many bytes (bounded by the input, never by the number).
    fn u16_bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let n = self.u16()? as usize;
        Ok(self.take(n)?.to_vec())
    }
}

/// Reads a BigSize from the front of `input`, advancing it.
pub fn read_bigsize(input: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut c = Cursor(input);
    let first = c.take(1)?[0];
    let (value, min) = match first {
        0xfd => (c.u16()? as u64, 0xfd),
        0xfe => {
            let b = c.take(4)?;
            (
                u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64,
                0x1_0000,
            )
        }
        0xff => {
            let mut a = [0u8; 8];
            a.copy_from_slice(c.take(8)?);
            (u64::from_be_bytes(a), 0x1_0000_0000)
        }
        small => (small as u64, 0),
    };
    if value < min {
        return Err(DecodeError::NonCanonical);
    }
    *input = c.0;
    Ok(value)
}

/// Appends the minimal BigSize encoding of `v`.
pub fn write_bigsize(v: u64, out: &mut Vec<u8>) {
    match v {
        0..=0xfc => out.push(v as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// One TLV record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlvRecord {
    /// Type.
    pub type_id: u64,
    /// Raw value.
    pub value: Vec<u8>,
}

/// Decodes a TLV stream: types strictly increasing, minimal BigSizes, lengths within the input,
/// and no unknown even type (`known` says which types the namespace defines). Every record is
/// returned, known or odd, in order.
pub fn decode_tlv_stream(
    mut input: &[u8],
    known: impl Fn(u64) -> bool,
) -> Result<Vec<TlvRecord>, DecodeError> {
    let mut records: Vec<TlvRecord> = Vec::new();
    while !input.is_empty() {
        let type_id = read_bigsize(&mut input)?;
        let len = read_bigsize(&mut input)?;
        if len > input.len() as u64 {
            return Err(DecodeError::ShortRead);
        }
        let (value, rest) = input.split_at(len as usize);
        input = rest;
        if records.last().is_some_and(|r| r.type_id >= type_id) {
            return Err(DecodeError::NotAscending);
        }
        if type_id % 2 == 0 && !known(type_id) {
            return Err(DecodeError::UnknownEvenTlv(type_id));
        }
        records.push(TlvRecord {
            type_id,
            value: value.to_vec(),
        });
    }
    Ok(records)
}

/// Encodes TLV records (they must be in strictly increasing type order).
pub fn encode_tlv_stream(records: &[TlvRecord], out: &mut Vec<u8>) {
    for r in records {
        write_bigsize(r.type_id, out);
        write_bigsize(r.value.len() as u64, out);
        out.extend_from_slice(&r.value);
    }
}

/// A feature bitfield: big-endian, bit 0 is the least significant bit of the last byte.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Features(pub Vec<u8>);

impl Features {
    /// Whether `bit` is set.
    pub fn has(&self, bit: usize) -> bool {
        let byte = bit / 8;
        byte < self.0.len() && self.0[self.0.len() - 1 - byte] & (1 << (bit % 8)) != 0
    }

    /// Sets `bit`, growing the field as needed.
    pub fn set(&mut self, bit: usize) {
        let need = bit / 8 + 1;
        if self.0.len() < need {
            let mut grown = vec![0u8; need - self.0.len()];
            grown.extend_from_slice(&self.0);
            self.0 = grown;
        }
        let len = self.0.len();
        self.0[len - 1 - bit / 8] |= 1 << (bit % 8);
    }

    /// The bits set, ascending.
    pub fn bits(&self) -> Vec<usize> {
        (0..self.0.len() * 8).filter(|b| self.has(*b)).collect()
    }

    /// Bitwise OR (how `globalfeatures` and `features` of `init` combine).
    pub fn or(&self, other: &Features) -> Features {
        let len = self.0.len().max(other.0.len());
        let byte = |f: &Features, i: usize| {
            let pad = len - f.0.len();
            if i < pad {
                0
            } else {
                f.0[i - pad]
            }
        };
        Features((0..len).map(|i| byte(self, i) | byte(other, i)).collect())
    }

    /// The first feature a peer requires that we do not know: an even bit set, or an odd bit
    /// set together with its even partner ("both set: treat as required"), whose pair is not in
    /// `known` (given as the even bit of each known pair).
    pub fn unknown_required(&self, known: &[usize]) -> Option<usize> {
        self.bits().into_iter().find(|&b| {
            let even = b & !1;
            let required = b % 2 == 0 || self.has(even);
            required && !known.contains(&even)
        })
    }
}

/// `init` (type 16).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Init {
    /// `globalfeatures` (legacy; ORed with `features`).
    pub global_features: Features,
    /// `features`.
    pub features: Features,
    /// TLV 1 `networks`: chain hashes the sender is interested in.
    pub networks: Option<Vec<[u8; 32]>>,
    /// TLV 3 `remote_addr`: how the sender sees our address (BOLT-7 descriptor, kept raw).
    pub remote_addr: Option<Vec<u8>>,
    /// Unknown odd TLV records, kept as sent.
    pub unknown_odd: Vec<TlvRecord>,
}

/// `error` (type 17) or `warning` (type 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorMessage {
    /// The channel concerned; all zeros = every channel (or the connection).
    pub channel_id: [u8; 32],
    /// Free text (may be non-printable; print with [`ErrorMessage::printable`]).
    pub data: Vec<u8>,
}

impl ErrorMessage {
    /// The data with non-printable characters escaped, for logs.
    pub fn printable(&self) -> String {
        self.data
            .iter()
            .flat_map(|b| std::ascii::escape_default(*b))
            .map(char::from)
            .collect()
    }
}

/// A BOLT-1 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// `init`.
    Init(Init),
    /// `error`.
    Error(ErrorMessage),
    /// `warning`.
    Warning(ErrorMessage),
    /// `ping`.
    Ping {
        /// Bytes of pong asked for.
        num_pong_bytes: u16,
        /// Padding (should be zeros).
        ignored: Vec<u8>,
    },
    /// `pong`.
    Pong {
        /// Padding of the asked length.
        ignored: Vec<u8>,
    },
    /// Any other type, kept raw for forwarding.
    Unknown {
        /// Type id.
        type_id: u16,
        /// Payload after the type.
        payload: Vec<u8>,
    },
}

impl Message {
    /// The message type id.
    pub fn type_id(&self) -> u16 {
        match self {
            Message::Init(_) => msg_type::INIT,
            Message::Error(_) => msg_type::ERROR,
            Message::Warning(_) => msg_type::WARNING,
            Message::Ping { .. } => msg_type::PING,
            Message::Pong { .. } => msg_type::PONG,
            Message::Unknown { type_id, .. } => *type_id,
        }
    }

    /// An unknown message of even type: the receiver must understand it or close the
    /// connection ("it's OK to be odd").
    pub fn must_understand(&self) -> bool {
        matches!(self, Message::Unknown { type_id, .. } if type_id % 2 == 0)
    }

    /// The `pong` to send for a `ping`, if the spec asks for one.
    pub fn pong_for(&self) -> Option<Message> {
        match self {
            Message::Ping { num_pong_bytes, .. } if *num_pong_bytes < PONG_BYTES_IGNORED_FROM => {
                Some(Message::Pong {
                    ignored: vec![0; *num_pong_bytes as usize],
                })
            }
            _ => None,
        }
    }

    /// Decodes one message (after BOLT-8 decryption: at most 65,535 bytes).
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let mut c = Cursor(bytes);
        let type_id = c.u16()?;
        let msg = match type_id {
            msg_type::INIT => {
                let global_features = Features(c.u16_bytes()?);
                let features = Features(c.u16_bytes()?);
                let mut init = Init {
                    global_features,
                    features,
                    networks: None,
                    remote_addr: None,
                    unknown_odd: Vec::new(),
                };
                for r in decode_tlv_stream(c.0, |_| false)? {
                    match r.type_id {
                        1 => {
                            if r.value.len() % 32 != 0 {
                                return Err(DecodeError::BadLengthDescriptor);
                            }
                            let chains = r.value.chunks(32).map(|c| c.try_into().unwrap());
                            init.networks = Some(chains.collect());
                        }
                        3 => init.remote_addr = Some(r.value),
                        _ => init.unknown_odd.push(r),
                    }
                }
                Message::Init(init)
            }
            msg_type::ERROR | msg_type::WARNING => {
                let mut channel_id = [0u8; 32];
                channel_id.copy_from_slice(c.take(32)?);
                let data = c.u16_bytes()?;
                decode_tlv_stream(c.0, |_| false)?;
                let e = ErrorMessage { channel_id, data };
                if type_id == msg_type::ERROR {
                    Message::Error(e)
                } else {
                    Message::Warning(e)
                }
            }
            msg_type::PING => {
                let num_pong_bytes = c.u16()?;
                let ignored = c.u16_bytes()?;
                decode_tlv_stream(c.0, |_| false)?;
                Message::Ping {
                    num_pong_bytes,
                    ignored,
                }
            }
            msg_type::PONG => {
                let ignored = c.u16_bytes()?;
                decode_tlv_stream(c.0, |_| false)?;
                Message::Pong { ignored }
            }
            _ => Message::Unknown {
                type_id,
                payload: c.0.to_vec(),
            },
        };
        Ok(msg)
    }

    /// Encodes the message (type first).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.type_id().to_be_bytes().to_vec();
        let bytes = |b: &[u8], out: &mut Vec<u8>| {
            out.extend_from_slice(&(b.len() as u16).to_be_bytes());
            out.extend_from_slice(b);
        };
        match self {
            Message::Init(i) => {
                bytes(&i.global_features.0, &mut out);
                bytes(&i.features.0, &mut out);
                let mut tlvs = Vec::new();
                if let Some(n) = &i.networks {
                    tlvs.push(TlvRecord {
                        type_id: 1,
                        value: n.concat(),
                    });
                }
                if let Some(a) = &i.remote_addr {
                    tlvs.push(TlvRecord {
                        type_id: 3,
                        value: a.clone(),
                    });
                }
                tlvs.extend(i.unknown_odd.iter().cloned());
                tlvs.sort_by_key(|r| r.type_id);
                encode_tlv_stream(&tlvs, &mut out);
            }
            Message::Error(e) | Message::Warning(e) => {
                out.extend_from_slice(&e.channel_id);
                bytes(&e.data, &mut out);
            }
            Message::Ping {
                num_pong_bytes,
                ignored,
            } => {
                out.extend_from_slice(&num_pong_bytes.to_be_bytes());
                bytes(ignored, &mut out);
            }
            Message::Pong { ignored } => bytes(ignored, &mut out),
            Message::Unknown { payload, .. } => out.extend_from_slice(payload),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    //! Vectors of BOLT-1 Appendices A (BigSize), B (TLV) and C (message extension).
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn bigsize_vectors() {
        for (v, hex) in [
            (0u64, "00"),
            (252, "fc"),
            (253, "fd00fd"),
            (65535, "fdffff"),
            (65536, "fe00010000"),
            (4294967295, "feffffffff"),
            (4294967296, "ff0000000100000000"),
            (u64::MAX, "ffffffffffffffffff"),
        ] {
            let mut out = Vec::new();
            write_bigsize(v, &mut out);
            assert_eq!(out, unhex(hex), "encode {v}");
            let bytes = unhex(hex);
            let mut input = bytes.as_slice();
            assert_eq!(read_bigsize(&mut input), Ok(v), "decode {hex}");
            assert!(input.is_empty());
        }
        for (hex, err) in [
            ("fd00fc", DecodeError::NonCanonical),
            ("fe0000ffff", DecodeError::NonCanonical),
            ("ff00000000ffffffff", DecodeError::NonCanonical),
            ("fd00", DecodeError::ShortRead),
            ("feffff", DecodeError::ShortRead),
            ("ffffffffff", DecodeError::ShortRead),
            ("", DecodeError::ShortRead),
            ("fd", DecodeError::ShortRead),
            ("fe", DecodeError::ShortRead),
            ("ff", DecodeError::ShortRead),
        ] {
            let bytes = unhex(hex);
            assert_eq!(read_bigsize(&mut bytes.as_slice()), Err(err), "{hex}");
        }
    }

    /// Namespace n1 of Appendix B, with its value checks.
    fn n1(stream: &[u8]) -> Result<Vec<TlvRecord>, DecodeError> {
        let records = decode_tlv_stream(stream, |t| [1, 2, 3, 254].contains(&t))?;
        for r in &records {
            match r.type_id {
                1 => {
                    // tu64: at most 8 bytes, no leading zero byte.
                    if r.value.len() > 8 {
                        return Err(DecodeError::BadLengthDescriptor);
                    }
                    if r.value.first() == Some(&0) {
                        return Err(DecodeError::NonCanonical);
                    }
                }
                2 if r.value.len() != 8 => return Err(DecodeError::BadLengthDescriptor),
                3 => {
                    if r.value.len() != 49 {
                        return Err(DecodeError::BadLengthDescriptor);
                    }
                    if r.value[0] != 2 && r.value[0] != 3 {
                        return Err(DecodeError::InvalidValue("node_id"));
                    }
                }
                254 if r.value.len() != 2 => return Err(DecodeError::BadLengthDescriptor),
                _ => {}
            }
        }
        Ok(records)
    }

    fn n2(stream: &[u8]) -> Result<Vec<TlvRecord>, DecodeError> {
        decode_tlv_stream(stream, |t| [0, 11].contains(&t))
    }

    #[test]
    fn tlv_decoding_failures_in_any_namespace() {
        for hex in [
            "fd",
            "fd01",
            "fd0001 00",
            "fd0101",
            "0f fd",
            "0f fd26",
            "0f fd2602",
            "0f fd0001 00",
            "12 00",
            "fd0102 00",
            "fe01000002 00",
            "ff0100000000000002 00",
        ] {
            assert!(n1(&unhex(hex)).is_err(), "n1 {hex}");
            assert!(n2(&unhex(hex)).is_err(), "n2 {hex}");
        }
        let truncated = format!("0f fd0201 {}", "00".repeat(256));
        assert!(n1(&unhex(&truncated)).is_err());
        assert_eq!(n1(&unhex("12 00")), Err(DecodeError::UnknownEvenTlv(0x12)));
        assert_eq!(n1(&unhex("fd0001 00")), Err(DecodeError::NonCanonical));
    }

    #[test]
    fn tlv_decoding_failures_in_n1_and_n2() {
        for hex in [
            "01 09 ffffffffffffffffff",
            "01 01 00",
            "01 02 0001",
            "01 03 000100",
            "01 04 00010000",
            "01 05 0001000000",
            "01 06 000100000000",
            "01 07 00010000000000",
            "01 08 0001000000000000",
            "02 07 01010101010101",
            "02 09 010101010101010101",
            "03 21 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb",
            "03 29 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb0000000000000001",
            "03 30 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb000000000000000100000000000001",
            "03 31 043da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb00000000000000010000000000000002",
            "03 32 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb0000000000000001000000000000000001",
            "fd00fe 00",
            "fd00fe 01 01",
            "fd00fe 03 010101",
            "00 00",
            "02 08 0000000000000226 01 01 2a",
            "02 08 0000000000000231 02 08 0000000000000451",
            "1f 00 0f 01 2a",
            "1f 00 1f 01 2a",
        ] {
            assert!(n1(&unhex(hex)).is_err(), "n1 {hex}");
        }
        assert_eq!(n1(&unhex("1f 00 0f 01 2a")), Err(DecodeError::NotAscending));
        assert!(n2(&unhex("ffffffffffffffffff 00 00 00")).is_err());
    }

    #[test]
    fn tlv_decoding_successes() {
        for hex in [
            "",
            "21 00",
            "fd0201 00",
            "fd00fd 00",
            "fd00ff 00",
            "fe02000001 00",
            "ff0200000000000001 00",
        ] {
            assert!(n1(&unhex(hex)).is_ok(), "n1 {hex}");
            assert!(n2(&unhex(hex)).is_ok(), "n2 {hex}");
        }
        for (hex, type_id, value) in [
            ("01 00", 1, ""),
            ("01 01 01", 1, "01"),
            ("01 08 0100000000000000", 1, "0100000000000000"),
            ("02 08 0000000000000226", 2, "0000000000000226"),
            (
                "03 31 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb00000000000000010000000000000002",
                3,
                "023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb00000000000000010000000000000002",
            ),
            ("fd00fe 02 0226", 254, "0226"),
        ] {
            let records = n1(&unhex(hex)).unwrap();
            assert_eq!(records, [TlvRecord { type_id, value: unhex(value) }], "{hex}");
            let mut out = Vec::new();
            encode_tlv_stream(&records, &mut out);
            assert_eq!(out, unhex(hex), "re-encodes {hex}");
        }
        // A higher-numbered valid stream appended to a lower one still decodes.
        assert!(n1(&unhex("01 01 01 fd00fe 02 0226")).is_ok());
    }

    #[test]
    fn init_extension_vectors() {
        let base = Message::decode(&unhex("001000000000")).unwrap();
        assert_eq!(
            base,
            Message::Init(Init {
                global_features: Features::default(),
                features: Features::default(),
                networks: None,
                remote_addr: None,
                unknown_odd: vec![],
            })
        );
        let odd = unhex("001000000000c9012acb0104");
        let Message::Init(i) = Message::decode(&odd).unwrap() else {
            panic!()
        };
        assert_eq!(i.unknown_odd.len(), 2);
        assert_eq!(
            Message::Init(i).encode(),
            odd,
            "odd records kept for re-encoding"
        );
        assert_eq!(
            Message::decode(&unhex("00100000000001")),
            Err(DecodeError::ShortRead)
        );
        assert_eq!(
            Message::decode(&unhex("001000000000ca012a")),
            Err(DecodeError::UnknownEvenTlv(0xca))
        );
        assert_eq!(
            Message::decode(&unhex("001000000000c90101c90102")),
            Err(DecodeError::NotAscending)
        );
    }

    #[test]
    fn init_with_networks_roundtrips() {
        let mainnet = unhex("6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000");
        let mut features = Features::default();
        features.set(9);
        features.set(14);
        let msg = Message::Init(Init {
            global_features: Features::default(),
            features,
            networks: Some(vec![mainnet.try_into().unwrap()]),
            remote_addr: Some(vec![1, 127, 0, 0, 1, 0x26, 0x07]),
            unknown_odd: vec![],
        });
        assert_eq!(Message::decode(&msg.encode()).unwrap(), msg);
        let bad = unhex("0010 0000 0000 01 03 000000");
        assert_eq!(Message::decode(&bad), Err(DecodeError::BadLengthDescriptor));
    }

    #[test]
    fn features() {
        let mut f = Features::default();
        f.set(0);
        f.set(13);
        assert_eq!(f.0, vec![0x20, 0x01]);
        assert!(f.has(13) && f.has(0) && !f.has(1));
        assert_eq!(f.bits(), vec![0, 13]);
        assert_eq!(f.or(&Features(vec![0x02])).0, vec![0x20, 0x03]);
        // Known pairs 0/1 and 12/13: nothing unknown is required.
        assert_eq!(f.unknown_required(&[0, 12]), None);
        // Unknown odd bit: fine. Unknown even bit: required. Both bits of a pair: required.
        let mut g = Features::default();
        g.set(101);
        assert_eq!(g.unknown_required(&[]), None);
        g.set(100);
        assert_eq!(g.unknown_required(&[]), Some(100));
        assert_eq!(g.unknown_required(&[100]), None);
    }

    #[test]
    fn ping_pong_and_unknown_messages() {
        let ping = |n: u16| Message::Ping {
            num_pong_bytes: n,
            ignored: vec![0; 4],
        };
        assert_eq!(
            ping(65_531).pong_for(),
            Some(Message::Pong {
                ignored: vec![0; 65_531]
            })
        );
        assert_eq!(ping(65_532).pong_for(), None);
        assert_eq!(ping(65_535).pong_for(), None);
        for m in [
            ping(10),
            Message::Pong {
                ignored: vec![0; 3],
            },
        ] {
            assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
        // A ping whose padding is shorter than declared.
        assert_eq!(
            Message::decode(&[0, 18, 0, 1, 0, 5, 0]),
            Err(DecodeError::ShortRead)
        );
        let err = Message::Error(ErrorMessage {
            channel_id: [0; 32],
            data: b"bad\x07".to_vec(),
        });
        assert_eq!(Message::decode(&err.encode()).unwrap(), err);
        let Message::Error(e) = err else { panic!() };
        assert_eq!(e.printable(), "bad\\x07");
        let even = Message::decode(&[0x00, 0x20, 1, 2]).unwrap();
        assert_eq!(
            even,
            Message::Unknown {
                type_id: 32,
                payload: vec![1, 2]
            }
        );
        assert!(even.must_understand());
        assert!(!Message::decode(&[0x80, 0x01]).unwrap().must_understand());
        assert_eq!(Message::decode(&[0x00]), Err(DecodeError::ShortRead));
    }
}
