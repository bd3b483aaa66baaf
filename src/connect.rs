//! Connecting to several nodes at once, for a multi-key call: every TCP
//! connect is started non-blocking and they are awaited together with poll,
//! so nodes that drop SYNs cost one connect timeout in all, not one each.
//! Each node still tries its addresses in order within that one timeout;
//! TLS handshakes follow, each bounded by the same deadline.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, RawFd};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::pool::NodePool;
use crate::transport::{self, ConnectOptions, Stream};

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
pub(crate) fn connect_all(nodes: &[&NodePool]) -> Vec<Result<Stream>> {
    if nodes.len() == 1 {
        let n = nodes[0];
        let a = n.addr();
        return vec![transport::connect(
            &a.host,
            a.port,
            n.connect_options(),
            n.label(),
        )];
    }
    let start = Instant::now();
    let mut pending: Vec<Pending> = nodes
        .iter()
        .map(|n| {
            let a = n.addr();
            let mut p = Pending {
                addrs: Vec::new(),
                next: 0,
                fd: None,
                last: None,
                out: None,
            };
            match transport::resolve(&a.host, a.port) {
                Ok(addrs) => p.addrs = addrs,
                Err(e) => p.out = Some(Err(e)),
            }
            p
        })
        .collect();
    let deadline_of = |i: usize| start + nodes[i].connect_options().connect_timeout;
    for (i, p) in pending.iter_mut().enumerate() {
        if p.out.is_none() {
            start_next(p, nodes[i]);
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
                    addr: nodes[i].label().to_string(),
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
                pending[i].out = Some(Err(Error::io(nodes[i].label(), "connect", e.kind().into())));
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
                    p.out = Some(setup(s, nodes[i].connect_options(), nodes[i].label()));
                }
                Err(e) => {
                    p.last = Some(e);
                    start_next(p, nodes[i]);
                }
            }
        }
    }
    pending
        .iter_mut()
        .enumerate()
        .map(|(i, p)| {
            let node = nodes[i];
            let tcp = match p.out.take() {
                Some(r) => r?,
                None => {
                    return Err(match p.last.take() {
                        Some(e) => Error::io(node.label(), "connect", e),
                        None => Error::Timeout {
                            addr: node.label().to_string(),
                            op: "connect",
                        },
                    })
                }
            };
            transport::secure(
                tcp,
                &node.addr().host,
                node.connect_options(),
                node.label(),
                deadline_of(i),
            )
        })
        .collect()
}

/// Start connecting to the node's next address; records the outcome when
/// there is none left or the connect finished (or failed) at once.
fn start_next(p: &mut Pending, node: &NodePool) {
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
                p.out = Some(setup(s, node.connect_options(), node.label()));
                return;
            }
            Err(e) => p.last = Some(e),
        }
    }
    let e = p
        .last
        .take()
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"));
    p.out = Some(Err(Error::io(node.label(), "connect", e)));
}

/// A non-blocking socket connecting to `addr`: (fd, connected already).
fn start_connect(addr: SocketAddr) -> io::Result<(RawFd, bool)> {
    let (family, storage, len) = sockaddr(addr);
    // SAFETY: plain socket creation.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: storage holds a sockaddr of `len` bytes for `family`.
    let r = unsafe { libc::connect(fd, (&storage as *const libc::sockaddr_storage).cast(), len) };
    if r == 0 {
        return Ok((fd, true));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINPROGRESS) {
        return Ok((fd, false));
    }
    // SAFETY: our own descriptor.
    unsafe { libc::close(fd) };
    Err(e)
}

fn sockaddr(addr: SocketAddr) -> (libc::c_int, libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and aligned for it.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            (
                libc::AF_INET,
                storage,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            (
                libc::AF_INET6,
                storage,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

/// The outcome of a finished non-blocking connect.
fn socket_error(fd: RawFd) -> io::Result<()> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid out pointers of the right size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    Ok(())
}

/// Blocking again, with the socket options every connection gets.
fn setup(s: TcpStream, opts: &ConnectOptions, label: &str) -> Result<TcpStream> {
    let r = (|| -> io::Result<()> {
        s.set_nonblocking(false)?;
        s.set_read_timeout(Some(transport::nonzero(opts.io_timeout)))?;
        s.set_write_timeout(Some(transport::nonzero(opts.io_timeout)))?;
        s.set_nodelay(opts.tcp_nodelay)
    })();
    r.map_err(|e| Error::io(label, "connect", e))?;
    Ok(s)
}
