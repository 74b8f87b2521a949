//! Bifrost (LNPBP-50, as lnp-core 0.9 speaks it) over Brontozaur.
//!
//! - [`msg`]: the Bifrost messages and their strict encoding.
//! - [`peer`]: one Bifrost connection (handshake, `init`, pings, app messages).

pub mod msg;
pub mod peer;
