//! Generates `include/elasticache.h` from the `extern "C"` items with cbindgen.
//!
//! The build writes it to OUT_DIR only, never into the source tree: the committed
//! copy is refreshed by `make header`, and `tests/header.rs` fails when the
//! committed header differs from this fresh one, whatever runs the tests.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=src/error.rs");
    println!("cargo:rerun-if-changed=src/lib.rs");
    println!("cargo:rerun-if-changed=src/events.rs");

    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    let version = env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    if let Some(after) = config.after_includes.as_mut() {
        *after = after
            .replace(
                "@MAJOR@",
                &env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default(),
            )
            .replace(
                "@MINOR@",
                &env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default(),
            )
            .replace(
                "@PATCH@",
                &env::var("CARGO_PKG_VERSION_PATCH").unwrap_or_default(),
            )
            .replace("@VERSION@", &version);
    }

    let bindings = match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(b) => b,
        Err(e) => panic!("cbindgen failed: {e}"),
    };
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings.write_to_file(out_dir.join("elasticache.h"));
}
