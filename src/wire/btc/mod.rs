//! Bitcoin P2P (v1 transport).
//!
//! - [`stream`]: the message stream (a push decoder over the `bitcoin` crate's types).
//! - [`peer`]: one Bitcoin peer connection (version/verack, pings, timers, framing rules).
//! - [`headers`]: the header chain (PoW, retargets, time rules, best chain, reorgs).

pub mod headers;
pub mod peer;
pub mod stream;
