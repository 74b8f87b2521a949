//! Service ids (docs/API.md section 3): the address of a service on a bus, strict-encoded as a
//! tag byte and its data; also the ZMQ routing id of a service's socket.

use crate::wire::limits::MAX_SERVICE_NAME;
use crate::wire::strict::{self, decode_string, Reader, Strict, StrictError};
use std::borrow::Cow;
use std::fmt;

/// The name of a named service (an `ff` service id): 1 to [`MAX_SERVICE_NAME`] bytes of
/// UTF-8. Checked when it is made, so every [`ServiceId`] encodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceName(Cow<'static, str>);

impl ServiceName {
    /// A name written in the code. Used in a `const`, a bad name fails the build; used
    /// elsewhere, it is checked like [`ServiceName::new`]'s but panics, so keep it to literals.
    pub const fn fixed(name: &'static str) -> ServiceName {
        assert!(
            !name.is_empty() && name.len() <= MAX_SERVICE_NAME,
            "a service name is 1 to 64 bytes"
        );
        ServiceName(Cow::Borrowed(name))
    }

    /// A name made at run time (from a config, a peer's id, a client's frame).
    pub fn new(name: impl Into<String>) -> Result<ServiceName, String> {
        let name = name.into();
        if name.is_empty() || name.len() > MAX_SERVICE_NAME {
            return Err(format!(
                "a service name is 1 to {MAX_SERVICE_NAME} bytes, not {}",
                name.len()
            ));
        }
        Ok(ServiceName(Cow::Owned(name)))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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
    Other(ServiceName),
}

impl ServiceId {
    const TAG_CLIENT: u8 = 0x02;
    const TAG_LNPD: u8 = 0x20;
    const TAG_BPD: u8 = 0x30;
    const TAG_RGBD: u8 = 0x40;
    const TAG_STORMD: u8 = 0x50;
    const TAG_OTHER: u8 = 0xFF;

    /// The id of the service named `name` (checked as [`ServiceName::new`] does).
    pub fn named(name: impl Into<String>) -> Result<ServiceId, String> {
        ServiceName::new(name).map(ServiceId::Other)
    }

    /// The strict encoding, used as a frame and as a ZMQ routing id.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9);
        self.encode(&mut out);
        out
    }

    /// Decodes a service id frame.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StrictError> {
        strict::deserialize(bytes)
    }

    /// Appends the encoding: it cannot fail, every part being bounded when built.
    fn encode(&self, out: &mut Vec<u8>) {
        let tag = match self {
            ServiceId::Client(id) => {
                out.push(Self::TAG_CLIENT);
                out.extend_from_slice(&id.to_le_bytes());
                return;
            }
            ServiceId::Lnpd => Self::TAG_LNPD,
            ServiceId::Bpd => Self::TAG_BPD,
            ServiceId::Rgbd => Self::TAG_RGBD,
            ServiceId::Stormd => Self::TAG_STORMD,
            ServiceId::Other(name) => {
                out.push(Self::TAG_OTHER);
                // At most MAX_SERVICE_NAME (64) bytes: the length fits its u16.
                out.extend_from_slice(&(name.as_str().len() as u16).to_le_bytes());
                out.extend_from_slice(name.as_str().as_bytes());
                return;
            }
        };
        out.push(tag);
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
        self.encode(out);
        Ok(())
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        match u8::strict_decode(r)? {
            Self::TAG_CLIENT => Ok(ServiceId::Client(u64::strict_decode(r)?)),
            Self::TAG_LNPD => Ok(ServiceId::Lnpd),
            Self::TAG_BPD => Ok(ServiceId::Bpd),
            Self::TAG_RGBD => Ok(ServiceId::Rgbd),
            Self::TAG_STORMD => Ok(ServiceId::Stormd),
            Self::TAG_OTHER => {
                let name = decode_string(r, MAX_SERVICE_NAME)?;
                ServiceName::new(name)
                    .map(ServiceId::Other)
                    .map_err(|_| StrictError::InvalidValue("empty service name"))
            }
            tag => Err(StrictError::UnknownTag {
                ty: "service id",
                tag,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_encodes_and_a_name_is_checked_when_made() {
        const STORED: ServiceId = ServiceId::Other(ServiceName::fixed("stored"));
        for id in [
            ServiceId::Client(7),
            ServiceId::Lnpd,
            ServiceId::Stormd,
            STORED,
            ServiceId::named("x".repeat(64)).unwrap(),
        ] {
            let bytes = id.to_bytes();
            assert_eq!(bytes, strict::serialize(&id).unwrap());
            assert_eq!(ServiceId::from_bytes(&bytes).unwrap(), id);
        }
        assert!(ServiceId::named("").is_err());
        assert!(ServiceId::named("x".repeat(65)).is_err());
        // Neither comes off the wire either.
        assert!(ServiceId::from_bytes(&[0xff, 0, 0]).is_err());
        let mut long = vec![0xff, 65, 0];
        long.extend([b'x'; 65]);
        assert!(ServiceId::from_bytes(&long).is_err());
    }
}
