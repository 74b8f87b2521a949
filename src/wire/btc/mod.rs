//! Bitcoin P2P (v1 transport).
//!
//! - [`stream`]: the message stream (a push decoder over the `bitcoin` crate's types).
//! - [`peer`]: one Bitcoin peer connection (version/verack, pings, timers, framing rules).
//! - [`block`]: the checks a downloaded block passes (merkle root, CVE-2012-2459, BIP141).
//! - [`download`]: the block download scheduler (window, shares, stalls).
//! - [`headers`]: the header chain (PoW, retargets, time rules, best chain, reorgs).

pub mod block;
pub mod download;
pub mod headers;
pub mod peer;
pub mod stream;
