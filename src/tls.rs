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
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::error::{Error, Result};
use crate::transport;

/// Ciphertext read from the socket in one `recv` at most (four full records).
const CIPHER_BUF: usize = 64 * 1024;
/// rustls refuses more ciphertext once this much plaintext waits unread.
const PLAINTEXT_LIMIT: usize = 16 * 1024;

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

    /// Forget the built configuration (after a setting changed).
    pub(crate) fn reset_cache(&mut self) {
        self.cache = Arc::default();
    }

    /// The connector for these settings, built on first use and shared by
    /// clones of these options. A configuration that cannot be built (an
    /// unreadable file) is kept as its error, returned by every connect.
    pub fn connector(&self) -> Arc<TlsConnector> {
        let settings = self.settings();
        let gen = crate::registry::generation();
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
    config: Result<Arc<ClientConfig>>,
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
    fn name_for(&self, host: &str) -> Result<ServerName<'static>> {
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

/// The socket seen through `send`/`recv` with fixed flags: MSG_NOSIGNAL always
/// (a C host may not ignore SIGPIPE), MSG_DONTWAIT for the non-blocking calls.
struct Sock {
    fd: i32,
    flags: i32,
}

impl Sock {
    fn blocking(s: &TcpStream) -> Sock {
        Sock {
            fd: s.as_raw_fd(),
            flags: libc::MSG_NOSIGNAL,
        }
    }

    fn nonblocking(s: &TcpStream) -> Sock {
        Sock {
            fd: s.as_raw_fd(),
            flags: libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        }
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: valid writable buffer and length.
            let n = unsafe { libc::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), self.flags) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[io::IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        loop {
            // SAFETY: msghdr zeroed then pointed at the caller's iovecs (IoSlice is
            // ABI-compatible with iovec), which outlive the call.
            let n = unsafe {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
                msg.msg_iovlen = bufs.len().min(libc::UIO_MAXIOV as usize) as _;
                libc::sendmsg(self.fd, &msg, self.flags)
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn rustls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed by the server",
    )
}

/// One TLS connection over a connected socket.
pub struct TlsStream {
    conn: ClientConnection,
    sock: TcpStream,
    /// Ciphertext received and not yet handed to rustls: `cbuf[cstart..cend]`.
    cbuf: Box<[u8]>,
    cstart: usize,
    cend: usize,
    /// Decrypted bytes rustls holds unread.
    plain: usize,
    /// Bytes past the caller's offset that [`TlsStream::send_nonblocking`]
    /// already handed to rustls but could not yet put on the wire.
    unflushed: usize,
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("sock", &self.sock)
            .field("buffered_cipher", &(self.cend - self.cstart))
            .field("buffered_plain", &self.plain)
            .finish()
    }
}

impl TlsStream {
    /// Run the handshake on `sock` (connected to `host`) before `deadline`,
    /// verifying the certificate against `host` or the configured name.
    pub fn handshake(
        sock: TcpStream,
        connector: &TlsConnector,
        host: &str,
        label: &str,
        deadline: Instant,
    ) -> Result<TlsStream> {
        let config = connector.config.as_ref().map_err(Clone::clone)?;
        let name = connector.name_for(host).map_err(|e| match e {
            Error::Tls { detail, .. } => Error::Tls {
                addr: label.to_string(),
                detail,
            },
            other => other,
        })?;
        let conn = ClientConnection::new(config.clone(), name).map_err(|e| Error::Tls {
            addr: label.to_string(),
            detail: e.to_string(),
        })?;
        let mut s = TlsStream {
            conn,
            sock,
            cbuf: vec![0; CIPHER_BUF].into_boxed_slice(),
            cstart: 0,
            cend: 0,
            plain: 0,
            unflushed: 0,
        };
        let op = "TLS handshake";
        let fail = |e: io::Error| handshake_error(label, e);
        while s.conn.is_handshaking() {
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout {
                    addr: label.to_string(),
                    op,
                });
            }
            let left = transport::nonzero(deadline - now);
            s.sock
                .set_read_timeout(Some(left))
                .and_then(|_| s.sock.set_write_timeout(Some(left)))
                .map_err(|e| Error::io(label, op, e))?;
            if s.conn.wants_write() {
                s.conn
                    .write_tls(&mut Sock::blocking(&s.sock))
                    .map_err(fail)?;
                continue;
            }
            if s.cstart == s.cend {
                let n = Sock::blocking(&s.sock).read(&mut s.cbuf).map_err(fail)?;
                if n == 0 {
                    return Err(Error::Tls {
                        addr: label.to_string(),
                        detail: "the server closed the connection during the handshake \
                                 (is it serving TLS on this port?)"
                            .into(),
                    });
                }
                s.cstart = 0;
                s.cend = n;
            }
            if let Err(e) = s.decrypt() {
                return Err(fail(e));
            }
        }
        s.flush_blocking().map_err(fail)?;
        Ok(s)
    }

    /// The TCP socket underneath (for timeouts and poll).
    pub fn socket(&self) -> &TcpStream {
        &self.sock
    }

    /// Whether decrypted or received bytes are waiting that a read returns
    /// without the socket becoming readable.
    #[inline]
    pub fn has_buffered_input(&self) -> bool {
        self.plain > 0 || self.cstart < self.cend
    }

    /// Hand received ciphertext to rustls and decrypt whole records, while
    /// rustls takes more (it stops once 16 KiB of plaintext wait unread).
    fn decrypt(&mut self) -> io::Result<()> {
        while self.cstart < self.cend && self.plain < PLAINTEXT_LIMIT {
            let mut pending = &self.cbuf[self.cstart..self.cend];
            let n = self.conn.read_tls(&mut pending)?;
            self.cstart += n;
            match self.conn.process_new_packets() {
                Ok(state) => self.plain = state.plaintext_bytes_to_read(),
                Err(e) => {
                    // Tell the server why (best effort), then fail.
                    let _ = self.conn.write_tls(&mut Sock::nonblocking(&self.sock));
                    return Err(rustls_error(e));
                }
            }
            if n == 0 {
                break;
            }
        }
        if self.cstart == self.cend {
            self.cstart = 0;
            self.cend = 0;
        }
        Ok(())
    }

    /// Send whatever rustls has queued (blocking, bounded by the write timeout).
    fn flush_blocking(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut Sock::blocking(&self.sock))?;
        }
        Ok(())
    }

    /// Read decrypted bytes into `buf`; `Ok(None)` when `blocking` is false
    /// and nothing is available yet, `Ok(Some(0))` at the end of the stream.
    fn read_some(&mut self, buf: &mut [u8], blocking: bool) -> io::Result<Option<usize>> {
        loop {
            if self.plain == 0 && self.cstart < self.cend {
                self.decrypt()?;
            }
            match self.conn.reader().read(buf) {
                Ok(n) => {
                    self.plain = self.plain.saturating_sub(n);
                    return Ok(Some(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            // Alerts or key-update answers queued by rustls go out before we wait.
            if self.conn.wants_write() {
                if blocking {
                    self.flush_blocking()?;
                } else {
                    match self.conn.write_tls(&mut Sock::nonblocking(&self.sock)) {
                        Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                        _ => {}
                    }
                }
            }
            // Normally every received byte is inside rustls by now (a partial
            // record is kept there); keep any that is not.
            if self.cstart > 0 {
                self.cbuf.copy_within(self.cstart..self.cend, 0);
                self.cend -= self.cstart;
                self.cstart = 0;
            }
            if self.cend == self.cbuf.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "TLS receive buffer full without a complete record",
                ));
            }
            let mut sock = if blocking {
                Sock::blocking(&self.sock)
            } else {
                Sock::nonblocking(&self.sock)
            };
            match sock.read(&mut self.cbuf[self.cend..]) {
                Ok(0) => return Err(closed()),
                Ok(n) => self.cend += n,
                Err(e) if !blocking && e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Blocking read (bounded by the socket's read timeout).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.read_some(buf, true)? {
            Some(0) => Err(closed()),
            Some(n) => Ok(n),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Non-blocking read: `Ok(None)` when nothing is available.
    pub fn recv_nonblocking(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.read_some(buf, false)? {
            Some(0) => Err(closed()),
            other => Ok(other),
        }
    }

    /// Encrypt and send all of `buf` (blocking, bounded by the write timeout).
    pub fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut off = 0;
        loop {
            self.flush_blocking()?;
            if off >= buf.len() {
                return Ok(());
            }
            let n = self.conn.writer().write(&buf[off..])?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            off += n;
        }
    }

    /// Send `buf[from..]` without blocking; returns the offset up to which
    /// every byte is on the wire. The caller passes back the offset last
    /// returned for the same buffer (0 for a new one, which must start after a
    /// send that completed): bytes rustls holds encrypted but unsent count as
    /// not sent yet, so "all sent" really means the socket has everything.
    pub fn send_nonblocking(&mut self, buf: &[u8], from: usize) -> io::Result<usize> {
        let mut fed = (from + self.unflushed).min(buf.len());
        let mut on_wire = from;
        loop {
            while self.conn.wants_write() {
                match self.conn.write_tls(&mut Sock::nonblocking(&self.sock)) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.unflushed = fed - on_wire;
                        return Ok(on_wire);
                    }
                    Err(e) => return Err(e),
                }
            }
            on_wire = fed;
            if fed >= buf.len() {
                self.unflushed = 0;
                return Ok(fed);
            }
            let n = self.conn.writer().write(&buf[fed..])?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            fed += n;
        }
    }
}

fn handshake_error(label: &str, e: io::Error) -> Error {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidMessage(m)) => Error::Tls {
            addr: label.to_string(),
            detail: format!(
                "handshake failed: the server's reply is not TLS ({m:?}): is it serving TLS on this port?"
            ),
        },
        Some(t) => Error::Tls {
            addr: label.to_string(),
            detail: format!("handshake failed: {t}"),
        },
        None => Error::io(label, "TLS handshake", e),
    }
}
