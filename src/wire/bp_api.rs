//! Bodies of the BP Node's API and BLOCKS-bus messages (type ids 0x03xx, docs/API.md). Hashes
//! travel in internal byte order (as on the Bitcoin wire); tools show them reversed, as block
//! explorers do. Blocks and transactions use a u32 length (they exceed 65,535 bytes), checked
//! against 4,000,000 and the remaining input before anything is allocated.

use super::limits::MAX_TEXT;
use super::strict::{decode_string, encode_string, Reader, Strict, StrictError};

/// Largest block or transaction in a message (Core's message limit).
pub const MAX_BLOB: usize = 4_000_000;

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
