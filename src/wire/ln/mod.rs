//! Lightning (BOLT-1 over BOLT-8).
//!
//! - [`bolt8`]: the Noise_XK handshake acts and the encrypted transport (BOLT-8 framing, and
//!   Brontozaur's 3-byte lengths for Bifrost and the encrypted bus).
//! - [`handshake`]: the one driver of the handshake, act by act, for every session that runs it.
//! - [`keepalive`]: the act and `init` deadline, idle pings and pong deadlines of a session.
//! - [`bolt1`]: BOLT-1 messages, BigSize, TLV streams and feature bits.
//! - [`peer`]: one Lightning peer connection (handshake, `init`, pings, the even/odd rule).

pub mod bolt1;
pub mod bolt8;
pub mod handshake;
pub mod keepalive;
pub mod peer;
