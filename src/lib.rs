//! # elasticache
//!
//! A client for Amazon ElastiCache (memcached) clusters: auto-discovery through the
//! configuration endpoint, key placement bit-for-bit compatible with libmemcached's
//! ketama, and a C ABI (`include/elasticache.h`) over a synchronous, safe Rust core.
//!
//! How a key travels: [`discovery`] asks the configuration endpoint for the nodes,
//! [`registry`] caches that answer once per process, and the rest of the
//! modules place the key and speak the memcached protocol. [`ffi`] is the C layer:
//! conversion and checks only.

pub mod client;
mod connect;
pub mod discovery;
pub mod error;
pub mod events;
pub mod ffi;
mod forklock;
pub mod hash;
pub mod meta;
pub mod metrics;
#[doc(hidden)]
pub mod multi;
pub mod options;
pub mod pool;
pub mod protocol;
pub mod registry;
pub mod ring;
pub mod testkit;
pub mod tls;
pub mod transport;

pub use error::{Error, Result, Status};

/// The crate version, also exported to C as `ELASTICACHE_VERSION`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
