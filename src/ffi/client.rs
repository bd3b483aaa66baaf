//! `elasticache_client` and the values and results it hands out.

// C calls take their inputs as flat argument lists (pointer + length pairs).
#![allow(clippy::too_many_arguments)]

use std::ffi::{c_char, CString};

use super::boundary::{
    bytes, c_str, call, call_infallible, copy_out, non_null, server_list, write_out,
};
use super::options::elasticache_options;
use crate::client::{Client, Item, MultiGet};
use crate::error::{Error, Result, Status};
use crate::protocol::StoreCommand;

/// A client over a cluster. Safe to share between threads: every operation
/// may be called concurrently on one client. Free with `elasticache_client_free`
/// once no call is running on it.
#[allow(non_camel_case_types)]
pub struct elasticache_client(pub(crate) Client);

/// A value read from the cache: bytes, flags and cas id. Owned by the caller,
/// freed with `elasticache_value_free`. Immutable; safe to read from many threads.
#[allow(non_camel_case_types)]
pub struct elasticache_value(Item);

/// The result of a multi-key call: one entry per key, in the order given.
/// Owned by the caller, freed with `elasticache_multi_free`. Immutable.
#[allow(non_camel_case_types)]
pub struct elasticache_multi {
    result: MultiGet,
    /// Per-entry error texts; left empty when no entry failed.
    messages: Vec<Option<CString>>,
}

/// Per-node results of `stats` or `version`. Owned by the caller, freed with
/// `elasticache_stats_free`. Immutable.
#[allow(non_camel_case_types)]
pub struct elasticache_stats {
    nodes: Vec<StatsNode>,
}

struct StatsNode {
    server: CString,
    status: u32,
    entries: Vec<(CString, CString)>,
}

pub(super) unsafe fn client_ref<'a>(p: *const elasticache_client) -> Result<&'a Client> {
    // SAFETY: caller's contract: NULL or a live client.
    unsafe { p.as_ref() }
        .map(|c| &c.0)
        .ok_or_else(|| Error::InvalidArgument("client is NULL".into()))
}

fn cstring_lossy(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
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
) -> u32 {
    call(|| {
        non_null(out, "out")?;
        // SAFETY: caller's contract.
        let endpoint = unsafe { c_str(endpoint, "endpoint")? };
        // SAFETY: caller's contract.
        let opts = unsafe { elasticache_options::or_default(options) };
        let client = Client::from_endpoint(endpoint, opts)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, Box::into_raw(Box::new(elasticache_client(client)))) };
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
) -> u32 {
    call(|| {
        non_null(out, "out")?;
        if n == 0 {
            return Err(Error::InvalidArgument("the server list is empty".into()));
        }
        // SAFETY: caller's contract.
        let specs = unsafe { server_list(servers, n, weights)? };
        // SAFETY: caller's contract.
        let opts = unsafe { elasticache_options::or_default(options) };
        let client = Client::from_servers(specs, opts)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, Box::into_raw(Box::new(elasticache_client(client)))) };
        Ok(())
    })
}

/// Free a client and close its connections. NULL is accepted and ignored.
///
/// # Safety
/// `client` NULL or from `elasticache_client_new*`, freed once, with no call running on it.
#[no_mangle]
pub unsafe extern "C" fn elasticache_client_free(client: *mut elasticache_client) {
    call_infallible((), || {
        if !client.is_null() {
            // SAFETY: from Box::into_raw.
            drop(unsafe { Box::from_raw(client) });
        }
    })
}

/// Re-discover the cluster now and apply a changed node list (connections to
/// nodes that stay are kept). On failure the last good list keeps serving.
///
/// # Safety
/// `client` must be live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_client_refresh(client: *const elasticache_client) -> u32 {
    // SAFETY: caller's contract.
    call(|| unsafe { client_ref(client)? }.refresh())
}

fn get_common(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    with_cas: bool,
    out: *mut *mut elasticache_value,
) -> u32 {
    call(|| {
        non_null(out, "out")?;
        // SAFETY: caller's contract.
        let (c, key) = unsafe { (client_ref(client)?, bytes(key, key_len, "key")?) };
        let item = if with_cas { c.gets(key)? } else { c.get(key)? };
        let item = item.ok_or(Error::NotFound)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, Box::into_raw(Box::new(elasticache_value(item)))) };
        Ok(())
    })
}

/// Read `key`. On a hit, `*out` receives a value to free with
/// `elasticache_value_free`; on a miss the call returns NOT_FOUND and `*out` is
/// untouched. A bad key returns BAD_KEY without contacting any server.
///
/// # Safety
/// `client` live; `key` readable for `key_len` bytes; `out` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_get(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    out: *mut *mut elasticache_value,
) -> u32 {
    get_common(client, key, key_len, false, out)
}

/// Like `elasticache_get`, also reading the cas id (`elasticache_value_cas`).
///
/// # Safety
/// As for `elasticache_get`.
#[no_mangle]
pub unsafe extern "C" fn elasticache_gets(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    out: *mut *mut elasticache_value,
) -> u32 {
    get_common(client, key, key_len, true, out)
}

/// Read `key` straight into the caller's buffer `buf` of `cap` bytes: no
/// value object, one call (what the Python binding uses). On a hit `*len`,
/// `*flags` and `*cas` (each may be NULL) are written; when the value does not
/// fit, BUFFER_TOO_SMALL is returned with `*len` set to the size needed (call
/// again with a larger buffer). NOT_FOUND on a miss.
///
/// # Safety
/// `client` live; `key` readable for `key_len` bytes; `buf` writable for `cap`
/// bytes (or NULL with `cap == 0`); outputs NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn elasticache_get_into(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
    flags: *mut u32,
    cas: *mut u64,
) -> u32 {
    call(|| {
        if buf.is_null() && cap > 0 {
            return Err(Error::InvalidArgument(
                "buf is NULL with a non-zero capacity".into(),
            ));
        }
        // SAFETY: caller's contract.
        let (c, key) = unsafe { (client_ref(client)?, bytes(key, key_len, "key")?) };
        // The cas id comes only with `gets`; a plain get costs nothing extra.
        let item = if cas.is_null() {
            c.get(key)?
        } else {
            c.gets(key)?
        };
        let item = item.ok_or(Error::NotFound)?;
        // SAFETY: outputs checked for NULL; buf valid for cap bytes.
        unsafe {
            if !len.is_null() {
                write_out(len, item.value.len());
            }
            if item.value.len() > cap {
                return Err(Error::BufferTooSmall {
                    needed: item.value.len(),
                });
            }
            if !item.value.is_empty() {
                std::ptr::copy_nonoverlapping(item.value.as_ptr(), buf, item.value.len());
            }
            if !flags.is_null() {
                write_out(flags, item.flags);
            }
            if !cas.is_null() {
                write_out(cas, item.cas);
            }
        }
        Ok(())
    })
}

/// The value's bytes (valid until `elasticache_value_free`; NULL for NULL).
///
/// # Safety
/// `value` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_value_data(value: *const elasticache_value) -> *const u8 {
    // SAFETY: caller's contract.
    call_infallible(std::ptr::null(), || {
        unsafe { value.as_ref() }.map_or(std::ptr::null(), |v| v.0.value.as_ptr())
    })
}

/// The value's length in bytes (0 for NULL).
///
/// # Safety
/// `value` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_value_len(value: *const elasticache_value) -> usize {
    // SAFETY: caller's contract.
    call_infallible(0, || {
        unsafe { value.as_ref() }.map_or(0, |v| v.0.value.len())
    })
}

/// The flags stored with the value (0 for NULL).
///
/// # Safety
/// `value` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_value_flags(value: *const elasticache_value) -> u32 {
    // SAFETY: caller's contract.
    call_infallible(0, || unsafe { value.as_ref() }.map_or(0, |v| v.0.flags))
}

/// The cas id (set by `elasticache_gets`; 0 otherwise and for NULL).
///
/// # Safety
/// `value` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_value_cas(value: *const elasticache_value) -> u64 {
    // SAFETY: caller's contract.
    call_infallible(0, || unsafe { value.as_ref() }.map_or(0, |v| v.0.cas))
}

/// Free a value. NULL is accepted and ignored.
///
/// # Safety
/// `value` NULL or from this library, freed once.
#[no_mangle]
pub unsafe extern "C" fn elasticache_value_free(value: *mut elasticache_value) {
    call_infallible((), || {
        if !value.is_null() {
            // SAFETY: from Box::into_raw.
            drop(unsafe { Box::from_raw(value) });
        }
    })
}

fn store_common(
    cmd: StoreCommand,
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: i64,
    cas: u64,
) -> u32 {
    call(|| {
        // SAFETY: caller's contract.
        let (c, key, value) = unsafe {
            (
                client_ref(client)?,
                bytes(key, key_len, "key")?,
                bytes(value, value_len, "value")?,
            )
        };
        c.store(cmd, key, value, flags, exptime, cas)
    })
}

/// Store `value` under `key` with `flags` and `exptime` (seconds, or a unix
/// time beyond 30 days; 0 = never; negative = expired at once). BAD_KEY or
/// TOO_BIG are returned without contacting any server.
///
/// # Safety
/// `client` live; `key` readable for `key_len` bytes; `value` readable for
/// `value_len` bytes (or NULL with 0).
#[no_mangle]
pub unsafe extern "C" fn elasticache_set(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: i64,
) -> u32 {
    store_common(
        StoreCommand::Set,
        client,
        key,
        key_len,
        value,
        value_len,
        flags,
        exptime,
        0,
    )
}

/// Store only if `key` does not exist; NOT_STORED when it does.
///
/// # Safety
/// `client` live; `key` readable for `key_len` bytes; `value` readable for
/// `value_len` bytes (or NULL with 0).
#[no_mangle]
pub unsafe extern "C" fn elasticache_add(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: i64,
) -> u32 {
    store_common(
        StoreCommand::Add,
        client,
        key,
        key_len,
        value,
        value_len,
        flags,
        exptime,
        0,
    )
}

/// Store only if `key` exists; NOT_STORED when it does not.
///
/// # Safety
/// `client` live; `key` readable for `key_len` bytes; `value` readable for
/// `value_len` bytes (or NULL with 0).
#[no_mangle]
pub unsafe extern "C" fn elasticache_replace(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: i64,
) -> u32 {
    store_common(
        StoreCommand::Replace,
        client,
        key,
        key_len,
        value,
        value_len,
        flags,
        exptime,
        0,
    )
}

/// Append to an existing value (`flags` and `exptime` are ignored by the
/// server); NOT_STORED when `key` does not exist.
///
/// # Safety
/// `client` live; `key` readable for `key_len` bytes; `value` readable for
/// `value_len` bytes (or NULL with 0).
#[no_mangle]
pub unsafe extern "C" fn elasticache_append(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: i64,
) -> u32 {
    store_common(
        StoreCommand::Append,
        client,
        key,
        key_len,
        value,
        value_len,
        flags,
        exptime,
        0,
    )
}

/// Prepend to an existing value; NOT_STORED when `key` does not exist.
///
/// # Safety
/// `client` live; `key` readable for `key_len` bytes; `value` readable for
/// `value_len` bytes (or NULL with 0).
#[no_mangle]
pub unsafe extern "C" fn elasticache_prepend(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: i64,
) -> u32 {
    store_common(
        StoreCommand::Prepend,
        client,
        key,
        key_len,
        value,
        value_len,
        flags,
        exptime,
        0,
    )
}

/// Store only if the item's cas id is still `cas` (from `elasticache_gets`):
/// EXISTS when it changed, NOT_FOUND when the key is gone.
///
/// # Safety
/// As for `elasticache_set`.
#[no_mangle]
pub unsafe extern "C" fn elasticache_cas(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: i64,
    cas: u64,
) -> u32 {
    store_common(
        StoreCommand::Cas,
        client,
        key,
        key_len,
        value,
        value_len,
        flags,
        exptime,
        cas,
    )
}

/// Delete `key`; NOT_FOUND on a miss.
///
/// # Safety
/// `client` live; `key` readable for `key_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn elasticache_delete(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
) -> u32 {
    call(|| {
        // SAFETY: caller's contract.
        let (c, key) = unsafe { (client_ref(client)?, bytes(key, key_len, "key")?) };
        c.delete(key)
    })
}

fn arith_common(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    incr: bool,
    delta: u64,
    out: *mut u64,
) -> u32 {
    call(|| {
        // SAFETY: caller's contract.
        let (c, key) = unsafe { (client_ref(client)?, bytes(key, key_len, "key")?) };
        let v = c.arith(key, incr, delta)?;
        if !out.is_null() {
            // SAFETY: checked non-NULL.
            unsafe { write_out(out, v) };
        }
        Ok(())
    })
}

/// Add `delta` to the decimal number stored under `key` (wrapping at 2^64)
/// and store the result in `*new_value` (may be NULL). NOT_FOUND on a miss;
/// CLIENT_ERROR when the value is not a number.
///
/// # Safety
/// `client` live; `key` readable for `key_len` bytes; `new_value` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn elasticache_incr(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    delta: u64,
    new_value: *mut u64,
) -> u32 {
    arith_common(client, key, key_len, true, delta, new_value)
}

/// Subtract `delta` (stopping at 0); otherwise as `elasticache_incr`.
///
/// # Safety
/// As for `elasticache_incr`.
#[no_mangle]
pub unsafe extern "C" fn elasticache_decr(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    delta: u64,
    new_value: *mut u64,
) -> u32 {
    arith_common(client, key, key_len, false, delta, new_value)
}

/// Give `key` a new expiry; NOT_FOUND on a miss.
///
/// # Safety
/// `client` live; `key` readable for `key_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn elasticache_touch(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    exptime: i64,
) -> u32 {
    call(|| {
        // SAFETY: caller's contract.
        let (c, key) = unsafe { (client_ref(client)?, bytes(key, key_len, "key")?) };
        c.touch(key, exptime)
    })
}

/// Invalidate every item on every node (after `delay` seconds when non-zero).
///
/// # Safety
/// `client` live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_flush_all(
    client: *const elasticache_client,
    delay: u32,
) -> u32 {
    // SAFETY: caller's contract.
    call(|| unsafe { client_ref(client)? }.flush_all(delay))
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
) -> u32 {
    call(|| {
        // SAFETY: caller's contract.
        let (c, key) = unsafe { (client_ref(client)?, bytes(key, key_len, "key")?) };
        let server = c.server_for(key)?;
        // SAFETY: caller's contract.
        unsafe { copy_out(server.as_bytes(), buf.cast(), len, out_n) }
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
) -> u32 {
    call(|| {
        // SAFETY: caller's contract.
        let labels = unsafe { client_ref(client)? }.servers()?.join("\n");
        // SAFETY: caller's contract.
        unsafe { copy_out(labels.as_bytes(), buf.cast(), len, out_n) }
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
) -> u32 {
    call(|| {
        non_null(index, "index")?;
        // SAFETY: caller's contract.
        let (c, key) = unsafe { (client_ref(client)?, bytes(key, key_len, "key")?) };
        let i = c.server_index_for(key)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(index, i) };
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
) -> u32 {
    call(|| {
        // SAFETY: caller's contract.
        unsafe { client_ref(client)? }.disconnect_all();
        Ok(())
    })
}

/// Borrow `n` keys given as parallel arrays of pointers and lengths.
pub(super) unsafe fn key_list<'a>(
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
) -> Result<Vec<&'a [u8]>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    non_null(keys, "keys")?;
    non_null(key_lens, "key_lens")?;
    if n > isize::MAX as usize / 16 {
        return Err(Error::InvalidArgument(format!(
            "{n} keys is not a plausible count"
        )));
    }
    (0..n)
        // SAFETY: both arrays hold n entries per contract; each key its length.
        .map(|i| unsafe { bytes(*keys.add(i), *key_lens.add(i), "keys[i]") })
        .collect()
}

fn multi_from(result: MultiGet) -> elasticache_multi {
    let messages = if result.entries.iter().any(|e| e.is_err()) {
        result
            .entries
            .iter()
            .map(|e| e.as_ref().err().map(|e| cstring_lossy(&e.to_string())))
            .collect()
    } else {
        Vec::new()
    };
    elasticache_multi { result, messages }
}

/// Read `n` keys with one request per node (every node is written before any
/// is read). `*out` receives a result object with one entry per key, in order,
/// even when some nodes failed; read it with `elasticache_multi_item`. The
/// call itself fails only on bad arguments.
///
/// # Safety
/// `client` live; `keys` and `key_lens` hold `n` entries (each key readable for
/// its length); `out` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_get_multi(
    client: *const elasticache_client,
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
    with_cas: bool,
    out: *mut *mut elasticache_multi,
) -> u32 {
    call(|| {
        non_null(out, "out")?;
        // SAFETY: caller's contract.
        let (c, keys) = unsafe { (client_ref(client)?, key_list(keys, key_lens, n)?) };
        let m = multi_from(c.get_multi_arena(&keys, with_cas));
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, Box::into_raw(Box::new(m))) };
        Ok(())
    })
}

/// The number of entries (0 for NULL).
///
/// # Safety
/// `multi` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_multi_count(multi: *const elasticache_multi) -> usize {
    // SAFETY: caller's contract.
    call_infallible(0, || {
        unsafe { multi.as_ref() }.map_or(0, |m| m.result.entries.len())
    })
}

/// Entry `i`: returns its status (OK for a hit, NOT_FOUND for a miss, or the
/// error that key met, e.g. BAD_KEY, TIMEOUT, CONNECTION). On OK the outputs
/// (each may be NULL) receive the value's bytes (valid until
/// `elasticache_multi_free`), length, flags and cas id. The per-key error text
/// is available with `elasticache_multi_error`. An index out of range returns
/// INVALID_ARGUMENT.
///
/// # Safety
/// `multi` live; outputs NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn elasticache_multi_item(
    multi: *const elasticache_multi,
    i: usize,
    data: *mut *const u8,
    len: *mut usize,
    flags: *mut u32,
    cas: *mut u64,
) -> u32 {
    call_infallible(Status::Panic as u32, || {
        // SAFETY: caller's contract.
        let Some(m) = (unsafe { multi.as_ref() }) else {
            return Status::InvalidArgument as u32;
        };
        match m.result.entries.get(i) {
            None => Status::InvalidArgument as u32,
            Some(Ok(None)) => Status::NotFound as u32,
            Some(Err(e)) => e.status() as u32,
            Some(Ok(Some(item))) => {
                // SAFETY: each output checked for NULL, valid per contract.
                unsafe {
                    if !data.is_null() {
                        write_out(data, m.result.value(item).as_ptr());
                    }
                    if !len.is_null() {
                        write_out(len, item.len);
                    }
                    if !flags.is_null() {
                        write_out(flags, item.flags);
                    }
                    if !cas.is_null() {
                        write_out(cas, item.cas);
                    }
                }
                Status::Ok as u32
            }
        }
    })
}

/// Every entry at once, for bindings that want one foreign call per multi-key
/// operation: for each of the `n` entries (`n` must equal
/// `elasticache_multi_count`), `statuses[i]` gets its status as in
/// `elasticache_multi_item`, and on OK `data[i]`, `lens[i]`, `flags[i]` and
/// `cas[i]` its value (the data pointers live until `elasticache_multi_free`;
/// other entries get NULL/0). `flags` and `cas` may be NULL.
///
/// # Safety
/// `multi` live; `statuses`, `data`, `lens` hold `n` entries; `flags`, `cas` NULL or `n` entries.
#[no_mangle]
pub unsafe extern "C" fn elasticache_multi_export(
    multi: *const elasticache_multi,
    n: usize,
    statuses: *mut u32,
    data: *mut *const u8,
    lens: *mut usize,
    flags: *mut u32,
    cas: *mut u64,
) -> u32 {
    call(|| {
        // SAFETY: caller's contract.
        let m = unsafe { multi.as_ref() }
            .ok_or_else(|| Error::InvalidArgument("multi is NULL".into()))?;
        if n != m.result.entries.len() {
            return Err(Error::InvalidArgument(format!(
                "n is {n} but the result has {} entries",
                m.result.entries.len()
            )));
        }
        non_null(statuses, "statuses")?;
        non_null(data, "data")?;
        non_null(lens, "lens")?;
        for (i, e) in m.result.entries.iter().enumerate() {
            let (st, item) = match e {
                Ok(Some(item)) => (Status::Ok as u32, Some(item)),
                Ok(None) => (Status::NotFound as u32, None),
                Err(e) => (e.status() as u32, None),
            };
            // SAFETY: every array holds n entries per contract; flags/cas checked for NULL.
            unsafe {
                statuses.add(i).write(st);
                data.add(i)
                    .write(item.map_or(std::ptr::null(), |it| m.result.value(it).as_ptr()));
                lens.add(i).write(item.map_or(0, |it| it.len));
                if !flags.is_null() {
                    flags.add(i).write(item.map_or(0, |it| it.flags));
                }
                if !cas.is_null() {
                    cas.add(i).write(item.map_or(0, |it| it.cas));
                }
            }
        }
        Ok(())
    })
}

/// The buffer holding every value of the result back to back: each hit's
/// bytes (as given by `elasticache_multi_item` and `elasticache_multi_export`)
/// lie inside `[*data, *data + *len)`, so a binding can copy all values at once
/// and cut them out by offset (`data[i] - *data`). Valid until
/// `elasticache_multi_free`; `*data` may be any non-NULL pointer when `*len` is 0.
///
/// # Safety
/// `multi` live; `data` and `len` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_multi_arena(
    multi: *const elasticache_multi,
    data: *mut *const u8,
    len: *mut usize,
) -> u32 {
    call(|| {
        // SAFETY: caller's contract.
        let m = unsafe { multi.as_ref() }
            .ok_or_else(|| Error::InvalidArgument("multi is NULL".into()))?;
        non_null(data, "data")?;
        non_null(len, "len")?;
        // SAFETY: both checked non-NULL, valid per contract.
        unsafe {
            write_out(data, m.result.data.as_ptr());
            write_out(len, m.result.data.len());
        }
        Ok(())
    })
}

/// The error message of entry `i` (NULL when the entry is a hit or a miss, or
/// out of range). Valid until `elasticache_multi_free`.
///
/// # Safety
/// `multi` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_multi_error(
    multi: *const elasticache_multi,
    i: usize,
) -> *const c_char {
    call_infallible(std::ptr::null(), || {
        // SAFETY: caller's contract.
        unsafe { multi.as_ref() }
            .and_then(|m| m.messages.get(i))
            .and_then(|m| m.as_ref())
            .map_or(std::ptr::null(), |m| m.as_ptr())
    })
}

/// Free a multi result. NULL is accepted and ignored.
///
/// # Safety
/// `multi` NULL or from this library, freed once.
#[no_mangle]
pub unsafe extern "C" fn elasticache_multi_free(multi: *mut elasticache_multi) {
    call_infallible((), || {
        if !multi.is_null() {
            // SAFETY: from Box::into_raw.
            drop(unsafe { Box::from_raw(multi) });
        }
    })
}

pub(super) fn write_statuses<T>(results: &[Result<T>], statuses: *mut u32) -> Result<()> {
    if !statuses.is_null() {
        for (i, r) in results.iter().enumerate() {
            let st = match r {
                Ok(_) => Status::Ok as u32,
                Err(e) => e.status() as u32,
            };
            // SAFETY: statuses holds results.len() entries per contract.
            unsafe { statuses.add(i).write(st) };
        }
    }
    // The call's own status: the first key's failure, with its message.
    match results.iter().find_map(|r| r.as_ref().err()) {
        Some(e) => Err(e.clone()),
        None => Ok(()),
    }
}

/// Store `n` items with one write per node (`set`, or `add` when `add` is
/// true). `flags` is NULL (all 0) or `n` values; `statuses` is NULL or room
/// for `n` per-item statuses, written in every case. Returns OK when every item
/// was stored, else the status of the first item that failed (its message is
/// the last error).
///
/// # Safety
/// `client` live; `keys`, `key_lens`, `values`, `value_lens` hold `n` entries;
/// `flags` and `statuses` NULL or `n` entries.
#[no_mangle]
pub unsafe extern "C" fn elasticache_set_multi(
    client: *const elasticache_client,
    keys: *const *const u8,
    key_lens: *const usize,
    values: *const *const u8,
    value_lens: *const usize,
    flags: *const u32,
    exptime: i64,
    add: bool,
    n: usize,
    statuses: *mut u32,
) -> u32 {
    call(|| {
        // SAFETY: caller's contract.
        let (c, keys, vals) = unsafe {
            (
                client_ref(client)?,
                key_list(keys, key_lens, n)?,
                key_list(values, value_lens, n)?,
            )
        };
        let items: Vec<(&[u8], &[u8], u32, i64)> = (0..n)
            .map(|i| {
                let f = if flags.is_null() {
                    0
                } else {
                    // SAFETY: n entries per contract.
                    unsafe { *flags.add(i) }
                };
                (keys[i], vals[i], f, exptime)
            })
            .collect();
        let cmd = if add {
            StoreCommand::Add
        } else {
            StoreCommand::Set
        };
        write_statuses(&c.store_multi(cmd, &items), statuses)
    })
}

/// Delete `n` keys with one write per node. `statuses` as in
/// `elasticache_set_multi` (NOT_FOUND for a key that did not exist). Returns OK
/// when every key was deleted, else the first failing key's status.
///
/// # Safety
/// `client` live; `keys`, `key_lens` hold `n` entries; `statuses` NULL or `n` entries.
#[no_mangle]
pub unsafe extern "C" fn elasticache_delete_multi(
    client: *const elasticache_client,
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
    statuses: *mut u32,
) -> u32 {
    call(|| {
        // SAFETY: caller's contract.
        let (c, keys) = unsafe { (client_ref(client)?, key_list(keys, key_lens, n)?) };
        write_statuses(&c.delete_multi(&keys), statuses)
    })
}

fn stats_from(per_node: crate::client::PerNode<Vec<(String, String)>>) -> elasticache_stats {
    elasticache_stats {
        nodes: per_node
            .into_iter()
            .map(|(server, r)| match r {
                Ok(entries) => StatsNode {
                    server: cstring_lossy(&server),
                    status: Status::Ok as u32,
                    entries: entries
                        .iter()
                        .map(|(k, v)| (cstring_lossy(k), cstring_lossy(v)))
                        .collect(),
                },
                Err(e) => StatsNode {
                    server: cstring_lossy(&server),
                    status: e.status() as u32,
                    entries: vec![(cstring_lossy("error"), cstring_lossy(&e.to_string()))],
                },
            })
            .collect(),
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
) -> u32 {
    call(|| {
        non_null(out, "out")?;
        // SAFETY: caller's contract.
        let c = unsafe { client_ref(client)? };
        // SAFETY: caller's contract.
        let arg = unsafe { super::boundary::opt_c_str(arg, "arg")? };
        let s = stats_from(c.stats(arg)?);
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, Box::into_raw(Box::new(s))) };
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
) -> u32 {
    call(|| {
        non_null(out, "out")?;
        // SAFETY: caller's contract.
        let c = unsafe { client_ref(client)? };
        let per_node = c
            .version()?
            .into_iter()
            .map(|(s, r)| (s, r.map(|v| vec![("version".to_string(), v)])))
            .collect();
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, Box::into_raw(Box::new(stats_from(per_node)))) };
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
    call_infallible(0, || unsafe { stats.as_ref() }.map_or(0, |s| s.nodes.len()))
}

/// Node `i` of a stats result: its "host:port", the status of the request to
/// it, and its number of entries (a failed node has one entry, "error").
/// Outputs may be NULL. INVALID_ARGUMENT for an index out of range.
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
) -> u32 {
    call(|| {
        // SAFETY: caller's contract.
        let s = unsafe { stats.as_ref() }
            .ok_or_else(|| Error::InvalidArgument("stats is NULL".into()))?;
        let node = s
            .nodes
            .get(i)
            .ok_or_else(|| Error::InvalidArgument(format!("node index {i} is out of range")))?;
        // SAFETY: outputs checked for NULL.
        unsafe {
            if !server.is_null() {
                write_out(server, node.server.as_ptr());
            }
            if !status.is_null() {
                write_out(status, node.status);
            }
            if !entries.is_null() {
                write_out(entries, node.entries.len());
            }
        }
        Ok(())
    })
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
) -> u32 {
    call(|| {
        // SAFETY: caller's contract.
        let s = unsafe { stats.as_ref() }
            .ok_or_else(|| Error::InvalidArgument("stats is NULL".into()))?;
        let (n, v) = s
            .nodes
            .get(i)
            .and_then(|node| node.entries.get(j))
            .ok_or_else(|| Error::InvalidArgument(format!("entry ({i}, {j}) is out of range")))?;
        // SAFETY: outputs checked for NULL.
        unsafe {
            if !name.is_null() {
                write_out(name, n.as_ptr());
            }
            if !value.is_null() {
                write_out(value, v.as_ptr());
            }
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
    call_infallible((), || {
        if !stats.is_null() {
            // SAFETY: from Box::into_raw.
            drop(unsafe { Box::from_raw(stats) });
        }
    })
}
