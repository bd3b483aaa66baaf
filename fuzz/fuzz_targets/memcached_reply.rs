#![no_main]
//! The memcached reply parser (src/protocol.rs), element by element.

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::memcached_reply(data));
