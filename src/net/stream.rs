//! A connection: plain TCP or TLS behind one enum. The plain arm is the
//! socket itself (no box, no extra buffer, no extra system call); the TLS arm
//! lives in [`super::tls_stream`].

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Duration;

use super::socket::{closed, nonzero};
use super::tls_stream::TlsStream;

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

