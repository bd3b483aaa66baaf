//! The committed header must equal the one cbindgen generates from the sources.
//! `make test` builds with ELASTICACHE_NO_HEADER_WRITE=1 so that the build does
//! not rewrite include/elasticache.h before this comparison.

#[test]
fn committed_header_matches_generated() {
    let fresh = include_str!(concat!(env!("OUT_DIR"), "/elasticache.h"));
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/include/elasticache.h"
    ))
    .expect("include/elasticache.h exists");
    assert!(
        fresh == committed,
        "include/elasticache.h is stale: run `make header` (or `cargo build`) and commit it"
    );
}

#[test]
fn version_macros_match_the_crate() {
    let header = include_str!(concat!(env!("OUT_DIR"), "/elasticache.h"));
    let v = env!("CARGO_PKG_VERSION");
    let parts: Vec<&str> = v.split('.').collect();
    assert!(header.contains(&format!("#define ELASTICACHE_VERSION \"{v}\"")));
    assert!(header.contains(&format!("#define ELASTICACHE_VERSION_MAJOR {}\n", parts[0])));
    assert!(header.contains(&format!("#define ELASTICACHE_VERSION_MINOR {}\n", parts[1])));
    assert!(header.contains(&format!("#define ELASTICACHE_VERSION_PATCH {}\n", parts[2])));
}
