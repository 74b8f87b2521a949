//! Lightning channels through LDK (`lightning` 0.2): the engine `channeld` runs
//! ([`engine`]), the channel messages at the peer boundary ([`codec`]) and LDK's persistence
//! over our `Storage` ([`store`]). No bus, no actix: `actors/lnp/channeld.rs` feeds it peers,
//! blocks and time, and carries out what it returns.

pub mod codec;
#[cfg(feature = "channels")]
pub mod engine;
pub mod store;
