//! Per-node connections and health.
//!
//! A [`NodePool`] owns the idle connections to one node and its failure state
//! (consecutive failures, ejection deadline). Checking a connection out or in
//! takes the pool's lock for a push or a pop; no lock is held across I/O.
//! Idle connections are boxed ([`PooledConn`]): a checkout or checkin moves a
//! pointer, not the connection.

mod conn;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

pub use conn::Conn;

use crate::error::{Error, Result};
use crate::net::addr;
use crate::net::connect::{self, ConnectOptions, Target};
use crate::net::stream::Stream;
use crate::protocol;

/// A checked-out connection: boxed, so moving it in and out of the idle list
/// copies one pointer (a `Conn` is well over a cache line).
pub type PooledConn = Box<Conn>;

/// The default cap on one reply element (a VALUE header and its data) before
/// [`NodePool::with_value_limit`]: memcached's own largest item.
const DEFAULT_MAX_ELEMENT: usize = 1024 * 1024 + protocol::MAX_LINE_LEN + 2;

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
        addr::join_host_port(&self.host, self.port)
    }
}

#[derive(Debug, Default)]
struct Idle {
    conns: Vec<PooledConn>,
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

    /// Where and how to connect to this node.
    pub fn target(&self) -> Target<'_> {
        Target {
            host: &self.addr.host,
            port: self.addr.port,
            opts: &self.connect,
            label: &self.label,
        }
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

    /// The node's counters now, with its connections and state.
    pub fn snapshot(&self) -> crate::metrics::NodeSnapshot {
        self.metrics.snapshot(self.label(), self.open_connections() as u64, self.is_ejected())
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
    pub fn checkout(&self, op: &'static str) -> std::result::Result<PooledConn, CheckoutError> {
        self.checkout_inner(op, false)
    }

    /// Like [`NodePool::checkout`] but never an idle connection: a new one,
    /// closing an idle one if that is what the cap needs (the retry after a
    /// stale connection).
    pub fn checkout_fresh(&self, op: &'static str) -> std::result::Result<PooledConn, CheckoutError> {
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
    ) -> std::result::Result<Option<PooledConn>, CheckoutError> {
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
    pub(crate) fn connected(&self, r: Result<Stream>) -> std::result::Result<PooledConn, CheckoutError> {
        match r {
            Ok(stream) => Ok(Box::new(Conn::new(
                stream,
                self.connect.io_timeout,
                self.stale_gen.load(Ordering::Acquire),
                self.max_element,
            ))),
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
    ) -> std::result::Result<PooledConn, CheckoutError> {
        if let Some(c) = self.reserve(op, fresh)? {
            return Ok(c);
        }
        self.connect_new()
    }

    #[inline(never)]
    fn connect_new(&self) -> std::result::Result<PooledConn, CheckoutError> {
        self.connected(connect::connect(
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
    pub fn checkin(&self, mut conn: PooledConn) {
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
    pub fn discard(&self, conn: PooledConn) {
        drop(conn);
        self.forget_one();
    }

    fn forget_one(&self) {
        let mut idle = self.idle.lock();
        idle.open = idle.open.saturating_sub(1);
        drop(idle);
        self.freed.notify_one();
    }

    #[cfg(feature = "testkit")]
    /// Idle connections' read buffer sizes (tests: buffers shrink back).
    #[doc(hidden)]
    pub fn idle_read_buffers(&self) -> Vec<usize> {
        self.idle
            .lock()
            .conns
            .iter()
            .map(|c| c.read_buffer_len())
            .collect()
    }

    #[cfg(feature = "testkit")]
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
