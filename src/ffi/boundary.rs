//! The C boundary: panic catching, the per-thread last error, and the pointer
//! and length checks every exported function uses before touching caller data.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, CStr};
use std::fmt::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Status};

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
    // Whether LAST_ERROR holds a message.
    static HAS_ERROR: Cell<bool> = const { Cell::new(false) };
}

/// How many threads have a message in their last-error slot. Every call
/// clears the last error, and almost always there is nothing to clear: while
/// no thread holds a message this is one relaxed load instead of a
/// thread-local access, which in a shared library is a `__tls_get_addr` call
/// (a per-key accessor of a 100-key multi-get runs 100 times). A thread that
/// exits holding a message leaves the count raised: clearing is then the
/// thread-local path, still correct.
static PENDING: AtomicUsize = AtomicUsize::new(0);

// The slot is reached with `try_with`: a call from a thread-exit destructor,
// after the slot is gone, must still not panic across the C boundary.

/// Remember `err` as this thread's last error and return its status code.
pub fn set_last_error(err: &Error) -> Status {
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut s) = slot.try_borrow_mut() {
            // Written into the slot's own buffer: a miss (NOT_FOUND, the most
            // common failure) allocates nothing once the buffer has grown.
            s.clear();
            let _ = write!(s, "{err}");
            if !HAS_ERROR.replace(true) {
                PENDING.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    err.status()
}

/// Forget this thread's last error (done at the start of every call).
pub fn clear_last_error() {
    // This thread's own increment is visible to its own load (one location),
    // so 0 means this thread holds no message either.
    if PENDING.load(Ordering::Relaxed) == 0 || !HAS_ERROR.get() {
        return;
    }
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut s) = slot.try_borrow_mut() {
            s.clear();
            HAS_ERROR.set(false);
            PENDING.fetch_sub(1, Ordering::Relaxed);
        }
    });
}

/// Run `f` with this thread's last error message (empty when unavailable).
pub fn with_last_error<R>(f: impl FnOnce(&str) -> R) -> R {
    let msg = LAST_ERROR
        .try_with(|slot| slot.try_borrow().map(|s| s.clone()).unwrap_or_default())
        .unwrap_or_default();
    f(&msg)
}

/// The body of every exported function that returns a status: clears the last
/// error, runs `f` inside a panic boundary, and turns its `Err` into a status
/// code plus a last-error message.
pub fn call(f: impl FnOnce() -> Result<(), Error>) -> Status {
    let run = || {
        clear_last_error();
        f()
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(())) => Status::Ok,
        Ok(Err(e)) => set_last_error(&e),
        Err(payload) => {
            let msg = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "unknown panic".to_string()
            };
            set_last_error(&Error::Panic(msg))
        }
    }
}

/// Like [`call`] for functions that cannot fail and return a plain value
/// (`_free`, accessors): a panic yields `default`.
pub fn call_infallible<T>(default: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(default)
}

/// A NULL check with the parameter's name in the message.
pub fn non_null<T>(p: *const T, name: &str) -> Result<(), Error> {
    if p.is_null() {
        Err(Error::InvalidArgument(format!("{name} is NULL")))
    } else {
        Ok(())
    }
}

/// Borrow a NUL-terminated UTF-8 string.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string valid for `'a`.
pub unsafe fn c_str<'a>(p: *const c_char, name: &str) -> Result<&'a str, Error> {
    non_null(p, name)?;
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let cs = unsafe { CStr::from_ptr(p) };
    cs.to_str()
        .map_err(|_| Error::InvalidArgument(format!("{name} is not valid UTF-8")))
}

/// Borrow an optional NUL-terminated UTF-8 string (NULL means "not given").
///
/// # Safety
/// As for [`c_str`].
pub unsafe fn opt_c_str<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>, Error> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { c_str(p, name) }.map(Some)
    }
}

/// Borrow `len` bytes at `p`. A NULL `p` is allowed only with `len == 0`.
///
/// # Safety
/// When `len > 0`, `p` must point to `len` readable bytes valid for `'a`.
pub unsafe fn bytes<'a>(p: *const u8, len: usize, name: &str) -> Result<&'a [u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    non_null(p, name)?;
    if len > isize::MAX as usize {
        return Err(Error::InvalidArgument(format!(
            "{name}: length {len} is too large"
        )));
    }
    // SAFETY: non-NULL, length bounded, readable per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Copy `src` into the caller's buffer `(buf, len)` and store the full length
/// in `*out_n`. When the buffer is too small, as much as fits is copied (NUL
/// terminated when room allows) and `BufferTooSmall` is returned.
///
/// # Safety
/// `buf` must be valid for `len` bytes of writes (or NULL with `len == 0`);
/// `out_n` must be NULL or valid for one write.
pub unsafe fn copy_out(
    src: &[u8],
    buf: *mut u8,
    len: usize,
    out_n: *mut usize,
) -> Result<(), Error> {
    if buf.is_null() && len > 0 {
        return Err(Error::InvalidArgument(
            "buf is NULL with a non-zero length".into(),
        ));
    }
    if !out_n.is_null() {
        // SAFETY: valid per contract.
        unsafe { *out_n = src.len() };
    }
    if len == 0 {
        return if src.is_empty() {
            Ok(())
        } else {
            Err(Error::BufferTooSmall {
                needed: src.len() + 1,
            })
        };
    }
    let n = src.len().min(len - 1);
    // SAFETY: buf holds len >= n + 1 bytes; src and buf do not overlap (src is ours).
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr(), buf, n);
        *buf.add(n) = 0;
    }
    if n < src.len() {
        Err(Error::BufferTooSmall {
            needed: src.len() + 1,
        })
    } else {
        Ok(())
    }
}

/// Read `n` server strings ("host:port", port 11211 when omitted) and their
/// optional weights into specs. Errors name the offending entry; a weight of
/// 0 is refused (weights start at 1). `n == 0` gives an empty list.
///
/// # Safety
/// `servers` must point to `n` NUL-terminated strings (or be NULL with
/// `n == 0`); `weights` NULL or valid for `n` reads.
pub unsafe fn server_list(
    servers: *const *const c_char,
    n: usize,
    weights: *const u32,
) -> Result<Vec<crate::ring::ServerSpec>, Error> {
    if n == 0 {
        return Ok(Vec::new());
    }
    non_null(servers, "servers")?;
    if n > 1 << 20 {
        return Err(Error::InvalidArgument(format!(
            "{n} servers is not a plausible count"
        )));
    }
    (0..n)
        .map(|i| {
            // SAFETY: `servers` holds n pointers per the caller's contract.
            let s = unsafe { c_str(*servers.add(i), "servers[i]")? };
            let (host, port) = crate::net::addr::split_host_port(s)
                .map_err(|e| Error::InvalidArgument(format!("servers[{i}]: {e}")))?;
            let weight = if weights.is_null() {
                1
            } else {
                // SAFETY: `weights` holds n values per the caller's contract.
                unsafe { *weights.add(i) }
            };
            if weight == 0 {
                return Err(Error::InvalidArgument(format!(
                    "weights[{i}] is 0 (weights start at 1)"
                )));
            }
            Ok(crate::ring::ServerSpec { host, port, weight })
        })
        .collect()
}

/// Borrow `n` keys (or values) given as parallel arrays of pointers and lengths.
///
/// # Safety
/// `keys` and `key_lens` hold `n` entries (or are NULL with `n == 0`), each
/// key readable for its length and valid for `'a`.
pub unsafe fn key_list<'a>(
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
) -> Result<Vec<&'a [u8]>, Error> {
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

/// A multi-key call's results as C sees them: each key's status into
/// `statuses` (when not NULL) and the call's own outcome, which the core
/// decides ([`Error::first_of`]).
///
/// # Safety
/// `statuses` NULL or valid for `results.len()` writes.
pub unsafe fn per_key<T>(results: &[Result<T, Error>], statuses: *mut u32) -> Result<(), Error> {
    if !statuses.is_null() {
        for (i, r) in results.iter().enumerate() {
            // SAFETY: statuses holds results.len() entries per contract.
            unsafe { statuses.add(i).write(Status::of(r) as u32) };
        }
    }
    Error::first_of(results)
}
