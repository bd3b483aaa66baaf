//! Reaching a server. Layered bottom-up, each file using only those above it:
//! [`addr`] (host:port, name resolution) -> [`socket`] (TCP, socket options)
//! -> [`tls`] (settings, rustls configuration) and [`tls_stream`] (one
//! encrypted connection) -> [`stream`] (plain or TLS behind one enum) ->
//! [`connect`] (one node with a deadline, or many at once). Every connection
//! the library opens (discovery and data) starts in [`connect`].

pub mod addr;
pub mod connect;
pub mod socket;
pub mod stream;
pub mod tls;
pub mod tls_stream;
