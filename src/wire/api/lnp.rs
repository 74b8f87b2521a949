//! The LNP Node's API: its message set [`LnpMsg`] (type ids 0x02xx, docs/API.md section 8)
//! and their bodies. Every length is checked before anything is allocated.

use crate::wire::api::{message_set, BodyError};
use crate::wire::limits::{MAX_LIST, MAX_TEXT};
use crate::wire::node_id::NodeId;
use crate::wire::strict::{decode_string, encode_len, encode_string, Reader, Strict, StrictError};

message_set! {
    /// The LNP Node's messages (0x02xx; docs/API.md section 8).
    pub enum LnpMsg: 0x02 {
        /// Request: listen for peers on a TCP address (`host:port`, port 0 = any).
        Listen {
            /// The address.
            addr: String,
        } = 0x0200 as Request,
        /// Request: connect to a peer (progress replies, then success or failure).
        Connect {
            /// The peer's node id.
            node_id: NodeId,
            /// Its address (`host:port`; the port defaults to 9735, or 9999 for Bifrost).
            addr: String,
            /// Lightning or Bifrost.
            protocol: Protocol,
        } = 0x0201 as Request,
        /// Request: disconnect a peer.
        Disconnect {
            /// The peer's node id.
            node_id: NodeId,
            /// Which connection to it.
            protocol: Protocol,
        } = 0x0202 as Request,
        /// Request: list the connected peers.
        ListPeers = 0x0203 as Request,
        /// Final reply to `ListPeers`.
        PeerList(Vec<PeerInfo>) = 0x0204 as Final,
        /// Request: ping a peer and wait for its pong.
        PingPeer {
            /// The peer's node id.
            node_id: NodeId,
            /// Bytes of pong to ask for (below 65,532).
            num_pong_bytes: u16,
            /// Which connection to it.
            protocol: Protocol,
        } = 0x0205 as Request,
        /// Final reply to `PingPeer`: the round-trip time.
        PeerPong {
            /// Microseconds between sending the ping and receiving the pong.
            rtt_us: u64,
        } = 0x0206 as Final,
        /// Final reply to `Listen` (API version 2): the address actually bound.
        Listening {
            /// `host:port`, with the port the system picked for port 0.
            addr: String,
        } = 0x0207 as Final,
        /// Request (MSG bus): forward these Lightning message types from every peer to the
        /// sender as `PeerMessageIn`, with this request's id. Replaces an earlier list.
        SubscribePeerMessages {
            /// BOLT-1 types.
            types: Vec<u16>,
        } = 0x0210 as Request,
        /// Notification: a Lightning message from a peer.
        PeerMessageIn(PeerMessage) = 0x0211 as OneWay,
        /// Request (MSG bus): send a Lightning message to a peer.
        SendPeerMessage(PeerMessage) = 0x0212 as Request,
        /// Request (MSG bus): forward the messages of these Bifrost apps from every Bifrost
        /// peer to the sender as `BifrostAppIn`, with this request's id. Replaces an earlier
        /// list; an empty list ends it.
        SubscribeBifrostApps {
            /// Bifrost app ids (Storm is 0x0001).
            apps: Vec<u16>,
        } = 0x0213 as Request,
        /// Notification: a Bifrost app message from a peer.
        BifrostAppIn(AppMessage) = 0x0214 as OneWay,
        /// Request (MSG bus): send a Bifrost app message to a peer.
        SendBifrostApp(AppMessage) = 0x0215 as Request,
    }
}

impl LnpMsg {
    /// Encodes the body (after the type id and request id).
    pub fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        match self {
            LnpMsg::Listen { addr } | LnpMsg::Listening { addr } => {
                encode_string(addr, MAX_TEXT, out)
            }
            LnpMsg::Connect {
                node_id,
                addr,
                protocol,
            } => {
                node_id.strict_encode(out)?;
                encode_string(addr, MAX_TEXT, out)?;
                protocol.strict_encode(out)
            }
            LnpMsg::Disconnect { node_id, protocol } => {
                node_id.strict_encode(out)?;
                protocol.strict_encode(out)
            }
            LnpMsg::ListPeers => Ok(()),
            LnpMsg::PeerList(peers) => encode_peers(peers, out),
            LnpMsg::PingPeer {
                node_id,
                num_pong_bytes,
                protocol,
            } => {
                node_id.strict_encode(out)?;
                num_pong_bytes.strict_encode(out)?;
                protocol.strict_encode(out)
            }
            LnpMsg::PeerPong { rtt_us } => rtt_us.strict_encode(out),
            LnpMsg::SubscribePeerMessages { types } => encode_types(types, out),
            LnpMsg::PeerMessageIn(m) | LnpMsg::SendPeerMessage(m) => m.strict_encode(out),
            LnpMsg::SubscribeBifrostApps { apps } => encode_types(apps, out),
            LnpMsg::BifrostAppIn(m) | LnpMsg::SendBifrostApp(m) => m.strict_encode(out),
        }
    }

    /// Decodes the body of type `type_id` (one of [`LnpMsg::TYPE_IDS`]).
    pub fn decode_body(type_id: u16, r: &mut Reader<'_>) -> Result<LnpMsg, BodyError> {
        let text = |r: &mut Reader<'_>| decode_string(r, MAX_TEXT);
        Ok(match type_id {
            0x0200 => LnpMsg::Listen { addr: text(r)? },
            0x0201 => LnpMsg::Connect {
                node_id: NodeId::strict_decode(r)?,
                addr: text(r)?,
                protocol: Protocol::strict_decode(r)?,
            },
            0x0202 => LnpMsg::Disconnect {
                node_id: NodeId::strict_decode(r)?,
                protocol: Protocol::strict_decode(r)?,
            },
            0x0203 => LnpMsg::ListPeers,
            0x0204 => LnpMsg::PeerList(decode_peers(r)?),
            0x0205 => LnpMsg::PingPeer {
                node_id: NodeId::strict_decode(r)?,
                num_pong_bytes: u16::strict_decode(r)?,
                protocol: Protocol::strict_decode(r)?,
            },
            0x0206 => LnpMsg::PeerPong {
                rtt_us: u64::strict_decode(r)?,
            },
            0x0207 => LnpMsg::Listening { addr: text(r)? },
            0x0210 => LnpMsg::SubscribePeerMessages {
                types: decode_types(r)?,
            },
            0x0211 => LnpMsg::PeerMessageIn(PeerMessage::strict_decode(r)?),
            0x0212 => LnpMsg::SendPeerMessage(PeerMessage::strict_decode(r)?),
            0x0213 => LnpMsg::SubscribeBifrostApps {
                apps: decode_types(r)?,
            },
            0x0214 => LnpMsg::BifrostAppIn(AppMessage::strict_decode(r)?),
            0x0215 => LnpMsg::SendBifrostApp(AppMessage::strict_decode(r)?),
            other => return Err(BodyError::UnknownType(other)),
        })
    }
}

/// The peer protocols of the LNP node (the `protocol` field of `connect`, `ping`,
/// `disconnect` and of each `peer`); a `u8` on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// 0: Lightning, BOLT-1 over BOLT-8 (`bolt://`, port 9735).
    Lightning = 0,
    /// 1: Bifrost, LNPBP-50 over Brontozaur (`bifrost://`, port 9999).
    Bifrost = 1,
}

impl Protocol {
    /// `lightning` or `bifrost`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Lightning => "lightning",
            Protocol::Bifrost => "bifrost",
        }
    }
}

impl Strict for Protocol {
    const MIN_SIZE: usize = 1;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        (*self as u8).strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        match u8::strict_decode(r)? {
            0 => Ok(Protocol::Lightning),
            1 => Ok(Protocol::Bifrost),
            value => Err(StrictError::NotAllowed {
                field: "protocol",
                value,
                allowed: "0 (Lightning), 1 (Bifrost)",
            }),
        }
    }
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
    pub node_id: NodeId,
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
    /// Lightning or Bifrost.
    pub protocol: Protocol,
}

impl Strict for PeerInfo {
    // 33 + 2 + 1 + 2 + 8 * 3 + 1 + 2 + 1.
    const MIN_SIZE: usize = 66;
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
        encode_string(&self.service, MAX_TEXT, out)?;
        self.protocol.strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        let node_id = NodeId::strict_decode(r)?;
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
            protocol: Protocol::strict_decode(r)?,
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
    pub node_id: NodeId,
    /// BOLT-1 type.
    pub type_id: u16,
    /// Payload after the type (at most 65,533 bytes: a BOLT-8 message is at most 65,535).
    pub payload: Vec<u8>,
}

/// Largest payload of a [`PeerMessage`] (a Lightning message's, `limits::LN_MAX_PAYLOAD`).
pub use crate::wire::limits::LN_MAX_PAYLOAD as MAX_PEER_PAYLOAD;

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
        let node_id = NodeId::strict_decode(r)?;
        let type_id = u16::strict_decode(r)?;
        let n = r.len_prefix(MAX_PEER_PAYLOAD, 1)?;
        Ok(PeerMessage {
            node_id,
            type_id,
            payload: r.take(n)?.to_vec(),
        })
    }
}

/// A Bifrost app message to or from a peer, as carried on the MSG bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppMessage {
    /// The Bifrost peer.
    pub node_id: NodeId,
    /// The app (Storm is 0x0001).
    pub app: u16,
    /// The payload (at most 65,535 bytes: a Bifrost `msg`'s u16 length).
    pub payload: Vec<u8>,
}

impl Strict for AppMessage {
    const MIN_SIZE: usize = 33 + 2 + 2;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.node_id.strict_encode(out)?;
        self.app.strict_encode(out)?;
        encode_len(self.payload.len(), u16::MAX as usize, out)?;
        out.extend_from_slice(&self.payload);
        Ok(())
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        let node_id = NodeId::strict_decode(r)?;
        let app = u16::strict_decode(r)?;
        let n = r.len_prefix(u16::MAX as usize, 1)?;
        Ok(AppMessage {
            node_id,
            app,
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
    use crate::wire::api::{decode_details, encode_details, Detail};

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
            node_id: NodeId([2; 33]),
            addr: "127.0.0.1:1".into(),
            direction: Direction::Outbound,
            features: vec![0x02, 0x00],
            connected_since: 1_700_000_000,
            bytes_in: 10,
            bytes_out: 20,
            ping_rtt_us: Some(150),
            service: "peerd-02".into(),
            protocol: Protocol::Bifrost,
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
            node_id: NodeId([3; 33]),
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
