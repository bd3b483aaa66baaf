//! `elasticache_stats`: per-node answers to `stats` and `version`, failed
//! nodes included.

use std::ffi::{c_char, CString};

use super::boundary::{call, opt_c_str};
use super::client::{client_ref, elasticache_client};
use super::handle::{put, Handle, Out};
use super::multi::cstring_lossy;
use crate::client::PerNode;
use crate::error::{Error, Status};

/// Per-node results of `stats` or `version`. Owned by the caller, freed with
/// `elasticache_stats_free`. Immutable.
#[allow(non_camel_case_types)]
pub struct elasticache_stats {
    nodes: Vec<StatsNode>,
}

impl Handle for elasticache_stats {
    const NAME: &'static str = "stats";
}

struct StatsNode {
    server: CString,
    status: u32,
    /// The failure's message; `None` for a node that answered.
    error: Option<CString>,
    entries: Vec<(CString, CString)>,
}

impl elasticache_stats {
    fn new(per_node: PerNode<Vec<(String, String)>>) -> elasticache_stats {
        let node = |(server, r): (String, crate::error::Result<Vec<(String, String)>>)| {
            let server = cstring_lossy(&server);
            match r {
                Ok(entries) => StatsNode {
                    server,
                    status: Status::Ok as u32,
                    error: None,
                    entries: entries
                        .iter()
                        .map(|(k, v)| (cstring_lossy(k), cstring_lossy(v)))
                        .collect(),
                },
                Err(e) => StatsNode {
                    server,
                    status: e.status() as u32,
                    error: Some(cstring_lossy(&e.to_string())),
                    entries: Vec::new(),
                },
            }
        };
        elasticache_stats {
            nodes: per_node.into_iter().map(node).collect(),
        }
    }
}

/// Ask every node for `stats` (or `stats ARG` when `arg` is not NULL).
/// `*out` receives one entry per node, including failed ones.
///
/// # Safety
/// `client` live; `arg` NULL or NUL-terminated; `out` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_client_stats(
    client: *const elasticache_client,
    arg: *const c_char,
    out: *mut *mut elasticache_stats,
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract.
        let (out, c, arg) =
            unsafe { (Out::new(out)?, client_ref(client)?, opt_c_str(arg, "arg")?) };
        out.give(elasticache_stats::new(c.stats(arg)?));
        Ok(())
    })
}

/// Ask every node for its `version`; each node gets one entry named "version".
///
/// # Safety
/// `client` live; `out` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_client_versions(
    client: *const elasticache_client,
    out: *mut *mut elasticache_stats,
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract.
        let (out, c) = unsafe { (Out::new(out)?, client_ref(client)?) };
        let entry = |(s, r): (String, crate::error::Result<String>)| {
            (s, r.map(|v| vec![("version".to_string(), v)]))
        };
        out.give(elasticache_stats::new(
            c.version()?.into_iter().map(entry).collect(),
        ));
        Ok(())
    })
}

/// The number of nodes in a stats result (0 for NULL).
///
/// # Safety
/// `stats` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_stats_node_count(stats: *const elasticache_stats) -> usize {
    // SAFETY: caller's contract.
    unsafe { Handle::read(stats, 0, |s| s.nodes.len()) }
}

/// Node `i` of a stats result: its "host:port", the status of the request to
/// it, and its number of entries (0 for a failed node: its message is
/// `elasticache_stats_error`). Outputs may be NULL. INVALID_ARGUMENT for an
/// index out of range.
///
/// # Safety
/// `stats` live; outputs NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn elasticache_stats_node(
    stats: *const elasticache_stats,
    i: usize,
    server: *mut *const c_char,
    status: *mut u32,
    entries: *mut usize,
) -> Status {
    call(|| {
        // SAFETY: caller's contract.
        let s = unsafe { elasticache_stats::try_ref(stats)? };
        let node = s
            .nodes
            .get(i)
            .ok_or_else(|| Error::InvalidArgument(format!("node index {i} is out of range")))?;
        // SAFETY (this block): outputs NULL or valid per the caller's contract.
        unsafe {
            put(server, node.server.as_ptr());
            put(status, node.status);
            put(entries, node.entries.len());
        }
        Ok(())
    })
}

/// The error message of node `i` (what its request met; NULL when the node
/// answered, for an index out of range and for NULL). Valid until
/// `elasticache_stats_free`.
///
/// # Safety
/// `stats` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_stats_error(
    stats: *const elasticache_stats,
    i: usize,
) -> *const c_char {
    let text = |s: &elasticache_stats| {
        s.nodes
            .get(i)
            .and_then(|n| n.error.as_ref())
            .map_or(std::ptr::null(), |t| t.as_ptr())
    };
    // SAFETY: caller's contract.
    unsafe { Handle::read(stats, std::ptr::null(), text) }
}

/// Entry `j` of node `i`: its name and value (valid until `elasticache_stats_free`).
///
/// # Safety
/// `stats` live; `name` and `value` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn elasticache_stats_entry(
    stats: *const elasticache_stats,
    i: usize,
    j: usize,
    name: *mut *const c_char,
    value: *mut *const c_char,
) -> Status {
    call(|| {
        // SAFETY: caller's contract.
        let s = unsafe { elasticache_stats::try_ref(stats)? };
        let (n, v) = s
            .nodes
            .get(i)
            .and_then(|node| node.entries.get(j))
            .ok_or_else(|| Error::InvalidArgument(format!("entry ({i}, {j}) is out of range")))?;
        // SAFETY (this block): outputs NULL or valid per the caller's contract.
        unsafe {
            put(name, n.as_ptr());
            put(value, v.as_ptr());
        }
        Ok(())
    })
}

/// Free a stats result. NULL is accepted and ignored.
///
/// # Safety
/// `stats` NULL or from this library, freed once.
#[no_mangle]
pub unsafe extern "C" fn elasticache_stats_free(stats: *mut elasticache_stats) {
    // SAFETY: caller's contract.
    unsafe { elasticache_stats::free(stats) }
}
