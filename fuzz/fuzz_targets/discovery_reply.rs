#![no_main]
//! The configuration endpoint's reply and payload parsers (src/discovery.rs).

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::discovery_reply(data));
