//! TLS (in-transit encryption) with rustls: the settings, the client
//! configuration built from them once per set of options, and the encrypted
//! connection the pool reads and writes.
//!
//! ElastiCache clusters with in-transit encryption and ElastiCache Serverless
//! accept only TLS 1.2/1.3, with certificates naming each node (one wildcard
//! certificate per cluster). The crypto provider is `ring`.
//!
//! [`TlsStream`] keeps the I/O shape of a plain socket: one `send` per request
//! (one record), and receives into its own ciphertext buffer with one `recv`
//! of up to 64 KiB, so a reply spread over many records or many replies in one
//! record cost no extra system calls. Decrypted bytes may wait inside rustls
//! while the socket has nothing more to read: [`TlsStream::has_buffered_input`]
//! tells a poll loop not to wait for readiness then.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::error::{Error, Result};


/// The TLS settings (`tls`, `tls_ca_file`, `tls_cert_file`, `tls_key_file`,
/// `tls_server_name`, `tls_insecure_skip_verify`), with the rustls client
/// configuration built from them once and shared by every connection.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// `tls` [false]: speak TLS to every node and to the configuration endpoint.
    pub enabled: bool,
    /// `tls_ca_file`: PEM bundle of trusted CAs [the system's roots].
    pub ca_file: Option<String>,
    /// `tls_cert_file`: PEM client certificate chain, for servers that require one.
    pub cert_file: Option<String>,
    /// `tls_key_file`: PEM private key of the client certificate [`tls_cert_file`].
    pub key_file: Option<String>,
    /// `tls_server_name`: the one name every node's certificate is verified
    /// against (and sent as SNI) [each node's own host name].
    pub server_name: Option<String>,
    /// `tls_insecure_skip_verify` [false]: accept any certificate. Testing only.
    pub insecure_skip_verify: bool,
    cache: Arc<Mutex<Option<Built>>>,
}

/// The connector built for a snapshot of the settings, and the fork
/// generation it was built in (a child builds its own: the parent's rustls
/// session cache has locks of its own a parent thread may have held).
type Built = (Settings, Arc<TlsConnector>, u64);

/// Threads inside [`TlsOptions::connector`] now, and whether a `fork()` is
/// under way: the fork's prepare handler waits until no thread is inside, so
/// the child never inherits a connector cache lock held by a thread it does
/// not have. Plain atomics: a lock with parked waiters cannot be safely
/// released in the child (its wake-up goes through a process-wide table a
/// parent thread may have held).
static INSIDE: AtomicUsize = AtomicUsize::new(0);
static FORKING: AtomicBool = AtomicBool::new(false);
static ATFORK: std::sync::Once = std::sync::Once::new();

extern "C" fn gate_prepare() {
    FORKING.store(true, Ordering::SeqCst);
    while INSIDE.load(Ordering::SeqCst) != 0 {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

extern "C" fn gate_release() {
    FORKING.store(false, Ordering::SeqCst);
}

/// A thread counted in [`INSIDE`] until dropped.
struct Inside;

impl Inside {
    fn enter() -> Inside {
        ATFORK.call_once(|| {
            // SAFETY: the handlers touch only two atomics (and sleep).
            unsafe {
                libc::pthread_atfork(Some(gate_prepare), Some(gate_release), Some(gate_release));
            }
        });
        loop {
            while FORKING.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            INSIDE.fetch_add(1, Ordering::SeqCst);
            if !FORKING.load(Ordering::SeqCst) {
                return Inside;
            }
            INSIDE.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        INSIDE.fetch_sub(1, Ordering::SeqCst);
    }
}

type Settings = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
);

impl TlsOptions {
    fn settings(&self) -> Settings {
        (
            self.ca_file.clone(),
            self.cert_file.clone(),
            self.key_file.clone(),
            self.server_name.clone(),
            self.insecure_skip_verify,
        )
    }

    /// Forget the built configuration: a setting changed, or was set again
    /// (a file named again is read again).
    fn changed(&mut self) {
        self.cache = Arc::default();
    }

    /// `tls`.
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
        self.changed();
    }

    /// `tls_insecure_skip_verify`.
    pub fn set_insecure_skip_verify(&mut self, on: bool) {
        self.insecure_skip_verify = on;
        self.changed();
    }

    /// `tls_ca_file`, `tls_cert_file` or `tls_key_file` (`option`): a file
    /// that cannot be read is a bad value now, not a failure at connect.
    pub fn set_file(&mut self, option: &str, path: Option<String>) -> Result<()> {
        if let Some(p) = &path {
            if option == "tls_key_file" {
                load_key(option, p)?;
            } else {
                load_certs(option, p)?;
            }
        }
        match option {
            "tls_ca_file" => self.ca_file = path,
            "tls_cert_file" => self.cert_file = path,
            _ => self.key_file = path,
        }
        self.changed();
        Ok(())
    }

    /// `tls_server_name` (`option`): must be a valid DNS name or IP.
    pub fn set_server_name(&mut self, option: &str, name: Option<String>) -> Result<()> {
        if let Some(n) = &name {
            ServerName::try_from(n.as_str()).map_err(|e| {
                Error::InvalidArgument(format!("option {option}: {n:?}: {e}"))
            })?;
        }
        self.server_name = name;
        self.changed();
        Ok(())
    }

    /// The connector for these settings, built on first use and shared by
    /// clones of these options. A configuration that cannot be built (an
    /// unreadable file) is kept as its error, returned by every connect.
    pub fn connector(&self) -> Arc<TlsConnector> {
        let settings = self.settings();
        let gen = crate::fork::generation();
        let _inside = Inside::enter();
        let mut cache = self.cache.lock();
        if let Some((s, c, g)) = cache.as_ref() {
            if *s == settings && *g == gen {
                return c.clone();
            }
        }
        let c = Arc::new(TlsConnector::build(self));
        *cache = Some((settings, c.clone(), gen));
        c
    }

    #[cfg(feature = "testkit")]
    /// Hold the connector cache for `d` the way a thread inside
    /// [`TlsOptions::connector`] does (tests: a fork at that moment must not
    /// leave the child a held lock). `taken` is called once it is held.
    #[doc(hidden)]
    pub fn hold_connector_cache_for_test(&self, d: std::time::Duration, taken: impl FnOnce()) {
        let _inside = Inside::enter();
        let _cache = self.cache.lock();
        taken();
        std::thread::sleep(d);
    }

    /// Build the configuration now, so that a bad file is reported when a
    /// client is created rather than on its first operation.
    pub fn check(&self) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        self.connector()
            .config
            .as_ref()
            .map(|_| ())
            .map_err(Clone::clone)
    }
}

impl PartialEq for TlsOptions {
    fn eq(&self, other: &Self) -> bool {
        self.enabled == other.enabled && self.settings() == other.settings()
    }
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("enabled", &self.enabled)
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("server_name", &self.server_name)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

/// A rustls client configuration (built once per set of options) and the name
/// to verify when one name covers every node.
pub struct TlsConnector {
    pub(crate) config: Result<Arc<ClientConfig>>,
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("ok", &self.config.is_ok())
            .field("server_name", &self.server_name)
            .finish()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn bad_option(name: &str, detail: impl fmt::Display) -> Error {
    Error::InvalidArgument(format!("option {name}: {detail}"))
}

/// Every certificate in a PEM file (at least one).
pub fn load_certs(option: &str, path: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            bad_option(
                option,
                format!("cannot read certificates from {path:?}: {e}"),
            )
        })?;
    if certs.is_empty() {
        return Err(bad_option(
            option,
            format!("no PEM certificate in {path:?}"),
        ));
    }
    Ok(certs)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(option: &str, path: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        bad_option(
            option,
            format!("cannot read a private key from {path:?}: {e}"),
        )
    })
}

impl TlsConnector {
    fn build(opts: &TlsOptions) -> TlsConnector {
        let server_name = opts
            .server_name
            .as_ref()
            .map(|n| ServerName::try_from(n.clone()).map_err(|e| bad_option("tls_server_name", e)));
        let (server_name, name_err) = match server_name {
            None => (None, None),
            Some(Ok(n)) => (Some(n), None),
            Some(Err(e)) => (None, Some(e)),
        };
        let config = match name_err {
            Some(e) => Err(e),
            None => build_config(opts).map(Arc::new),
        };
        TlsConnector {
            config,
            server_name,
        }
    }

    /// The name to verify and send as SNI for a node reached as `host`.
    pub(crate) fn name_for(&self, host: &str) -> Result<ServerName<'static>> {
        match &self.server_name {
            Some(n) => Ok(n.clone()),
            None => ServerName::try_from(host.to_string()).map_err(|e| Error::Tls {
                addr: host.to_string(),
                detail: format!("{host:?} cannot be verified as a TLS server name: {e}"),
            }),
        }
    }
}

fn build_config(opts: &TlsOptions) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls {
            addr: "-".into(),
            detail: e.to_string(),
        })?;
    let builder = if opts.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
    } else {
        let mut roots = RootCertStore::empty();
        match &opts.ca_file {
            Some(path) => {
                for cert in load_certs("tls_ca_file", path)? {
                    roots.add(cert).map_err(|e| {
                        bad_option(
                            "tls_ca_file",
                            format!("bad CA certificate in {path:?}: {e}"),
                        )
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(bad_option(
                        "tls",
                        "no system CA certificates were found: set tls_ca_file",
                    ));
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    match (&opts.cert_file, &opts.key_file) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (None, Some(_)) => Err(bad_option(
            "tls_key_file",
            "a client key needs tls_cert_file too",
        )),
        (Some(cert), key) => {
            let chain = load_certs("tls_cert_file", cert)?;
            let key_path = key.as_deref().unwrap_or(cert);
            let key = load_key("tls_key_file", key_path)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                bad_option("tls_cert_file", format!("unusable client certificate: {e}"))
            })
        }
    }
}

/// `tls_insecure_skip_verify`: any certificate is accepted, but the handshake
/// signatures are still checked (the session is encrypted, not authenticated).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
