//! Service ids (docs/API.md section 3): the address of a service on a bus, strict-encoded as a
//! tag byte and its data; also the ZMQ routing id of a service's socket.

use crate::wire::limits;
use crate::wire::strict::{self, decode_string, encode_string, Reader, Strict, StrictError};
use std::fmt;

/// The address of a service on a bus (strict-encoded as a u8 tag and its data).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceId {
    /// A client of the API: tag 0x02 ‖ u64 LE chosen at random by the client.
    Client(u64),
    /// LNP Node manager (tag 0x20).
    Lnpd,
    /// BP Node manager (tag 0x30).
    Bpd,
    /// RGB Node manager (tag 0x40).
    Rgbd,
    /// Storm Node manager (tag 0x50).
    Stormd,
    /// Any other service, named (tag 0xFF ‖ u16 LE length ‖ UTF-8, 1..=64 bytes).
    Other(String),
}

impl ServiceId {
    const TAG_CLIENT: u8 = 0x02;
    const TAG_LNPD: u8 = 0x20;
    const TAG_BPD: u8 = 0x30;
    const TAG_RGBD: u8 = 0x40;
    const TAG_STORMD: u8 = 0x50;
    const TAG_OTHER: u8 = 0xFF;

    /// The strict encoding, used as a frame and as a ZMQ routing id.
    pub fn to_bytes(&self) -> Vec<u8> {
        strict::serialize(self).expect("service ids are bounded when built")
    }

    /// Decodes a service id frame.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StrictError> {
        strict::deserialize(bytes)
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceId::Client(id) => write!(f, "client:{id:016x}"),
            ServiceId::Lnpd => f.write_str("lnpd"),
            ServiceId::Bpd => f.write_str("bpd"),
            ServiceId::Rgbd => f.write_str("rgbd"),
            ServiceId::Stormd => f.write_str("stormd"),
            ServiceId::Other(name) => write!(f, "other:{name}"),
        }
    }
}

impl Strict for ServiceId {
    const MIN_SIZE: usize = 1;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        match self {
            ServiceId::Client(id) => {
                out.push(Self::TAG_CLIENT);
                id.strict_encode(out)
            }
            ServiceId::Lnpd => Self::TAG_LNPD.strict_encode(out),
            ServiceId::Bpd => Self::TAG_BPD.strict_encode(out),
            ServiceId::Rgbd => Self::TAG_RGBD.strict_encode(out),
            ServiceId::Stormd => Self::TAG_STORMD.strict_encode(out),
            ServiceId::Other(name) => {
                if name.is_empty() {
                    return Err(StrictError::InvalidValue("empty service name"));
                }
                out.push(Self::TAG_OTHER);
                encode_string(name, limits::MAX_SERVICE_NAME, out)
            }
        }
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        match u8::strict_decode(r)? {
            Self::TAG_CLIENT => Ok(ServiceId::Client(u64::strict_decode(r)?)),
            Self::TAG_LNPD => Ok(ServiceId::Lnpd),
            Self::TAG_BPD => Ok(ServiceId::Bpd),
            Self::TAG_RGBD => Ok(ServiceId::Rgbd),
            Self::TAG_STORMD => Ok(ServiceId::Stormd),
            Self::TAG_OTHER => {
                let name = decode_string(r, limits::MAX_SERVICE_NAME)?;
                if name.is_empty() {
                    return Err(StrictError::InvalidValue("empty service name"));
                }
                Ok(ServiceId::Other(name))
            }
            tag => Err(StrictError::UnknownTag {
                ty: "service id",
                tag,
            }),
        }
    }
}
