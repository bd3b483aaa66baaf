//! TLS test support of the Rust TLS tests (tests/tls.rs, tests/timing_tls.rs):
//! certificates from the shared maker (pki.rs) in a temporary directory.
#![allow(dead_code)]

mod pki;

use std::path::PathBuf;
use std::time::Duration;

use elasticache::options::Options;
use elasticache::ring::ServerSpec;
use elasticache::testkit::tls::{TempDir, TlsMemcached};
pub use pki::Leaf;

/// A CA and the files of certificates it signed, removed on drop.
pub struct Pki {
    ca: pki::Ca,
    pub ca_file: PathBuf,
    // Last: the files go after everything that names them.
    _dir: TempDir,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let dir = TempDir::new(&format!("ec-tls-{name}")).unwrap();
        let ca = pki::Ca::create(dir.path(), name).unwrap();
        Pki {
            ca_file: ca.ca_file.clone(),
            ca,
            _dir: dir,
        }
    }

    pub fn leaf(&self, file: &str, names: &[&str], client: bool, expired: bool) -> Leaf {
        self.ca.leaf(file, names, client, expired).unwrap()
    }

    pub fn server(&self, leaf: &Leaf, extra: &[&str]) -> TlsMemcached {
        TlsMemcached::start("127.0.0.1", &leaf.cert, &leaf.key, extra).unwrap()
    }
}

pub fn tls_opts(pki: &Pki) -> Options {
    let mut o = Options {
        connect_timeout: Duration::from_millis(1000),
        io_timeout: Duration::from_millis(2000),
        ..Options::default()
    };
    o.set("tls", "true").unwrap();
    o.set("tls_ca_file", pki.ca_file.to_str().unwrap()).unwrap();
    o
}

pub fn spec(host: &str, port: u16) -> ServerSpec {
    ServerSpec {
        host: host.to_string(),
        port,
        weight: 1,
    }
}
