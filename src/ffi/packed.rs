//! Multi-key calls with every key in one buffer and every result in one
//! buffer, for bindings where each array element crossing the boundary costs
//! more than the network (Python through cffi spent most of a 10-key
//! multi-get building pointer arrays and reading results back key by key).
//!
//! Keys go in as one byte string: the `n` keys separated by single spaces,
//! plus an optional prefix prepended to each. A key the text protocol can
//! carry never contains a space, so the split is exact. The calls refuse the
//! whole request with INVALID_ARGUMENT, before anything is sent, when the
//! buffer does not split into `n` keys or a key (with the prefix) is longer
//! than 250 bytes: a binding can then fall back to the per-key calls and
//! report the key in its own terms. Other bad keys (empty, control
//! characters) get BAD_KEY per key, as in the per-key calls.

// C calls take their inputs as flat argument lists (pointer + length pairs).
#![allow(clippy::too_many_arguments)]

use std::ffi::{c_char, CString};

use super::boundary::{bytes, call, call_infallible, non_null, per_key};
use super::client::{client_ref, elasticache_client};
use super::multi::cstring_lossy;
use crate::client::MultiGet;
use crate::error::{Error, Result, Status};
use crate::protocol::{push_u64, StoreCommand};

/// The longest key memcached's text protocol accepts.
const MAX_KEY_LEN: usize = 250;

/// `elasticache_packed::flags` when the hits do not all have the same flags.
const MIXED_FLAGS: u32 = u32::MAX;

/// The result of `elasticache_get_multi_packed`: one buffer and the numbers
/// needed to cut it. Owned by the caller, freed with `elasticache_packed_free`;
/// the fields are read-only.
///
/// `data` holds, back to back:
/// - at 0, `n` bytes: 1 where the key was found, 0 otherwise;
/// - at `n`, `n` bytes: each key's status (OK, NOT_FOUND, BAD_KEY, TIMEOUT,
///   ...; every status fits in a byte);
/// - at `values_offset`, the values of the hits in key order;
/// - at `flags_offset`, the flags of the hits in key order, `hits` native
///   `uint32_t` (unaligned);
/// - at `format_offset` up to `len`, the hits' lengths as a format for
///   Python's `struct` module ("3s100s0s": `struct.unpack_from(format, data,
///   values_offset)` gives every value in one call).
#[repr(C)]
pub struct elasticache_packed {
    /// The buffer described above (`char` so that bindings can read it as bytes).
    pub data: *const c_char,
    /// Its length in bytes.
    pub len: usize,
    /// The number of keys asked for.
    pub n: usize,
    /// How many were found.
    pub hits: usize,
    /// How many failed (any status but OK and NOT_FOUND, BAD_KEY included).
    pub errors: usize,
    /// The flags every hit has, or UINT32_MAX when they differ (or there is no hit).
    pub flags: u32,
    /// Where the values start.
    pub values_offset: usize,
    /// Where the flags start.
    pub flags_offset: usize,
    /// Where the format starts.
    pub format_offset: usize,
}

/// The public view first, so that a pointer to the owner is a pointer to the view.
#[repr(C)]
struct Packed {
    view: elasticache_packed,
    buf: Vec<u8>,
    /// Per-key error texts; empty when no key failed.
    messages: Vec<Option<CString>>,
}

/// The full keys: slices of `keys`, or of `joined` when there is a prefix.
fn split_keys<'a>(
    prefix: &[u8],
    keys: &'a [u8],
    n: usize,
    joined: &'a mut Vec<u8>,
) -> Result<Vec<&'a [u8]>> {
    if n == 0 {
        return if keys.is_empty() {
            Ok(Vec::new())
        } else {
            Err(Error::InvalidArgument(
                "n is 0 but the key buffer is not empty".into(),
            ))
        };
    }
    let pieces = memchr::memchr_iter(b' ', keys).count() + 1;
    if pieces != n {
        return Err(Error::InvalidArgument(format!(
            "the key buffer holds {pieces} space-separated keys, not {n} (a key contains a space?)"
        )));
    }
    let too_long = |k: &[u8]| {
        Error::InvalidArgument(format!(
            "key {} is longer than {MAX_KEY_LEN} bytes",
            crate::error::quote_bytes(k, 60)
        ))
    };
    if prefix.is_empty() {
        let out: Vec<&[u8]> = keys.split(|&b| b == b' ').collect();
        if let Some(k) = out.iter().find(|k| k.len() > MAX_KEY_LEN) {
            return Err(too_long(k));
        }
        return Ok(out);
    }
    joined.reserve(keys.len() + n * prefix.len());
    let mut ends = Vec::with_capacity(n);
    for k in keys.split(|&b| b == b' ') {
        if prefix.len() + k.len() > MAX_KEY_LEN {
            let mut full = prefix.to_vec();
            full.extend_from_slice(k);
            return Err(too_long(&full));
        }
        joined.extend_from_slice(prefix);
        joined.extend_from_slice(k);
        ends.push(joined.len());
    }
    let joined: &'a Vec<u8> = joined;
    let mut start = 0;
    Ok(ends
        .into_iter()
        .map(|end| {
            let k = &joined[start..end];
            start = end;
            k
        })
        .collect())
}

/// Borrow the prefix and key buffers and split the keys.
///
/// # Safety
/// As the exported functions: each pointer valid for its length.
unsafe fn keys_in(
    prefix: *const u8,
    prefix_len: usize,
    keys: *const u8,
    keys_len: usize,
    n: usize,
    joined: &mut Vec<u8>,
) -> Result<Vec<&[u8]>> {
    // SAFETY: caller's contract.
    let (prefix, keys) = unsafe {
        (
            bytes(prefix, prefix_len, "prefix")?,
            bytes(keys, keys_len, "keys")?,
        )
    };
    split_keys(prefix, keys, n, joined)
}

fn pack(m: MultiGet) -> Packed {
    let n = m.entries.len();
    let mut hits = 0;
    let mut errors = 0;
    let mut vlen = 0;
    let mut common: Option<u32> = None;
    let mut mixed = false;
    for e in &m.entries {
        match e {
            Ok(Some(s)) => {
                hits += 1;
                vlen += s.len;
                match common {
                    None => common = Some(s.flags),
                    Some(f) if f != s.flags => mixed = true,
                    Some(_) => {}
                }
            }
            Ok(None) => {}
            Err(_) => errors += 1,
        }
    }
    // "<len>s" per hit: at most 20 digits and the letter.
    let mut buf = Vec::with_capacity(2 * n + vlen + 4 * hits + 8 * hits);
    buf.extend(m.entries.iter().map(|e| matches!(e, Ok(Some(_))) as u8));
    buf.extend(m.entries.iter().map(|e| Status::of_read(e) as u8));
    let values_offset = buf.len();
    for s in m.entries.iter().flatten().flatten() {
        buf.extend_from_slice(m.value(s));
    }
    let flags_offset = buf.len();
    for s in m.entries.iter().flatten().flatten() {
        buf.extend_from_slice(&s.flags.to_ne_bytes());
    }
    let format_offset = buf.len();
    for s in m.entries.iter().flatten().flatten() {
        push_u64(&mut buf, s.len as u64);
        buf.push(b's');
    }
    let messages = if errors > 0 {
        m.entries
            .iter()
            .map(|e| e.as_ref().err().map(|e| cstring_lossy(&e.to_string())))
            .collect()
    } else {
        Vec::new()
    };
    let flags = match common {
        Some(f) if !mixed => f,
        _ => MIXED_FLAGS,
    };
    Packed {
        view: elasticache_packed {
            data: buf.as_ptr().cast(),
            len: buf.len(),
            n,
            hits,
            errors,
            flags,
            values_offset,
            flags_offset,
            format_offset,
        },
        buf,
        messages,
    }
}

/// Read `n` keys with one request per node, as `elasticache_get_multi`, with
/// the keys in one buffer (`keys`, `keys_len`: separated by single spaces,
/// each prefixed by `prefix` when `prefix_len > 0`) and the results in one
/// `elasticache_packed` written to `*out`. Keys cannot contain spaces, so
/// the split is exact: a buffer that does not split into `n` keys, or a key
/// (with the prefix) over 250 bytes, is refused with INVALID_ARGUMENT before
/// anything is sent (a binding can then fall back to `elasticache_get_multi`,
/// which reports such keys one by one). Other bad keys get BAD_KEY in the
/// result, as do per-node failures their status; the call itself fails only
/// on bad arguments.
///
/// # Safety
/// `client` live; `prefix` valid for `prefix_len` bytes (NULL when 0); `keys`
/// valid for `keys_len` bytes; `out` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_get_multi_packed(
    client: *const elasticache_client,
    prefix: *const u8,
    prefix_len: usize,
    keys: *const u8,
    keys_len: usize,
    n: usize,
    out: *mut *mut elasticache_packed,
) -> Status {
    call(|| {
        non_null(out, "out")?;
        let mut joined = Vec::new();
        // SAFETY: caller's contract.
        let (c, keys) = unsafe {
            (
                client_ref(client)?,
                keys_in(prefix, prefix_len, keys, keys_len, n, &mut joined)?,
            )
        };
        let packed = Box::new(pack(c.get_multi_arena(&keys, false)));
        // SAFETY: checked non-NULL; the view is the first field of a repr(C) struct.
        unsafe { out.write(Box::into_raw(packed).cast::<elasticache_packed>()) };
        Ok(())
    })
}

/// The error message of key `i` of a packed result (NULL when that key was a
/// hit or a miss, or `i` is out of range). Valid until `elasticache_packed_free`.
///
/// # Safety
/// `packed` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_packed_error(
    packed: *const elasticache_packed,
    i: usize,
) -> *const c_char {
    call_infallible(std::ptr::null(), || {
        // SAFETY: from elasticache_get_multi_packed, whose view heads a Packed.
        unsafe { packed.cast::<Packed>().as_ref() }
            .and_then(|p| p.messages.get(i))
            .and_then(|m| m.as_ref())
            .map_or(std::ptr::null(), |m| m.as_ptr())
    })
}

/// Free a packed result. NULL is accepted and ignored.
///
/// # Safety
/// `packed` NULL or from `elasticache_get_multi_packed`, freed once.
#[no_mangle]
pub unsafe extern "C" fn elasticache_packed_free(packed: *mut elasticache_packed) {
    call_infallible((), || {
        if !packed.is_null() {
            // SAFETY: from Box::into_raw of a Packed (see elasticache_get_multi_packed).
            drop(unsafe { Box::from_raw(packed.cast::<Packed>()) });
        }
    })
}

/// Store `n` items with one write per node, as `elasticache_set_multi`
/// (`set`, or `add` when `add` is true), with the keys packed as in
/// `elasticache_get_multi_packed` and the values back to back in `values`
/// (`value_lens` gives their `n` lengths, which must add up to `values_len`).
/// `flags` is NULL (every item gets `common_flags`) or `n` values. `statuses`
/// is NULL or room for `n` statuses, written whenever the call got as far as
/// trying the items. Returns OK when every item was stored, else the first
/// failing item's status (its message is the last error); INVALID_ARGUMENT
/// with nothing sent for bad arguments.
///
/// # Safety
/// Pointers valid for their lengths (`value_lens`, `flags`, `statuses`: `n`
/// entries each; `flags` and `statuses` may be NULL).
#[no_mangle]
pub unsafe extern "C" fn elasticache_set_multi_packed(
    client: *const elasticache_client,
    prefix: *const u8,
    prefix_len: usize,
    keys: *const u8,
    keys_len: usize,
    values: *const u8,
    values_len: usize,
    value_lens: *const usize,
    flags: *const u32,
    common_flags: u32,
    exptime: i64,
    add: bool,
    n: usize,
    statuses: *mut u32,
) -> Status {
    call(|| {
        let mut joined = Vec::new();
        // SAFETY: caller's contract.
        let (c, keys, values) = unsafe {
            (
                client_ref(client)?,
                keys_in(prefix, prefix_len, keys, keys_len, n, &mut joined)?,
                bytes(values, values_len, "values")?,
            )
        };
        if n > 0 {
            non_null(value_lens, "value_lens")?;
        }
        let mut items: Vec<(&[u8], &[u8], u32, i64)> = Vec::with_capacity(n);
        let mut at = 0usize;
        for (i, key) in keys.iter().enumerate() {
            // SAFETY: n entries per contract.
            let len = unsafe { *value_lens.add(i) };
            let Some(v) = at.checked_add(len).and_then(|end| values.get(at..end)) else {
                return Err(Error::InvalidArgument(format!(
                    "value_lens add up to more than values_len ({values_len})"
                )));
            };
            at += len;
            let f = if flags.is_null() {
                common_flags
            } else {
                // SAFETY: n entries per contract.
                unsafe { *flags.add(i) }
            };
            items.push((key, v, f, exptime));
        }
        if at != values_len {
            return Err(Error::InvalidArgument(format!(
                "value_lens add up to {at}, not values_len ({values_len})"
            )));
        }
        let results = c.store_multi(StoreCommand::set_or_add(add), &items);
        // SAFETY: `statuses` NULL or n entries per the caller's contract.
        unsafe { per_key(&results, statuses) }
    })
}

/// Delete `n` keys with one write per node, as `elasticache_delete_multi`,
/// with the keys packed as in `elasticache_get_multi_packed`. `statuses` NULL
/// or room for `n` statuses (NOT_FOUND for a key that did not exist), written
/// whenever the call got as far as trying the keys. Returns OK when every key
/// was deleted, else the first failing key's status.
///
/// # Safety
/// Pointers valid for their lengths; `statuses` NULL or `n` entries.
#[no_mangle]
pub unsafe extern "C" fn elasticache_delete_multi_packed(
    client: *const elasticache_client,
    prefix: *const u8,
    prefix_len: usize,
    keys: *const u8,
    keys_len: usize,
    n: usize,
    statuses: *mut u32,
) -> Status {
    call(|| {
        let mut joined = Vec::new();
        // SAFETY: caller's contract.
        let (c, keys) = unsafe {
            (
                client_ref(client)?,
                keys_in(prefix, prefix_len, keys, keys_len, n, &mut joined)?,
            )
        };
        let results = c.delete_multi(&keys);
        // SAFETY: `statuses` NULL or n entries per the caller's contract.
        unsafe { per_key(&results, statuses) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_exactly_n_keys_and_applies_the_prefix() {
        let mut j = Vec::new();
        let ks = split_keys(b"", b"a bb  c", 4, &mut j).unwrap();
        assert_eq!(ks, vec![&b"a"[..], b"bb", b"", b"c"]);
        let mut j = Vec::new();
        let ks = split_keys(b"p:", b"a bb", 2, &mut j).unwrap();
        assert_eq!(ks, vec![&b"p:a"[..], b"p:bb"]);
        let mut j = Vec::new();
        assert!(split_keys(b"", b"", 0, &mut j).unwrap().is_empty());
    }

    #[test]
    fn refuses_a_wrong_count_and_long_keys() {
        for (prefix, keys, n) in [
            (&b""[..], &b"a b"[..], 1),
            (b"", b"a", 2),
            (b"", b"x", 0),
            (b"", &[b'k'; 251][..], 1),
            (&[b'p'; 200][..], &[b'k'; 51][..], 1),
        ] {
            let mut j = Vec::new();
            match split_keys(prefix, keys, n, &mut j) {
                Err(Error::InvalidArgument(_)) => {}
                other => panic!("{keys:?} n={n}: {other:?}"),
            }
        }
        let mut j = Vec::new();
        assert_eq!(
            split_keys(b"", &[b'k'; 250], 1, &mut j).unwrap()[0].len(),
            250
        );
    }
}
