//! Failure codes (docs/API.md section 8).

/// The message could not be decoded (truncated, bad field, trailing bytes).
pub const MALFORMED: u16 = 0x1000;
/// The message type id is not known to this node.
pub const UNKNOWN_TYPE: u16 = 0x1001;
/// A field or the message is above its size limit.
pub const TOO_LARGE: u16 = 0x1002;
/// A field decoded but its value is not allowed (e.g. a bad table name).
pub const INVALID_ARGUMENT: u16 = 0x1003;
/// No service with the destination id is on this bus.
pub const NO_ROUTE: u16 = 0x2000;
/// The destination is overloaded (mailbox or pending-request table full); retry later.
pub const BUSY: u16 = 0x2001;
/// A remote sender used the id of a service that lives inside the node.
pub const SPOOFED_SOURCE: u16 = 0x2002;
/// The request was not answered within the bus request timeout.
pub const TIMEOUT: u16 = 0x3000;
/// The destination does not handle this kind of message.
pub const UNEXPECTED: u16 = 0x4000;
/// The service failed (error or panic) while handling the request; it is being restarted.
pub const SERVICE_FAILED: u16 = 0x5000;
/// The node is shutting down.
pub const SHUTTING_DOWN: u16 = 0x5001;
/// The request is refused by configuration (e.g. `debug crash` without `--fault-injection`).
pub const REFUSED: u16 = 0x6000;
/// A named object (e.g. a service, a peer) does not exist.
pub const NOT_FOUND: u16 = 0x6001;
/// The name or id is already taken by someone else (e.g. a Storm app id).
pub const CONFLICT: u16 = 0x6002;
/// Stored data failed a check (e.g. a chunk whose hash is not its id).
pub const INVALID_DATA: u16 = 0x6003;
/// A peer connection failed or closed (connect refused, handshake failed, no pong, ...).
pub const PEER_FAILED: u16 = 0x7000;
