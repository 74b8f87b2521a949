//! The bus and the API, as docs/API.md gives them, one file per part of it:
//!
//! - [`frame`]: the three frames `[src, dst, payload]` (section 2) and their decoding errors.
//! - [`service`]: service ids (section 3).
//! - [`msg`]: the generic messages (section 5), the `message_set!` macro and the API version
//!   (section 12).
//! - [`code`]: failure codes (section 8).
//! - [`lnp`], [`bp`], [`rgb`], [`storm`]: each node's message set (section 5, "LNP requests", …).
//! - [`samples`]: one valid message of every type id (tests, fuzz seeds, the contract test).
//! - [`session`]: the encrypted bus session of TCP endpoints (section 13).
//!
//! The generic types are re-exported here: `wire::api::{Envelope, Msg, ServiceId, code}`.

pub mod bp;
pub mod code;
pub mod frame;
pub mod lnp;
pub mod msg;
pub mod rgb;
pub mod samples;
pub mod service;
pub mod session;
pub mod storm;

pub use code::{ApiError, Code};
#[cfg(test)]
pub(crate) use frame::testing;
pub use frame::{payload_of, BodyError, Envelope, FrameError};
pub(crate) use msg::message_set;
pub use msg::{
    decode_details, encode_details, type_id, Detail, EndpointInfo, Msg, MsgKind, NodeInfo,
    ServiceEvent, ServiceInfo, ServiceState, API_VERSION,
};
pub use service::{ServiceId, ServiceName};
