//! `elasticache_options`: named settings shared by discovery, rings and clients.

use std::ffi::c_char;

use super::boundary::{c_str, call};
use super::handle::{Handle, Out};
use crate::error::Status;
use crate::options::Options;

/// A set of options, each settable by name (see `elasticache_options_set`).
/// Not thread-safe to modify; once built it is only read, and may be shared.
#[allow(non_camel_case_types)]
pub struct elasticache_options(pub(crate) Options);

impl Handle for elasticache_options {
    const NAME: &'static str = "opts";
}

impl elasticache_options {
    /// The options behind a possibly-NULL pointer (NULL = defaults).
    ///
    /// # Safety
    /// `p` must be NULL or a live pointer from `elasticache_options_new`.
    pub(crate) unsafe fn or_default(p: *const elasticache_options) -> Options {
        // SAFETY: caller's contract.
        match unsafe { p.as_ref() } {
            Some(o) => o.0.clone(),
            None => Options::default(),
        }
    }
}

/// Create an options object holding the defaults; free it with
/// `elasticache_options_free`.
///
/// # Safety
/// `out` must be valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_options_new(out: *mut *mut elasticache_options) -> Status {
    call(|| {
        // SAFETY: caller's contract.
        unsafe { Out::new(out)? }.give(elasticache_options(Options::default()));
        Ok(())
    })
}

/// Set one option by name from text. Names: `connect_timeout` (ms),
/// `io_timeout` (ms), `ignore_cluster_errors` (true/false), `distribution`
/// (modula, ketama, ketama_weighted, rendezvous), `hash` (one_at_a_time, md5,
/// crc, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, murmur3, jenkins),
/// `node_naming` (ip, host), `max_connections_per_node`, `failure_limit`,
/// `retry_timeout` (s), `remove_failed`, `refresh_interval` (s),
/// `refresh_interval_ms`, `max_value_size` (bytes), `tcp_nodelay`.
///
/// TLS (in-transit encryption; ElastiCache engine 1.6.12+ with encryption on,
/// and Serverless, accept only TLS): `tls` (true/false) [false] encrypts every
/// connection, the configuration endpoint's included, and reaches each node
/// by its host name; `tls_ca_file` (PEM bundle) [the system's CA
/// certificates]; `tls_cert_file` and `tls_key_file` (PEM client certificate
/// and key, for servers that require one; the key may be inside the
/// certificate file) (default none); `tls_server_name`: one name every node's
/// certificate is verified against and that is sent as SNI [each node's own
/// host name]; `tls_insecure_skip_verify` (true/false) [false]: accept any
/// certificate (encrypted but not authenticated: for tests only).
/// `serverless` (true/false) [false]: the endpoint is an ElastiCache
/// Serverless cache, used as one TLS node without discovery (implies `tls`;
/// also detected under `tls` when the endpoint knows no discovery command).
/// `binary_keys` (true/false) [false]: keys of 1 to 186 bytes with
/// whitespace or control bytes are sent base64-encoded in meta commands to
/// nodes with memcached 1.6.10+ (stored under the raw bytes, as pylibmc's
/// binary protocol does); elsewhere such keys stay BAD_KEY.
/// A file option is read when set: a missing or unparsable file is refused.
/// An empty value unsets a text option.
/// An unknown name or a bad value returns INVALID_ARGUMENT and changes nothing.
///
/// # Safety
/// `opts` must come from `elasticache_options_new`; `name` and `value` must be
/// NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn elasticache_options_set(
    opts: *mut elasticache_options,
    name: *const c_char,
    value: *const c_char,
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract (not shared while modified).
        let (opts, name, value) = unsafe {
            (
                elasticache_options::try_mut(opts)?,
                c_str(name, "name")?,
                c_str(value, "value")?,
            )
        };
        opts.0.set(name, value)
    })
}

/// Free an options object. NULL is accepted and ignored.
///
/// # Safety
/// `opts` must be NULL or come from `elasticache_options_new`, freed once.
#[no_mangle]
pub unsafe extern "C" fn elasticache_options_free(opts: *mut elasticache_options) {
    // SAFETY: caller's contract.
    unsafe { elasticache_options::free(opts) }
}

/// The arguments of every call that names a configuration endpoint: the
/// endpoint text and the options (NULL = defaults).
///
/// # Safety
/// `endpoint` NULL or NUL-terminated; `options` NULL or live.
pub(super) unsafe fn endpoint_args<'a>(
    endpoint: *const c_char,
    options: *const elasticache_options,
) -> Result<(&'a str, Options), crate::error::Error> {
    // SAFETY: forwarded contract.
    unsafe {
        Ok((
            c_str(endpoint, "endpoint")?,
            elasticache_options::or_default(options),
        ))
    }
}
