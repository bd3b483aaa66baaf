//! The certificate maker of the Rust TLS tests (tests/tls.rs,
//! tests/timing_tls.rs): a CA and leaves it signs, written as PEM files.
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use elasticache::options::Options;
use elasticache::ring::ServerSpec;
use elasticache::testkit::tls::{TempDir, TlsMemcached};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};

/// A CA and the files of certificates it signed.
pub struct Pki {
    dir: TempDir,
    ca: Certificate,
    ca_key: KeyPair,
    pub ca_file: PathBuf,
}

/// A certificate and key on disk.
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let dir = TempDir::new(&format!("ec-tls-{name}")).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        let ca = p.self_signed(&ca_key).unwrap();
        let ca_file = dir.write("ca.pem", ca.pem().as_bytes()).unwrap();
        Pki {
            dir,
            ca,
            ca_key,
            ca_file,
        }
    }

    pub fn leaf(&self, file: &str, names: &[&str], client: bool, expired: bool) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(
            names
                .iter()
                .filter(|n| n.parse::<IpAddr>().is_err())
                .map(|n| n.to_string())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        for n in names {
            if let Ok(ip) = n.parse::<IpAddr>() {
                p.subject_alt_names.push(SanType::IpAddress(ip));
            }
        }
        p.distinguished_name.push(DnType::CommonName, names[0]);
        p.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = p.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        Leaf {
            cert: self
                .dir
                .write(&format!("{file}.crt"), cert.pem().as_bytes())
                .unwrap(),
            key: self
                .dir
                .write(&format!("{file}.key"), key.serialize_pem().as_bytes())
                .unwrap(),
        }
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
