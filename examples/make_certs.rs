//! The tests' certificate maker as a program, for the tests that are not Rust
//! (examples/python/tests/test_tls.py, scripts/test_ecctl.sh): the same CA and
//! leaves the Rust TLS tests make (tests/tls_common/pki.rs), so no test needs
//! openssl.
//!
//! ```text
//! cargo run --release --example make_certs -- DIR
//! ```
//!
//! Writes into DIR (created if missing): `ca.pem` (the CA), `node.crt` /
//! `node.key` (a server certificate for `localhost` only: an IP address does
//! not match it), `expired.crt` / `expired.key` (the same, expired in 2021),
//! `client.crt` / `client.key` (a client certificate for `client.test`), and
//! prints one line per file.

#[allow(dead_code)]
#[path = "../tests/tls_common/pki.rs"]
mod pki;

use std::path::PathBuf;

fn make(dir: &PathBuf) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let ca = pki::Ca::create(dir, "elasticache")?;
    let mut files = vec![ca.ca_file.clone()];
    for (name, names, client, expired) in [
        ("node", &["localhost"][..], false, false),
        ("expired", &["localhost"][..], false, true),
        ("client", &["client.test"][..], true, false),
    ] {
        let leaf = ca.leaf(name, names, client, expired)?;
        files.push(leaf.cert);
        files.push(leaf.key);
    }
    Ok(files)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: make_certs DIR");
        std::process::exit(2);
    };
    if dir == "-h" || dir == "--help" {
        println!("usage: make_certs DIR (writes ca.pem, node.*, expired.*, client.*)");
        return;
    }
    match make(&PathBuf::from(dir)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
        }
        Err(e) => {
            eprintln!("make_certs: {e}");
            std::process::exit(1);
        }
    }
}
