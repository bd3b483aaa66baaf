//! TLS test servers: a real memcached with TLS (`-Z`) and a plain listener
//! beside it, and an emulated TLS configuration endpoint answering
//! `config get cluster`. Certificates are the caller's (PEM files).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::memcached::Memcached;
use super::port::bind_unique;

/// A memcached process serving TLS on [`Memcached::port`] and plain text on
/// [`Memcached::plain_port`] (same cache), killed on drop: a [`Memcached`]
/// started with [`Memcached::start_tls`], which it derefs to.
#[derive(Debug)]
pub struct TlsMemcached(Memcached);

impl TlsMemcached {
    /// Start on `ip` with the certificate chain and key (PEM files), plus
    /// `extra` arguments (e.g. `-o ssl_verify_mode=2,ssl_ca_cert=ca.pem`).
    pub fn start(ip: &str, chain: &Path, key: &Path, extra: &[&str]) -> io::Result<TlsMemcached> {
        Memcached::start_tls(ip, chain, key, extra).map(TlsMemcached)
    }

    /// Store `value` under `key` over the plain listener (e.g. the legacy
    /// `AmazonElastiCache:cluster` item that makes this server a configuration endpoint).
    pub fn set_raw(&self, key: &str, value: &[u8]) -> io::Result<()> {
        let mut s = TcpStream::connect((self.ip(), self.plain_port()))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut req = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n");
        s.write_all(&req)?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line)?;
        if line.trim_end() == "STORED" {
            Ok(())
        } else {
            Err(io::Error::other(format!("set {key}: {line:?}")))
        }
    }
}

impl Deref for TlsMemcached {
    type Target = Memcached;

    fn deref(&self) -> &Memcached {
        &self.0
    }
}

impl DerefMut for TlsMemcached {
    fn deref_mut(&mut self) -> &mut Memcached {
        &mut self.0
    }
}

/// An emulated configuration endpoint over TLS: answers `config get cluster`
/// with the current payload, `version`, and `ERROR` to anything else.
#[derive(Debug)]
pub struct TlsConfigEndpoint {
    port: u16,
    ip: String,
    payload: Arc<Mutex<String>>,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TlsConfigEndpoint {
    /// Serve on `ip` and a free port with the certificate chain and key (PEM),
    /// answering with `payload` (`"<version>\n<host|ip|port ...>\n"`).
    pub fn start(
        ip: &str,
        chain: &Path,
        key: &Path,
        payload: &str,
    ) -> io::Result<TlsConfigEndpoint> {
        let certs = CertificateDer::pem_file_iter(chain)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| io::Error::other(format!("{}: {e}", chain.display())))?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| io::Error::other(format!("{}: {e}", key.display())))?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(io::Error::other)?;
        let config = Arc::new(config);
        let listener = bind_unique(ip)?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let payload = Arc::new(Mutex::new(payload.to_string()));
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (payload, requests, stop) = (payload.clone(), requests.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    match listener.accept() {
                        Ok((sock, _)) => {
                            let (config, payload, requests) =
                                (config.clone(), payload.clone(), requests.clone());
                            std::thread::spawn(move || {
                                let _ = serve(sock, config, &payload, &requests);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Ok(TlsConfigEndpoint {
            port,
            ip: ip.to_string(),
            payload,
            requests,
            stop,
            thread: Some(thread),
        })
    }

    /// `ip:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Replace the payload served from now on.
    pub fn set_payload(&self, payload: &str) {
        *self.payload.lock() = payload.to_string();
    }

    /// How many `config get cluster` requests were answered.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Acquire)
    }
}

impl Drop for TlsConfigEndpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    sock: TcpStream,
    config: Arc<rustls::ServerConfig>,
    payload: &Mutex<String>,
    requests: &AtomicUsize,
) -> io::Result<()> {
    sock.set_nonblocking(false)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(eol) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=eol).collect();
            let line = String::from_utf8_lossy(&line).trim().to_string();
            let reply = match line.as_str() {
                "config get cluster" => {
                    requests.fetch_add(1, Ordering::AcqRel);
                    let p = payload.lock().clone();
                    format!("CONFIG cluster 0 {}\r\n{p}\r\nEND\r\n", p.len())
                }
                "version" => "VERSION 1.6.12\r\n".to_string(),
                _ => "ERROR\r\n".to_string(),
            };
            tls.write_all(reply.as_bytes())?;
            tls.flush()?;
        }
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A scratch directory removed on drop (for certificate files).
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory under the system's temporary directory.
    pub fn new(prefix: &str) -> io::Result<TempDir> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::AcqRel)
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Write `contents` to `name` inside it; the file's path.
    pub fn write(&self, name: &str, contents: &[u8]) -> io::Result<PathBuf> {
        let p = self.0.join(name);
        std::fs::write(&p, contents)?;
        Ok(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
