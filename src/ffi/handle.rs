//! Ownership of the objects the library hands to C, declared once per type:
//! `impl Handle for elasticache_value { const NAME: &'static str = "value"; }`
//! gives the type its borrow, its accessor guard, its hand-out and its free,
//! so every exported body is one conversion per argument and one core call.

use super::boundary::call_infallible;
use crate::error::{Error, Result};

/// A C object allocated here (boxed) and freed by the caller with its `_free`.
pub(crate) trait Handle: Sized {
    /// The parameter name used in messages ("client is NULL").
    const NAME: &'static str;

    /// Borrow a live object; NULL is INVALID_ARGUMENT naming the parameter.
    ///
    /// # Safety
    /// `p` is NULL or a live object of this type that outlives `'a`.
    unsafe fn try_ref<'a>(p: *const Self) -> Result<&'a Self> {
        // SAFETY: caller's contract.
        unsafe { p.as_ref() }
            .ok_or_else(|| Error::InvalidArgument(format!("{} is NULL", Self::NAME)))
    }

    /// Borrow a live object for modification; NULL is INVALID_ARGUMENT.
    ///
    /// # Safety
    /// `p` is NULL or a live object of this type that nothing else uses during `'a`.
    unsafe fn try_mut<'a>(p: *mut Self) -> Result<&'a mut Self> {
        // SAFETY: caller's contract.
        unsafe { p.as_mut() }
            .ok_or_else(|| Error::InvalidArgument(format!("{} is NULL", Self::NAME)))
    }

    /// An accessor's body: `f` of the object, or `default` for NULL (and for a
    /// panic, which must not cross the boundary).
    ///
    /// # Safety
    /// As for [`Handle::try_ref`].
    unsafe fn read<R>(p: *const Self, default: R, f: impl FnOnce(&Self) -> R) -> R {
        // SAFETY: caller's contract.
        call_infallible(None, || unsafe { p.as_ref() }.map(f)).unwrap_or(default)
    }

    /// Box the object for the caller, who frees it with its `_free`.
    fn into_raw(self) -> *mut Self {
        Box::into_raw(Box::new(self))
    }

    /// Free an object handed out by [`Handle::into_raw`]; NULL is ignored.
    ///
    /// # Safety
    /// `p` is NULL or from [`Handle::into_raw`] of this type, freed once, unused after.
    unsafe fn free(p: *mut Self) {
        call_infallible((), || {
            if !p.is_null() {
                // SAFETY: from Box::into_raw in into_raw, per the caller's contract.
                drop(unsafe { Box::from_raw(p) });
            }
        })
    }
}

/// A caller's `T **out`, checked non-NULL before any work is done, so a call
/// with nowhere to put its result does nothing.
pub(crate) struct Out<T>(*mut *mut T);

impl<T: Handle> Out<T> {
    /// Check the slot.
    ///
    /// # Safety
    /// `p` is NULL or valid for one pointer write.
    pub(crate) unsafe fn new(p: *mut *mut T) -> Result<Out<T>> {
        if p.is_null() {
            Err(Error::InvalidArgument("out is NULL".into()))
        } else {
            Ok(Out(p))
        }
    }

    /// Box `value` and hand it to the caller, who frees it with its `_free`.
    pub(crate) fn give(self, value: T) {
        // SAFETY: checked non-NULL in `new`, valid for a write per its contract.
        unsafe { self.0.write(value.into_raw()) };
    }
}

/// Write an optional output: `*p = value` unless `p` is NULL.
///
/// # Safety
/// `p` is NULL or valid for one write.
pub(crate) unsafe fn put<T>(p: *mut T, value: T) {
    if !p.is_null() {
        // SAFETY: non-NULL, valid per the caller's contract.
        unsafe { p.write(value) };
    }
}

/// Write entry `i` of an optional output array: `p[i] = value` unless `p` is NULL.
///
/// # Safety
/// `p` is NULL or valid for writes of at least `i + 1` entries.
pub(crate) unsafe fn put_at<T>(p: *mut T, i: usize, value: T) {
    if !p.is_null() {
        // SAFETY: non-NULL, i in range per the caller's contract.
        unsafe { p.add(i).write(value) };
    }
}
