//! Limits of the wire layer, each with its source. Every decoder checks them before it
//! allocates; a config file may tighten one, never lift it. Together with `bus::limits` and
//! `actors::limits` this is the index of every limit in the node (docs/ARCHITECTURE.md).
//!
//! Related limits are derived from each other, and where one must fit inside another the
//! check is a compile-time assertion at the bottom of this file.

// ---- Bus and API messages (our own) ----

/// Longest service, bus or node name: names are identifiers, 64 bytes is ample and keeps a
/// service id frame small (tag + u16 + 64 = 67 bytes). Our own choice.
pub const MAX_SERVICE_NAME: usize = 64;

/// Longest human-readable text (progress, failure messages, endpoints): 4 KiB. Free text from a
/// peer or client is for logs and people, never for bulk data. Our own choice.
pub const MAX_TEXT: usize = 4096;

/// A BOLT-11 invoice: 7,089 bytes, the bound LDK's `lightning-invoice` puts on its bech32
/// text.
pub const MAX_INVOICE: usize = 7_089;

/// Most items in a list inside an API message (services, endpoints, peers): 1,024. A node runs
/// a few dozen services; the cap bounds decoding work to ~1,024 x (8 + 2 x 4 KiB) bytes at
/// worst, which the frame size limit of the bus (`bus::limits`) bounds further. Our own choice.
pub const MAX_LIST: usize = 1024;

/// Largest block or transaction carried in a BP message: a Bitcoin message can hold no more
/// (derived from [`BTC_MAX_MESSAGE`]).
pub const MAX_BLOB: usize = BTC_MAX_MESSAGE;

/// Longest output script a watch may name: 10,000 bytes (Core's `MAX_SCRIPT_SIZE`, the largest
/// script that can ever be spent; a longer output is unspendable).
pub const MAX_SCRIPT: usize = 10_000;

/// Bytes of a `block_data` body besides the block: height (4), hash (32), blob length (4).
pub const BLOCK_DATA_OVERHEAD: usize = 4 + 32 + 4;

/// Bytes of a bus payload before the body: type id (2) and request id (8).
pub const PAYLOAD_HEADER: usize = 2 + 8;

// ---- Bitcoin P2P (Bitcoin Core) ----

/// Largest Bitcoin message payload (Core `MAX_PROTOCOL_MESSAGE_LENGTH`, 4,000,000 bytes).
pub const BTC_MAX_MESSAGE: usize = 4_000_000;
/// Most inventory items in `inv`/`getdata`/`notfound` (Core `MAX_INV_SZ`).
pub const BTC_MAX_INV: usize = 50_000;
/// Most headers in one `headers` message (Core `MAX_HEADERS_RESULTS`).
pub const BTC_MAX_HEADERS: usize = 2_000;
/// Most addresses in one `addr`/`addrv2` message (Core `MAX_ADDR_TO_SEND`).
pub const BTC_MAX_ADDR: usize = 1_000;
/// Most headers known (best chain and side branches). Mainnet has ~0.95 M today; each costs
/// ~150 bytes in our index, so the cap bounds it to ~600 MB against a peer feeding forks.
/// Our own figure (it equals [`BTC_MAX_MESSAGE`] only by chance: a count, not bytes).
pub const MAX_HEADERS_KNOWN: usize = 4_000_000;

// ---- Lightning (BOLT-1, BOLT-8) ----

/// Largest BOLT-8 message (the 2-byte length prefix), BOLT-8 "Encrypting and Sending Messages".
pub const BOLT8_MAX_MESSAGE: usize = u16::MAX as usize;
/// BOLT-8 MAC length (Poly1305 tag).
pub const BOLT8_MAC: usize = 16;
/// Largest BOLT-8 packet on the wire: encrypted length (2 + MAC) and encrypted body (+ MAC),
/// 65,569 bytes.
pub const BOLT8_MAX_PACKET: usize = 2 + BOLT8_MAC + BOLT8_MAX_MESSAGE + BOLT8_MAC;
/// Largest Brontozaur message (the 3-byte length prefix, LNPBP-18): 16 MiB - 1. The framing
/// allows it; what a node buffers for one peer is bounded further by the service that reads it.
pub const BRONTOZAUR_MAX_MESSAGE: usize = 0xFF_FFFF;
/// Largest Bifrost message we receive (our own limit, far below Brontozaur's 16 MiB): a `msg`
/// with the largest payload its u16 length allows, 2 (type) + 2 (app) + 2 (length) + 65,535 =
/// 65,541 bytes. A longer packet is refused on its decrypted length, before its body is read.
pub const BIFROST_MAX_MESSAGE: usize = 2 + 2 + 2 + u16::MAX as usize;
/// Largest payload of a Lightning message after its 2-byte type (BOLT-1), 65,533 bytes.
pub const LN_MAX_PAYLOAD: usize = BOLT8_MAX_MESSAGE - 2;
/// Outstanding pings per Lightning peer (ours and the user's). Pongs carry no id, so they are
/// matched in order; a few in flight is plenty for RTT measurement. Our own choice.
pub const LN_MAX_PINGS_IN_FLIGHT: usize = 8;

// ---- Storm (storm-core 0.9, LNPBP-50 Bifrost) and the STORE bus (our own) ----

/// Largest Storm message: it travels as a Bifrost `msg` payload, a strict `bytes` with a u16
/// length (LNPBP-50), so 65,535 bytes.
pub const STORM_MAX_MESSAGE: usize = u16::MAX as usize;
/// Bytes of a `PushChunk` besides the chunk data: type (2), app (2), container id (32), chunk
/// id (32), chunk length (u24, 3).
pub const PUSH_CHUNK_OVERHEAD: usize = 2 + 2 + 32 + 32 + 3;
/// Largest chunk: one `PushChunk` must fit in one Storm message (derived), 65,464 bytes.
pub const MAX_CHUNK: usize = STORM_MAX_MESSAGE - PUSH_CHUNK_OVERHEAD;
/// The chunk size `containerize` uses: 60 KiB, under [`MAX_CHUNK`]. Our own choice.
pub const CONTAINER_CHUNK: usize = 60 * 1024;
/// Longest MIME type of a container header. Our own choice (RFC 6838 names are far shorter).
pub const MAX_MIME: usize = 128;
/// Longest description of a container header. Our own choice.
pub const MAX_INFO: usize = 1024;
/// Largest encoded container header.
pub const MAX_CONTAINER_HEADER: usize = 2 + 2 + MAX_MIME + 2 + MAX_INFO + 8;
/// Most chunks in one container: the container (header, u24 count, 32 bytes per id) must fit
/// in one Storm `PushContainer` (type, app) with room to spare (derived, rounded down to a
/// multiple of 64): 1,984 chunks, about 121 MB at [`CONTAINER_CHUNK`].
pub const MAX_CONTAINER_CHUNKS: usize =
    (STORM_MAX_MESSAGE - 4 - MAX_CONTAINER_HEADER - 3) / 32 / 64 * 64;
/// Longest STORE table name (1 to 64 bytes of `a-z 0-9 _ - .`, docs/API.md). Our own choice.
pub const MAX_TABLE_NAME: usize = 64;
/// Largest value in a STORE table: 1 MiB. Our own choice: values are records (RGB stash
/// entries, containers), bulk data is split into chunks. A value fits in one bus frame
/// (checked in `bus::limits`).
pub const MAX_VALUE: usize = 1 << 20;
/// Largest RGB consignment (binary or armored) in an API message or a Storm container: 4 MiB.
/// Our own choice: a NIA contract is about 4.5 kB, transfers with history grow; it bounds what
/// a stranger makes the node parse, and fits an API frame (checked in `bus::limits`).
pub const MAX_CONSIGNMENT: usize = 4 << 20;
/// Most ids in one `insert`, `check_unknown` or `list_ids` page: 8,192 (256 KiB of ids).
/// Our own choice.
pub const MAX_IDS: usize = 8192;
/// Largest app message payload on the STORM bus: one Storm message (derived).
pub const MAX_APP_PAYLOAD: usize = STORM_MAX_MESSAGE;
/// Largest body of a Storm `Post` (an app message to a peer): a Storm message (at most
/// [`STORM_MAX_MESSAGE`]) less the type, app, parent id, body length and empty container list.
pub const MAX_POST_BODY: usize = STORM_MAX_MESSAGE - 2 - 2 - 32 - 2 - 2;

const _: () = {
    // A Bifrost message fits the Brontozaur framing, and a Storm message fits a Bifrost msg.
    assert!(BIFROST_MAX_MESSAGE <= BRONTOZAUR_MAX_MESSAGE);
    assert!(2 + 2 + 2 + STORM_MAX_MESSAGE <= BIFROST_MAX_MESSAGE);
    // A Bitcoin message (block) fits in one `block_data` body.
    assert!(MAX_BLOB + BLOCK_DATA_OVERHEAD + PAYLOAD_HEADER > BTC_MAX_MESSAGE);
    // A Lightning message carried on the MSG bus fits under the strict-encoding length prefix.
    assert!(LN_MAX_PAYLOAD <= u16::MAX as usize);
    assert!(BOLT8_MAX_PACKET == 65_569);
    // A chunk and a full container each travel in one Storm message.
    assert!(MAX_CHUNK == 65_464);
    assert!(CONTAINER_CHUNK <= MAX_CHUNK);
    assert!(4 + MAX_CONTAINER_HEADER + 3 + 32 * MAX_CONTAINER_CHUNKS <= STORM_MAX_MESSAGE);
    // A container is a STORE value, and a chunk too.
    assert!(MAX_CONTAINER_HEADER + 3 + 32 * MAX_CONTAINER_CHUNKS <= MAX_VALUE);
    assert!(MAX_CHUNK <= MAX_VALUE);
    assert!(MAX_IDS <= u16::MAX as usize);
};
