//! Buses: addressing, the ESB router and its request bookkeeping, the ZMQ socket bridges and the
//! limits of every socket. Knows no node (nodes are in `actors`).
//!
//! - [`endpoint`]: `ipc://`, `inproc://`, `tcp://` endpoints.
//! - [`kind`]: the buses of the seed table.
//! - [`router`]: the routing table of one bus ([`Bus`]) and its guarantees.
//! - [`socket`]: the ROUTER socket of a bus and the thread that owns it.
//! - [`client`]: a blocking API client (CLI, tests, benchmarks).
//! - [`limits`]: socket and table limits.

pub mod client;
pub mod endpoint;
pub mod kind;
pub mod limits;
pub mod router;
pub mod socket;

pub use endpoint::Endpoint;
pub use kind::BusKind;
pub use router::{Bus, Deliver};
