//! The C ABI. Each submodule is one C type or one family of calls;
//! `boundary` holds the panic boundary, the per-thread last error and the
//! argument checks, `handle` the ownership of the objects handed to C. No
//! logic lives here: functions convert and check arguments, then call the
//! core (which also decides a multi-key call's own status).
//!
//! Conventions every function follows: it returns a status code
//! (`elasticache_status`, 0 = OK); on failure a message is available from
//! `elasticache_last_error_message` on the same thread until the next call;
//! outputs are written only on success; NULL pointers and bad lengths give
//! `ELASTICACHE_STATUS_INVALID_ARGUMENT`; every `_free` accepts NULL.

// In the header's order (cbindgen emits the items module by module; the
// blank lines keep rustfmt from sorting them): the client and its calls first.
pub mod boundary;
pub(crate) mod handle;

pub mod client;

pub mod single;

pub mod multi;

pub mod stats;

pub mod config;
pub mod events;
pub mod meta;
pub mod metrics;
pub mod options;
pub mod packed;
pub mod ring;

use std::ffi::c_char;

use crate::error::Status;
use boundary::{call_infallible, with_last_error};

/// A static, NUL-terminated description of a status code ("unknown status"
/// for a number that is not one). Never NULL; do not free.
#[no_mangle]
pub extern "C" fn elasticache_status_str(status: u32) -> *const c_char {
    call_infallible(c"internal panic".as_ptr(), || {
        match Status::from_u32(status) {
            Some(s) => s.as_cstr().as_ptr(),
            None => c"unknown status".as_ptr(),
        }
    })
}

/// Copy this thread's last error message (empty after a successful call) into
/// `buf` of `len` bytes, NUL-terminated, and store its length (without the NUL)
/// in `*out_n` when `out_n` is not NULL. Returns BUFFER_TOO_SMALL when the
/// message was cut; the last error itself is left as it was, so the call can
/// be repeated with a larger buffer.
///
/// # Safety
/// `buf` must be valid for `len` bytes (or NULL with `len == 0`); `out_n` must be
/// NULL or valid for one `size_t` write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_last_error_message(
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> Status {
    call_infallible(Status::Panic, || {
        with_last_error(|msg| {
            // SAFETY: the caller's contract, forwarded.
            match unsafe { boundary::copy_out(msg.as_bytes(), buf.cast(), len, out_n) } {
                Ok(()) => Status::Ok,
                Err(e) => e.status(),
            }
        })
    })
}

/// The library's version string, e.g. "0.1.0" (static; do not free). Compare it
/// with `ELASTICACHE_VERSION` to detect a header/library mismatch.
#[no_mangle]
pub extern "C" fn elasticache_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The fork generation of this process: 0 in the process that loaded the
/// library, one more in a child after each `fork()`. The library's own
/// `pthread_atfork` handler (registered when the library is loaded) bumps it;
/// clients compare it to decide that sockets opened before the fork belong to
/// the parent and must not be used. Exposed so that programs (and our tests)
/// can check that the handler is in place, including in static links.
#[no_mangle]
pub extern "C" fn elasticache_fork_generation() -> u64 {
    call_infallible(0, crate::fork::generation)
}
