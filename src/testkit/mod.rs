//! Real memcached processes and an emulated ElastiCache configuration endpoint,
//! for tests, benchmarks and local development (`cargo run --example local_cluster`).
//!
//! Only the configuration endpoint is emulated (only AWS runs one); the cache
//! nodes are real `memcached` processes on 127.0.0.1 and random free ports.

pub mod cluster;
pub mod endpoint;
pub mod fakenode;
pub mod memcached;
pub mod port;
pub mod support;
pub mod tls;

pub use cluster::{LocalCluster, NodeSettings, Variant};
pub use endpoint::{ConfigEndpoint, Engine, Format, Request};
pub use fakenode::{FakeNode, Script};
pub use memcached::Memcached;
pub use support::{
    c_client, client_for, fork_and_wait, key_on, keys_by_node, require, require_tool, ChildEnd,
};
