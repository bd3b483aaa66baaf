//! Client-side counters per node: requests, hits, misses, errors, timeouts,
//! ejections and a latency histogram with fixed buckets.
//!
//! The counters sit on the hot path of every operation, so they cost what a
//! few relaxed atomic additions cost and nothing more: each node keeps
//! [`SHARDS`] copies of its counters on separate cache lines, and a thread
//! adds to the copy its stack address picks, so two threads
//! working on one node do not fight over one cache line. A snapshot sums the
//! copies. The number of requests is not counted on its own: every request
//! lands in exactly one latency bucket, so it is the sum of the buckets.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::error::Error;

/// Upper bounds of the latency buckets in microseconds: powers of two from
/// 8 µs to about 1 s; a last, unbounded bucket follows them.
pub const BUCKET_BOUNDS_US: [u64; 18] = [
    8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144,
    524288, 1048576,
];
/// Number of latency buckets (the bounded ones and the unbounded last one).
pub const BUCKETS: usize = BUCKET_BOUNDS_US.len() + 1;
/// Copies of the counters per node (a power of two).
pub const SHARDS: usize = 4;

#[repr(align(128))]
#[derive(Debug, Default)]
struct Shard {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    /// Requests refused without being sent because the node was ejected.
    refused: AtomicU64,
    latency_sum_us: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

/// The counters of one node (kept in its connection pool).
#[derive(Debug, Default)]
pub struct NodeMetrics {
    shards: [Shard; SHARDS],
    ejections: AtomicU64,
}

/// The copy of the counters this thread adds to. A thread-local variable
/// costs a `__tls_get_addr` call in a shared library; the thread's stack
/// address is free and tells threads apart: each thread's stack is its own
/// mapping, megabytes from the next. Two threads sharing a copy only share
/// a cache line, the counts stay exact.
#[inline]
fn shard_index() -> usize {
    let marker = 0u8;
    let sp = std::ptr::addr_of!(marker) as usize;
    (sp >> 21) & (SHARDS - 1)
}

/// The bucket a latency of `us` microseconds falls in.
#[inline]
pub fn bucket_for(us: u64) -> usize {
    if us <= BUCKET_BOUNDS_US[0] {
        return 0;
    }
    // ceil(log2(us)) - 3: 9..=16 -> 1, 17..=32 -> 2, ...
    let log = 64 - (us - 1).leading_zeros() as usize;
    (log - 3).min(BUCKETS - 1)
}

/// When a request started, in nanoseconds of the monotonic clock (one clock
/// read, a second one when it ends). `clock_gettime` is read directly: the
/// checked arithmetic of `Instant` cost as much again as the clock itself.
#[derive(Debug, Clone, Copy)]
pub struct Timer(u64);

#[inline]
fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to write; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

impl Timer {
    /// Start timing now.
    #[inline]
    pub fn start() -> Timer {
        Timer(now_ns())
    }

    /// Microseconds since the start.
    #[inline]
    fn elapsed_us(self) -> u64 {
        now_ns().saturating_sub(self.0) / 1000
    }
}

/// How a request to a node ended, as far as the counters care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered (including "not found", "not stored", "exists": all answers).
    Answered,
    /// A read found the key.
    Hit,
    /// A read did not find the key.
    Miss,
    /// The node failed to answer (connection, protocol, server error...).
    Error,
    /// The node did not answer in time (counted as an error too).
    Timeout,
}

impl Outcome {
    /// The outcome an error stands for: answers of the protocol ("not found",
    /// a refused store, a cas conflict) and the caller's mistakes are not the
    /// node's errors.
    pub fn of_error(e: &Error) -> Outcome {
        match e {
            Error::Timeout { .. } => Outcome::Timeout,
            Error::NotFound
            | Error::NotStored
            | Error::Exists
            | Error::BadKey { .. }
            | Error::TooBig { .. }
            | Error::InvalidArgument(_)
            | Error::BufferTooSmall { .. } => Outcome::Answered,
            _ => Outcome::Error,
        }
    }

    /// The outcome of a request whose result carries no hit or miss.
    pub fn of<T>(r: &Result<T, Error>) -> Outcome {
        match r {
            Ok(_) => Outcome::Answered,
            Err(e) => Outcome::of_error(e),
        }
    }
}

impl NodeMetrics {
    #[inline]
    fn shard(&self) -> &Shard {
        &self.shards[shard_index()]
    }

    /// Count one request that started at `t` and ended now.
    #[inline]
    pub fn record(&self, t: Timer, outcome: Outcome) {
        let us = t.elapsed_us();
        let s = self.shard();
        s.buckets[bucket_for(us)].fetch_add(1, Relaxed);
        s.latency_sum_us.fetch_add(us, Relaxed);
        match outcome {
            Outcome::Answered => {}
            Outcome::Hit => {
                s.hits.fetch_add(1, Relaxed);
            }
            Outcome::Miss => {
                s.misses.fetch_add(1, Relaxed);
            }
            Outcome::Error => {
                s.errors.fetch_add(1, Relaxed);
            }
            Outcome::Timeout => {
                s.errors.fetch_add(1, Relaxed);
                s.timeouts.fetch_add(1, Relaxed);
            }
        }
    }

    /// Count hits and misses of a multi-key read (its request is counted by
    /// [`NodeMetrics::record`]).
    #[inline]
    pub fn add_reads(&self, hits: u64, misses: u64) {
        let s = self.shard();
        if hits > 0 {
            s.hits.fetch_add(hits, Relaxed);
        }
        if misses > 0 {
            s.misses.fetch_add(misses, Relaxed);
        }
    }

    /// Count a request refused because the node is ejected (a request and an
    /// error, with no latency).
    #[cold]
    pub fn refused(&self) {
        let s = self.shard();
        s.refused.fetch_add(1, Relaxed);
        s.errors.fetch_add(1, Relaxed);
    }

    /// Count an ejection.
    #[cold]
    pub fn ejected(&self) {
        self.ejections.fetch_add(1, Relaxed);
    }

    /// These counters as a snapshot of the node labelled `node`, which has
    /// `open_connections` open and is ejected or not.
    pub fn snapshot(&self, node: &str, open_connections: u64, ejected: bool) -> NodeSnapshot {
        let t = self.totals();
        NodeSnapshot {
            node: node.to_string(),
            requests: t.buckets.iter().sum::<u64>() + t.refused,
            hits: t.hits,
            misses: t.misses,
            errors: t.errors,
            timeouts: t.timeouts,
            ejections: self.ejections.load(Relaxed),
            open_connections,
            state: if ejected { NodeState::Ejected } else { NodeState::Up },
            latency_sum_us: t.latency_sum_us,
            buckets: t.buckets,
        }
    }

    fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in &self.shards {
            t.hits += s.hits.load(Relaxed);
            t.misses += s.misses.load(Relaxed);
            t.errors += s.errors.load(Relaxed);
            t.timeouts += s.timeouts.load(Relaxed);
            t.refused += s.refused.load(Relaxed);
            t.latency_sum_us += s.latency_sum_us.load(Relaxed);
            for (b, c) in t.buckets.iter_mut().zip(&s.buckets) {
                *b += c.load(Relaxed);
            }
        }
        t
    }
}

#[derive(Debug, Default)]
struct Totals {
    hits: u64,
    misses: u64,
    errors: u64,
    timeouts: u64,
    refused: u64,
    latency_sum_us: u64,
    buckets: [u64; BUCKETS],
}

/// Whether a node takes requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// In service.
    Up,
    /// Ejected after repeated failures, until its retry time.
    Ejected,
}

impl NodeState {
    /// `"up"` or `"ejected"`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Up => "up",
            NodeState::Ejected => "ejected",
        }
    }
}

/// The counters of one node at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSnapshot {
    /// `host:port`.
    pub node: String,
    /// Requests: one per single-key call and one per node a multi-key call
    /// touched, including requests refused while the node was ejected.
    pub requests: u64,
    /// Keys read and found.
    pub hits: u64,
    /// Keys read and not found.
    pub misses: u64,
    /// Requests that failed on the node's side (timeouts included, and
    /// requests refused while it was ejected).
    pub errors: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Times the node was ejected.
    pub ejections: u64,
    /// Connections open to the node now (idle and in use).
    pub open_connections: u64,
    /// Up or ejected now.
    pub state: NodeState,
    /// Sum of the latencies of timed requests, in microseconds.
    pub latency_sum_us: u64,
    /// Timed requests per bucket (bounds in [`BUCKET_BOUNDS_US`], last unbounded).
    pub buckets: [u64; BUCKETS],
}

impl NodeSnapshot {
    /// Timed requests (every request but the refused ones).
    pub fn timed(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The upper bound (µs) of the bucket holding quantile `q` (0..=1) of the
    /// latencies; `None` without timed requests, `u64::MAX` for the last bucket.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        let n = self.timed();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(BUCKET_BOUNDS_US.get(i).copied().unwrap_or(u64::MAX));
            }
        }
        Some(u64::MAX)
    }
}

/// Count one node's part of a multi-key call that started at `t` and failed
/// with `error` (or not).
#[inline]
pub fn record_batch(m: &NodeMetrics, t: Timer, error: Option<&Error>) {
    m.record(t, error.map_or(Outcome::Answered, Outcome::of_error));
}

/// Count the hits and misses among `keys` (indexes into `results`) of a
/// multi-key read; failed keys are the request's error, not reads.
pub fn count_reads<T>(m: &NodeMetrics, keys: &[usize], results: &[Result<Option<T>, Error>]) {
    let (mut hits, mut misses) = (0, 0);
    for &i in keys {
        match results.get(i) {
            Some(Ok(Some(_))) => hits += 1,
            Some(Ok(None)) => misses += 1,
            _ => {}
        }
    }
    m.add_reads(hits, misses);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two() {
        assert_eq!(bucket_for(0), 0);
        assert_eq!(bucket_for(8), 0);
        assert_eq!(bucket_for(9), 1);
        assert_eq!(bucket_for(16), 1);
        assert_eq!(bucket_for(17), 2);
        assert_eq!(bucket_for(1_048_576), BUCKETS - 2);
        assert_eq!(bucket_for(1_048_577), BUCKETS - 1);
        assert_eq!(bucket_for(u64::MAX), BUCKETS - 1);
        for (i, &b) in BUCKET_BOUNDS_US.iter().enumerate() {
            assert_eq!(bucket_for(b), i, "bound {b}");
            assert_eq!(bucket_for(b + 1), i + 1, "bound {b} + 1");
        }
    }

    #[test]
    fn quantiles_read_bucket_bounds() {
        let mut s = NodeSnapshot {
            node: "x:1".into(),
            requests: 100,
            hits: 0,
            misses: 0,
            errors: 0,
            timeouts: 0,
            ejections: 0,
            open_connections: 0,
            state: NodeState::Up,
            latency_sum_us: 0,
            buckets: [0; BUCKETS],
        };
        assert_eq!(s.quantile_us(0.5), None);
        s.buckets[2] = 98; // <= 32 us
        s.buckets[10] = 2; // <= 8192 us
        assert_eq!(s.quantile_us(0.5), Some(32));
        assert_eq!(s.quantile_us(0.98), Some(32));
        assert_eq!(s.quantile_us(0.99), Some(8192));
    }

    #[test]
    fn outcomes_of_errors() {
        assert_eq!(Outcome::of_error(&Error::NotFound), Outcome::Answered);
        assert_eq!(
            Outcome::of_error(&Error::Timeout {
                addr: "a:1".into(),
                op: "get"
            }),
            Outcome::Timeout
        );
        assert_eq!(
            Outcome::of_error(&Error::Connection {
                addr: "a:1".into(),
                op: "get",
                detail: "refused".into()
            }),
            Outcome::Error
        );
    }
}
