//! Failure codes (docs/API.md section 8) and the error a request fails with: a [`Code`] and
//! its message. A failure on the wire is exactly an [`ApiError`] (`code: u16`, `message:
//! string`); the constants below are the codes a node sends, and a client keeps any other
//! value as it came.

use crate::wire::strict::{Reader, Strict, StrictError};
use std::fmt;

/// A failure code. Compares with a bare `u16` (`code == 0x2001`), shows as `0x2001`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(pub u16);

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)
    }
}

impl fmt::LowerHex for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl PartialEq<u16> for Code {
    fn eq(&self, other: &u16) -> bool {
        self.0 == *other
    }
}

impl From<Code> for u16 {
    fn from(c: Code) -> u16 {
        c.0
    }
}

impl Strict for Code {
    const MIN_SIZE: usize = 2;
    fn strict_encode(&self, out: &mut Vec<u8>) -> Result<(), StrictError> {
        self.0.strict_encode(out)
    }
    fn strict_decode(r: &mut Reader<'_>) -> Result<Self, StrictError> {
        u16::strict_decode(r).map(Code)
    }
}

/// Why a request failed: the body of a `failure` reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// What a client may act on.
    pub code: Code,
    /// Why, for a person.
    pub message: String,
}

impl ApiError {
    /// A failure with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// The same failure with `context` put before its message ("the Storm node: …").
    pub fn context(mut self, context: &str) -> ApiError {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failure {}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The message could not be decoded (truncated, bad field, trailing bytes).
pub const MALFORMED: Code = Code(0x1000);
/// The message type id is not known to this node.
pub const UNKNOWN_TYPE: Code = Code(0x1001);
/// A field or the message is above its size limit.
pub const TOO_LARGE: Code = Code(0x1002);
/// A field decoded but its value is not allowed (e.g. a bad table name).
pub const INVALID_ARGUMENT: Code = Code(0x1003);
/// No service with the destination id is on this bus.
pub const NO_ROUTE: Code = Code(0x2000);
/// The destination is overloaded (mailbox or pending-request table full); retry later.
pub const BUSY: Code = Code(0x2001);
/// A remote sender used the id of a service that lives inside the node.
pub const SPOOFED_SOURCE: Code = Code(0x2002);
/// The request was not answered within the bus request timeout.
pub const TIMEOUT: Code = Code(0x3000);
/// The destination does not handle this kind of message.
pub const UNEXPECTED: Code = Code(0x4000);
/// The service failed (error or panic) while handling the request; it is being restarted.
pub const SERVICE_FAILED: Code = Code(0x5000);
/// The node is shutting down.
pub const SHUTTING_DOWN: Code = Code(0x5001);
/// The request is refused by configuration (e.g. `debug crash` without `--fault-injection`).
pub const REFUSED: Code = Code(0x6000);
/// A named object (e.g. a service, a peer) does not exist.
pub const NOT_FOUND: Code = Code(0x6001);
/// The name or id is already taken by someone else (e.g. a Storm app id).
pub const CONFLICT: Code = Code(0x6002);
/// Stored data failed a check (e.g. a chunk whose hash is not its id).
pub const INVALID_DATA: Code = Code(0x6003);
/// A peer connection failed or closed (connect refused, handshake failed, no pong, ...).
pub const PEER_FAILED: Code = Code(0x7000);
