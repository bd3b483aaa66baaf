//! Connecting: one node with a deadline ([`connect`]), or several nodes at
//! once for a multi-key call ([`connect_all`]): every TCP connect is started
//! non-blocking and they are awaited together with poll, so nodes that drop
//! SYNs cost one connect timeout in all, not one each. Each node still tries
//! its addresses in order within that one timeout; TLS handshakes follow,
//! each bounded by the same deadline.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::addr::resolve;
use super::socket::{self, nonzero, setup_blocking, socket_error, start_connect, SocketSetup};
use super::stream::Stream;
use super::tls::TlsConnector;
use super::tls_stream::TlsStream;
use crate::error::{Error, Result};

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
    let tcp = socket::connect_tcp(host, port, opts.socket(), label, deadline)?;
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

impl ConnectOptions {
    fn socket(&self) -> SocketSetup {
        SocketSetup {
            io_timeout: self.io_timeout,
            nodelay: self.tcp_nodelay,
        }
    }
}

/// One node to connect to.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Host name or IP.
    pub host: &'a str,
    /// Port.
    pub port: u16,
    /// How to connect.
    pub opts: &'a ConnectOptions,
    /// `host:port` for messages.
    pub label: &'a str,
}

/// One node's connect in progress.
struct Pending {
    addrs: Vec<SocketAddr>,
    next: usize,
    fd: Option<RawFd>,
    last: Option<io::Error>,
    out: Option<Result<TcpStream>>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            // SAFETY: our own descriptor, not handed out.
            unsafe { libc::close(fd) };
        }
    }
}

/// A new connection (plain or TLS, as each pool is configured) to every node
/// in `nodes`, connected concurrently; one result per node, in order.
pub(crate) fn connect_all(nodes: &[Target<'_>]) -> Vec<Result<Stream>> {
    if let [n] = nodes {
        return vec![connect(n.host, n.port, n.opts, n.label)];
    }
    let start = Instant::now();
    let mut pending: Vec<Pending> = nodes
        .iter()
        .map(|n| {
            let mut p = Pending {
                addrs: Vec::new(),
                next: 0,
                fd: None,
                last: None,
                out: None,
            };
            match resolve(n.host, n.port) {
                Ok(addrs) => p.addrs = addrs,
                Err(e) => p.out = Some(Err(e)),
            }
            p
        })
        .collect();
    let deadline_of = |i: usize| start + nodes[i].opts.connect_timeout;
    for (i, p) in pending.iter_mut().enumerate() {
        if p.out.is_none() {
            start_next(p, &nodes[i]);
        }
    }
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut which: Vec<usize> = Vec::new();
    loop {
        fds.clear();
        which.clear();
        let now = Instant::now();
        let mut wait_until: Option<Instant> = None;
        for (i, p) in pending.iter_mut().enumerate() {
            if p.out.is_some() {
                continue;
            }
            let Some(fd) = p.fd else { continue };
            let d = deadline_of(i);
            if now >= d {
                p.out = Some(Err(Error::Timeout {
                    addr: nodes[i].label.to_string(),
                    op: "connect",
                }));
                continue;
            }
            wait_until = Some(wait_until.map_or(d, |w| w.min(d)));
            fds.push(libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            });
            which.push(i);
        }
        let Some(until) = wait_until else { break };
        let ms = until
            .saturating_duration_since(now)
            .as_millis()
            .clamp(1, i32::MAX as u128) as i32;
        // SAFETY: a valid array of fds.len() pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            for &i in &which {
                pending[i].out = Some(Err(Error::io(nodes[i].label, "connect", e.kind().into())));
            }
            break;
        }
        for (slot, &i) in which.iter().enumerate() {
            if fds[slot].revents == 0 {
                continue;
            }
            let p = &mut pending[i];
            let Some(fd) = p.fd else { continue };
            match socket_error(fd) {
                Ok(()) => {
                    p.fd = None;
                    // SAFETY: a connected socket we own; the stream takes it over.
                    let s = unsafe { TcpStream::from_raw_fd(fd) };
                    p.out = Some(setup_blocking(s, nodes[i].opts.socket(), nodes[i].label));
                }
                Err(e) => {
                    p.last = Some(e);
                    start_next(p, &nodes[i]);
                }
            }
        }
    }
    pending
        .iter_mut()
        .enumerate()
        .map(|(i, p)| {
            let node = &nodes[i];
            let tcp = match p.out.take() {
                Some(r) => r?,
                None => {
                    return Err(match p.last.take() {
                        Some(e) => Error::io(node.label, "connect", e),
                        None => Error::Timeout {
                            addr: node.label.to_string(),
                            op: "connect",
                        },
                    })
                }
            };
            secure(
                tcp,
                node.host,
                node.opts,
                node.label,
                deadline_of(i),
            )
        })
        .collect()
}

/// Start connecting to the node's next address; records the outcome when
/// there is none left or the connect finished (or failed) at once.
fn start_next(p: &mut Pending, node: &Target<'_>) {
    if let Some(fd) = p.fd.take() {
        // SAFETY: our own descriptor.
        unsafe { libc::close(fd) };
    }
    while p.next < p.addrs.len() {
        let addr = p.addrs[p.next];
        p.next += 1;
        match start_connect(addr) {
            Ok((fd, false)) => {
                p.fd = Some(fd);
                return;
            }
            Ok((fd, true)) => {
                // SAFETY: a connected socket we own.
                let s = unsafe { TcpStream::from_raw_fd(fd) };
                p.out = Some(setup_blocking(s, node.opts.socket(), node.label));
                return;
            }
            Err(e) => p.last = Some(e),
        }
    }
    let e = p
        .last
        .take()
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"));
    p.out = Some(Err(Error::io(node.label, "connect", e)));
}

