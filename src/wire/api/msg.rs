//! The generic message set (docs/API.md section 5): replies, subscriptions, service events,
//! `info`, `debug_crash`, the allow-list requests, and one variant per node wrapping that node's
//! set; the `message_set!` macro each node's set is declared with; the API version.

use super::bp::BpMsg;
use super::code::{ApiError, Code};
use super::lnp::LnpMsg;
use super::rgb::RgbMsg;
use super::storm::StormMsg;
use super::BodyError;
use crate::wire::limits;
use crate::wire::node_id::NodeId;
use crate::wire::strict::{
    self, decode_string, encode_len, encode_string, Reader, Strict, StrictError,
};

/// Declares a node's message set (one edit per new message, plus its body in `encode_body`
/// and `decode_body` next to it): the enum, every variant's type id and [`MsgKind`], the list of
/// its type ids, and a compile-time check that each id is in the set's range.
///
/// ```ignore
/// message_set! {
///     /// The LNP Node's messages.
///     pub enum LnpMsg: 0x02 {
///         /// Request: list the peers.
///         ListPeers = 0x0203 as Request,
///     }
/// }
/// ```
macro_rules! message_set {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $range:literal {
            $(
                $(#[$vmeta:meta])*
                $variant:ident
                $( ( $($tty:ty),* $(,)? ) )?
                $( { $( $(#[$fmeta:meta])* $field:ident : $fty:ty ),* $(,)? } )?
                = $id:literal as $kind:ident
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum $name {
            $(
                $(#[$vmeta])*
                $variant
                $( ( $($tty),* ) )?
                $( { $( $(#[$fmeta])* $field : $fty ),* } )?,
            )*
        }

        impl $name {
            /// The high byte of every type id of this set (docs/API.md, section 3).
            pub const RANGE: u8 = $range;
            /// Every type id of this set, in declaration order.
            pub const TYPE_IDS: &'static [u16] = &[$($id),*];

            /// The type id of this message.
            pub fn type_id(&self) -> u16 {
                match self {
                    $( $name::$variant { .. } => $id, )*
                }
            }

            /// Whether this message opens, continues, ends a request, or stands alone.
            pub fn kind(&self) -> $crate::wire::api::MsgKind {
                match self {
                    $( $name::$variant { .. } => $crate::wire::api::MsgKind::$kind, )*
                }
            }
        }

        const _: () = {
            $( assert!($id >> 8 == $range as u16, "type id outside the set's range"); )*
        };
    };
}
pub(crate) use message_set;

/// The version of the API this node speaks, shown by `info` as the detail `api_version`
/// (docs/API.md section 12 lists what changed in each).
///
/// 1: the first release. 2: `listen` answers `listening` (the bound address) and `broadcast`
/// answers `broadcasted` (txid and peer count) instead of text in `success`; notifications
/// sent to a service are refused with `0x4000`; bad `listen` addresses and node ids are `0x1003`.
/// 3: `info` shows only the refusal counters that concern the node (an LNP node has no
/// `storm_refused`). 4: the BP node's transaction index (`get_tx`, `tx_info`; `indexed`,
/// `indexed_txs`, `download` in `info`).
pub const API_VERSION: u16 = 6;

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
    use limits::{MAX_LIST, MAX_SERVICE_NAME, MAX_TEXT};
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
    use limits::{MAX_LIST, MAX_SERVICE_NAME, MAX_TEXT};
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

/// Lifecycle state of a supervised service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceState {
    /// Started and handling messages.
    Running = 0,
    /// Failed and not yet running again.
    Restarting = 1,
    /// Stopped (node shutdown or escalation).
    Stopped = 2,
}

impl ServiceState {
    /// The lower-case name used in `info` output.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Running => "running",
            ServiceState::Restarting => "restarting",
            ServiceState::Stopped => "stopped",
        }
    }
}

impl Strict for ServiceState {
    const MIN_SIZE: usize = 1;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        (*self as u8).strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        match u8::strict_decode(r)? {
            0 => Ok(ServiceState::Running),
            1 => Ok(ServiceState::Restarting),
            2 => Ok(ServiceState::Stopped),
            tag => Err(StrictError::UnknownTag {
                ty: "service state",
                tag,
            }),
        }
    }
}

/// One service as reported by `info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Service name, e.g. `lnpd`, `api-router`, `msg-bridge`.
    pub name: String,
    /// Current state.
    pub state: ServiceState,
    /// How many times it was restarted since the node started.
    pub restarts: u32,
    /// Cause of the last failure, if any.
    pub last_failure: Option<String>,
}

/// One bound bus endpoint as reported by `info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointInfo {
    /// Bus name in lower case (`api`, `msg`, ...).
    pub bus: String,
    /// The ZMQ endpoint string (`ipc:///home/me/.lnp/api`).
    pub endpoint: String,
}

/// Reply to `info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// `lnp`, `bp`, `rgb` or `storm`.
    pub node: String,
    /// Version of nodectl.
    pub version: String,
    /// `bitcoin`, `testnet`, `testnet4`, `signet` or `regtest`.
    pub network: String,
    /// Compressed secp256k1 public key of the node.
    pub node_id: NodeId,
    /// Seconds since the node started.
    pub uptime_s: u64,
    /// Every bound bus endpoint.
    pub endpoints: Vec<EndpointInfo>,
    /// Every supervised service.
    pub services: Vec<ServiceInfo>,
    /// Node-specific values (LNP: `listening`, `peers`), in a fixed order per node.
    pub details: Vec<(String, Detail)>,
}

/// A notification about a service's lifecycle, sent to `subscribe`rs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEvent {
    /// Service name.
    pub service: String,
    /// Its new state.
    pub state: ServiceState,
    /// Its restart count.
    pub restarts: u32,
    /// The failure that caused the change, if any.
    pub cause: Option<String>,
}

/// Every message that travels on a bus. The generic messages (0x00xx, 0x01xx) are variants
/// here; each node's messages are one variant wrapping that node's message set, which owns its
/// type-id range (docs/API.md section 3): 0x02xx LNP ([`LnpMsg`]), 0x03xx BP ([`BpMsg`]),
/// 0x04xx RGB ([`RgbMsg`]) and 0x05xx Storm ([`StormMsg`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// 0x0001, final reply: done, with an optional human-readable message.
    Success(Option<String>),
    /// 0x0002, final reply: failed, with a code of [`super::code`] and a message.
    Failure {
        /// One of [`super::code`] (or any code, from another node).
        code: Code,
        /// Human-readable reason.
        message: String,
    },
    /// 0x0003, intermediate reply: progress of a long request (any number before the final one).
    Progress(String),
    /// 0x0010, request: subscribe the sender to notifications (echo this request id).
    Subscribe,
    /// 0x0011, request: end the subscription.
    Unsubscribe,
    /// 0x0020, notification: a service changed state.
    ServiceEvent(ServiceEvent),
    /// 0x0100, request: node information.
    GetInfo,
    /// 0x0101, final reply to `GetInfo`.
    NodeInfo(NodeInfo),
    /// 0x01F0, request: make a service panic inside a handler (needs `--fault-injection`).
    DebugCrash {
        /// Service name as listed by `info`.
        service: String,
    },
    /// 0x0120, request (local API only): allow a client key on the node's TCP buses.
    RpcAllow(NodeId),
    /// 0x0121, request (local API only): revoke a client key.
    RpcRevoke(NodeId),
    /// 0x0122, request: the allowed client keys.
    RpcList,
    /// 0x0123, final reply to `RpcList`.
    RpcAllowList(Vec<NodeId>),
    /// 0x02xx: the LNP Node's messages.
    Lnp(LnpMsg),
    /// 0x03xx: the BP Node's messages.
    Bp(BpMsg),
    /// 0x04xx: the RGB Node's messages.
    Rgb(RgbMsg),
    /// 0x05xx: the Storm Node's messages.
    Storm(StormMsg),
}

impl From<ApiError> for Msg {
    fn from(e: ApiError) -> Msg {
        Msg::failure(e.code, e.message)
    }
}

impl From<LnpMsg> for Msg {
    fn from(m: LnpMsg) -> Msg {
        Msg::Lnp(m)
    }
}

impl From<BpMsg> for Msg {
    fn from(m: BpMsg) -> Msg {
        Msg::Bp(m)
    }
}

impl From<RgbMsg> for Msg {
    fn from(m: RgbMsg) -> Msg {
        Msg::Rgb(m)
    }
}

impl From<StormMsg> for Msg {
    fn from(m: StormMsg) -> Msg {
        Msg::Storm(m)
    }
}

/// How a message relates to requests (decides the router's bookkeeping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgKind {
    /// Expects exactly one final reply.
    Request,
    /// Ends a request.
    Final,
    /// Precedes the final reply.
    Progress,
    /// One-way (notifications, events).
    OneWay,
}

/// Type ids of the generic messages (docs/API.md). Each node's set owns one range of high
/// bytes: 0x02 LNP, 0x03 BP, 0x04 RGB, 0x05 Storm.
pub mod type_id {
    /// Final reply: success.
    pub const SUCCESS: u16 = 0x0001;
    /// Final reply: failure.
    pub const FAILURE: u16 = 0x0002;
    /// Progress.
    pub const PROGRESS: u16 = 0x0003;
    /// Subscribe request.
    pub const SUBSCRIBE: u16 = 0x0010;
    /// Unsubscribe request.
    pub const UNSUBSCRIBE: u16 = 0x0011;
    /// Service event notification.
    pub const SERVICE_EVENT: u16 = 0x0020;
    /// Info request.
    pub const GET_INFO: u16 = 0x0100;
    /// Info reply.
    pub const NODE_INFO: u16 = 0x0101;
    /// Debug crash request.
    pub const DEBUG_CRASH: u16 = 0x01F0;
    /// Allow a client key (local API only).
    pub const RPC_ALLOW: u16 = 0x0120;
    /// Revoke a client key (local API only).
    pub const RPC_REVOKE: u16 = 0x0121;
    /// List the allowed client keys.
    pub const RPC_LIST: u16 = 0x0122;
    /// The allowed client keys.
    pub const RPC_ALLOW_LIST: u16 = 0x0123;
    /// Every generic type id (the node sets list theirs in `TYPE_IDS`).
    pub const GENERIC: &[u16] = &[
        SUCCESS,
        FAILURE,
        PROGRESS,
        SUBSCRIBE,
        UNSUBSCRIBE,
        SERVICE_EVENT,
        GET_INFO,
        NODE_INFO,
        DEBUG_CRASH,
        RPC_ALLOW,
        RPC_REVOKE,
        RPC_LIST,
        RPC_ALLOW_LIST,
    ];
}

impl Msg {
    /// The type id of this message.
    pub fn type_id(&self) -> u16 {
        match self {
            Msg::Success(_) => type_id::SUCCESS,
            Msg::Failure { .. } => type_id::FAILURE,
            Msg::Progress(_) => type_id::PROGRESS,
            Msg::Subscribe => type_id::SUBSCRIBE,
            Msg::Unsubscribe => type_id::UNSUBSCRIBE,
            Msg::ServiceEvent(_) => type_id::SERVICE_EVENT,
            Msg::GetInfo => type_id::GET_INFO,
            Msg::NodeInfo(_) => type_id::NODE_INFO,
            Msg::DebugCrash { .. } => type_id::DEBUG_CRASH,
            Msg::RpcAllow(_) => type_id::RPC_ALLOW,
            Msg::RpcRevoke(_) => type_id::RPC_REVOKE,
            Msg::RpcList => type_id::RPC_LIST,
            Msg::RpcAllowList(_) => type_id::RPC_ALLOW_LIST,
            Msg::Lnp(m) => m.type_id(),
            Msg::Bp(m) => m.type_id(),
            Msg::Rgb(m) => m.type_id(),
            Msg::Storm(m) => m.type_id(),
        }
    }

    /// Whether this message opens, continues, ends a request, or stands alone.
    pub fn kind(&self) -> MsgKind {
        match self {
            Msg::Subscribe
            | Msg::Unsubscribe
            | Msg::GetInfo
            | Msg::DebugCrash { .. }
            | Msg::RpcAllow(_)
            | Msg::RpcRevoke(_)
            | Msg::RpcList => MsgKind::Request,
            Msg::Success(_) | Msg::Failure { .. } | Msg::NodeInfo(_) | Msg::RpcAllowList(_) => {
                MsgKind::Final
            }
            Msg::Progress(_) => MsgKind::Progress,
            Msg::ServiceEvent(_) => MsgKind::OneWay,
            Msg::Lnp(m) => m.kind(),
            Msg::Bp(m) => m.kind(),
            Msg::Rgb(m) => m.kind(),
            Msg::Storm(m) => m.kind(),
        }
    }

    /// Shorthand for a failure reply.
    pub fn failure(code: Code, message: impl Into<String>) -> Msg {
        let mut message = message.into();
        truncate_utf8(&mut message, limits::MAX_TEXT);
        Msg::Failure { code, message }
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        let text = |s: &str, out: &mut Vec<u8>| encode_string(s, limits::MAX_TEXT, out);
        match self {
            Msg::Success(msg) => match msg {
                None => 0u8.strict_encode(out),
                Some(s) => {
                    out.push(1);
                    text(s, out)
                }
            },
            Msg::Failure { code, message } => {
                code.strict_encode(out)?;
                text(message, out)
            }
            Msg::Progress(s) => text(s, out),
            Msg::Subscribe | Msg::Unsubscribe | Msg::GetInfo | Msg::RpcList => Ok(()),
            Msg::RpcAllow(k) | Msg::RpcRevoke(k) => k.strict_encode(out),
            Msg::RpcAllowList(keys) => {
                encode_len(keys.len(), limits::MAX_LIST, out)?;
                keys.iter().try_for_each(|k| k.strict_encode(out))
            }
            Msg::ServiceEvent(ev) => {
                encode_string(&ev.service, limits::MAX_SERVICE_NAME, out)?;
                ev.state.strict_encode(out)?;
                ev.restarts.strict_encode(out)?;
                encode_opt_text(&ev.cause, out)
            }
            Msg::NodeInfo(info) => encode_info(info, out),
            Msg::DebugCrash { service } => encode_string(service, limits::MAX_SERVICE_NAME, out),
            Msg::Lnp(m) => m.encode_body(out),
            Msg::Bp(m) => m.encode_body(out),
            Msg::Rgb(m) => m.encode_body(out),
            Msg::Storm(m) => m.encode_body(out),
        }
    }

    pub(crate) fn decode_body(type_id: u16, r: &mut Reader<'_>) -> Result<Msg, BodyError> {
        let text = |r: &mut Reader<'_>| decode_string(r, limits::MAX_TEXT);
        let name = |r: &mut Reader<'_>| decode_string(r, limits::MAX_SERVICE_NAME);
        let msg = match type_id {
            type_id::SUCCESS => Msg::Success(decode_opt_text(r)?),
            type_id::FAILURE => Msg::Failure {
                code: Code::strict_decode(r)?,
                message: text(r)?,
            },
            type_id::PROGRESS => Msg::Progress(text(r)?),
            type_id::SUBSCRIBE => Msg::Subscribe,
            type_id::UNSUBSCRIBE => Msg::Unsubscribe,
            type_id::SERVICE_EVENT => Msg::ServiceEvent(ServiceEvent {
                service: name(r)?,
                state: ServiceState::strict_decode(r)?,
                restarts: u32::strict_decode(r)?,
                cause: decode_opt_text(r)?,
            }),
            type_id::GET_INFO => Msg::GetInfo,
            type_id::NODE_INFO => Msg::NodeInfo(decode_info(r)?),
            type_id::DEBUG_CRASH => Msg::DebugCrash { service: name(r)? },
            type_id::RPC_ALLOW => Msg::RpcAllow(NodeId::strict_decode(r)?),
            type_id::RPC_REVOKE => Msg::RpcRevoke(NodeId::strict_decode(r)?),
            type_id::RPC_LIST => Msg::RpcList,
            type_id::RPC_ALLOW_LIST => {
                let n = r.len_prefix(limits::MAX_LIST, 33)?;
                let mut keys = Vec::with_capacity(n);
                for _ in 0..n {
                    keys.push(NodeId::strict_decode(r)?);
                }
                Msg::RpcAllowList(keys)
            }
            t if t >> 8 == u16::from(LnpMsg::RANGE) => Msg::Lnp(LnpMsg::decode_body(t, r)?),
            t if t >> 8 == u16::from(BpMsg::RANGE) => Msg::Bp(BpMsg::decode_body(t, r)?),
            t if t >> 8 == u16::from(RgbMsg::RANGE) => Msg::Rgb(RgbMsg::decode_body(t, r)?),
            t if t >> 8 == u16::from(StormMsg::RANGE) => Msg::Storm(StormMsg::decode_body(t, r)?),
            other => return Err(BodyError::UnknownType(other)),
        };
        r.finish()?;
        Ok(msg)
    }
}

fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

fn encode_opt_text(s: &Option<String>, out: &mut Vec<u8>) -> Result<(), StrictError> {
    match s {
        None => 0u8.strict_encode(out),
        Some(s) => {
            out.push(1);
            encode_string(s, limits::MAX_TEXT, out)
        }
    }
}

fn decode_opt_text(r: &mut Reader<'_>) -> Result<Option<String>, StrictError> {
    match u8::strict_decode(r)? {
        0 => Ok(None),
        1 => Ok(Some(decode_string(r, limits::MAX_TEXT)?)),
        t => Err(StrictError::WrongOptionalEncoding(t)),
    }
}

fn encode_info(info: &NodeInfo, out: &mut Vec<u8>) -> Result<(), StrictError> {
    let short = |s: &str, out: &mut Vec<u8>| encode_string(s, limits::MAX_SERVICE_NAME, out);
    short(&info.node, out)?;
    short(&info.version, out)?;
    short(&info.network, out)?;
    info.node_id.strict_encode(out)?;
    info.uptime_s.strict_encode(out)?;
    strict::encode_len(info.endpoints.len(), limits::MAX_LIST, out)?;
    for ep in &info.endpoints {
        short(&ep.bus, out)?;
        encode_string(&ep.endpoint, limits::MAX_TEXT, out)?;
    }
    strict::encode_len(info.services.len(), limits::MAX_LIST, out)?;
    for svc in &info.services {
        short(&svc.name, out)?;
        svc.state.strict_encode(out)?;
        svc.restarts.strict_encode(out)?;
        encode_opt_text(&svc.last_failure, out)?;
    }
    encode_details(&info.details, out)
}

fn decode_info(r: &mut Reader<'_>) -> Result<NodeInfo, StrictError> {
    let short = |r: &mut Reader<'_>| decode_string(r, limits::MAX_SERVICE_NAME);
    let node = short(r)?;
    let version = short(r)?;
    let network = short(r)?;
    let node_id = NodeId::strict_decode(r)?;
    let uptime_s = u64::strict_decode(r)?;
    // An endpoint takes at least 4 bytes (two empty strings), a service at least 8.
    let n = r.len_prefix(limits::MAX_LIST, 4)?;
    let mut endpoints = Vec::with_capacity(n);
    for _ in 0..n {
        endpoints.push(EndpointInfo {
            bus: short(r)?,
            endpoint: decode_string(r, limits::MAX_TEXT)?,
        });
    }
    let n = r.len_prefix(limits::MAX_LIST, 8)?;
    let mut services = Vec::with_capacity(n);
    for _ in 0..n {
        services.push(ServiceInfo {
            name: short(r)?,
            state: ServiceState::strict_decode(r)?,
            restarts: u32::strict_decode(r)?,
            last_failure: decode_opt_text(r)?,
        });
    }
    Ok(NodeInfo {
        node,
        version,
        network,
        node_id,
        uptime_s,
        endpoints,
        services,
        details: decode_details(r)?,
    })
}
