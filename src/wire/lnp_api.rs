//! Bodies of the LNP Node's API messages (type ids 0x02xx, docs/API.md section 8) and the
//! node-specific details of `info`. Every length is checked before anything is allocated.

use super::limits::{MAX_LIST, MAX_SERVICE_NAME, MAX_TEXT};
use super::strict::{decode_string, encode_len, encode_string, Reader, Strict, StrictError};

/// A node-specific value in `info` (`listening`, `peers`, `tip_height`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Tag 0: a number.
    U64(u64),
    /// Tag 1: a text.
    Text(String),
    /// Tag 2: a list of texts.
    List(Vec<String>),
}

/// Encodes `info` details: u16 count, then each `name ‖ tag ‖ value`.
pub fn encode_details(d: &[(String, Detail)], out: &mut Vec<u8>) -> Result<(), StrictError> {
    encode_len(d.len(), MAX_LIST, out)?;
    for (key, value) in d {
        encode_string(key, MAX_SERVICE_NAME, out)?;
        match value {
            Detail::U64(v) => {
                out.push(0);
                v.strict_encode(out)?;
            }
            Detail::Text(s) => {
                out.push(1);
                encode_string(s, MAX_TEXT, out)?;
            }
            Detail::List(items) => {
                out.push(2);
                encode_len(items.len(), MAX_LIST, out)?;
                for s in items {
                    encode_string(s, MAX_TEXT, out)?;
                }
            }
        }
    }
    Ok(())
}

/// Decodes `info` details.
pub fn decode_details(r: &mut Reader<'_>) -> Result<Vec<(String, Detail)>, StrictError> {
    // A detail takes at least 2 (key) + 1 (tag) + 2 (empty text) bytes.
    let n = r.len_prefix(MAX_LIST, 5)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let key = decode_string(r, MAX_SERVICE_NAME)?;
        let value = match u8::strict_decode(r)? {
            0 => Detail::U64(u64::strict_decode(r)?),
            1 => Detail::Text(decode_string(r, MAX_TEXT)?),
            2 => {
                let m = r.len_prefix(MAX_LIST, 2)?;
                let mut items = Vec::with_capacity(m);
                for _ in 0..m {
                    items.push(decode_string(r, MAX_TEXT)?);
                }
                Detail::List(items)
            }
            tag => return Err(StrictError::UnknownTag { ty: "detail", tag }),
        };
        out.push((key, value));
    }
    Ok(out)
}

/// Who opened a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The peer connected to us (tag 0).
    Inbound = 0,
    /// We connected to the peer (tag 1).
    Outbound = 1,
}

impl Direction {
    /// `inbound` or `outbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// One connected peer, as listed by `peers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's node id.
    pub node_id: [u8; 33],
    /// Its socket address (`host:port`).
    pub addr: String,
    /// Who connected.
    pub direction: Direction,
    /// The `features` of its `init` (ORed with `globalfeatures`), big-endian bytes.
    pub features: Vec<u8>,
    /// When the connection was ready, seconds since the Unix epoch.
    pub connected_since: u64,
    /// Bytes received on the socket.
    pub bytes_in: u64,
    /// Bytes written to the socket.
    pub bytes_out: u64,
    /// Round-trip time of the last answered ping, microseconds.
    pub ping_rtt_us: Option<u64>,
    /// The name of its peerd (for `debug crash`).
    pub service: String,
}

impl Strict for PeerInfo {
    // 33 + 2 + 1 + 2 + 8 * 3 + 1 + 2.
    const MIN_SIZE: usize = 65;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.node_id.strict_encode(out)?;
        encode_string(&self.addr, MAX_TEXT, out)?;
        out.push(self.direction as u8);
        encode_len(self.features.len(), MAX_TEXT, out)?;
        out.extend_from_slice(&self.features);
        self.connected_since.strict_encode(out)?;
        self.bytes_in.strict_encode(out)?;
        self.bytes_out.strict_encode(out)?;
        self.ping_rtt_us.strict_encode(out)?;
        encode_string(&self.service, MAX_TEXT, out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        let node_id = r.array()?;
        let addr = decode_string(r, MAX_TEXT)?;
        let direction = match u8::strict_decode(r)? {
            0 => Direction::Inbound,
            1 => Direction::Outbound,
            tag => {
                return Err(StrictError::UnknownTag {
                    ty: "direction",
                    tag,
                })
            }
        };
        let n = r.len_prefix(MAX_TEXT, 1)?;
        let features = r.take(n)?.to_vec();
        Ok(PeerInfo {
            node_id,
            addr,
            direction,
            features,
            connected_since: u64::strict_decode(r)?,
            bytes_in: u64::strict_decode(r)?,
            bytes_out: u64::strict_decode(r)?,
            ping_rtt_us: Option::<u64>::strict_decode(r)?,
            service: decode_string(r, MAX_TEXT)?,
        })
    }
}

/// Encodes a list of peers.
pub fn encode_peers(peers: &[PeerInfo], out: &mut Vec<u8>) -> Result<(), StrictError> {
    encode_len(peers.len(), MAX_LIST, out)?;
    peers.iter().try_for_each(|p| p.strict_encode(out))
}

/// Decodes a list of peers.
pub fn decode_peers(r: &mut Reader<'_>) -> Result<Vec<PeerInfo>, StrictError> {
    let n = r.len_prefix(MAX_LIST, PeerInfo::MIN_SIZE)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(PeerInfo::strict_decode(r)?);
    }
    Ok(out)
}

/// A Lightning message to or from a peer, as carried on the MSG bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerMessage {
    /// The peer.
    pub node_id: [u8; 33],
    /// BOLT-1 type.
    pub type_id: u16,
    /// Payload after the type (at most 65,533 bytes: a BOLT-8 message is at most 65,535).
    pub payload: Vec<u8>,
}

/// Largest payload of a [`PeerMessage`].
pub const MAX_PEER_PAYLOAD: usize = u16::MAX as usize - 2;

impl Strict for PeerMessage {
    const MIN_SIZE: usize = 33 + 2 + 2;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.node_id.strict_encode(out)?;
        self.type_id.strict_encode(out)?;
        encode_len(self.payload.len(), MAX_PEER_PAYLOAD, out)?;
        out.extend_from_slice(&self.payload);
        Ok(())
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        let node_id = r.array()?;
        let type_id = u16::strict_decode(r)?;
        let n = r.len_prefix(MAX_PEER_PAYLOAD, 1)?;
        Ok(PeerMessage {
            node_id,
            type_id,
            payload: r.take(n)?.to_vec(),
        })
    }
}

/// Encodes a list of BOLT-1 types (for `subscribe_peer_messages`).
pub fn encode_types(types: &[u16], out: &mut Vec<u8>) -> Result<(), StrictError> {
    encode_len(types.len(), MAX_LIST, out)?;
    types.iter().try_for_each(|t| t.strict_encode(out))
}

/// Decodes a list of BOLT-1 types.
pub fn decode_types(r: &mut Reader<'_>) -> Result<Vec<u16>, StrictError> {
    let n = r.len_prefix(MAX_LIST, 2)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(u16::strict_decode(r)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_and_peers_round_trip_and_bad_lengths_fail_before_allocating() {
        let d = vec![
            ("peers".to_string(), Detail::U64(2)),
            (
                "listening".into(),
                Detail::List(vec!["127.0.0.1:9735".into()]),
            ),
            ("tip".into(), Detail::Text("00ab".into())),
        ];
        let mut out = Vec::new();
        encode_details(&d, &mut out).unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(decode_details(&mut r).unwrap(), d);
        r.finish().unwrap();

        let p = PeerInfo {
            node_id: [2; 33],
            addr: "127.0.0.1:1".into(),
            direction: Direction::Outbound,
            features: vec![0x02, 0x00],
            connected_since: 1_700_000_000,
            bytes_in: 10,
            bytes_out: 20,
            ping_rtt_us: Some(150),
            service: "peerd-02".into(),
        };
        let mut out = Vec::new();
        encode_peers(std::slice::from_ref(&p), &mut out).unwrap();
        assert_eq!(decode_peers(&mut Reader::new(&out)).unwrap(), vec![p]);

        // 1,000 peers declared in a 10-byte body: refused before any allocation.
        let mut bogus = 1000u16.to_le_bytes().to_vec();
        bogus.extend_from_slice(&[0; 8]);
        assert!(matches!(
            decode_peers(&mut Reader::new(&bogus)),
            Err(StrictError::UnexpectedEof { .. })
        ));
        let bogus = [0xFF, 0xFF, 0, 0];
        assert!(decode_types(&mut Reader::new(&bogus)).is_err());
    }

    #[test]
    fn peer_message_payload_is_bounded() {
        let m = PeerMessage {
            node_id: [3; 33],
            type_id: 32_769,
            payload: vec![1; MAX_PEER_PAYLOAD],
        };
        let mut out = Vec::new();
        m.strict_encode(&mut out).unwrap();
        assert_eq!(
            PeerMessage::strict_decode(&mut Reader::new(&out)).unwrap(),
            m
        );
        let too_big = PeerMessage {
            payload: vec![0; MAX_PEER_PAYLOAD + 1],
            ..m
        };
        assert!(too_big.strict_encode(&mut Vec::new()).is_err());
    }
}
