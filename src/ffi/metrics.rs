//! `elasticache_client_metrics`: per-node client-side counters for C.

use std::ffi::{c_char, CString};

use super::boundary::{call, call_infallible, non_null, write_out};
use super::client::elasticache_client;
use crate::error::Error;
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

unsafe fn metrics_ref<'a>(m: *const elasticache_metrics) -> Result<&'a elasticache_metrics, Error> {
    // SAFETY: caller's contract: NULL or live.
    unsafe { m.as_ref() }.ok_or_else(|| Error::InvalidArgument("metrics is NULL".into()))
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
) -> u32 {
    call(|| {
        non_null(out, "out")?;
        // SAFETY: caller's contract.
        let c = unsafe { client.as_ref() }
            .ok_or_else(|| Error::InvalidArgument("client is NULL".into()))?;
        let nodes =
            c.0.node_metrics()?
                .into_iter()
                .map(|s| {
                    (
                        CString::new(s.node.replace('\0', "")).unwrap_or_default(),
                        s,
                    )
                })
                .collect();
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, Box::into_raw(Box::new(elasticache_metrics { nodes }))) };
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
    call_infallible(0, || {
        unsafe { metrics.as_ref() }.map_or(0, |m| m.nodes.len())
    })
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
) -> u32 {
    call(|| {
        non_null(out, "out")?;
        // SAFETY: caller's contract.
        let m = unsafe { metrics_ref(metrics)? };
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
        unsafe { write_out(out, v) };
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
) -> u32 {
    call(|| {
        // SAFETY: caller's contract.
        let m = unsafe { metrics_ref(metrics)? };
        let (_, s) = m
            .nodes
            .get(i)
            .ok_or_else(|| Error::InvalidArgument(format!("node index {i} is out of range")))?;
        let n = *s
            .buckets
            .get(b)
            .ok_or_else(|| Error::InvalidArgument(format!("bucket index {b} is out of range")))?;
        // SAFETY: outputs checked for NULL.
        unsafe {
            if !upper_us.is_null() {
                write_out(
                    upper_us,
                    BUCKET_BOUNDS_US.get(b).copied().unwrap_or(u64::MAX),
                );
            }
            if !count.is_null() {
                write_out(count, n);
            }
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
    call_infallible((), || {
        if !metrics.is_null() {
            // SAFETY: from Box::into_raw.
            drop(unsafe { Box::from_raw(metrics) });
        }
    })
}
