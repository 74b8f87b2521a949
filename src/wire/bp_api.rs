//! The BP Node's API and BLOCKS-bus messages: the set [`BpMsg`] (type ids 0x03xx, docs/API.md)
//! and their bodies. Hashes
//! travel in internal byte order (as on the Bitcoin wire); tools show them reversed, as block
//! explorers do. Blocks and transactions use a u32 length (they exceed 65,535 bytes), checked
//! against 4,000,000 and the remaining input before anything is allocated.

pub use super::limits::MAX_BLOB;
use super::limits::{MAX_LIST, MAX_TEXT};
use super::msg::{message_set, BodyError};
use super::strict::{decode_string, encode_len, encode_string, Reader, Strict, StrictError};

message_set! {
    /// The BP Node's messages (0x03xx; docs/API.md section 9).
    pub enum BpMsg: 0x03 {
        /// Request: list the Bitcoin peers.
        BtcPeers = 0x0300 as Request,
        /// Final reply to `BtcPeers`.
        BtcPeerList(Vec<BtcPeerInfo>) = 0x0301 as Final,
        /// Request: connect to a Bitcoin peer (`host:port`).
        BtcConnect {
            /// The address.
            addr: String,
        } = 0x0302 as Request,
        /// Request: a header of the best chain (or any known header by hash).
        GetHeader(BlockQuery) = 0x0303 as Request,
        /// Final reply to `GetHeader`.
        HeaderInfo(BlockRef) = 0x0304 as Final,
        /// Request: a block, fetched from a peer.
        GetBlock(BlockQuery) = 0x0305 as Request,
        /// Final reply to `GetBlock`: the serialized block (with witnesses).
        BlockData {
            /// Height on the best chain.
            height: u32,
            /// Hash (internal byte order).
            hash: [u8; 32],
            /// Serialized block.
            raw: Vec<u8>,
        } = 0x0306 as Final,
        /// Request: announce a transaction to the peers.
        Broadcast {
            /// Serialized transaction.
            tx: Vec<u8>,
        } = 0x0307 as Request,
        /// Final reply to `Broadcast` (API version 2): what was announced, to how many peers.
        Broadcasted {
            /// Its txid (internal byte order).
            txid: [u8; 32],
            /// Ready peers it was announced to.
            peers: u32,
        } = 0x0308 as Final,
        /// Request: subscribe the sender to block notifications.
        SubscribeBlocks = 0x0310 as Request,
        /// Notification: a block joined the best chain.
        BlockConnected(BlockRef) = 0x0311 as OneWay,
        /// Notification: a block left the best chain (reorganisation).
        BlockDisconnected(BlockRef) = 0x0312 as OneWay,
    }
}

impl BpMsg {
    /// Encodes the body (after the type id and request id).
    pub fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        match self {
            BpMsg::BtcPeers | BpMsg::SubscribeBlocks => Ok(()),
            BpMsg::BtcPeerList(peers) => {
                encode_len(peers.len(), MAX_LIST, out)?;
                peers.iter().try_for_each(|p| p.strict_encode(out))
            }
            BpMsg::BtcConnect { addr } => encode_string(addr, MAX_TEXT, out),
            BpMsg::GetHeader(q) | BpMsg::GetBlock(q) => q.strict_encode(out),
            BpMsg::HeaderInfo(b) | BpMsg::BlockConnected(b) | BpMsg::BlockDisconnected(b) => {
                b.strict_encode(out)
            }
            BpMsg::BlockData { height, hash, raw } => {
                height.strict_encode(out)?;
                hash.strict_encode(out)?;
                encode_blob(raw, out)
            }
            BpMsg::Broadcast { tx } => encode_blob(tx, out),
            BpMsg::Broadcasted { txid, peers } => {
                txid.strict_encode(out)?;
                peers.strict_encode(out)
            }
        }
    }

    /// Decodes the body of type `type_id` (one of [`BpMsg::TYPE_IDS`]).
    pub fn decode_body(type_id: u16, r: &mut Reader<'_>) -> Result<BpMsg, BodyError> {
        Ok(match type_id {
            0x0300 => BpMsg::BtcPeers,
            0x0301 => {
                let n = r.len_prefix(MAX_LIST, BtcPeerInfo::MIN_SIZE)?;
                let mut peers = Vec::with_capacity(n);
                for _ in 0..n {
                    peers.push(BtcPeerInfo::strict_decode(r)?);
                }
                BpMsg::BtcPeerList(peers)
            }
            0x0302 => BpMsg::BtcConnect {
                addr: decode_string(r, MAX_TEXT)?,
            },
            0x0303 => BpMsg::GetHeader(BlockQuery::strict_decode(r)?),
            0x0304 => BpMsg::HeaderInfo(BlockRef::strict_decode(r)?),
            0x0305 => BpMsg::GetBlock(BlockQuery::strict_decode(r)?),
            0x0306 => BpMsg::BlockData {
                height: u32::strict_decode(r)?,
                hash: r.array()?,
                raw: decode_blob(r)?,
            },
            0x0307 => BpMsg::Broadcast {
                tx: decode_blob(r)?,
            },
            0x0308 => BpMsg::Broadcasted {
                txid: r.array()?,
                peers: u32::strict_decode(r)?,
            },
            0x0310 => BpMsg::SubscribeBlocks,
            0x0311 => BpMsg::BlockConnected(BlockRef::strict_decode(r)?),
            0x0312 => BpMsg::BlockDisconnected(BlockRef::strict_decode(r)?),
            other => return Err(BodyError::UnknownType(other)),
        })
    }
}

/// Encodes bytes with a u32 LE length.
pub fn encode_blob(b: &[u8], out: &mut Vec<u8>) -> Result<(), StrictError> {
    if b.len() > MAX_BLOB {
        return Err(StrictError::ExceedMaxItems {
            len: b.len(),
            max: MAX_BLOB,
        });
    }
    (b.len() as u32).strict_encode(out)?;
    out.extend_from_slice(b);
    Ok(())
}

/// Decodes bytes with a u32 LE length.
pub fn decode_blob(r: &mut Reader<'_>) -> Result<Vec<u8>, StrictError> {
    let len = u32::strict_decode(r)? as usize;
    if len > MAX_BLOB {
        return Err(StrictError::ExceedMaxItems { len, max: MAX_BLOB });
    }
    Ok(r.take(len)?.to_vec())
}

/// Which block: by height on the best chain, or by hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockQuery {
    /// Tag 0.
    Height(u32),
    /// Tag 1 (internal byte order).
    Hash([u8; 32]),
}

impl Strict for BlockQuery {
    const MIN_SIZE: usize = 5;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        match self {
            BlockQuery::Height(h) => {
                out.push(0);
                h.strict_encode(out)
            }
            BlockQuery::Hash(h) => {
                out.push(1);
                h.strict_encode(out)
            }
        }
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        match u8::strict_decode(r)? {
            0 => Ok(BlockQuery::Height(u32::strict_decode(r)?)),
            1 => Ok(BlockQuery::Hash(r.array()?)),
            tag => Err(StrictError::UnknownTag {
                ty: "block query",
                tag,
            }),
        }
    }
}

/// A block header with its place: `header_info`, `block_connected`, `block_disconnected`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRef {
    /// Height.
    pub height: u32,
    /// Hash (internal byte order).
    pub hash: [u8; 32],
    /// The 80-byte header.
    pub header: [u8; 80],
}

impl Strict for BlockRef {
    const MIN_SIZE: usize = 4 + 32 + 80;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.height.strict_encode(out)?;
        self.hash.strict_encode(out)?;
        self.header.strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(BlockRef {
            height: u32::strict_decode(r)?,
            hash: r.array()?,
            header: r.array()?,
        })
    }
}

/// One Bitcoin peer, as listed by `peers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtcPeerInfo {
    /// `host:port`.
    pub addr: String,
    /// 0 inbound, 1 outbound.
    pub outbound: bool,
    /// Its user agent.
    pub user_agent: String,
    /// Its protocol version.
    pub version: u32,
    /// The height it announced in `version` (negative announced as 0).
    pub start_height: u32,
    /// Round trip of the last answered ping, microseconds.
    pub ping_rtt_us: Option<u64>,
}

impl Strict for BtcPeerInfo {
    const MIN_SIZE: usize = 2 + 1 + 2 + 4 + 4 + 1;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        encode_string(&self.addr, MAX_TEXT, out)?;
        self.outbound.strict_encode(out)?;
        encode_string(&self.user_agent, MAX_TEXT, out)?;
        self.version.strict_encode(out)?;
        self.start_height.strict_encode(out)?;
        self.ping_rtt_us.strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(BtcPeerInfo {
            addr: decode_string(r, MAX_TEXT)?,
            outbound: bool::strict_decode(r)?,
            user_agent: decode_string(r, MAX_TEXT)?,
            version: u32::strict_decode(r)?,
            start_height: u32::strict_decode(r)?,
            ping_rtt_us: Option::<u64>::strict_decode(r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::msg::testing::roundtrip;
    use crate::wire::msg::Msg;

    #[test]
    fn a_block_above_a_u16_length_roundtrips() {
        // Every type id has a sample in wire/samples.rs; this one is above 65,535 bytes.
        roundtrip(Msg::Bp(BpMsg::BlockData {
            height: 5,
            hash: [1; 32],
            raw: vec![0; 70_000],
        }));
    }

    #[test]
    fn round_trips_and_bounds() {
        let mut out = Vec::new();
        encode_blob(&[1, 2, 3], &mut out).unwrap();
        assert_eq!(out, [3, 0, 0, 0, 1, 2, 3]);
        assert_eq!(decode_blob(&mut Reader::new(&out)).unwrap(), vec![1, 2, 3]);
        // 4,000,001 declared: refused before allocating; 1,000 declared in 3 bytes: short.
        let big = 4_000_001u32.to_le_bytes();
        assert!(matches!(
            decode_blob(&mut Reader::new(&big)),
            Err(StrictError::ExceedMaxItems { .. })
        ));
        let mut short = 1000u32.to_le_bytes().to_vec();
        short.extend_from_slice(&[0; 3]);
        assert!(decode_blob(&mut Reader::new(&short)).is_err());
        let q = BlockQuery::Hash([9; 32]);
        let bytes = super::super::strict::serialize(&q).unwrap();
        assert_eq!(
            super::super::strict::deserialize::<BlockQuery>(&bytes).unwrap(),
            q
        );
        let p = BtcPeerInfo {
            addr: "127.0.0.1:18444".into(),
            outbound: true,
            user_agent: "/bcoin:1.0.2/".into(),
            version: 70015,
            start_height: 300,
            ping_rtt_us: None,
        };
        let bytes = super::super::strict::serialize(&p).unwrap();
        assert_eq!(
            super::super::strict::deserialize::<BtcPeerInfo>(&bytes).unwrap(),
            p
        );
    }
}
