//! `elasticache_client`: making and freeing a client, refreshing it, and
//! asking where keys go. The operations live in `single`, `multi` and `stats`.

use std::ffi::c_char;

use super::boundary::{bytes, call, copy_out, server_list};
use super::handle::{Handle, Out};
use super::options::{elasticache_options, endpoint_args};
use crate::client::Client;
use crate::error::{Error, Result, Status};

/// A client over a cluster. Safe to share between threads: every operation
/// may be called concurrently on one client. Free with `elasticache_client_free`
/// once no call is running on it.
#[allow(non_camel_case_types)]
pub struct elasticache_client(pub(crate) Client);

impl Handle for elasticache_client {
    const NAME: &'static str = "client";
}

/// Borrow the core client behind a C handle.
///
/// # Safety
/// `p` NULL or a live client.
pub(super) unsafe fn client_ref<'a>(p: *const elasticache_client) -> Result<&'a Client> {
    // SAFETY: caller's contract.
    Ok(&unsafe { elasticache_client::try_ref(p)? }.0)
}

/// The client and the key of a single-key call.
///
/// # Safety
/// `client` NULL or live; `key` readable for `key_len` bytes (NULL with 0).
pub(super) unsafe fn client_key<'a>(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
) -> Result<(&'a Client, &'a [u8])> {
    // SAFETY: forwarded contract.
    unsafe { Ok((client_ref(client)?, bytes(key, key_len, "key")?)) }
}

/// Create a client for the cluster behind the configuration endpoint
/// `endpoint` ("host:port"). The node list comes from the process-global node
/// cache (discovered on the first call for the endpoint in the process) and is
/// refreshed every `refresh_interval`. `options` may be NULL (defaults:
/// ketama, one_at_a_time, nodes named by IP, as django-elasticache).
///
/// # Safety
/// `endpoint` NUL-terminated; `options` NULL or live; `out` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_client_new(
    endpoint: *const c_char,
    options: *const elasticache_options,
    out: *mut *mut elasticache_client,
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract.
        let (out, (endpoint, opts)) =
            unsafe { (Out::new(out)?, endpoint_args(endpoint, options)?) };
        out.give(elasticache_client(Client::from_endpoint(endpoint, opts)?));
        Ok(())
    })
}

/// Create a client over a fixed list of `n` servers ("host:port", port 11211
/// when omitted), as pylibmc does. `weights` is NULL or `n` weights (used by
/// `ketama_weighted`). The host strings are hashed exactly as given.
///
/// # Safety
/// `servers` points to `n` NUL-terminated strings; `weights` NULL or `n` values;
/// `options` NULL or live; `out` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_client_new_servers(
    servers: *const *const c_char,
    n: usize,
    weights: *const u32,
    options: *const elasticache_options,
    out: *mut *mut elasticache_client,
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract.
        let (out, specs, opts) = unsafe {
            let out = Out::new(out)?;
            (
                out,
                server_list(servers, n, weights)?,
                elasticache_options::or_default(options),
            )
        };
        if specs.is_empty() {
            return Err(Error::InvalidArgument("the server list is empty".into()));
        }
        out.give(elasticache_client(Client::from_servers(specs, opts)?));
        Ok(())
    })
}

/// Free a client and close its connections. NULL is accepted and ignored.
///
/// # Safety
/// `client` NULL or from `elasticache_client_new*`, freed once, with no call running on it.
#[no_mangle]
pub unsafe extern "C" fn elasticache_client_free(client: *mut elasticache_client) {
    // SAFETY: caller's contract.
    unsafe { elasticache_client::free(client) }
}

/// Re-discover the cluster now and apply a changed node list (connections to
/// nodes that stay are kept). On failure the last good list keeps serving.
///
/// # Safety
/// `client` must be live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_client_refresh(client: *const elasticache_client) -> Status {
    // SAFETY: caller's contract.
    call(|| unsafe { client_ref(client)? }.refresh())
}

/// Copy the "host:port" of the node that owns `key` now into `buf` (NUL
/// terminated; `*out_n` gets the length without the NUL).
///
/// # Safety
/// `client` live; `key` readable for `key_len` bytes; `buf` writable for `len`; `out_n` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn elasticache_server_for_key(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract.
        unsafe {
            let (c, key) = client_key(client, key, key_len)?;
            let server = c.server_for(key)?;
            copy_out(server.as_bytes(), buf.cast(), len, out_n)
        }
    })
}

/// The client's current node list: one `host:port` label per node, in the
/// order `elasticache_server_index_for_key` counts, joined by `\n` into `buf`
/// (NUL-terminated). The list is the one the client routes with now (no
/// discovery round trip). `*out_n` receives the full length; when it does not
/// fit, BUFFER_TOO_SMALL is returned (call again with `*out_n + 1` bytes).
///
/// # Safety
/// `client` live; `buf` writable for `len` bytes (or NULL with 0); `out_n` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn elasticache_client_servers(
    client: *const elasticache_client,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract.
        unsafe {
            let labels = client_ref(client)?.servers()?.join("\n");
            copy_out(labels.as_bytes(), buf.cast(), len, out_n)
        }
    })
}

/// Store in `*index` the position of the node that owns `key` now, in the
/// order of the client's node list (the order the configuration endpoint lists
/// them, or the order given to `elasticache_client_new_servers`).
///
/// # Safety
/// `client` live; `key` readable for `key_len` bytes; `index` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_server_index_for_key(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    index: *mut usize,
) -> Status {
    call(|| {
        super::boundary::non_null(index, "index")?;
        // SAFETY (this block): the caller's contract; `index` checked non-NULL.
        unsafe {
            let (c, key) = client_key(client, key, key_len)?;
            let i = c.server_index_for(key)?;
            index.write(i);
        }
        Ok(())
    })
}

/// Close every idle connection of the client; later calls reconnect on demand.
///
/// # Safety
/// `client` live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_client_disconnect_all(
    client: *const elasticache_client,
) -> Status {
    call(|| {
        // SAFETY: caller's contract.
        unsafe { client_ref(client)? }.disconnect_all();
        Ok(())
    })
}
