//! Storm (storm-core 0.9).
//!
//! - [`container`]: chunks and containers, their ids and strict encoding.
//! - [`p2p`]: the Storm peer messages, carried in Bifrost `msg` app 0x0001.

pub mod container;
pub mod p2p;
