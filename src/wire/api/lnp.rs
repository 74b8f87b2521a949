//! The LNP Node's API: its message set [`LnpMsg`] (type ids 0x02xx, docs/API.md section 8)
//! and their bodies. Every length is checked before anything is allocated.

use crate::wire::api::{message_set, BodyError, ServiceId, ServiceName};

/// The LNP node's channel service (`ff` "channeld"): the channel requests go to it.
pub const CHANNELD: ServiceId = ServiceId::Other(ServiceName::fixed("channeld"));
use crate::wire::limits::{MAX_INVOICE, MAX_LIST, MAX_TEXT};
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
        /// Request (API, to `channeld`): open a channel of `sats` to a connected peer,
        /// funded by the BP node's wallet. Progress replies, then `channel_opened` once the
        /// funding is signed by both sides and broadcast.
        ChannelOpen {
            /// The peer.
            node_id: NodeId,
            /// Capacity (sat).
            sats: u64,
            /// Given to the peer at opening (msat).
            push_msat: u64,
        } = 0x0220 as Request,
        /// Final reply to `ChannelOpen`.
        ChannelOpened {
            /// The channel id.
            channel_id: [u8; 32],
            /// The funding outpoint (`txid:vout`).
            funding: String,
        } = 0x0221 as Final,
        /// Request: the node's channels.
        ListChannels = 0x0222 as Request,
        /// Final reply to `ListChannels`.
        ChannelList(Vec<ChannelInfo>) = 0x0223 as Final,
        /// Request: a BOLT-11 invoice of ours.
        MakeInvoice {
            /// Amount (msat); none: any.
            amount_msat: Option<u64>,
            /// Its description.
            description: String,
            /// Seconds it is valid.
            expiry_secs: u32,
        } = 0x0224 as Request,
        /// Final reply to `MakeInvoice`.
        Invoice {
            /// The invoice (bech32).
            bolt11: String,
            /// Its payment hash.
            hash: [u8; 32],
        } = 0x0225 as Final,
        /// Request: pay a BOLT-11 invoice whose payee is a channel peer.
        Pay {
            /// The invoice.
            bolt11: String,
            /// Amount (msat) for an invoice without one.
            amount_msat: Option<u64>,
            /// Answer when the payment ends (else once it is sent).
            wait: bool,
        } = 0x0226 as Request,
        /// Final reply to `Pay`.
        PaymentInfo(PaymentRecord) = 0x0227 as Final,
        /// Request: the payments, newest first.
        ListPayments = 0x0228 as Request,
        /// Final reply to `ListPayments`.
        PaymentList(Vec<PaymentRecord>) = 0x0229 as Final,
        /// Request: close a channel (cooperatively, or by broadcasting our commitment).
        CloseChannel {
            /// The channel id.
            channel_id: [u8; 32],
            /// Force close.
            force: bool,
        } = 0x022a as Request,
        /// Request: balances of the channels and what is to be claimed on chain.
        LnBalance = 0x022b as Request,
        /// Final reply to `LnBalance`.
        LnBalances {
            /// Per channel: (channel id, ours (msat), theirs (msat)).
            channels: Vec<([u8; 32], u64, u64)>,
            /// Sat still to be claimed on chain (closing channels, outputs being swept).
            onchain_sat: u64,
            /// What those are, one line each.
            claims: Vec<String>,
        } = 0x022c as Final,
        /// Request (CHNL or API bus): channel and payment events, with this request's id.
        SubscribeChannelEvents = 0x022d as Request,
        /// Notification: a channel or payment event.
        ChannelEvent(ChannelEventInfo) = 0x022e as OneWay,
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
            LnpMsg::ChannelOpen {
                node_id,
                sats,
                push_msat,
            } => {
                node_id.strict_encode(out)?;
                sats.strict_encode(out)?;
                push_msat.strict_encode(out)
            }
            LnpMsg::ChannelOpened {
                channel_id,
                funding,
            } => {
                channel_id.strict_encode(out)?;
                encode_string(funding, MAX_TEXT, out)
            }
            LnpMsg::ListChannels
            | LnpMsg::ListPayments
            | LnpMsg::LnBalance
            | LnpMsg::SubscribeChannelEvents => Ok(()),
            LnpMsg::ChannelList(l) => list(l, out),
            LnpMsg::MakeInvoice {
                amount_msat,
                description,
                expiry_secs,
            } => {
                amount_msat.strict_encode(out)?;
                encode_string(description, MAX_TEXT, out)?;
                expiry_secs.strict_encode(out)
            }
            LnpMsg::Invoice { bolt11, hash } => {
                encode_string(bolt11, MAX_INVOICE, out)?;
                hash.strict_encode(out)
            }
            LnpMsg::Pay {
                bolt11,
                amount_msat,
                wait,
            } => {
                encode_string(bolt11, MAX_INVOICE, out)?;
                amount_msat.strict_encode(out)?;
                wait.strict_encode(out)
            }
            LnpMsg::PaymentInfo(p) => p.strict_encode(out),
            LnpMsg::PaymentList(l) => list(l, out),
            LnpMsg::CloseChannel { channel_id, force } => {
                channel_id.strict_encode(out)?;
                force.strict_encode(out)
            }
            LnpMsg::LnBalances {
                channels,
                onchain_sat,
                claims,
            } => {
                encode_len(channels.len(), MAX_LIST, out)?;
                for (id, l, r) in channels {
                    id.strict_encode(out)?;
                    l.strict_encode(out)?;
                    r.strict_encode(out)?;
                }
                onchain_sat.strict_encode(out)?;
                encode_len(claims.len(), MAX_LIST, out)?;
                claims
                    .iter()
                    .try_for_each(|c| encode_string(c, MAX_TEXT, out))
            }
            LnpMsg::ChannelEvent(e) => e.strict_encode(out),
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
            0x0220 => LnpMsg::ChannelOpen {
                node_id: NodeId::strict_decode(r)?,
                sats: u64::strict_decode(r)?,
                push_msat: u64::strict_decode(r)?,
            },
            0x0221 => LnpMsg::ChannelOpened {
                channel_id: <[u8; 32]>::strict_decode(r)?,
                funding: text(r)?,
            },
            0x0222 => LnpMsg::ListChannels,
            0x0223 => LnpMsg::ChannelList(unlist(r)?),
            0x0224 => LnpMsg::MakeInvoice {
                amount_msat: Option::<u64>::strict_decode(r)?,
                description: text(r)?,
                expiry_secs: u32::strict_decode(r)?,
            },
            0x0225 => LnpMsg::Invoice {
                bolt11: decode_string(r, MAX_INVOICE)?,
                hash: <[u8; 32]>::strict_decode(r)?,
            },
            0x0226 => LnpMsg::Pay {
                bolt11: decode_string(r, MAX_INVOICE)?,
                amount_msat: Option::<u64>::strict_decode(r)?,
                wait: bool::strict_decode(r)?,
            },
            0x0227 => LnpMsg::PaymentInfo(PaymentRecord::strict_decode(r)?),
            0x0228 => LnpMsg::ListPayments,
            0x0229 => LnpMsg::PaymentList(unlist(r)?),
            0x022a => LnpMsg::CloseChannel {
                channel_id: <[u8; 32]>::strict_decode(r)?,
                force: bool::strict_decode(r)?,
            },
            0x022b => LnpMsg::LnBalance,
            0x022c => {
                let n = r.len_prefix(MAX_LIST, 48)?;
                let mut channels = Vec::with_capacity(n);
                for _ in 0..n {
                    channels.push((
                        <[u8; 32]>::strict_decode(r)?,
                        u64::strict_decode(r)?,
                        u64::strict_decode(r)?,
                    ));
                }
                let onchain_sat = u64::strict_decode(r)?;
                let n = r.len_prefix(MAX_LIST, 2)?;
                let mut claims = Vec::with_capacity(n);
                for _ in 0..n {
                    claims.push(text(r)?);
                }
                LnpMsg::LnBalances {
                    channels,
                    onchain_sat,
                    claims,
                }
            }
            0x022d => LnpMsg::SubscribeChannelEvents,
            0x022e => LnpMsg::ChannelEvent(ChannelEventInfo::strict_decode(r)?),
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
    /// Whether its `init` arrived (false: a Bifrost peer we dialled that sends none, ready
    /// since it answered our ping).
    pub init: bool,
}

impl Strict for PeerInfo {
    // 33 + 2 + 1 + 2 + 8 * 3 + 1 + 2 + 1 + 1.
    const MIN_SIZE: usize = 67;
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
        self.protocol.strict_encode(out)?;
        out.push(u8::from(self.init));
        Ok(())
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
            init: match u8::strict_decode(r)? {
                0 => false,
                1 => true,
                tag => return Err(StrictError::UnknownTag { ty: "init", tag }),
            },
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

fn list<T: Strict>(l: &[T], out: &mut Vec<u8>) -> Result<(), StrictError> {
    encode_len(l.len(), MAX_LIST, out)?;
    l.iter().try_for_each(|x| x.strict_encode(out))
}

fn unlist<T: Strict>(r: &mut Reader<'_>) -> Result<Vec<T>, StrictError> {
    let n = r.len_prefix(MAX_LIST, T::MIN_SIZE)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(T::strict_decode(r)?);
    }
    Ok(out)
}

fn opt_text(v: &Option<String>, out: &mut Vec<u8>) -> Result<(), StrictError> {
    match v {
        None => {
            out.push(0);
            Ok(())
        }
        Some(t) => {
            out.push(1);
            encode_string(t, MAX_TEXT, out)
        }
    }
}

fn un_opt_text(r: &mut Reader<'_>) -> Result<Option<String>, StrictError> {
    match u8::strict_decode(r)? {
        0 => Ok(None),
        1 => Ok(Some(decode_string(r, MAX_TEXT)?)),
        t => Err(StrictError::WrongOptionalEncoding(t)),
    }
}

/// A channel (docs/API.md `channel_info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    /// Channel id.
    pub channel_id: [u8; 32],
    /// The peer.
    pub peer: NodeId,
    /// Capacity (sat).
    pub capacity_sat: u64,
    /// Ours (msat): what we can send plus our reserve.
    pub local_msat: u64,
    /// Theirs (msat), the same way.
    pub remote_msat: u64,
    /// We funded it.
    pub outbound: bool,
    /// 0 pending (funding not deep enough), 1 ready, 2 offline (peer away), 3 closing.
    pub state: u8,
    /// Funding outpoint `txid:vout`.
    pub funding: Option<String>,
    /// Short channel id, once mined.
    pub scid: Option<u64>,
    /// Confirmations of the funding.
    pub confirmations: Option<u32>,
    /// Confirmations required.
    pub confirmations_required: Option<u32>,
}

impl Strict for ChannelInfo {
    const MIN_SIZE: usize = 32 + 33 + 8 * 3 + 2 + 4;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.channel_id.strict_encode(out)?;
        self.peer.strict_encode(out)?;
        self.capacity_sat.strict_encode(out)?;
        self.local_msat.strict_encode(out)?;
        self.remote_msat.strict_encode(out)?;
        self.outbound.strict_encode(out)?;
        self.state.strict_encode(out)?;
        opt_text(&self.funding, out)?;
        self.scid.strict_encode(out)?;
        self.confirmations.strict_encode(out)?;
        self.confirmations_required.strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(ChannelInfo {
            channel_id: Strict::strict_decode(r)?,
            peer: Strict::strict_decode(r)?,
            capacity_sat: Strict::strict_decode(r)?,
            local_msat: Strict::strict_decode(r)?,
            remote_msat: Strict::strict_decode(r)?,
            outbound: Strict::strict_decode(r)?,
            state: match u8::strict_decode(r)? {
                s @ 0..=3 => s,
                v => {
                    return Err(StrictError::NotAllowed {
                        field: "channel state",
                        value: v,
                        allowed: "0 to 3",
                    })
                }
            },
            funding: un_opt_text(r)?,
            scid: Strict::strict_decode(r)?,
            confirmations: Strict::strict_decode(r)?,
            confirmations_required: Strict::strict_decode(r)?,
        })
    }
}

/// A payment (docs/API.md `payment`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRecord {
    /// Payment hash.
    pub hash: [u8; 32],
    /// We pay (true) or are paid.
    pub outbound: bool,
    /// Amount (msat).
    pub amount_msat: u64,
    /// Fee paid (msat).
    pub fee_msat: Option<u64>,
    /// 0 pending, 1 succeeded, 2 failed.
    pub status: u8,
    /// Why it failed.
    pub reason: Option<String>,
    /// The preimage, once known.
    pub preimage: Option<[u8; 32]>,
    /// The payee (outbound).
    pub payee: Option<NodeId>,
    /// Made (unix seconds).
    pub created: u64,
    /// Last changed.
    pub updated: u64,
}

impl Strict for PaymentRecord {
    const MIN_SIZE: usize = 32 + 1 + 8 + 1 + 1 + 1 + 1 + 1 + 16;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.hash.strict_encode(out)?;
        self.outbound.strict_encode(out)?;
        self.amount_msat.strict_encode(out)?;
        self.fee_msat.strict_encode(out)?;
        self.status.strict_encode(out)?;
        opt_text(&self.reason, out)?;
        self.preimage.strict_encode(out)?;
        self.payee.strict_encode(out)?;
        self.created.strict_encode(out)?;
        self.updated.strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(PaymentRecord {
            hash: Strict::strict_decode(r)?,
            outbound: Strict::strict_decode(r)?,
            amount_msat: Strict::strict_decode(r)?,
            fee_msat: Strict::strict_decode(r)?,
            status: match u8::strict_decode(r)? {
                s @ 0..=2 => s,
                v => {
                    return Err(StrictError::NotAllowed {
                        field: "payment status",
                        value: v,
                        allowed: "0 to 2",
                    })
                }
            },
            reason: un_opt_text(r)?,
            preimage: Strict::strict_decode(r)?,
            payee: Strict::strict_decode(r)?,
            created: Strict::strict_decode(r)?,
            updated: Strict::strict_decode(r)?,
        })
    }
}

/// A channel or payment event (docs/API.md `channel_event`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelEventInfo {
    /// 0 channel pending, 1 channel ready, 2 channel closed, 3 payment received, 4 payment
    /// sent, 5 payment failed.
    pub kind: u8,
    /// The channel id, or the payment hash.
    pub id: [u8; 32],
    /// The peer, when known.
    pub peer: Option<NodeId>,
    /// Amount (msat; the fee for a sent payment), or 0.
    pub amount_msat: u64,
    /// A reason, a funding outpoint, or empty.
    pub text: String,
}

impl Strict for ChannelEventInfo {
    const MIN_SIZE: usize = 1 + 32 + 1 + 8 + 2;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.kind.strict_encode(out)?;
        self.id.strict_encode(out)?;
        self.peer.strict_encode(out)?;
        self.amount_msat.strict_encode(out)?;
        encode_string(&self.text, MAX_TEXT, out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        Ok(ChannelEventInfo {
            kind: match u8::strict_decode(r)? {
                k @ 0..=5 => k,
                v => {
                    return Err(StrictError::NotAllowed {
                        field: "channel event kind",
                        value: v,
                        allowed: "0 to 5",
                    })
                }
            },
            id: Strict::strict_decode(r)?,
            peer: Strict::strict_decode(r)?,
            amount_msat: Strict::strict_decode(r)?,
            text: decode_string(r, MAX_TEXT)?,
        })
    }
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
            init: false,
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
