//! # elasticache
//!
//! A client for Amazon ElastiCache (memcached) clusters: auto-discovery through the
//! configuration endpoint, key placement bit-for-bit compatible with libmemcached's
//! ketama, and a C ABI (`include/elasticache.h`) over a synchronous, safe Rust core.
//!
//! Start from [`Client`]: [`Client::from_endpoint`] for a cluster's configuration
//! endpoint, [`Client::from_servers`] for a fixed list of nodes, both with
//! [`Options`] (every setting also settable by name with [`Options::set`]).
//! Errors are [`Error`]s, each with the C [`Status`] it maps to.
//!
//! How a key travels, one module each: `cluster` (discovery asks the
//! configuration endpoint for the nodes; the registry caches that answer once
//! per process) -> [`Ring`] (which node owns the key) -> `pool` (a connection to
//! that node) -> `protocol` (the bytes on the wire, over `net`) -> `client` (the
//! operation) -> `ffi` (the C layer: conversion and checks only).
//!
//! Placing keys needs no network:
//!
//! ```
//! use elasticache::{Distribution, HashAlgorithm, Ring, ServerSpec};
//!
//! let servers: Vec<ServerSpec> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
//!     .iter()
//!     .map(|host| ServerSpec::new(*host, 11211))
//!     .collect();
//! let ring = Ring::new(&servers, Distribution::Ketama, HashAlgorithm::OneAtATime);
//! let owner = ring.owner(b"user:42").expect("a ring with servers has an owner");
//! assert!(owner < servers.len());
//! // The same key always lands on the same node.
//! assert_eq!(ring.owner(b"user:42"), Some(owner));
//! ```

/// The layers are private to the crate; the `testkit` feature (this crate's
/// own tests, never the shipped library) makes them reachable, undocumented,
/// so that tests can reach the parsers, pools and registry directly.
macro_rules! internal_modules {
    ($($name:ident),* $(,)?) => {
        $(
            #[cfg(feature = "testkit")]
            #[doc(hidden)]
            pub mod $name;
            #[cfg(not(feature = "testkit"))]
            #[allow(dead_code)] // what only tests call
            mod $name;
        )*
    };
}

internal_modules!(client, cluster, fork, hash, metrics, net, options, pool, protocol, ring);

// Declared outside the macro: cbindgen reads `Status` and `EventKind` from
// them and does not expand macros. `error`'s items are re-exported below;
// `events` is public: a Rust program can watch the cluster too.
#[doc(hidden)]
pub mod error;
pub mod events;
#[doc(hidden)]
pub mod ffi;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use client::{Client, Item, Lease, MultiGet, PerNode, Slot, MAX_LEASE_TTL};
pub use error::{quote_bytes, Error, Result, Status};
pub use hash::HashAlgorithm;
pub use options::{NodeNaming, Options};
pub use protocol::meta::LeaseState;
pub use protocol::StoreCommand;
pub use ring::{Distribution, Ring, ServerSpec};

/// What the configuration endpoint says: the nodes of a cluster, and how to ask.
pub mod discovery {
    pub use crate::cluster::discovery::{
        discover, options, Command, Config, Discovered, DiscoveryOptions, Node, LEGACY_KEY,
        MAX_NODES, MAX_REPLY,
    };
    pub use crate::cluster::reply::{parse_payload, parse_reply, Reply};
}

/// The crate version, also exported to C as `ELASTICACHE_VERSION`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
