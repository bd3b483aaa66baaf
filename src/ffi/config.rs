//! `elasticache_config`: a discovered cluster configuration, and the calls that
//! discover and refresh through the process-global node cache.

use std::ffi::{c_char, CString};
use std::sync::Arc;

use super::boundary::call;
use super::handle::{put, Handle, Out};
use super::options::{elasticache_options, endpoint_args};
use crate::cluster::discovery::Config;
use crate::cluster::registry;
use crate::error::{Error, Status};

/// A cluster configuration: version and nodes. Immutable; safe to read from
/// many threads; free once with `elasticache_config_free`.
#[allow(non_camel_case_types)]
pub struct elasticache_config {
    config: Arc<Config>,
    // NUL-terminated copies, so accessors can hand out pointers that live as long as the config.
    strings: Vec<(CString, CString)>,
}

impl Handle for elasticache_config {
    const NAME: &'static str = "config";
}

impl elasticache_config {
    fn new(config: Arc<Config>) -> Result<elasticache_config, Error> {
        let strings = config
            .nodes
            .iter()
            .map(|n| {
                let cs = |s: &str| {
                    CString::new(s).map_err(|_| Error::Discovery {
                        endpoint: n.label(),
                        detail: "node name contains a NUL byte".into(),
                    })
                };
                Ok((cs(&n.host)?, cs(&n.ip)?))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(elasticache_config { config, strings })
    }
}

/// Discover the nodes behind the configuration endpoint `endpoint`
/// ("host:port", port 11211 when omitted) and store a new config object in
/// `*out`. The first call for an endpoint in this process connects and asks
/// (`config get cluster`, falling back to `get AmazonElastiCache:cluster`);
/// later calls return the cached answer without network traffic. `options`
/// may be NULL (defaults); it supplies `connect_timeout`, `io_timeout` and
/// `ignore_cluster_errors`.
///
/// # Safety
/// `endpoint` must be a NUL-terminated string; `options` NULL or live; `out`
/// valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_discover(
    endpoint: *const c_char,
    options: *const elasticache_options,
    out: *mut *mut elasticache_config,
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract.
        let (out, (endpoint, opts)) =
            unsafe { (Out::new(out)?, endpoint_args(endpoint, options)?) };
        let config = registry::get_or_discover(endpoint, &opts.discovery_options())?;
        out.give(elasticache_config::new(config)?);
        Ok(())
    })
}

/// Re-discover `endpoint` now and update the process-global cache (a new
/// configuration is applied when its payload changed and its version did not go
/// down). On failure nothing is written to `*out`, the error is returned, and
/// the cache keeps serving the last good configuration. `out` may be NULL when
/// the caller does not want the configuration.
///
/// # Safety
/// As for `elasticache_discover`, except that `out` may be NULL.
#[no_mangle]
pub unsafe extern "C" fn elasticache_refresh(
    endpoint: *const c_char,
    options: *const elasticache_options,
    out: *mut *mut elasticache_config,
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract.
        let (endpoint, opts) = unsafe { endpoint_args(endpoint, options)? };
        let config = registry::refresh(endpoint, &opts.discovery_options())?;
        // `out` is optional here: NULL means the caller wants only the refresh.
        // SAFETY: caller's contract.
        if let Ok(out) = unsafe { Out::new(out) } {
            out.give(elasticache_config::new(config)?);
        }
        Ok(())
    })
}

/// The configuration version (0 when the endpoint was used as the only node
/// under `ignore_cluster_errors`). Returns 0 for NULL.
///
/// # Safety
/// `config` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_config_version(config: *const elasticache_config) -> u64 {
    // SAFETY: caller's contract.
    unsafe { Handle::read(config, 0, |c| c.config.version) }
}

/// Whether the endpoint is an ElastiCache Serverless cache (the `serverless`
/// option, or detected under `tls`): its only node is the endpoint itself and
/// the version is 0. Returns false for NULL.
///
/// # Safety
/// `config` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_config_is_serverless(
    config: *const elasticache_config,
) -> bool {
    // SAFETY: caller's contract.
    unsafe { Handle::read(config, false, |c| c.config.serverless) }
}

/// The number of nodes. Returns 0 for NULL.
///
/// # Safety
/// `config` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_config_node_count(config: *const elasticache_config) -> usize {
    // SAFETY: caller's contract.
    unsafe { Handle::read(config, 0, |c| c.config.nodes.len()) }
}

/// Node `index` (0-based, in the endpoint's order): its host name, its IP (an
/// empty string when the endpoint listed none) and its port. The strings live as
/// long as `config`. Each output pointer may be NULL when not wanted. An index
/// out of range returns INVALID_ARGUMENT.
///
/// # Safety
/// `config` must be live; each non-NULL output valid for one write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_config_node(
    config: *const elasticache_config,
    index: usize,
    host: *mut *const c_char,
    ip: *mut *const c_char,
    port: *mut u16,
) -> Status {
    call(|| {
        // SAFETY: caller's contract.
        let c = unsafe { elasticache_config::try_ref(config)? };
        let (Some(node), Some((h, i))) = (c.config.nodes.get(index), c.strings.get(index)) else {
            return Err(Error::InvalidArgument(format!(
                "node index {index} is out of range (the config has {} nodes)",
                c.config.nodes.len()
            )));
        };
        // SAFETY (this block): outputs NULL or valid per the caller's contract.
        unsafe {
            put(host, h.as_ptr());
            put(ip, i.as_ptr());
            put(port, node.port);
        }
        Ok(())
    })
}

/// Free a config object. NULL is accepted and ignored.
///
/// # Safety
/// `config` must be NULL or come from this library, freed once.
#[no_mangle]
pub unsafe extern "C" fn elasticache_config_free(config: *mut elasticache_config) {
    // SAFETY: caller's contract.
    unsafe { elasticache_config::free(config) }
}
