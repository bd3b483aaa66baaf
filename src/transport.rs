//! Reaching a server: address parsing, name resolution and connecting with a
//! timeout. Every connection the library opens (discovery and data) starts here,
//! so timeouts, socket options and TLS are decided in one place.
//!
//! A connection is a [`Stream`]: plain TCP or TLS behind one enum. The plain
//! arm is the socket itself (no box, no extra buffer, no extra system call);
//! the TLS arm lives in [`crate::tls`].

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::tls::{TlsConnector, TlsStream};

/// memcached's (and ElastiCache's) default port.
pub const DEFAULT_PORT: u16 = 11211;

/// Split `"host:port"`, `"[v6]:port"`, `"host"` (port 11211) or a bare IPv6
/// address into host and port. The host comes back without brackets.
pub fn split_host_port(s: &str) -> Result<(String, u16)> {
    let s = s.trim();
    if s.is_empty() {
        return Err(Error::InvalidArgument("empty server address".into()));
    }
    let bad_port = |p: &str| Error::InvalidArgument(format!("bad port {p:?} in address {s:?}"));
    let parse_port = |p: &str| -> Result<u16> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad_port(p)),
            Ok(n) => Ok(n),
        }
    };
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| Error::InvalidArgument(format!("unclosed '[' in address {s:?}")))?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => parse_port(p)?,
            None if after.is_empty() => DEFAULT_PORT,
            None => return Err(Error::InvalidArgument(format!("bad address {s:?}"))),
        };
        return Ok((host.to_string(), port));
    }
    match s.matches(':').count() {
        0 => Ok((s.to_string(), DEFAULT_PORT)),
        1 => {
            let (h, p) = s.split_once(':').unwrap_or((s, ""));
            if h.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "empty host in address {s:?}"
                )));
            }
            Ok((h.to_string(), parse_port(p)?))
        }
        // More than one colon without brackets: a bare IPv6 address.
        _ => Ok((s.to_string(), DEFAULT_PORT)),
    }
}

/// `host:port` for messages and connecting; IPv6 literals get brackets.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

static HAS_OVERRIDES: AtomicBool = AtomicBool::new(false);
static OVERRIDES: Mutex<Vec<(String, IpAddr)>> = Mutex::new(Vec::new());

/// Make `name` resolve to `ip` in this process (tests: TLS node names such as
/// `0001.cluster.test` that must reach loopback without editing /etc/hosts).
/// `None` removes the override.
#[doc(hidden)]
pub fn set_test_resolver_override(name: &str, ip: Option<IpAddr>) {
    let mut map = OVERRIDES.lock();
    map.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    if let Some(ip) = ip {
        map.push((name.to_ascii_lowercase(), ip));
    }
    HAS_OVERRIDES.store(!map.is_empty(), Ordering::Release);
}

fn overridden(host: &str) -> Option<IpAddr> {
    if !HAS_OVERRIDES.load(Ordering::Acquire) {
        return None;
    }
    OVERRIDES
        .lock()
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(host))
        .map(|(_, ip)| *ip)
}

/// Resolve `host` (an IP literal or a name; resolved afresh on every call).
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>> {
    if let Some(ip) = overridden(host) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    match (host, port).to_socket_addrs() {
        Ok(it) => {
            let addrs: Vec<SocketAddr> = it.collect();
            if addrs.is_empty() {
                Err(Error::HostLookup {
                    host: host.to_string(),
                    detail: "no addresses".into(),
                })
            } else {
                Ok(addrs)
            }
        }
        Err(e) => Err(Error::HostLookup {
            host: host.to_string(),
            detail: e.to_string(),
        }),
    }
}

/// Socket options applied to every connection.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Time allowed to establish the TCP connection (per address tried, capped by the total).
    pub connect_timeout: Duration,
    /// Read and write timeout on the connected socket.
    pub io_timeout: Duration,
    /// Disable Nagle's algorithm (requests are written whole, so delaying them only adds latency).
    pub tcp_nodelay: bool,
    /// TLS: the shared client configuration; `None` for plain TCP.
    pub tls: Option<Arc<TlsConnector>>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_millis(1000),
            io_timeout: Duration::from_millis(1000),
            tcp_nodelay: true,
            tls: None,
        }
    }
}

/// Resolve and connect to `host:port`, trying each address until one answers
/// within the connect timeout (which bounds the whole attempt, TLS handshake
/// included). Under TLS the certificate is verified against `host` (or the
/// configured `tls_server_name`). `label` names the server in errors.
///
/// Name resolution (getaddrinfo) comes first and is bounded by the system
/// resolver's own timeouts, not by the connect timeout: nodes listed with an
/// IP (the ElastiCache default without TLS) never resolve.
pub fn connect(host: &str, port: u16, opts: &ConnectOptions, label: &str) -> Result<Stream> {
    let deadline = Instant::now() + opts.connect_timeout;
    let tcp = connect_tcp(host, port, opts, label, deadline)?;
    secure(tcp, host, opts, label, deadline)
}

/// A connected socket as a [`Stream`]: as it is, or after the TLS handshake
/// when the options ask for TLS (bounded by `deadline`).
pub fn secure(
    tcp: TcpStream,
    host: &str,
    opts: &ConnectOptions,
    label: &str,
    deadline: Instant,
) -> Result<Stream> {
    let Some(tls) = &opts.tls else {
        return Ok(Stream::Tcp(tcp));
    };
    let stream = TlsStream::handshake(tcp, tls, host, label, deadline)?;
    let sock = stream.socket();
    sock.set_read_timeout(Some(nonzero(opts.io_timeout)))
        .and_then(|_| sock.set_write_timeout(Some(nonzero(opts.io_timeout))))
        .map_err(|e| Error::io(label, "connect", e))?;
    Ok(Stream::Tls(Box::new(stream)))
}

fn connect_tcp(
    host: &str,
    port: u16,
    opts: &ConnectOptions,
    label: &str,
    deadline: Instant,
) -> Result<TcpStream> {
    let addrs = resolve(host, port)?;
    let mut last: Option<io::Error> = None;
    for addr in addrs {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match TcpStream::connect_timeout(&addr, deadline - now) {
            Ok(stream) => {
                let setup = || -> io::Result<()> {
                    stream.set_read_timeout(Some(nonzero(opts.io_timeout)))?;
                    stream.set_write_timeout(Some(nonzero(opts.io_timeout)))?;
                    stream.set_nodelay(opts.tcp_nodelay)
                };
                setup().map_err(|e| Error::io(label, "connect", e))?;
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => Error::io(label, "connect", e),
        None => Error::Timeout {
            addr: label.to_string(),
            op: "connect",
        },
    })
}

/// One connection: plain TCP or TLS.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream>),
}

impl Stream {
    /// The TCP socket underneath.
    #[inline]
    pub fn socket(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
            Stream::Tls(t) => t.socket(),
        }
    }

    /// The socket's descriptor (for poll).
    #[inline]
    pub fn fd(&self) -> i32 {
        self.socket().as_raw_fd()
    }

    /// Whether TLS holds received bytes that a read returns without the
    /// socket becoming readable (never for plain TCP). A poll loop must read
    /// these before waiting.
    #[inline]
    pub fn has_buffered_input(&self) -> bool {
        match self {
            Stream::Tcp(_) => false,
            Stream::Tls(t) => t.has_buffered_input(),
        }
    }

    /// Set the socket's read timeout.
    pub fn set_read_timeout(&self, d: Duration) -> io::Result<()> {
        self.socket().set_read_timeout(Some(nonzero(d)))
    }

    /// Send all of `buf` (blocking, bounded by the write timeout).
    #[inline]
    pub fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(buf),
            Stream::Tls(t) => t.write_all(buf),
        }
    }

    /// Read some bytes (blocking, bounded by the read timeout); the end of the
    /// stream is an `UnexpectedEof` error, never `Ok(0)`.
    #[inline]
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => loop {
                match s.read(buf) {
                    Ok(0) => return Err(closed()),
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            },
            Stream::Tls(t) => t.read(buf),
        }
    }

    /// Send as much of `buf[from..]` as goes out without blocking; returns the
    /// new offset (pass it back as `from` for the rest of the same buffer).
    pub fn send_nonblocking(&mut self, buf: &[u8], from: usize) -> io::Result<usize> {
        let s = match self {
            Stream::Tcp(s) => s,
            Stream::Tls(t) => return t.send_nonblocking(buf, from),
        };
        let mut off = from;
        while off < buf.len() {
            let rest = &buf[off..];
            // SAFETY: valid buffer and length; MSG_DONTWAIT keeps the socket blocking for others.
            let n = unsafe {
                libc::send(
                    s.as_raw_fd(),
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock => return Ok(off),
                    io::ErrorKind::Interrupted => continue,
                    _ => return Err(e),
                }
            }
            off += n as usize;
        }
        Ok(off)
    }

    /// Read whatever is available without blocking: `Ok(None)` when nothing is.
    pub fn recv_nonblocking(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let s = match self {
            Stream::Tcp(s) => s,
            Stream::Tls(t) => return t.recv_nonblocking(buf),
        };
        loop {
            // SAFETY: valid writable buffer and length.
            let n = unsafe {
                libc::recv(
                    s.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock => return Ok(None),
                    io::ErrorKind::Interrupted => continue,
                    _ => return Err(e),
                }
            }
            if n == 0 {
                return Err(closed());
            }
            return Ok(Some(n as usize));
        }
    }
}

/// Discovery reads and writes through the standard traits.
impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match Stream::read(self, buf) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Stream::write_all(self, buf).map(|_| buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Stream::write_all(self, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed by the server",
    )
}

/// Socket timeouts of zero mean "block forever" to the OS; we never want that.
pub fn nonzero(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_addresses() {
        assert_eq!(split_host_port("a.b:11212").unwrap(), ("a.b".into(), 11212));
        assert_eq!(split_host_port("a.b").unwrap(), ("a.b".into(), 11211));
        assert_eq!(split_host_port("[::1]:5").unwrap(), ("::1".into(), 5));
        assert_eq!(split_host_port("[::1]").unwrap(), ("::1".into(), 11211));
        assert_eq!(
            split_host_port("2600:1f18::1").unwrap(),
            ("2600:1f18::1".into(), 11211)
        );
        assert!(split_host_port("a:0").is_err());
        assert!(split_host_port("a:99999").is_err());
        assert!(split_host_port(":5").is_err());
        assert!(split_host_port("").is_err());
        assert!(split_host_port("[::1").is_err());
    }

    #[test]
    fn joins_addresses() {
        assert_eq!(join_host_port("::1", 7), "[::1]:7");
        assert_eq!(join_host_port("h", 7), "h:7");
    }
}
