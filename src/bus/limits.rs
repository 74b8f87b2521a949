//! Limits of the bus layer, each with its reason (docs/ARCHITECTURE.md, "Limits"). A config file may tighten
//! the ones it names, never lift them.

use std::time::Duration;

/// Largest ZMQ message accepted on the API bus: 5 MiB. The largest API message is a block
/// (`block_data`, at most `wire::limits::MAX_BLOB` bytes plus a 50-byte header; checked at
/// compile time below); libzmq drops the connection of
/// a peer that sends more (`ZMQ_MAXMSGSIZE`), before the bytes reach us.
pub const API_MAX_MSG: i64 = 5 << 20;

/// Largest ZMQ message on the other buses (ESB/RPC between services): 16 MiB, the Brontozaur
/// maximum (u24 length).
pub const ESB_MAX_MSG: i64 = 16 << 20;

/// ZMTP handshake deadline: 5 s instead of libzmq's 30 s, so a half-sent greeting is closed fast.
pub const HANDSHAKE_IVL_MS: i32 = 5_000;

/// Linger on close: at most 100 ms, so shutdown never waits on a dead peer.
pub const LINGER_MS: i32 = 100;

/// ZMTP heartbeat: ping every 5 s, drop a peer silent for 15 s (dead IPC/TCP peers are noticed).
pub const HEARTBEAT_IVL_MS: i32 = 5_000;
/// See [`HEARTBEAT_IVL_MS`].
pub const HEARTBEAT_TIMEOUT_MS: i32 = 15_000;

/// Queued messages per peer in each direction (libzmq's default, made explicit). A client that
/// does not read its notifications loses them beyond this; drops are counted.
pub const SOCKET_HWM: i32 = 1_000;

/// Queue between the node's services and a bus socket's thread.
pub const OUTLET_HWM: i32 = 10_000;

/// Remote senders remembered per bus (service id -> ZMQ routing id). Beyond it the least
/// recently seen is forgotten; it must send again before it can be reached.
pub const MAX_REMOTE_ROUTES: usize = 10_000;

/// Requests in flight per bus. Beyond it new requests get a `BUSY` failure at once.
pub const MAX_PENDING: usize = 10_000;

/// Requests in flight one source may hold on a bus by default (a quarter of
/// [`MAX_PENDING`]; config `bus.max_requests_per_source`): a local service by its id, a
/// connection of the bus socket (a client; an encrypted session on a TCP bus) by its routing
/// id. Beyond it that source gets `BUSY` at once; the others are still served.
pub const MAX_PENDING_PER_SOURCE: usize = MAX_PENDING / 4;

/// Default deadline for a request's final reply (config `bus.request_timeout_ms` may lower it).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Messages a socket thread reads in one burst before it looks at its outbound queue again, so
/// one chatty client cannot starve replies.
pub const READ_BURST: usize = 256;

/// Mailbox capacity of every service: messages beyond it get a `BUSY` failure (bounded, never
/// `do_send` on a path a peer drives).
pub const MAILBOX_CAPACITY: usize = 4_096;

const _: () = {
    use crate::wire::limits::{BLOCK_DATA_OVERHEAD, MAX_BLOB, MAX_SERVICE_NAME, PAYLOAD_HEADER};
    // The largest API reply, a block, fits in one API message with both id frames.
    let ids = 2 * (3 + MAX_SERVICE_NAME);
    assert!(API_MAX_MSG as usize >= MAX_BLOB + BLOCK_DATA_OVERHEAD + PAYLOAD_HEADER + ids);
    assert!(ESB_MAX_MSG >= API_MAX_MSG);
    // A STORE value (the largest Storm body) fits in one API message, so `stored` answers there too.
    use crate::wire::limits::MAX_VALUE;
    assert!(API_MAX_MSG as usize >= MAX_VALUE + 4 + 2 + 64 + 32 + PAYLOAD_HEADER + ids);
};
