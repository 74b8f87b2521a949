//! What the transfers keep in the STORE, with their strict codecs: a download's [`Record`]
//! (table `downloads`, under its container id: what resumes it after a restart) and a
//! [`Share`] (table `shares`, under [`Share::key`]: which peer may pull which container).

use crate::wire::api::storm::Key;
use crate::wire::node_id::NodeId;
use crate::wire::storm::container::{Container, ContainerHeader, ContainerId};
use crate::wire::storm::p2p::MessageId;
use crate::wire::strict::{Reader, Strict, StrictError};
use bitcoin::hashes::{sha256, Hash};

/// A download as kept: whom it is from, for which app, the announced header, and the chunk
/// list once the peer sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The peer it comes from.
    pub peer: NodeId,
    /// The Storm app it is meant for.
    pub app: u16,
    /// The message id of the announcement.
    pub message_id: MessageId,
    /// The header the peer announced.
    pub header: ContainerHeader,
    /// The container (header and chunk list), once received.
    pub container: Option<Container>,
}

impl Strict for Record {
    const MIN_SIZE: usize = NodeId::LEN + 2 + MessageId::LEN + ContainerHeader::MIN_SIZE + 1;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.peer.strict_encode(out)?;
        self.app.strict_encode(out)?;
        self.message_id.strict_encode(out)?;
        self.header.strict_encode(out)?;
        match &self.container {
            None => 0u8.strict_encode(out),
            Some(c) => {
                1u8.strict_encode(out)?;
                c.strict_encode(out)
            }
        }
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(Record {
            peer: NodeId::strict_decode(r)?,
            app: u16::strict_decode(r)?,
            message_id: MessageId::strict_decode(r)?,
            header: ContainerHeader::strict_decode(r)?,
            container: match u8::strict_decode(r)? {
                0 => None,
                1 => Some(Container::strict_decode(r)?),
                t => return Err(StrictError::WrongOptionalEncoding(t)),
            },
        })
    }
}

/// A container shared with a peer: `peer ‖ container ‖ app` (u16 LE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// The peer that may pull it.
    pub peer: NodeId,
    /// The container.
    pub container: ContainerId,
    /// The Storm app it was sent for.
    pub app: u16,
}

impl Share {
    /// Its key in the table `shares`: SHA256(peer ‖ container id).
    pub fn key(peer: &NodeId, container: &ContainerId) -> Key {
        let mut e = Vec::with_capacity(NodeId::LEN + ContainerId::LEN);
        e.extend_from_slice(peer.as_bytes());
        e.extend_from_slice(container.as_bytes());
        sha256::Hash::hash(&e).to_byte_array()
    }
}

impl Strict for Share {
    const MIN_SIZE: usize = NodeId::LEN + ContainerId::LEN + 2;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.peer.strict_encode(out)?;
        self.container.strict_encode(out)?;
        self.app.strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(Share {
            peer: NodeId::strict_decode(r)?,
            container: ContainerId::strict_decode(r)?,
            app: u16::strict_decode(r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::storm::container::chunk_id;
    use crate::wire::strict::{deserialize, serialize};

    fn header() -> ContainerHeader {
        ContainerHeader {
            version: 0,
            mime: "text/plain".into(),
            info: String::new(),
            size: 5,
        }
    }

    #[test]
    fn records_round_trip_and_bad_ones_are_refused() {
        let mut rec = Record {
            peer: NodeId([2; 33]),
            app: 2,
            message_id: MessageId([0; 32]),
            header: header(),
            container: None,
        };
        let bytes = serialize(&rec).unwrap();
        assert_eq!(deserialize::<Record>(&bytes).unwrap(), rec);
        rec.container = Some(Container {
            header: header(),
            chunks: vec![chunk_id(b"hello")],
        });
        let bytes = serialize(&rec).unwrap();
        assert_eq!(deserialize::<Record>(&bytes).unwrap(), rec);
        for cut in 0..bytes.len() {
            assert!(
                deserialize::<Record>(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut bad = bytes.clone();
        bad[NodeId::LEN + 2 + 32 + 2 + 2 + 10 + 2 + 8] = 2; // the option tag
        assert!(deserialize::<Record>(&bad).is_err());
    }

    #[test]
    fn a_share_is_the_bytes_written_before_it_had_a_codec() {
        let s = Share {
            peer: NodeId([3; 33]),
            container: ContainerId([4; 32]),
            app: 0x0102,
        };
        // peer ‖ container ‖ app LE: 67 bytes, the app at 65..67.
        let mut old = vec![3u8; 33];
        old.extend([4u8; 32]);
        old.extend(0x0102u16.to_le_bytes());
        assert_eq!(serialize(&s).unwrap(), old);
        assert_eq!(deserialize::<Share>(&old).unwrap(), s);
        assert!(deserialize::<Share>(&old[..66]).is_err());
        assert_ne!(
            Share::key(&s.peer, &s.container),
            Share::key(&NodeId([5; 33]), &s.container)
        );
    }
}
