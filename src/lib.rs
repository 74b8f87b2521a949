//! LNP/BP nodes: one crate that runs the LNP, BP, RGB or Storm node as supervised actix services
//! talking over ZeroMQ buses.
//!
//! # Layout
//!
//! Arrows only go downward: `bin -> actors -> rgb -> storage -> bus -> wire`, and
//! `actors -> signer` (docs/ARCHITECTURE.md gives the rules, which `tests/docs.rs` checks).
//!
//! - [`wire`]: sans-I/O codecs and sessions, one folder per protocol (`ln`, `bifrost`, `btc`,
//!   `storm`) and `api` for the bus frames and every node's message set. No actix, no zmq, no
//!   clock.
//! - [`bus`]: service addressing, the ESB router of each bus, the ZMQ socket bridges, a client,
//!   subscriber lists.
//! - [`storage`]: tables, chunks and sets behind one interface: embedded (redb) or the STORE
//!   RPC of a Storm node; and the client of a Storm node's containers.
//! - [`actors`]: the root supervisor, the service wrapper that turns errors and panics into
//!   supervised restarts, the router/bridge/manager services, and one module per node.
//! - [`signer`]: the BP node's keys (BIP39, BIP32, BIP84/BIP86 accounts) and PSBT signing; no
//!   I/O but its key file.
//! - [`rgb`]: RGB contracts on the RGB v0.11.1 libraries, kept through [`storage`].
//! - [`guard`]: the panic policy shared by the layers above `wire`; [`sync`]: the one
//!   poison-tolerant lock helper; [`lograte`]: rate-limited log lines for events strangers can
//!   repeat.
//!
//! # Errors
//!
//! Decoders return small enums (`StrictError`, `FrameError`) because bad input is a normal event
//! on a network; a peer's errors carry their action (`wire::session::PeerError`), a client's the
//! failure code it gets (`wire::api::ApiError`). Only `src/bin` boxes errors, to print them in
//! one line and exit non-zero.

#![deny(missing_docs)]

pub mod actors;
pub mod bus;
pub mod guard;
pub mod ldk;
pub mod lograte;
#[cfg(feature = "rgb")]
pub mod rgb;
pub mod signer;
pub mod storage;
pub mod sync;
pub mod wire;
