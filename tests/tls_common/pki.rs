//! The one certificate maker of the tests: a CA and the leaves it signs, as PEM
//! files in a directory. Used by the Rust TLS tests (through tls_common) and by
//! examples/make_certs.rs, which writes certificates for the Python and shell
//! tests, so every TLS test trusts certificates made the same way.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};

/// A CA whose certificate is written to `ca.pem` in its directory.
pub struct Ca {
    dir: PathBuf,
    cert: Certificate,
    key: KeyPair,
    /// `ca.pem`: what a client trusts.
    pub ca_file: PathBuf,
}

/// A certificate and key on disk (`NAME.crt`, `NAME.key`).
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn write(dir: &Path, name: &str, contents: &str) -> Result<PathBuf, String> {
    let p = dir.join(name);
    std::fs::write(&p, contents).map_err(|e| format!("writing {}: {e}", p.display()))?;
    Ok(p)
}

impl Ca {
    /// A new CA named "`name` test CA", its certificate written to `dir/ca.pem`.
    pub fn create(dir: &Path, name: &str) -> Result<Ca, String> {
        let rc = |e: rcgen::Error| format!("CA {name}: {e}");
        let key = KeyPair::generate().map_err(rc)?;
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(rc)?;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        let cert = p.self_signed(&key).map_err(rc)?;
        let ca_file = write(dir, "ca.pem", &cert.pem())?;
        Ok(Ca {
            dir: dir.to_path_buf(),
            cert,
            key,
            ca_file,
        })
    }

    /// A leaf for `names` (DNS names or IP addresses; the first is also the
    /// common name), for a client (`client`) or a server, valid now or expired
    /// in 2021 (`expired`), written to `file.crt` and `file.key`.
    pub fn leaf(
        &self,
        file: &str,
        names: &[&str],
        client: bool,
        expired: bool,
    ) -> Result<Leaf, String> {
        let rc = |e: rcgen::Error| format!("certificate {file}: {e}");
        let key = KeyPair::generate().map_err(rc)?;
        let dns: Vec<String> = names
            .iter()
            .filter(|n| n.parse::<IpAddr>().is_err())
            .map(|n| n.to_string())
            .collect();
        let mut p = CertificateParams::new(dns).map_err(rc)?;
        for n in names {
            if let Ok(ip) = n.parse::<IpAddr>() {
                p.subject_alt_names.push(SanType::IpAddress(ip));
            }
        }
        if let Some(first) = names.first() {
            p.distinguished_name.push(DnType::CommonName, *first);
        }
        p.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = p.signed_by(&key, &self.cert, &self.key).map_err(rc)?;
        Ok(Leaf {
            cert: write(&self.dir, &format!("{file}.crt"), &cert.pem())?,
            key: write(&self.dir, &format!("{file}.key"), &key.serialize_pem())?,
        })
    }
}
