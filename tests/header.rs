//! The committed header must equal the one cbindgen generates from the sources.
//! The build writes its header to OUT_DIR only (build.rs), so this compares two
//! different files under any `cargo test`; `make header` refreshes the
//! committed one (it runs the ignored test below).

const FRESH: &str = include_str!(concat!(env!("OUT_DIR"), "/elasticache.h"));
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/include/elasticache.h");

#[test]
fn committed_header_matches_generated() {
    let committed = std::fs::read_to_string(COMMITTED).expect("include/elasticache.h exists");
    if FRESH != committed {
        let line = FRESH
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .map_or(FRESH.lines().count().min(committed.lines().count()), |i| i)
            + 1;
        panic!("include/elasticache.h is stale (first difference at line {line}): run `make header` and commit it");
    }
}

/// Not a check: `make header` runs it to write the generated header into the tree.
#[test]
#[ignore = "writes include/elasticache.h; run by `make header`"]
fn refresh_committed_header() {
    std::fs::write(COMMITTED, FRESH).expect("write include/elasticache.h");
}

#[test]
fn version_macros_match_the_crate() {
    let v = env!("CARGO_PKG_VERSION");
    let parts: Vec<&str> = v.split('.').collect();
    assert!(FRESH.contains(&format!("#define ELASTICACHE_VERSION \"{v}\"")));
    assert!(FRESH.contains(&format!("#define ELASTICACHE_VERSION_MAJOR {}\n", parts[0])));
    assert!(FRESH.contains(&format!("#define ELASTICACHE_VERSION_MINOR {}\n", parts[1])));
    assert!(FRESH.contains(&format!("#define ELASTICACHE_VERSION_PATCH {}\n", parts[2])));
}
