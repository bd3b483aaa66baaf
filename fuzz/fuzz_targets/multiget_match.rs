#![no_main]
//! The multi-get reply matcher (src/multi.rs): which reply belongs to which key.

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::multiget_match(data));
