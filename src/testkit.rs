//! Test support: real memcached processes and an emulated configuration endpoint.
