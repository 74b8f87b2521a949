//! Sans-I/O codecs and state machines: no sockets, no actix, no clock. Everything here is driven
//! by bytes in and bytes out (and time passed in), so unit tests and fuzz targets call it
//! directly. One folder per protocol, and `api/` for the bus frames and every node's message
//! set; what several of them use sits at the root.
//!
//! - [`ln`]: Lightning: the BOLT-8 handshake and transport, BOLT-1 messages, one peer session.
//! - [`bifrost`]: Bifrost (LNPBP-50) over Brontozaur: its messages and one peer session.
//! - [`btc`]: Bitcoin: the P2P message stream, one peer session, the header chain.
//! - [`storm`]: Storm: chunks and containers, and the Storm peer messages (storm-core 0.9).
//! - [`api`]: the bus and API (docs/API.md): frames, service ids, failure codes, the generic
//!   messages, one file per node's message set, samples of every type id, and the encrypted
//!   bus session of TCP endpoints.
//! - [`strict`]: strict encoding (docs/API.md section 4), the encoding of every bus frame.
//! - [`limits`]: the size limits every decoder checks before allocating, with their sources.
//! - [`network`]: the Bitcoin network as one typed value.
//! - [`node_id`]: a node's id (and a client's key), the one type for 33-byte public keys.
//! - [`hex_id`]: the macro fixed-size ids are declared with (node, chunk, container ids).
//! - [`session`]: what a peer session is to the connection driver, and how it ends.

pub mod api;
pub mod bifrost;
pub mod btc;
pub mod hex_id;
pub mod limits;
pub mod ln;
pub mod network;
pub mod node_id;
pub mod session;
pub mod storm;
pub mod strict;
