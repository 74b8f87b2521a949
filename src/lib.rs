//! LNP/BP nodes: one crate that runs the LNP, BP, RGB or Storm node as supervised actix services
//! talking over ZeroMQ buses.
//!
//! # Layout
//!
//! Arrows only go downward: `bin -> actors -> storage -> bus -> wire`, and `actors -> signer`.
//!
//! - [`wire`]: sans-I/O codecs (strict encoding, bus/API messages, BOLT-8 transport, BOLT-1
//!   messages). No actix, no zmq, no clock.
//! - [`bus`]: service addressing, the ESB router of each bus, the ZMQ socket bridges, a client.
//! - [`storage`]: tables, chunks and sets behind one interface: embedded (redb) or the STORE
//!   RPC of a Storm node.
//! - [`actors`]: the root supervisor, the service wrapper that turns errors and panics into
//!   supervised restarts, the router/bridge/manager services, and one module per node.
//! - [`signer`]: the BP node's keys (BIP39, BIP32, BIP84/BIP86 accounts) and PSBT signing; no
//!   I/O but its key file.
//! - [`guard`]: the panic policy shared by the layers above.
//! - [`lograte`]: rate-limited log lines for events strangers can repeat (every layer but
//!   `wire`).
//!
//! # Errors
//!
//! Decoders return small enums (`StrictError`, `FrameError`) because bad input is a normal event
//! on a network; the services turn them into failure replies with a code. Only `src/bin` boxes
//! errors, to print them in one line and exit non-zero.

#![deny(missing_docs)]

pub mod actors;
pub mod bus;
pub mod guard;
pub mod lograte;
#[cfg(feature = "rgb")]
pub mod rgb;
pub mod signer;
pub mod storage;
pub mod sync;
pub mod wire;
