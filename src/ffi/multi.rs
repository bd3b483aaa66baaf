//! Multi-key operations on an `elasticache_client` (one request per node), and
//! `elasticache_multi`, the per-key result a multi-key read hands out.

// C calls take their inputs as flat argument lists (pointer + length pairs).
#![allow(clippy::too_many_arguments)]

use std::ffi::{c_char, CString};

use super::boundary::{
    call, call_infallible, clear_last_error, key_list, non_null, per_key, set_last_error,
};
use super::client::{client_ref, elasticache_client};
use super::handle::{put, put_at, Handle, Out};
use crate::client::MultiGet;
use crate::error::{Error, Status};
use crate::protocol::StoreCommand;

/// The result of a multi-key call: one entry per key, in the order given.
/// Owned by the caller, freed with `elasticache_multi_free`. Immutable.
#[allow(non_camel_case_types)]
pub struct elasticache_multi {
    result: MultiGet,
    /// Per-entry error texts; left empty when no entry failed.
    messages: Vec<Option<CString>>,
}

impl Handle for elasticache_multi {
    const NAME: &'static str = "multi";
}

/// A C string of `s`, with any NUL byte spelled out rather than cutting the text.
pub(super) fn cstring_lossy(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

impl elasticache_multi {
    fn new(result: MultiGet) -> elasticache_multi {
        let messages = if result.entries.iter().any(|e| e.is_err()) {
            let text =
                |e: &Result<_, Error>| e.as_ref().err().map(|e| cstring_lossy(&e.to_string()));
            result.entries.iter().map(text).collect()
        } else {
            Vec::new()
        };
        elasticache_multi { result, messages }
    }
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
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract.
        let (out, c, keys) = unsafe {
            (
                Out::new(out)?,
                client_ref(client)?,
                key_list(keys, key_lens, n)?,
            )
        };
        out.give(elasticache_multi::new(c.get_multi_arena(&keys, with_cas)));
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
    unsafe { Handle::read(multi, 0, |m| m.result.entries.len()) }
}

/// Entry `i`: returns its status (OK for a hit, NOT_FOUND for a miss, or the
/// error that key met, e.g. BAD_KEY, TIMEOUT, CONNECTION), and sets the last
/// error to that key's message when it is not OK. On OK the outputs (each may
/// be NULL) receive the value's bytes (valid until `elasticache_multi_free`),
/// length, flags and cas id. The per-key error text also stays available with
/// `elasticache_multi_error`. An index out of range returns INVALID_ARGUMENT.
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
) -> Status {
    // `call`'s contract (last error cleared, then set on failure; no panic
    // escapes) written out: this accessor runs once per key, and a hit should
    // cost no more than reading the entry.
    call_infallible(Status::Panic, || {
        clear_last_error();
        // SAFETY: caller's contract.
        let Some(m) = (unsafe { multi.as_ref() }) else {
            return set_last_error(&Error::InvalidArgument("multi is NULL".into()));
        };
        match m.result.entries.get(i) {
            Some(Ok(Some(item))) => {
                // SAFETY (this block): outputs NULL or valid per the caller's contract.
                unsafe {
                    if !data.is_null() {
                        data.write(m.result.value(item).as_ptr());
                    }
                    put(len, item.len);
                    put(flags, item.flags);
                    put(cas, item.cas);
                }
                Status::Ok
            }
            Some(Ok(None)) => set_last_error(&Error::NotFound),
            Some(Err(e)) => set_last_error(e),
            None => {
                let n = m.result.entries.len();
                set_last_error(&Error::InvalidArgument(format!(
                    "entry {i} is out of range ({n} entries)"
                )))
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
) -> Status {
    call(|| {
        // SAFETY: caller's contract.
        let m = unsafe { elasticache_multi::try_ref(multi)? };
        if n != m.result.entries.len() {
            let have = m.result.entries.len();
            return Err(Error::InvalidArgument(format!(
                "n is {n} but the result has {have} entries"
            )));
        }
        non_null(statuses, "statuses")?;
        non_null(data, "data")?;
        non_null(lens, "lens")?;
        for (i, e) in m.result.entries.iter().enumerate() {
            let item = e.as_ref().ok().and_then(Option::as_ref);
            // SAFETY (this block): every array holds n entries per the caller's contract.
            unsafe {
                put_at(statuses, i, Status::of_read(e) as u32);
                put_at(
                    data,
                    i,
                    item.map_or(std::ptr::null(), |it| m.result.value(it).as_ptr()),
                );
                put_at(lens, i, item.map_or(0, |it| it.len));
                put_at(flags, i, item.map_or(0, |it| it.flags));
                put_at(cas, i, item.map_or(0, |it| it.cas));
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
) -> Status {
    call(|| {
        // SAFETY: caller's contract.
        let m = unsafe { elasticache_multi::try_ref(multi)? };
        non_null(data, "data")?;
        non_null(len, "len")?;
        // SAFETY (this block): both checked non-NULL, valid per the caller's contract.
        unsafe {
            put(data, m.result.data.as_ptr());
            put(len, m.result.data.len());
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
    let text = |m: &elasticache_multi| {
        m.messages
            .get(i)
            .and_then(Option::as_ref)
            .map_or(std::ptr::null(), |t| t.as_ptr())
    };
    // SAFETY: caller's contract.
    unsafe { Handle::read(multi, std::ptr::null(), text) }
}

/// Free a multi result. NULL is accepted and ignored.
///
/// # Safety
/// `multi` NULL or from this library, freed once.
#[no_mangle]
pub unsafe extern "C" fn elasticache_multi_free(multi: *mut elasticache_multi) {
    // SAFETY: caller's contract.
    unsafe { elasticache_multi::free(multi) }
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
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract.
        let (c, keys, vals) = unsafe {
            (
                client_ref(client)?,
                key_list(keys, key_lens, n)?,
                key_list(values, value_lens, n)?,
            )
        };
        // SAFETY: `flags` NULL or n entries per the caller's contract.
        let flag = |i: usize| {
            if flags.is_null() {
                0
            } else {
                unsafe { *flags.add(i) }
            }
        };
        let items: Vec<_> = (0..n)
            .map(|i| (keys[i], vals[i], flag(i), exptime))
            .collect();
        let results = c.store_multi(StoreCommand::set_or_add(add), &items);
        // SAFETY: `statuses` NULL or n entries per the caller's contract.
        unsafe { per_key(&results, statuses) }
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
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract.
        let results = unsafe { client_ref(client)?.delete_multi(&key_list(keys, key_lens, n)?) };
        // SAFETY: `statuses` NULL or n entries per the caller's contract.
        unsafe { per_key(&results, statuses) }
    })
}
