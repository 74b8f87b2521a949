//! Buses: addressing, the ESB router and its request bookkeeping, the ZMQ socket bridges and the
//! limits of every socket. Knows no node (nodes are in `actors`).
//!
//! - [`endpoint`]: `ipc://`, `inproc://`, `tcp://` endpoints.
//! - [`kind`]: the buses of the seed table.
//! - [`router`]: the routing table of one bus ([`Bus`]) and its guarantees.
//! - [`socket`]: the ROUTER socket of a bus and the thread that owns it.
//! - [`secure`]: the encrypted sessions of a TCP bus and the allow-list of client keys.
//! - [`client`]: a blocking API client (CLI, tests, benchmarks), local or remote (encrypted).
//! - [`subscribers`]: who asked for notifications (the one subscriber list of the crate).
//! - [`limits`]: socket and table limits.

pub mod client;
pub mod endpoint;
pub mod kind;
pub mod limits;
pub mod router;
pub mod secure;
pub mod socket;
pub mod subscribers;

pub use endpoint::Endpoint;
pub use kind::BusKind;
pub use router::{Bus, Deliver};
pub use subscribers::{Subscriber, Subscribers};
