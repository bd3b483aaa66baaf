//! One TLS connection over a connected socket: the handshake with a deadline,
//! and reads and writes with the I/O shape of a plain socket (one `send` per
//! request, one `recv` of up to 64 KiB into its own ciphertext buffer).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use rustls::ClientConnection;

use super::socket::{closed, nonzero, Sock};
use super::tls::TlsConnector;
use crate::error::{Error, Result, TlsFailure};

/// Ciphertext read from the socket in one `recv` at most (four full records).
const CIPHER_BUF: usize = 64 * 1024;
/// rustls refuses more ciphertext once this much plaintext waits unread.
const PLAINTEXT_LIMIT: usize = 16 * 1024;

fn rustls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, TlsFailure(Box::new(e)))
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
            let left = nonzero(deadline - now);
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
        .and_then(|inner| inner.downcast_ref::<TlsFailure>())
        .and_then(|t| t.0.downcast_ref::<rustls::Error>());
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
