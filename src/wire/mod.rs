//! Sans-I/O codecs: no sockets, no actix, no clock. Everything here is driven by bytes in and
//! bytes out, so unit tests and fuzz targets call it directly.
//!
//! - [`strict`]: strict encoding (docs/API.md section 4), the encoding of every bus frame.
//! - [`msg`]: service ids, the generic bus/API messages, the `[src, dst, payload]` frame layout
//!   and the `message_set!` macro each node's set is declared with.
//! - [`btc`]: the Bitcoin P2P message stream (push decoder over the `bitcoin` crate's types).
//! - [`btc_peer`]: one Bitcoin peer connection (version/verack, pings, timers, framing rules).
//! - [`headers`]: the Bitcoin header chain (PoW, retargets, time rules, best chain, reorgs).
//! - [`bifrost`]: Bifrost (LNPBP-50) messages, carried over Brontozaur.
//! - [`bifrost_peer`]: one Bifrost connection (Brontozaur handshake, init, pings, app messages).
//! - [`bolt1`]: BOLT-1 messages, BigSize, TLV streams and feature bits.
//! - [`bolt8`]: the BOLT-8 Noise_XK handshake and encrypted transport (and Brontozaur framing).
//! - [`bp_api`]: the BP Node's messages (0x03xx) and their bodies.
//! - [`lnp_api`]: the LNP Node's messages (0x02xx) and their bodies.
//! - [`lnp_peer`]: one Lightning peer connection (handshake, `init`, pings, even/odd rule).
//! - [`network`]: the Bitcoin network as one typed value.
//! - [`session`]: the trait a peer session implements for the connection driver.
//! - [`limits`]: the size limits every decoder checks before allocating, with their sources.
//! - [`rgb_api`]: the RGB Node's messages (0x04xx).
//! - [`rpc_session`]: encrypted bus sessions over ZMQ TCP (Noise_XK acts, then Brontozaur).
//! - [`samples`]: one valid message of every API type id (tests, fuzz seeds, contract test).
//! - [`storm`], [`storm_api`]: Storm chunks and containers, and the Storm Node's messages (0x05xx).
//! - [`storm_p2p`]: Storm peer messages (storm-core 0.9), carried in Bifrost `msg` app 0x0001.

pub mod bifrost;
pub mod bifrost_peer;
pub mod bolt1;
pub mod bolt8;
pub mod bp_api;
pub mod btc;
pub mod btc_peer;
pub mod headers;
pub mod limits;
pub mod lnp_api;
pub mod lnp_peer;
pub mod msg;
pub mod network;
pub mod rgb_api;
pub mod rpc_session;
pub mod samples;
pub mod session;
pub mod storm;
pub mod storm_api;
pub mod storm_p2p;
pub mod strict;
