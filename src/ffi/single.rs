//! Single-key operations on an `elasticache_client`, and `elasticache_value`,
//! the value a read hands out.

// C calls take their inputs as flat argument lists (pointer + length pairs).
#![allow(clippy::too_many_arguments)]

use super::boundary::{bytes, call};
use super::client::{client_key, client_ref, elasticache_client};
use super::handle::{put, Handle, Out};
use crate::client::Item;
use crate::error::{Error, Status};
use crate::protocol::StoreCommand;

/// A value read from the cache: bytes, flags and cas id. Owned by the caller,
/// freed with `elasticache_value_free`. Immutable; safe to read from many threads.
#[allow(non_camel_case_types)]
pub struct elasticache_value(Item);

impl Handle for elasticache_value {
    const NAME: &'static str = "value";
}

/// The one body of `elasticache_get` and `elasticache_gets`.
unsafe fn get_value(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    with_cas: bool,
    out: *mut *mut elasticache_value,
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract.
        let (out, (c, key)) = unsafe { (Out::new(out)?, client_key(client, key, key_len)?) };
        let item = if with_cas { c.gets(key)? } else { c.get(key)? };
        out.give(elasticache_value(item.ok_or(Error::NotFound)?));
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
) -> Status {
    // SAFETY: forwarded contract.
    unsafe { get_value(client, key, key_len, false, out) }
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
) -> Status {
    // SAFETY: forwarded contract.
    unsafe { get_value(client, key, key_len, true, out) }
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
) -> Status {
    call(|| {
        if buf.is_null() && cap > 0 {
            return Err(Error::InvalidArgument(
                "buf is NULL with a non-zero capacity".into(),
            ));
        }
        // SAFETY (this block): the caller's contract.
        unsafe {
            let (c, key) = client_key(client, key, key_len)?;
            // The cas id comes only with `gets`; a plain get costs nothing extra.
            let item = if cas.is_null() {
                c.get(key)?
            } else {
                c.gets(key)?
            };
            let item = item.ok_or(Error::NotFound)?;
            put(len, item.value.len());
            if item.value.len() > cap {
                return Err(Error::BufferTooSmall {
                    needed: item.value.len(),
                });
            }
            if !item.value.is_empty() {
                // buf holds cap >= the value's length bytes; the value is ours, so no overlap.
                std::ptr::copy_nonoverlapping(item.value.as_ptr(), buf, item.value.len());
            }
            put(flags, item.flags);
            put(cas, item.cas);
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
    unsafe { Handle::read(value, std::ptr::null(), |v| v.0.value.as_ptr()) }
}

/// The value's length in bytes (0 for NULL).
///
/// # Safety
/// `value` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_value_len(value: *const elasticache_value) -> usize {
    // SAFETY: caller's contract.
    unsafe { Handle::read(value, 0, |v| v.0.value.len()) }
}

/// The flags stored with the value (0 for NULL).
///
/// # Safety
/// `value` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_value_flags(value: *const elasticache_value) -> u32 {
    // SAFETY: caller's contract.
    unsafe { Handle::read(value, 0, |v| v.0.flags) }
}

/// The cas id (set by `elasticache_gets`; 0 otherwise and for NULL).
///
/// # Safety
/// `value` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_value_cas(value: *const elasticache_value) -> u64 {
    // SAFETY: caller's contract.
    unsafe { Handle::read(value, 0, |v| v.0.cas) }
}

/// Free a value. NULL is accepted and ignored.
///
/// # Safety
/// `value` NULL or from this library, freed once.
#[no_mangle]
pub unsafe extern "C" fn elasticache_value_free(value: *mut elasticache_value) {
    // SAFETY: caller's contract.
    unsafe { elasticache_value::free(value) }
}

/// The one body of the store family (`set` ... `cas`): they differ only in
/// the command.
unsafe fn store(
    cmd: StoreCommand,
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    flags: u32,
    exptime: i64,
    cas: u64,
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract.
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

// The store family: each export stays a literal `extern "C" fn` (cbindgen
// reads them), one signature line over `store`.

/// Store `value` under `key` with `flags` and `exptime` (seconds, or a unix
/// time beyond 30 days; 0 = never; negative = expired at once). BAD_KEY or
/// TOO_BIG are returned without contacting any server.
/// # Safety
/// `client` live; `key` readable for `key_len` bytes; `value` readable for
/// `value_len` bytes (or NULL with 0).
#[no_mangle]
#[rustfmt::skip]
pub unsafe extern "C" fn elasticache_set(client: *const elasticache_client, key: *const u8, key_len: usize, value: *const u8, value_len: usize, flags: u32, exptime: i64) -> Status {
    unsafe { store(StoreCommand::Set, client, key, key_len, value, value_len, flags, exptime, 0) }
}

/// Store only if `key` does not exist; NOT_STORED when it does.
/// # Safety
/// `client` live; `key` readable for `key_len` bytes; `value` readable for
/// `value_len` bytes (or NULL with 0).
#[no_mangle]
#[rustfmt::skip]
pub unsafe extern "C" fn elasticache_add(client: *const elasticache_client, key: *const u8, key_len: usize, value: *const u8, value_len: usize, flags: u32, exptime: i64) -> Status {
    unsafe { store(StoreCommand::Add, client, key, key_len, value, value_len, flags, exptime, 0) }
}

/// Store only if `key` exists; NOT_STORED when it does not.
/// # Safety
/// `client` live; `key` readable for `key_len` bytes; `value` readable for
/// `value_len` bytes (or NULL with 0).
#[no_mangle]
#[rustfmt::skip]
pub unsafe extern "C" fn elasticache_replace(client: *const elasticache_client, key: *const u8, key_len: usize, value: *const u8, value_len: usize, flags: u32, exptime: i64) -> Status {
    unsafe { store(StoreCommand::Replace, client, key, key_len, value, value_len, flags, exptime, 0) }
}

/// Append to an existing value (`flags` and `exptime` are ignored by the
/// server); NOT_STORED when `key` does not exist.
/// # Safety
/// `client` live; `key` readable for `key_len` bytes; `value` readable for
/// `value_len` bytes (or NULL with 0).
#[no_mangle]
#[rustfmt::skip]
pub unsafe extern "C" fn elasticache_append(client: *const elasticache_client, key: *const u8, key_len: usize, value: *const u8, value_len: usize, flags: u32, exptime: i64) -> Status {
    unsafe { store(StoreCommand::Append, client, key, key_len, value, value_len, flags, exptime, 0) }
}

/// Prepend to an existing value; NOT_STORED when `key` does not exist.
/// # Safety
/// `client` live; `key` readable for `key_len` bytes; `value` readable for
/// `value_len` bytes (or NULL with 0).
#[no_mangle]
#[rustfmt::skip]
pub unsafe extern "C" fn elasticache_prepend(client: *const elasticache_client, key: *const u8, key_len: usize, value: *const u8, value_len: usize, flags: u32, exptime: i64) -> Status {
    unsafe { store(StoreCommand::Prepend, client, key, key_len, value, value_len, flags, exptime, 0) }
}

/// Store only if the item's cas id is still `cas` (from `elasticache_gets`):
/// EXISTS when it changed, NOT_FOUND when the key is gone.
/// # Safety
/// `client` live; `key` readable for `key_len` bytes; `value` readable for
/// `value_len` bytes (or NULL with 0).
#[no_mangle]
#[rustfmt::skip]
pub unsafe extern "C" fn elasticache_cas(client: *const elasticache_client, key: *const u8, key_len: usize, value: *const u8, value_len: usize, flags: u32, exptime: i64, cas: u64) -> Status {
    unsafe { store(StoreCommand::Cas, client, key, key_len, value, value_len, flags, exptime, cas) }
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
) -> Status {
    // SAFETY: caller's contract.
    call(|| unsafe {
        let (c, key) = client_key(client, key, key_len)?;
        c.delete(key)
    })
}

/// The one body of `elasticache_incr` and `elasticache_decr`.
unsafe fn arith(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    incr: bool,
    delta: u64,
    out: *mut u64,
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract.
        unsafe {
            put(
                out,
                client_ref(client)?.arith(bytes(key, key_len, "key")?, incr, delta)?,
            )
        };
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
) -> Status {
    // SAFETY: forwarded contract.
    unsafe { arith(client, key, key_len, true, delta, new_value) }
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
) -> Status {
    // SAFETY: forwarded contract.
    unsafe { arith(client, key, key_len, false, delta, new_value) }
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
) -> Status {
    // SAFETY: caller's contract.
    call(|| unsafe {
        let (c, key) = client_key(client, key, key_len)?;
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
) -> Status {
    // SAFETY: caller's contract.
    call(|| unsafe { client_ref(client)? }.flush_all(delay))
}
