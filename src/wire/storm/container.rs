//! Storm's data model (storm-core 0.9's encoding; docs/API.md, "Storm requests" has the vectors):
//! chunks, content-addressed by [`chunk_id`]; containers (a header and the list of their chunk
//! ids), addressed by [`Container::id`], a tagged hash shown as `storm1…` (bech32m).
//!
//! Sizes are bounded so that every piece travels in one Storm message (a Bifrost `msg` payload
//! is a strict `bytes`, at most 65,535 bytes): a chunk holds at most [`MAX_CHUNK`] bytes and a
//! container at most [`MAX_CONTAINER_CHUNKS`] chunk ids.

use crate::wire::hex_id::hex_id;
use crate::wire::limits::{MAX_CHUNK, MAX_CONTAINER_CHUNKS, MAX_INFO, MAX_MIME};
use crate::wire::strict::{decode_string, encode_string, Reader, Strict, StrictError};
use bitcoin::hashes::{sha256, Hash, HashEngine};

hex_id!(
    /// A chunk's id: SHA256(u24 LE length ‖ data) ([`chunk_id`], storm-core's `ChunkId`).
    ChunkId,
    32,
    "a chunk id"
);

hex_id!(
    /// A container's id: the tagged hash of its encoding ([`Container::id`]); shown as hex or
    /// as `storm1…` ([`ContainerId::bech32`]).
    ContainerId,
    32,
    "a container id"
);

/// The chunk id of `data`: SHA256(u24 LE length ‖ data), storm-core's `ChunkId`.
/// `data` longer than [`MAX_CHUNK`] has no chunk id (the caller checks first).
pub fn chunk_id(data: &[u8]) -> ChunkId {
    let mut e = sha256::Hash::engine();
    let len = (data.len() as u32).to_le_bytes();
    e.input(&len[..3]);
    e.input(data);
    ChunkId(sha256::Hash::from_engine(e).to_byte_array())
}

/// The tagged hash of storm-core: SHA256(SHA256(tag) ‖ SHA256(tag) ‖ msg).
pub fn tagged_hash(tag: &str, msg: &[u8]) -> [u8; 32] {
    let t = sha256::Hash::hash(tag.as_bytes());
    let mut e = sha256::Hash::engine();
    e.input(t.as_byte_array());
    e.input(t.as_byte_array());
    e.input(msg);
    sha256::Hash::from_engine(e).to_byte_array()
}

/// The header of a container: what it is and how big it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerHeader {
    /// Format version (0).
    pub version: u16,
    /// MIME type (ASCII, at most [`MAX_MIME`] bytes).
    pub mime: String,
    /// Free description (UTF-8, at most [`MAX_INFO`] bytes).
    pub info: String,
    /// Total size of the content in bytes.
    pub size: u64,
}

impl Strict for ContainerHeader {
    const MIN_SIZE: usize = 2 + 2 + 2 + 8;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        if !self.mime.is_ascii() {
            return Err(StrictError::InvalidValue("MIME type is not ASCII"));
        }
        self.version.strict_encode(out)?;
        encode_string(&self.mime, MAX_MIME, out)?;
        encode_string(&self.info, MAX_INFO, out)?;
        self.size.strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        let version = u16::strict_decode(r)?;
        let mime = decode_string(r, MAX_MIME)?;
        if !mime.is_ascii() {
            return Err(StrictError::InvalidValue("MIME type is not ASCII"));
        }
        Ok(ContainerHeader {
            version,
            mime,
            info: decode_string(r, MAX_INFO)?,
            size: u64::strict_decode(r)?,
        })
    }
}

/// A container: its header and its chunk ids, in order (a u24 LE count, then 32 bytes each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    /// The header.
    pub header: ContainerHeader,
    /// Chunk ids in content order.
    pub chunks: Vec<ChunkId>,
}

impl Strict for Container {
    const MIN_SIZE: usize = ContainerHeader::MIN_SIZE + 3;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.header.strict_encode(out)?;
        let n = self.chunks.len();
        if n > MAX_CONTAINER_CHUNKS {
            return Err(StrictError::ExceedMaxItems {
                len: n,
                max: MAX_CONTAINER_CHUNKS,
            });
        }
        out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        for id in &self.chunks {
            out.extend_from_slice(id.as_bytes());
        }
        Ok(())
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        let header = ContainerHeader::strict_decode(r)?;
        let c: [u8; 3] = r.array()?;
        let n = u32::from_le_bytes([c[0], c[1], c[2], 0]) as usize;
        if n > MAX_CONTAINER_CHUNKS {
            return Err(StrictError::ExceedMaxItems {
                len: n,
                max: MAX_CONTAINER_CHUNKS,
            });
        }
        if n * 32 > r.remaining() {
            return Err(StrictError::UnexpectedEof {
                needed: n * 32 - r.remaining(),
            });
        }
        let mut chunks = Vec::with_capacity(n);
        for _ in 0..n {
            chunks.push(ChunkId(r.array()?));
        }
        Ok(Container { header, chunks })
    }
}

impl Container {
    /// The container id: the tagged hash (`storm:container`) of its strict encoding.
    pub fn id(&self) -> Result<ContainerId, StrictError> {
        Ok(Container::id_of_encoding(&crate::wire::strict::serialize(
            self,
        )?))
    }

    /// The container id of an already encoded container.
    pub fn id_of_encoding(encoded: &[u8]) -> ContainerId {
        ContainerId(tagged_hash("storm:container", encoded))
    }
}

/// Splits content into chunks of at most `size` bytes (at least 1 byte each; empty content has
/// no chunk). `size` is clamped to [`MAX_CHUNK`].
pub fn split(content: &[u8], size: usize) -> impl Iterator<Item = &[u8]> {
    content.chunks(size.clamp(1, MAX_CHUNK))
}

impl ContainerId {
    /// The human form: bech32m with HRP `storm`.
    pub fn bech32(&self) -> String {
        let hrp = bitcoin::bech32::Hrp::parse_unchecked("storm");
        bitcoin::bech32::encode::<bitcoin::bech32::Bech32m>(hrp, &self.0)
            .unwrap_or_else(|_| String::from("storm1?"))
    }
}

/// The human form of a container id: bech32m with HRP `storm`.
pub fn container_id_bech32(id: &ContainerId) -> String {
    id.bech32()
}

/// Parses a container id given as 64 hex digits or as `storm1…`.
pub fn parse_container_id(s: &str) -> Result<ContainerId, String> {
    if let Ok(id) = s.parse() {
        return Ok(id);
    }
    match bitcoin::bech32::decode(s) {
        Ok((hrp, data)) if hrp.as_str() == "storm" => {
            ContainerId::from_slice(&data).ok_or_else(|| "not a storm1… container id".to_string())
        }
        Ok(_) => Err("not a storm1… container id".into()),
        Err(_) => Err("neither 64 hex digits nor a storm1… id".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::strict::{deserialize, serialize};
    use bitcoin::hex::{DisplayHex, FromHex};

    const HELLO_ID: &str = "f28ec83406d9fa6bc8b11b6b4aaccd458d1482a0e1ba5b0c9867df3130465200";
    const CONTAINER: &str = "00000a00746578742f706c61696e08006772656574696e670500000000000000010000f28ec83406d9fa6bc8b11b6b4aaccd458d1482a0e1ba5b0c9867df3130465200";
    const CONTAINER_ID: &str = "77d75cff43f5c07b5eec8b2b1a8461512e24c9a5c468a95e7eb7ee0c9046dab6";
    const CONTAINER_BECH32: &str =
        "storm1wlt4el6r7hq8khhv3v434prp2yhzfjd9c352jhn7klhqeyzxm2mq9tdsq5";

    fn greeting() -> Container {
        Container {
            header: ContainerHeader {
                version: 0,
                mime: "text/plain".into(),
                info: "greeting".into(),
                size: 5,
            },
            chunks: vec![chunk_id(b"hello")],
        }
    }

    #[test]
    fn chunk_id_matches_storm_core() {
        assert_eq!(chunk_id(b"hello").to_string(), HELLO_ID);
    }

    #[test]
    fn container_encoding_and_id_match_storm_core() {
        let c = greeting();
        assert_eq!(serialize(&c).unwrap().to_lower_hex_string(), CONTAINER);
        let id = c.id().unwrap();
        assert_eq!(id.to_string(), CONTAINER_ID);
        assert_eq!(container_id_bech32(&id), CONTAINER_BECH32);
        assert_eq!(parse_container_id(CONTAINER_BECH32).unwrap(), id);
        assert_eq!(parse_container_id(CONTAINER_ID).unwrap(), id);
        let bytes = Vec::<u8>::from_hex(CONTAINER).unwrap();
        assert_eq!(deserialize::<Container>(&bytes).unwrap(), c);
    }

    #[test]
    fn bad_containers_are_refused_before_allocating() {
        let mut bytes = Vec::<u8>::from_hex(CONTAINER).unwrap();
        // Count 0xFFFFFF chunk ids with 32 bytes of data: refused by the cap, not allocated.
        let at = bytes.len() - 35;
        bytes[at..at + 3].copy_from_slice(&[0xff, 0xff, 0xff]);
        assert!(matches!(
            deserialize::<Container>(&bytes),
            Err(StrictError::ExceedMaxItems { .. })
        ));
        // A count the bytes cannot hold.
        bytes[at..at + 3].copy_from_slice(&[2, 0, 0]);
        assert!(matches!(
            deserialize::<Container>(&bytes),
            Err(StrictError::UnexpectedEof { .. })
        ));
        // Non-ASCII MIME, truncation, trailing bytes.
        let mut c = greeting();
        c.header.mime = "tëxt".into();
        assert!(serialize(&c).is_err());
        let good = Vec::<u8>::from_hex(CONTAINER).unwrap();
        for cut in 0..good.len() {
            assert!(deserialize::<Container>(&good[..cut]).is_err());
        }
        let mut long = good.clone();
        long.push(0);
        assert!(deserialize::<Container>(&long).is_err());
        assert!(parse_container_id("storm1zzz").is_err());
        assert!(parse_container_id(&"é".repeat(32)).is_err());
    }

    #[test]
    fn split_respects_the_chunk_limit() {
        let data = vec![7u8; MAX_CHUNK * 2 + 1];
        let parts: Vec<_> = split(&data, usize::MAX).collect();
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.len() <= MAX_CHUNK));
        assert_eq!(split(&[], 10).count(), 0);
    }
}
