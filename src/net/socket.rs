//! The TCP socket layer: blocking connects with a deadline, non-blocking
//! connect primitives for connecting to many nodes at once, the socket
//! options every connection gets, and `send`/`recv` with fixed flags.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::addr::resolve;
use crate::error::{Error, Result};

/// Socket timeouts of zero mean "block forever" to the OS; we never want that.
pub fn nonzero(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

/// The error a read reports when the peer closed the connection.
pub(crate) fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed by the server",
    )
}

/// The socket options every connection gets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SocketSetup {
    /// Read and write timeout.
    pub io_timeout: Duration,
    /// Disable Nagle's algorithm.
    pub nodelay: bool,
}

/// Resolve and connect to `host:port`, trying each address until one answers
/// before `deadline`. `label` names the server in errors.
pub(crate) fn connect_tcp(
    host: &str,
    port: u16,
    setup: SocketSetup,
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
                let apply = || -> io::Result<()> {
                    stream.set_read_timeout(Some(nonzero(setup.io_timeout)))?;
                    stream.set_write_timeout(Some(nonzero(setup.io_timeout)))?;
                    stream.set_nodelay(setup.nodelay)
                };
                apply().map_err(|e| Error::io(label, "connect", e))?;
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

/// A non-blocking socket connecting to `addr`: (fd, connected already).
pub(crate) fn start_connect(addr: SocketAddr) -> io::Result<(RawFd, bool)> {
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
pub(crate) fn socket_error(fd: RawFd) -> io::Result<()> {
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
pub(crate) fn setup_blocking(s: TcpStream, setup: SocketSetup, label: &str) -> Result<TcpStream> {
    let r = (|| -> io::Result<()> {
        s.set_nonblocking(false)?;
        s.set_read_timeout(Some(nonzero(setup.io_timeout)))?;
        s.set_write_timeout(Some(nonzero(setup.io_timeout)))?;
        s.set_nodelay(setup.nodelay)
    })();
    r.map_err(|e| Error::io(label, "connect", e))?;
    Ok(s)
}

/// The socket seen through `send`/`recv` with fixed flags: MSG_NOSIGNAL always
/// (a C host may not ignore SIGPIPE), MSG_DONTWAIT for the non-blocking calls.
pub(crate) struct Sock {
    fd: i32,
    flags: i32,
}

impl Sock {
    pub(crate) fn blocking(s: &TcpStream) -> Sock {
        Sock {
            fd: s.as_raw_fd(),
            flags: libc::MSG_NOSIGNAL,
        }
    }

    pub(crate) fn nonblocking(s: &TcpStream) -> Sock {
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

/// The longest any duration option can be: what poll(2) can wait (about 24.8
/// days). Larger values mean "practically forever" and saturate here, so no
/// deadline computation (`Instant + timeout`, milliseconds as `u64`) can
/// overflow or wrap.
pub const MAX_DURATION: Duration = Duration::from_millis(i32::MAX as u64);

/// `ms` milliseconds, saturated at `MAX_DURATION`.
pub fn saturating_millis(ms: u64) -> Duration {
    Duration::from_millis(ms).min(MAX_DURATION)
}

/// `s` seconds, saturated at `MAX_DURATION`.
pub fn saturating_secs(s: u64) -> Duration {
    Duration::from_secs(s).min(MAX_DURATION)
}
