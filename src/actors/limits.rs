//! Limits of the actor layer (services, peer connections), each with its source. With
//! `wire::limits` and `bus::limits` this is the index of every limit in the node
//! (docs/ARCHITECTURE.md). Where one must fit inside another, a compile-time assertion at the
//! bottom says so.

use crate::wire::limits::{BOLT8_MAX_PACKET, BTC_MAX_MESSAGE};
use std::time::Duration;

// ---- Peer connections (the connection driver, actors::conn) ----

/// Bytes read per socket read: one maximal BOLT-8 packet (65,569 bytes) fits, so a Lightning
/// message never needs two reads (derived from `wire::limits::BOLT8_MAX_PACKET`).
pub const READ_CHUNK: usize = BOLT8_MAX_PACKET;

/// Mailbox of a connection actor: the reader awaits room, so unprocessed input per peer is at
/// most 16 x [`READ_CHUNK`] (about 1 MiB). Our own choice, the same order as Core's 5 MB
/// receive buffer.
pub const CONN_MAILBOX: usize = 16;

/// Bytes waiting to be written to one peer before its input is paused: 1 MiB (Core's send
/// buffer; LDK pauses reading at 12 queued messages).
pub const MAX_QUEUED_OUT: usize = 1 << 20;

/// After a close, queued bytes (a last `warning`) get this long to reach the peer before the
/// socket is dropped regardless. Our own choice.
pub const FLUSH_GRACE: Duration = Duration::from_secs(1);

// ---- Subscriptions ----

/// Subscribers of one kind of notification at once (service events; BLOCKS events); beyond
/// it `subscribe` gets `BUSY`. Our own choice: each costs one bus message per event.
pub const MAX_SUBSCRIBERS: usize = 256;

/// Services subscribed to Lightning message types on the MSG bus at once. Our own choice.
pub const MAX_PEER_SUBSCRIPTIONS: usize = 64;

/// Services listening for one kind of a node's own notifications at once (Storm chat
/// messages and transfers, RGB contracts received). Our own choice.
pub const MAX_LISTENERS: usize = 64;

// ---- Bitcoin peers (Bitcoin Core) ----

/// `headers` messages in a row that do not connect: at this many the peer is discouraged
/// (Core's former `MAX_UNCONNECTING_HEADERS`).
pub const MAX_UNCONNECTING: u32 = 10;

/// How long a discouraged address is refused (Core keeps its discouragement filter ~24 h).
pub const DISCOURAGE_FOR: Duration = Duration::from_secs(24 * 3600);

/// Transactions kept to answer `getdata` after `broadcast`. Our own choice.
pub const MAX_TXS: usize = 1_000;

/// Bytes of recent blocks the BP node keeps in memory (the last ones indexed or fetched for a
/// client), so that `get_tx` of a recent transaction needs no peer: 32 MiB, about the last
/// 16-20 mainnet blocks, or all of a small regtest chain. Our own choice.
pub const RECENT_BLOCKS_BYTES: usize = 32 << 20;

// ---- Storm: STORE writes, containers, apps ----

/// Writes waiting for the `stored` writer; beyond it a write gets `BUSY` at once. Our own
/// choice: with values up to 1 MiB this bounds queued data near 1 GiB in the worst case and
/// ~1 MiB with the usual 1 KiB records.
pub const STORE_WRITE_QUEUE: usize = 1_024;

/// Most writes committed in one transaction (group commit). Our own choice: enough for many
/// clients to share one fsync, small enough that one batch's replies do not wait long.
pub const STORE_MAX_BATCH: usize = 256;

/// Container checks (`containerize`, `assemble`) running at once, each on its own thread;
/// beyond it the request gets `BUSY`. Our own choice (each reads up to ~121 MB).
pub const MAX_CONTAINER_JOBS: usize = 4;

/// Apps registered on the STORM bus at once; beyond it `register_app` gets `BUSY`.
pub const MAX_APPS: usize = 256;

// ---- BP signer ----

/// PSBTs `signd` signs at once, each on its own thread; beyond it `sign_psbt` gets `BUSY`.
/// Our own choice: the machine has 2 cores, and a PSBT is at most one 4 MB blob.
pub const MAX_SIGN_JOBS: usize = 2;

const _: () = {
    // A maximal BOLT-8 packet fits in one read (the comment above promises it).
    assert!(READ_CHUNK >= BOLT8_MAX_PACKET);
    // The mailbox bound keeps unprocessed input per peer near Core's 5 MB receive buffer.
    assert!(CONN_MAILBOX * READ_CHUNK <= 5_000_000);
    // A block we serve may exceed the output bound: it is written, and input pauses meanwhile.
    assert!(MAX_QUEUED_OUT < BTC_MAX_MESSAGE);
};
