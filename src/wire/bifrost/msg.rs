//! Bifrost (LNPBP-50, as lnp-core 0.9 implements it) messages: the plaintext of each
//! Brontozaur packet is `type: u16 LE` ‖ strict-encoded fields (docs/API.md, Bifrost).
//!
//! | type | message | fields |
//! |---|---|---|
//! | 0x0010 | init | protocols: string (space-separated), assets: set of 32-byte ids, TLVs |
//! | 0x0011 | error | channel_id: option<32 bytes>, errno: u64, message: option<string>, TLVs |
//! | 0x0012 | ping | ignored: bytes, pong_size: u16 |
//! | 0x0013 | pong | ignored: bytes |
//! | 0x0014 | msg | app: u16, payload: bytes |
//!
//! Strings and `bytes` have a u16 length; a set has a u16 count and ascending, distinct items;
//! the TLV stream is a u16 count of (u64 type, bytes) pairs in ascending type order, and no
//! bytes at all when empty. The even/odd rule of BOLT-1 applies: an unknown odd type is passed
//! through ([`BifrostMsg::Unknown`]), an unknown even type is an error for the connection.
//! Channel messages (0x0020-0x0028) are not supported: they are even, so they end it.

use crate::wire::limits::BIFROST_MAX_MESSAGE;
use crate::wire::strict::{
    decode_bytes, decode_string, encode_bytes, encode_len, encode_string, Reader, Strict,
    StrictError,
};

/// Strict encoding 0.9's u16 length: the longest string, `bytes` or list.
const B16: usize = u16::MAX as usize;

/// A TLV stream: (type, value) pairs, ascending by type.
pub type Tlvs = Vec<(u64, Vec<u8>)>;

/// A Bifrost message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BifrostMsg {
    /// 0x0010: the first message each side sends.
    Init {
        /// Protocols the node speaks, space-separated (e.g. "storm").
        protocols: String,
        /// Asset ids (a set, ascending).
        assets: Vec<[u8; 32]>,
        /// Extensions.
        tlvs: Tlvs,
    },
    /// 0x0011: something went wrong; the sender may close.
    Error {
        /// The channel it concerns, if any.
        channel_id: Option<[u8; 32]>,
        /// An error number.
        errno: u64,
        /// Text for people.
        message: Option<String>,
        /// Extensions.
        tlvs: Tlvs,
    },
    /// 0x0012: ping, asking for `pong_size` bytes back.
    Ping {
        /// Padding.
        ignored: Vec<u8>,
        /// Bytes the pong should carry.
        pong_size: u16,
    },
    /// 0x0013: pong.
    Pong(Vec<u8>),
    /// 0x0014: a message of an app (Storm is 0x0001).
    Msg {
        /// The app.
        app: u16,
        /// Its payload (for Storm, one Storm message).
        payload: Vec<u8>,
    },
    /// An odd type this node does not know, passed through as it came.
    Unknown {
        /// The type (odd).
        type_id: u16,
        /// The bytes after the type.
        payload: Vec<u8>,
    },
}

/// Bifrost message types.
pub mod msg_type {
    /// init.
    pub const INIT: u16 = 0x0010;
    /// error.
    pub const ERROR: u16 = 0x0011;
    /// ping.
    pub const PING: u16 = 0x0012;
    /// pong.
    pub const PONG: u16 = 0x0013;
    /// msg.
    pub const MSG: u16 = 0x0014;
}

/// The Storm app id in Bifrost `msg` (lnp-core `BIFROST_APP_STORM`).
pub const APP_STORM: u16 = 0x0001;

/// Why a Bifrost message was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BifrostError {
    /// Above [`BIFROST_MAX_MESSAGE`].
    TooLarge(usize),
    /// An even type this node does not know (the even/odd rule: close).
    UnknownEven(u16),
    /// A bad field, a set or TLV stream out of order, truncation or trailing bytes.
    Strict(StrictError),
}

impl From<StrictError> for BifrostError {
    fn from(e: StrictError) -> Self {
        BifrostError::Strict(e)
    }
}

impl std::fmt::Display for BifrostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BifrostError::TooLarge(n) => {
                write!(
                    f,
                    "a Bifrost message of {n} bytes (at most {BIFROST_MAX_MESSAGE})"
                )
            }
            BifrostError::UnknownEven(t) => write!(f, "unknown even message type {t:#06x}"),
            BifrostError::Strict(e) => write!(f, "bad Bifrost message: {e}"),
        }
    }
}

impl std::error::Error for BifrostError {}

fn encode_tlvs(tlvs: &Tlvs, out: &mut Vec<u8>) -> Result<(), StrictError> {
    if tlvs.is_empty() {
        return Ok(());
    }
    if !tlvs.windows(2).all(|w| w[0].0 < w[1].0) {
        return Err(StrictError::InvalidValue("TLV types out of order"));
    }
    encode_len(tlvs.len(), u16::MAX as usize, out)?;
    for (t, v) in tlvs {
        t.strict_encode(out)?;
        encode_bytes(v, B16, out)?;
    }
    Ok(())
}

/// The TLV stream at the end of a message: nothing left means none.
fn decode_tlvs(r: &mut Reader<'_>) -> Result<Tlvs, StrictError> {
    if r.remaining() == 0 {
        return Ok(Vec::new());
    }
    let n = r.len_prefix(u16::MAX as usize, 10)?;
    let mut v: Tlvs = Vec::with_capacity(n);
    for _ in 0..n {
        let t = u64::strict_decode(r)?;
        if v.last().is_some_and(|(prev, _)| *prev >= t) {
            return Err(StrictError::InvalidValue("TLV types out of order"));
        }
        v.push((t, decode_bytes(r, B16)?));
    }
    Ok(v)
}

impl BifrostMsg {
    /// The type id.
    pub fn type_id(&self) -> u16 {
        match self {
            BifrostMsg::Init { .. } => msg_type::INIT,
            BifrostMsg::Error { .. } => msg_type::ERROR,
            BifrostMsg::Ping { .. } => msg_type::PING,
            BifrostMsg::Pong(_) => msg_type::PONG,
            BifrostMsg::Msg { .. } => msg_type::MSG,
            BifrostMsg::Unknown { type_id, .. } => *type_id,
        }
    }

    /// The plaintext of the packet.
    pub fn encode(&self) -> Result<Vec<u8>, StrictError> {
        let mut out = Vec::with_capacity(16);
        self.type_id().strict_encode(&mut out)?;
        let o = &mut out;
        match self {
            BifrostMsg::Init {
                protocols,
                assets,
                tlvs,
            } => {
                encode_string(protocols, u16::MAX as usize, o)?;
                let mut set = assets.clone();
                set.sort_unstable();
                set.dedup();
                encode_len(set.len(), u16::MAX as usize, o)?;
                set.iter().try_for_each(|a| a.strict_encode(o))?;
                encode_tlvs(tlvs, o)?;
            }
            BifrostMsg::Error {
                channel_id,
                errno,
                message,
                tlvs,
            } => {
                channel_id.strict_encode(o)?;
                errno.strict_encode(o)?;
                match message {
                    None => o.push(0),
                    Some(m) => {
                        o.push(1);
                        encode_string(m, u16::MAX as usize, o)?;
                    }
                }
                encode_tlvs(tlvs, o)?;
            }
            BifrostMsg::Ping { ignored, pong_size } => {
                encode_bytes(ignored, B16, o)?;
                pong_size.strict_encode(o)?;
            }
            BifrostMsg::Pong(b) => encode_bytes(b, B16, o)?,
            BifrostMsg::Msg { app, payload } => {
                app.strict_encode(o)?;
                encode_bytes(payload, B16, o)?;
            }
            BifrostMsg::Unknown { payload, .. } => o.extend_from_slice(payload),
        }
        if out.len() > BIFROST_MAX_MESSAGE {
            return Err(StrictError::ExceedMaxItems {
                len: out.len(),
                max: BIFROST_MAX_MESSAGE,
            });
        }
        Ok(out)
    }

    /// Decodes one packet's plaintext.
    pub fn decode(bytes: &[u8]) -> Result<BifrostMsg, BifrostError> {
        if bytes.len() > BIFROST_MAX_MESSAGE {
            return Err(BifrostError::TooLarge(bytes.len()));
        }
        let mut r = Reader::new(bytes);
        let r = &mut r;
        let type_id = u16::strict_decode(r)?;
        let msg = match type_id {
            msg_type::INIT => {
                let protocols = decode_string(r, u16::MAX as usize)?;
                let n = r.len_prefix(u16::MAX as usize, 32)?;
                let mut assets: Vec<[u8; 32]> = Vec::with_capacity(n);
                for _ in 0..n {
                    let a: [u8; 32] = r.array()?;
                    if assets.last().is_some_and(|p| *p >= a) {
                        return Err(StrictError::InvalidValue(
                            "asset set out of order or repeated",
                        )
                        .into());
                    }
                    assets.push(a);
                }
                BifrostMsg::Init {
                    protocols,
                    assets,
                    tlvs: decode_tlvs(r)?,
                }
            }
            msg_type::ERROR => {
                let channel_id = Option::<[u8; 32]>::strict_decode(r)?;
                let errno = u64::strict_decode(r)?;
                let message = match u8::strict_decode(r)? {
                    0 => None,
                    1 => Some(decode_string(r, u16::MAX as usize)?),
                    t => return Err(StrictError::WrongOptionalEncoding(t).into()),
                };
                BifrostMsg::Error {
                    channel_id,
                    errno,
                    message,
                    tlvs: decode_tlvs(r)?,
                }
            }
            msg_type::PING => BifrostMsg::Ping {
                ignored: decode_bytes(r, B16)?,
                pong_size: u16::strict_decode(r)?,
            },
            msg_type::PONG => BifrostMsg::Pong(decode_bytes(r, B16)?),
            msg_type::MSG => BifrostMsg::Msg {
                app: u16::strict_decode(r)?,
                payload: decode_bytes(r, B16)?,
            },
            t if t % 2 == 1 => {
                let payload = r.take(r.remaining())?.to_vec();
                BifrostMsg::Unknown {
                    type_id: t,
                    payload,
                }
            }
            t => return Err(BifrostError::UnknownEven(t)),
        };
        r.finish()?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hex::FromHex;

    fn hex(s: &str) -> Vec<u8> {
        Vec::<u8>::from_hex(&s.replace(' ', "")).unwrap()
    }

    #[test]
    fn lnp_core_init_vector_and_storm_in_msg() {
        // lnp-core's init with empty lists and no TLVs.
        let init = BifrostMsg::Init {
            protocols: String::new(),
            assets: vec![],
            tlvs: vec![],
        };
        assert_eq!(init.encode().unwrap(), hex("1000 0000 0000"));
        assert_eq!(BifrostMsg::decode(&hex("100000000000")).unwrap(), init);
        // A Storm message in msg: `1400 0100 <u16 len> <storm message>`.
        let m = BifrostMsg::Msg {
            app: APP_STORM,
            payload: hex("0800 0100"),
        };
        assert_eq!(m.encode().unwrap(), hex("1400 0100 0400 08000100"));
    }

    #[test]
    fn every_type_roundtrips_the_even_odd_rule_and_limits() {
        let all = vec![
            BifrostMsg::Init {
                protocols: "storm rgb".into(),
                assets: vec![[1; 32], [2; 32]],
                tlvs: vec![(1, vec![9]), (7, vec![])],
            },
            BifrostMsg::Error {
                channel_id: Some([3; 32]),
                errno: 42,
                message: Some("no".into()),
                tlvs: vec![],
            },
            BifrostMsg::Error {
                channel_id: None,
                errno: 0,
                message: None,
                tlvs: vec![],
            },
            BifrostMsg::Ping {
                ignored: vec![0; 10],
                pong_size: 4,
            },
            BifrostMsg::Pong(vec![0; 4]),
            BifrostMsg::Msg {
                app: 1,
                payload: vec![5; u16::MAX as usize],
            },
            BifrostMsg::Unknown {
                type_id: 0x8001,
                payload: vec![1, 2, 3],
            },
        ];
        for m in all {
            let b = m.encode().unwrap();
            assert_eq!(BifrostMsg::decode(&b).unwrap(), m, "{m:?}");
        }
        assert_eq!(
            BifrostMsg::decode(&hex("2000")),
            Err(BifrostError::UnknownEven(0x0020))
        );
        assert!(
            BifrostMsg::decode(&hex("1200 0500 00")).is_err(),
            "truncated"
        );
        assert!(
            BifrostMsg::decode(&hex("1300 0000 00")).is_err(),
            "trailing"
        );
        // Assets out of order; TLVs out of order.
        let mut bad = hex("1000 0000 0200");
        bad.extend_from_slice(&[2; 32]);
        bad.extend_from_slice(&[1; 32]);
        assert!(BifrostMsg::decode(&bad).is_err());
        let bad = hex("1000 0000 0000 0200 0700000000000000 0000 0100000000000000 0000");
        assert!(BifrostMsg::decode(&bad).is_err());
        // 65,535 assets declared in a short message: refused before allocating.
        assert!(BifrostMsg::decode(&hex("1000 0000 ffff 00")).is_err());
        assert!(matches!(
            BifrostMsg::decode(&vec![0x13; BIFROST_MAX_MESSAGE + 1]),
            Err(BifrostError::TooLarge(_))
        ));
    }
}
