//! Per-node connections and health.
//!
//! A [`NodePool`] owns the idle connections to one node and its failure state
//! (consecutive failures, ejection deadline). Checking a connection out or in
//! takes the pool's lock for a push or a pop; no lock is held across I/O.
//! A [`Conn`] owns its socket and the two buffers every request reuses, so an
//! operation allocates nothing but the value it hands back.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::protocol::{self, Parse, Reply};
use crate::transport::{self, ConnectOptions, Stream};

const READ_CHUNK: usize = 16 * 1024;
/// A read buffer grown past this goes back to [`READ_CHUNK`] once a few
/// operations in a row did not need it: a pooled connection must not keep
/// the largest value it ever read.
const KEEP_READ_BUF: usize = 4 * READ_CHUNK;
/// How many operations in a row that fit in [`READ_CHUNK`] shrink a grown buffer.
const SHRINK_AFTER_OPS: u8 = 4;
/// The default cap on one reply element (a VALUE header and its data) before
/// [`NodePool::with_value_limit`]: memcached's own largest item.
const DEFAULT_MAX_ELEMENT: usize = 1024 * 1024 + protocol::MAX_LINE_LEN + 2;

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
    reused: bool,
    /// Some reply byte arrived during the operation in progress.
    received: bool,
    /// The kind of the I/O error that broke this connection, if one did.
    broken: Option<io::ErrorKind>,
    /// The pool's stale generation when this connection was opened.
    gen: u64,
    /// The longest reply element (VALUE header, data, CRLF) accepted: a
    /// server's claim beyond it is a protocol error, before any allocation.
    max_element: usize,
    /// The highest fill of `rbuf` during the operation in progress.
    peak: usize,
    /// Operations in a row that fit in [`READ_CHUNK`] while `rbuf` was larger.
    quiet_ops: u8,
}

impl Conn {
    fn new(stream: Stream, io_timeout: Duration, gen: u64, max_element: usize) -> Conn {
        Conn {
            stream,
            wbuf: Vec::with_capacity(1024),
            rbuf: vec![0; READ_CHUNK],
            rstart: 0,
            rend: 0,
            io_timeout: transport::nonzero(io_timeout),
            read_timeout: transport::nonzero(io_timeout),
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
    fn settle(&mut self) {
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
            let t = transport::nonzero(left);
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

/// Why no connection could be checked out.
#[derive(Debug)]
pub struct CheckoutError {
    /// What went wrong, for the caller.
    pub error: Error,
    /// Whether it counts against the node (a failed connect does; waiting for
    /// a free connection while all are busy does not).
    pub node_failed: bool,
}

/// Where a node is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeAddr {
    /// The host to connect to (IP, or name resolved on every connect).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The IP the configuration listed (empty when none, or for a fixed server
    /// list). Part of the node's identity: under TLS `host` is the name, and a
    /// node replaced under the same name with a new IP must get a new pool.
    pub listed_ip: String,
}

impl NodeAddr {
    /// `host:port` (IPv6 bracketed), used in every message about this node.
    pub fn label(&self) -> String {
        transport::join_host_port(&self.host, self.port)
    }
}

#[derive(Debug, Default)]
struct Idle {
    conns: Vec<Conn>,
    open: usize,
}

/// The connections and health of one node.
#[derive(Debug)]
pub struct NodePool {
    addr: NodeAddr,
    label: String,
    connect: ConnectOptions,
    max_conns: usize,
    max_element: usize,
    /// Bumped when a stale connection shows the node restarted: connections
    /// opened before are closed instead of pooled again.
    stale_gen: AtomicU64,
    idle: Mutex<Idle>,
    freed: Condvar,
    failures: AtomicU32,
    /// Milliseconds since `epoch` until which the node is ejected (0 = not ejected).
    dead_until_ms: AtomicU64,
    epoch: Instant,
    metrics: crate::metrics::NodeMetrics,
}

impl NodePool {
    /// A pool for `addr`; connections are opened on demand, at most `max_conns` at once.
    pub fn new(addr: NodeAddr, connect: ConnectOptions, max_conns: usize) -> NodePool {
        NodePool {
            label: addr.label(),
            addr,
            connect,
            max_conns: max_conns.max(1),
            max_element: DEFAULT_MAX_ELEMENT,
            stale_gen: AtomicU64::new(0),
            idle: Mutex::new(Idle::default()),
            freed: Condvar::new(),
            failures: AtomicU32::new(0),
            dead_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            metrics: Default::default(),
        }
    }

    /// Refuse reply values longer than `max_value` bytes (the client's
    /// `max_value_size`) as a protocol error, without allocating for them.
    pub fn with_value_limit(mut self, max_value: usize) -> NodePool {
        self.max_element = max_value
            .saturating_add(protocol::MAX_LINE_LEN)
            .saturating_add(2);
        self
    }

    /// The connection options of this pool (a forked child's fresh pool for
    /// the same node starts from them).
    pub fn connect_options(&self) -> &ConnectOptions {
        &self.connect
    }

    /// The node's address.
    pub fn addr(&self) -> &NodeAddr {
        &self.addr
    }

    /// `host:port` for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// This node's client-side counters.
    #[inline]
    pub fn metrics(&self) -> &crate::metrics::NodeMetrics {
        &self.metrics
    }

    /// Connections open to the node now, idle or in use.
    pub fn open_connections(&self) -> usize {
        self.idle.lock().open
    }

    /// An idle connection, or a new one while fewer than the cap are open;
    /// at the cap, wait up to the I/O timeout for one to come back. A failure
    /// to connect is the node's; waiting in vain for a free connection is not
    /// (`CheckoutError::node_failed` says which).
    #[inline]
    pub fn checkout(&self, op: &'static str) -> std::result::Result<Conn, CheckoutError> {
        self.checkout_inner(op, false)
    }

    /// Like [`NodePool::checkout`] but never an idle connection: a new one,
    /// closing an idle one if that is what the cap needs (the retry after a
    /// stale connection).
    pub fn checkout_fresh(&self, op: &'static str) -> std::result::Result<Conn, CheckoutError> {
        self.checkout_inner(op, true)
    }

    /// Reserve a place for a connection: an idle one when `fresh` is false,
    /// or `Ok(None)` when the caller is to connect (the place is counted as
    /// open; hand it back with [`NodePool::connected`]).
    #[inline(always)]
    pub(crate) fn reserve(
        &self,
        op: &'static str,
        fresh: bool,
    ) -> std::result::Result<Option<Conn>, CheckoutError> {
        let mut idle = self.idle.lock();
        // The clock is read only when the pool is exhausted: an idle
        // connection is handed out without a time stamp (one less
        // clock_gettime per operation).
        let mut deadline = None;
        loop {
            if fresh {
                if let Some(c) = idle.conns.pop() {
                    // Its place goes to the new connection.
                    drop(c);
                    return Ok(None);
                }
            } else if let Some(mut c) = idle.conns.pop() {
                c.reused = true;
                return Ok(Some(c));
            }
            if idle.open < self.max_conns {
                idle.open += 1;
                return Ok(None);
            }
            let until = *deadline.get_or_insert_with(|| Instant::now() + self.connect.io_timeout);
            if self.freed.wait_until(&mut idle, until).timed_out() {
                return Err(CheckoutError {
                    error: Error::Timeout {
                        addr: self.label.clone(),
                        op,
                    },
                    node_failed: false,
                });
            }
        }
    }

    /// The outcome of a connect for a place from [`NodePool::reserve`].
    #[inline(never)]
    pub(crate) fn connected(&self, r: Result<Stream>) -> std::result::Result<Conn, CheckoutError> {
        match r {
            Ok(stream) => Ok(Conn::new(
                stream,
                self.connect.io_timeout,
                self.stale_gen.load(Ordering::Acquire),
                self.max_element,
            )),
            Err(e) => {
                self.forget_one();
                Err(CheckoutError {
                    node_failed: e.is_node_failure(),
                    error: e,
                })
            }
        }
    }

    #[inline(always)]
    fn checkout_inner(
        &self,
        op: &'static str,
        fresh: bool,
    ) -> std::result::Result<Conn, CheckoutError> {
        if let Some(c) = self.reserve(op, fresh)? {
            return Ok(c);
        }
        self.connect_new()
    }

    #[inline(never)]
    fn connect_new(&self) -> std::result::Result<Conn, CheckoutError> {
        self.connected(transport::connect(
            &self.addr.host,
            self.addr.port,
            &self.connect,
            &self.label,
        ))
    }

    /// A stale connection showed that the node restarted: close every idle
    /// connection and keep those in use now from being pooled again.
    pub fn drop_stale(&self) {
        self.stale_gen.fetch_add(1, Ordering::AcqRel);
        self.close_idle();
    }

    /// Return a healthy connection for reuse.
    pub fn checkin(&self, mut conn: Conn) {
        if !conn.is_clean() || conn.gen != self.stale_gen.load(Ordering::Relaxed) {
            // Unread bytes would be taken for the next request's reply.
            drop(conn);
            self.forget_one();
            return;
        }
        conn.settle();
        self.idle.lock().conns.push(conn);
        self.freed.notify_one();
    }

    /// Drop a broken connection (it is closed and not reused).
    pub fn discard(&self, conn: Conn) {
        drop(conn);
        self.forget_one();
    }

    fn forget_one(&self) {
        let mut idle = self.idle.lock();
        idle.open = idle.open.saturating_sub(1);
        drop(idle);
        self.freed.notify_one();
    }

    /// Idle connections' read buffer sizes (tests: buffers shrink back).
    #[doc(hidden)]
    pub fn idle_read_buffers(&self) -> Vec<usize> {
        self.idle
            .lock()
            .conns
            .iter()
            .map(Conn::read_buffer_len)
            .collect()
    }

    /// The pool's lock, held (tests: a fork while another thread holds it).
    #[doc(hidden)]
    pub fn lock_for_test(&self) -> impl Sized + '_ {
        self.idle.lock()
    }

    /// Close every idle connection (new ones open on demand).
    pub fn close_idle(&self) {
        let mut idle = self.idle.lock();
        let n = idle.conns.len();
        idle.conns.clear();
        idle.open = idle.open.saturating_sub(n);
    }

    /// A success resets the failure count.
    #[inline]
    pub fn record_success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// Count a failure; returns true when this one reached `limit` and the node
    /// is now ejected for `retry`.
    pub fn record_failure(&self, limit: u32, retry: Duration) -> bool {
        let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if limit > 0 && n >= limit {
            let until = self.now_ms() + retry.as_millis() as u64;
            self.dead_until_ms.store(until.max(1), Ordering::Release);
            self.failures.store(0, Ordering::Release);
            self.close_idle();
            return true;
        }
        false
    }

    /// Whether the node is ejected now.
    #[inline]
    pub fn is_ejected(&self) -> bool {
        let until = self.dead_until_ms.load(Ordering::Acquire);
        until != 0 && self.now_ms() < until
    }

    /// Whether the node was ejected (flag set, whether or not its time is up).
    #[inline]
    pub fn ejection_flag(&self) -> bool {
        self.dead_until_ms.load(Ordering::Acquire) != 0
    }

    /// Clear an ejection whose retry time has passed; true if one was cleared.
    pub fn revive_if_due(&self) -> bool {
        let until = self.dead_until_ms.load(Ordering::Acquire);
        until != 0
            && self.now_ms() >= until
            && self
                .dead_until_ms
                .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// When the ejection ends, if the node is ejected.
    pub fn ejected_until(&self) -> Option<Instant> {
        match self.dead_until_ms.load(Ordering::Acquire) {
            0 => None,
            ms => Some(self.epoch + Duration::from_millis(ms)),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }
}
