//! One connection to a node with the two buffers every request reuses, so an
//! operation allocates nothing but the value it hands back; its reads share
//! one I/O deadline.

use std::io;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::net::socket::nonzero;
use crate::net::stream::Stream;
use crate::protocol::{self, Parse, Reply};

const READ_CHUNK: usize = 16 * 1024;
/// A read buffer grown past this goes back to [`READ_CHUNK`] once a few
/// operations in a row did not need it: a pooled connection must not keep
/// the largest value it ever read.
const KEEP_READ_BUF: usize = 4 * READ_CHUNK;
/// How many operations in a row that fit in [`READ_CHUNK`] shrink a grown buffer.
const SHRINK_AFTER_OPS: u8 = 4;

/// One connection to a node with its reusable buffers.
#[derive(Debug)]
pub struct Conn {
    stream: Stream,
    /// Request bytes waiting to be sent.
    pub wbuf: Vec<u8>,
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    /// The I/O timeout: how long one operation may wait for its reply.
    io_timeout: Duration,
    /// The receive timeout the socket has now.
    read_timeout: Duration,
    /// When the operation in progress must be done; set at its first read.
    deadline: Option<Instant>,
    /// Taken from the idle list (it served an earlier operation): a failure
    /// before any reply byte may mean the server restarted, not that it is sick.
    pub(super) reused: bool,
    /// Some reply byte arrived during the operation in progress.
    received: bool,
    /// The kind of the I/O error that broke this connection, if one did.
    broken: Option<io::ErrorKind>,
    /// The pool's stale generation when this connection was opened.
    pub(super) gen: u64,
    /// The longest reply element (VALUE header, data, CRLF) accepted: a
    /// server's claim beyond it is a protocol error, before any allocation.
    max_element: usize,
    /// The highest fill of `rbuf` during the operation in progress.
    peak: usize,
    /// Operations in a row that fit in [`READ_CHUNK`] while `rbuf` was larger.
    quiet_ops: u8,
}

impl Conn {
    pub(super) fn new(stream: Stream, io_timeout: Duration, gen: u64, max_element: usize) -> Conn {
        Conn {
            stream,
            wbuf: Vec::with_capacity(1024),
            rbuf: vec![0; READ_CHUNK],
            rstart: 0,
            rend: 0,
            io_timeout: nonzero(io_timeout),
            read_timeout: nonzero(io_timeout),
            deadline: None,
            reused: false,
            received: false,
            broken: None,
            gen,
            max_element,
            peak: 0,
            quiet_ops: 0,
        }
    }

    /// Start an operation: its reads share one I/O timeout from the first read on.
    #[inline]
    pub fn begin(&mut self) {
        self.deadline = None;
        self.received = false;
    }

    /// Whether the operation in progress failed the way a connection whose
    /// server went away since it was pooled fails: reused, not one reply
    /// byte, and then closed or reset (not a timeout: a restarted server
    /// answers a stale socket at once). Such a failure is not the node's.
    pub fn failed_stale(&self) -> bool {
        self.reused
            && !self.received
            && matches!(
                self.broken,
                Some(
                    io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                        | io::ErrorKind::NotConnected
                )
            )
    }

    fn note<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r {
            self.broken = Some(e.kind());
        }
        r
    }

    /// A reply element of `needed` bytes in all must fit under the cap
    /// (checked before the buffer grows for it).
    pub fn check_element(&self, label: &str, op: &'static str, needed: usize) -> Result<()> {
        if needed > self.max_element {
            return Err(Error::Protocol {
                addr: label.to_string(),
                op,
                detail: format!(
                    "a reply element of {needed} bytes is longer than max_value_size allows ({} bytes with its header)",
                    self.max_element
                ),
            });
        }
        Ok(())
    }

    /// After an operation: give back a read buffer that grew for a large
    /// value once a few operations in a row did without it.
    #[inline]
    pub(super) fn settle(&mut self) {
        if self.rbuf.len() > KEEP_READ_BUF || self.wbuf.capacity() > KEEP_READ_BUF {
            self.settle_slow();
        }
    }

    #[cold]
    fn settle_slow(&mut self) {
        if self.rbuf.len() > KEEP_READ_BUF {
            if self.peak > READ_CHUNK {
                self.quiet_ops = 0;
            } else {
                self.quiet_ops += 1;
                if self.quiet_ops >= SHRINK_AFTER_OPS {
                    self.rbuf = vec![0; READ_CHUNK];
                    self.quiet_ops = 0;
                }
            }
        }
        if self.wbuf.capacity() > KEEP_READ_BUF {
            self.wbuf = Vec::with_capacity(1024);
        }
        self.peak = 0;
    }

    /// Whether any reply byte arrived during the operation in progress.
    pub fn has_received(&self) -> bool {
        self.received
    }

    #[cfg(feature = "testkit")]
    /// The bytes this connection's read buffer holds allocated (tests).
    #[doc(hidden)]
    pub fn read_buffer_len(&self) -> usize {
        self.rbuf.len()
    }

    /// Make the reads of this operation end by `deadline` (a multi-key call
    /// gives every node the same one).
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }

    /// Before a blocking read: fail once the operation's deadline has passed,
    /// and keep the socket's receive timeout between the time left and 15%
    /// above it. A reply that arrives in one read (the usual case) costs a
    /// clock read and no extra system call.
    fn arm_read(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let deadline = *self.deadline.get_or_insert(now + self.io_timeout);
        let Some(left) = deadline
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
        else {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "I/O timeout"));
        };
        if self.read_timeout < left || self.read_timeout > left.mul_f32(1.15) {
            let t = nonzero(left);
            self.stream.set_read_timeout(t)?;
            self.read_timeout = t;
        }
        Ok(())
    }

    /// The socket's descriptor (for poll in multi-node operations).
    pub fn fd(&self) -> i32 {
        self.stream.fd()
    }

    /// Whether received bytes wait inside the connection (TLS) that a read
    /// returns without the socket becoming readable: poll must not wait then.
    #[inline]
    pub fn has_buffered_input(&self) -> bool {
        self.stream.has_buffered_input()
    }

    /// Send all of `wbuf` (blocking, bounded by the write timeout) and clear it.
    pub fn flush(&mut self) -> io::Result<()> {
        let r = self.stream.write_all(&self.wbuf);
        self.wbuf.clear();
        self.note(r)
    }

    /// Send as much of `wbuf[from..]` as the socket takes without blocking;
    /// returns the new offset.
    pub fn send_nonblocking(&mut self, from: usize) -> io::Result<usize> {
        let r = self.stream.send_nonblocking(&self.wbuf, from);
        self.note(r)
    }

    /// Unparsed bytes received so far.
    pub fn pending(&self) -> &[u8] {
        &self.rbuf[self.rstart..self.rend]
    }

    /// Mark `n` bytes of [`Conn::pending`] as used.
    pub fn consume(&mut self, n: usize) {
        self.rstart += n;
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        }
    }

    fn make_room(&mut self, needed: Option<usize>) {
        let want_total = needed.unwrap_or(0).max(self.rend - self.rstart + 1);
        if self.rstart > 0
            && (self.rbuf.len() - self.rend < READ_CHUNK / 4
                || want_total > self.rbuf.len() - self.rstart)
        {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
        if want_total > self.rbuf.len() - self.rstart {
            self.rbuf.resize(self.rstart + want_total, 0);
        } else if self.rend == self.rbuf.len() {
            let grow = self.rbuf.len();
            self.rbuf.resize(self.rbuf.len() + grow, 0);
        }
    }

    /// Read more bytes (blocking, bounded by the read timeout). `needed` is the
    /// parser's hint of the total pending length that completes the element.
    pub fn fill(&mut self, needed: Option<usize>) -> io::Result<()> {
        self.arm_read()?;
        self.make_room(needed);
        let r = self.stream.read(&mut self.rbuf[self.rend..]);
        let n = self.note(r)?;
        self.rend += n;
        self.received = true;
        self.peak = self.peak.max(self.rend);
        Ok(())
    }

    /// Read whatever is available without blocking; Ok(false) when nothing was.
    pub fn fill_nonblocking(&mut self, needed: Option<usize>) -> io::Result<bool> {
        self.make_room(needed);
        let r = self.stream.recv_nonblocking(&mut self.rbuf[self.rend..]);
        match self.note(r)? {
            Some(n) => {
                self.rend += n;
                self.received = true;
                self.peak = self.peak.max(self.rend);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Send what is buffered; an I/O error is attributed to `label` and `op`.
    pub fn send(&mut self, label: &str, op: &'static str) -> Result<()> {
        self.flush().map_err(|e| Error::io(label, op, e))
    }

    /// One exchange: send what is buffered, then read the replies as
    /// [`Conn::read_until`] does.
    pub fn round_trip<T>(
        &mut self,
        label: &str,
        op: &'static str,
        on_reply: impl FnMut(Reply<'_>) -> Result<Option<T>>,
    ) -> Result<T> {
        self.send(label, op)?;
        self.read_until(label, op, on_reply)
    }

    /// Read and parse replies, handing each to `on_reply` until it returns
    /// `Some`. Protocol and I/O errors are attributed to `label` and `op`.
    pub fn read_until<T>(
        &mut self,
        label: &str,
        op: &'static str,
        mut on_reply: impl FnMut(Reply<'_>) -> Result<Option<T>>,
    ) -> Result<T> {
        loop {
            match protocol::parse(self.pending()) {
                Ok(Parse::Done(reply, used)) => {
                    let out = on_reply(reply)?;
                    self.consume(used);
                    if let Some(v) = out {
                        return Ok(v);
                    }
                }
                Ok(Parse::Incomplete { needed }) => {
                    if let Some(n) = needed {
                        self.check_element(label, op, n)?;
                    }
                    self.fill(needed).map_err(|e| Error::io(label, op, e))?
                }
                Err(detail) => {
                    return Err(Error::Protocol {
                        addr: label.to_string(),
                        op,
                        detail,
                    })
                }
            }
        }
    }

    /// True when no unread reply bytes remain (a connection is only reused clean).
    pub fn is_clean(&self) -> bool {
        self.rstart == self.rend && self.wbuf.is_empty() && !self.stream.has_buffered_input()
    }
}

