//! `elasticache_client_metrics`: per-node client-side counters for C.

use std::ffi::{c_char, CString};

use super::boundary::{call, non_null};
use super::client::{client_ref, elasticache_client};
use super::handle::{put, Handle, Out};
use super::multi::cstring_lossy;
use crate::error::{Error, Status};
use crate::metrics::{NodeSnapshot, NodeState, BUCKETS, BUCKET_BOUNDS_US};

/// A snapshot of every node's counters, taken by `elasticache_client_metrics`.
/// Owned by the caller, freed with `elasticache_metrics_free`. Immutable.
#[allow(non_camel_case_types)]
pub struct elasticache_metrics {
    nodes: Vec<(CString, NodeSnapshot)>,
}

/// One node's counters (see `elasticache_metrics_node`).
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct elasticache_node_metrics {
    /// "host:port"; valid until `elasticache_metrics_free`.
    pub node: *const c_char,
    /// Requests: one per single-key call, one per node a multi-key call
    /// touched, and one per key refused while the node was ejected.
    pub requests: u64,
    /// Keys read and found.
    pub hits: u64,
    /// Keys read and not found.
    pub misses: u64,
    /// Requests the node failed (timeouts and refusals while ejected included).
    pub errors: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Times the node was ejected.
    pub ejections: u64,
    /// Connections open to the node (idle and in use).
    pub open_connections: u64,
    /// True while the node is ejected.
    pub ejected: bool,
    /// Sum of the timed requests' latencies, microseconds.
    pub latency_sum_us: u64,
    /// Median latency: the upper bound of its bucket, microseconds (0 without
    /// timed requests, UINT64_MAX beyond the last bound).
    pub p50_us: u64,
    /// 99th percentile latency, as `p50_us`.
    pub p99_us: u64,
}

impl Handle for elasticache_metrics {
    const NAME: &'static str = "metrics";
}

/// Take a snapshot of the client's per-node counters. `*out` receives a
/// result to free with `elasticache_metrics_free`.
///
/// # Safety
/// `client` live; `out` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_client_metrics(
    client: *const elasticache_client,
    out: *mut *mut elasticache_metrics,
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract.
        let (out, c) = unsafe { (Out::new(out)?, client_ref(client)?) };
        let nodes = c
            .node_metrics()?
            .into_iter()
            .map(|s| (cstring_lossy(&s.node), s))
            .collect();
        out.give(elasticache_metrics { nodes });
        Ok(())
    })
}

/// The number of nodes in a snapshot (0 for NULL).
///
/// # Safety
/// `metrics` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_metrics_node_count(
    metrics: *const elasticache_metrics,
) -> usize {
    // SAFETY: caller's contract.
    unsafe { Handle::read(metrics, 0, |m| m.nodes.len()) }
}

/// Node `i`'s counters into `*out`. INVALID_ARGUMENT for an index out of range.
///
/// # Safety
/// `metrics` live; `out` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_metrics_node(
    metrics: *const elasticache_metrics,
    i: usize,
    out: *mut elasticache_node_metrics,
) -> Status {
    call(|| {
        non_null(out, "out")?;
        // SAFETY: caller's contract.
        let m = unsafe { elasticache_metrics::try_ref(metrics)? };
        let (label, s) = m
            .nodes
            .get(i)
            .ok_or_else(|| Error::InvalidArgument(format!("node index {i} is out of range")))?;
        let v = elasticache_node_metrics {
            node: label.as_ptr(),
            requests: s.requests,
            hits: s.hits,
            misses: s.misses,
            errors: s.errors,
            timeouts: s.timeouts,
            ejections: s.ejections,
            open_connections: s.open_connections,
            ejected: s.state == NodeState::Ejected,
            latency_sum_us: s.latency_sum_us,
            p50_us: s.quantile_us(0.5).unwrap_or(0),
            p99_us: s.quantile_us(0.99).unwrap_or(0),
        };
        // SAFETY: checked non-NULL.
        unsafe { out.write(v) };
        Ok(())
    })
}

/// The number of latency buckets (the same for every node and snapshot).
#[no_mangle]
pub extern "C" fn elasticache_metrics_bucket_count() -> usize {
    BUCKETS
}

/// Latency bucket `b` of node `i`: its upper bound in microseconds
/// (UINT64_MAX for the last, unbounded one) and the requests in it (not
/// cumulative). Outputs may be NULL. INVALID_ARGUMENT for an index out of range.
///
/// # Safety
/// `metrics` live; outputs NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_metrics_bucket(
    metrics: *const elasticache_metrics,
    i: usize,
    b: usize,
    upper_us: *mut u64,
    count: *mut u64,
) -> Status {
    call(|| {
        // SAFETY: caller's contract.
        let m = unsafe { elasticache_metrics::try_ref(metrics)? };
        let (_, s) = m
            .nodes
            .get(i)
            .ok_or_else(|| Error::InvalidArgument(format!("node index {i} is out of range")))?;
        let n = *s
            .buckets
            .get(b)
            .ok_or_else(|| Error::InvalidArgument(format!("bucket index {b} is out of range")))?;
        // SAFETY (this block): outputs NULL or valid per the caller's contract.
        unsafe {
            put(
                upper_us,
                BUCKET_BOUNDS_US.get(b).copied().unwrap_or(u64::MAX),
            );
            put(count, n);
        }
        Ok(())
    })
}

/// Free a snapshot (NULL is fine).
///
/// # Safety
/// `metrics` NULL or from `elasticache_client_metrics`, freed once.
#[no_mangle]
pub unsafe extern "C" fn elasticache_metrics_free(metrics: *mut elasticache_metrics) {
    // SAFETY: caller's contract.
    unsafe { elasticache_metrics::free(metrics) }
}
