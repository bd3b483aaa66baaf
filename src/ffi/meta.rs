//! Leases and invalidation (`elasticache_get_or_lease`,
//! `elasticache_get_or_lease_multi`, `elasticache_invalidate`) and the lease
//! result's accessors. Binary keys need no function of their
//! own: the `binary_keys` option makes every key-taking call accept them.

use super::boundary::{call, key_list, non_null, per_key};
use super::client::{client_key, client_ref, elasticache_client};
use super::handle::{Handle, Out};
use crate::client::Lease;
use crate::error::Status;
use crate::protocol::meta::LeaseState;

/// What a lease answer tells the caller to do. MISS is 0, what a NULL lease reads as.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum elasticache_lease_state {
    /// No value; this caller holds the lease: compute the value and store it
    /// with `elasticache_set`. (Also every miss on a node without the meta
    /// protocol: see `elasticache_lease_protected`.)
    Miss = 0,
    /// No value; another caller holds the lease: wait and ask again, or
    /// compute without storing.
    Wait = 1,
    /// A value to use; nothing to do.
    Hit = 2,
    /// A value to use (close to expiry, or stale after an invalidate), and
    /// this caller won the right to recompute and store it.
    Refresh = 3,
    /// A stale value while another caller recomputes it.
    Stale = 4,
}

impl From<LeaseState> for elasticache_lease_state {
    fn from(s: LeaseState) -> Self {
        match s {
            LeaseState::Miss => elasticache_lease_state::Miss,
            LeaseState::Wait => elasticache_lease_state::Wait,
            LeaseState::Hit => elasticache_lease_state::Hit,
            LeaseState::Refresh => elasticache_lease_state::Refresh,
            LeaseState::Stale => elasticache_lease_state::Stale,
        }
    }
}

/// The answer of `elasticache_get_or_lease`: a state and maybe a value.
/// Owned by the caller, freed with `elasticache_lease_free`. Immutable.
#[allow(non_camel_case_types)]
pub struct elasticache_lease(Lease);

impl Handle for elasticache_lease {
    const NAME: &'static str = "lease";
}

/// Read `key` and take a lease when it is missing or when its remaining TTL
/// is below `recache_before` seconds (0: never early), in one round trip to a
/// node with memcached's meta protocol (1.6.10+). The lease lasts
/// `lease_ttl` seconds (1 to 2592000); a holder that never stores lets the
/// next caller take it after that. `*out` receives the answer (free it with
/// `elasticache_lease_free`). On older engines this is a plain get, said once
/// per node (an ELASTICACHE_EVENT_KIND_META_UNSUPPORTED event, or stderr
/// without an event callback; `elasticache_lease_protected` is false).
///
/// # Safety
/// `client` live; `key` readable for `key_len` bytes; `out` valid for a write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_get_or_lease(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    lease_ttl: u32,
    recache_before: u32,
    out: *mut *mut elasticache_lease,
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract.
        let (out, (c, key)) = unsafe { (Out::new(out)?, client_key(client, key, key_len)?) };
        out.give(elasticache_lease(c.get_or_lease(
            key,
            lease_ttl,
            recache_before,
        )?));
        Ok(())
    })
}

/// `elasticache_get_or_lease` for `n` keys in one pipelined round trip per
/// node (`mg ... q` requests ended by `mn`). `leases` has room for `n`
/// pointers: each receives its key's answer (free each with
/// `elasticache_lease_free`), or NULL for a key that failed; `statuses` is
/// NULL or room for `n` per-key statuses. Both are written in every case but
/// bad arguments. Returns OK when every key was answered, else the first
/// failing key's status (its message is the last error).
///
/// # Safety
/// `client` live; `keys` and `key_lens` hold `n` entries (each key readable
/// for its length); `leases` valid for `n` writes; `statuses` NULL or `n` entries.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn elasticache_get_or_lease_multi(
    client: *const elasticache_client,
    keys: *const *const u8,
    key_lens: *const usize,
    n: usize,
    lease_ttl: u32,
    recache_before: u32,
    leases: *mut *mut elasticache_lease,
    statuses: *mut u32,
) -> Status {
    call(|| {
        if n > 0 {
            non_null(leases, "leases")?;
        }
        // SAFETY: caller's contract.
        let (c, keys) = unsafe { (client_ref(client)?, key_list(keys, key_lens, n)?) };
        let mut results = c.get_or_lease_multi(&keys, lease_ttl, recache_before);
        for (i, r) in results.iter_mut().enumerate() {
            // The lease moves to the caller; the result keeps only its status.
            let p = r.as_mut().map_or(std::ptr::null_mut(), |l| {
                elasticache_lease(std::mem::take(l)).into_raw()
            });
            // SAFETY: `leases` holds n entries per contract.
            unsafe { leases.add(i).write(p) };
        }
        // SAFETY: `statuses` NULL or n entries per the caller's contract.
        unsafe { per_key(&results, statuses) }
    })
}

/// Mark `key` stale instead of deleting it (`md <key> I`): lease readers get
/// the old value and one of them refreshes it. `ttl` (seconds, 0: keep the
/// item's) bounds how long the stale value lives. NOT_FOUND on a miss. On a
/// node without the meta protocol this is a delete.
///
/// # Safety
/// `client` live; `key` readable for `key_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn elasticache_invalidate(
    client: *const elasticache_client,
    key: *const u8,
    key_len: usize,
    ttl: u32,
) -> Status {
    // SAFETY: caller's contract.
    call(|| unsafe {
        let (c, key) = client_key(client, key, key_len)?;
        c.invalidate(key, ttl)
    })
}

/// An accessor's body over the lease inside the handle.
unsafe fn with_lease<T>(
    lease: *const elasticache_lease,
    default: T,
    f: impl FnOnce(&Lease) -> T,
) -> T {
    // SAFETY: `lease` is NULL or live, per each accessor's contract.
    unsafe { Handle::read(lease, default, |l| f(&l.0)) }
}

/// The lease's state (MISS for NULL).
///
/// # Safety
/// `lease` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_lease_get_state(
    lease: *const elasticache_lease,
) -> elasticache_lease_state {
    // SAFETY: caller's contract.
    unsafe { with_lease(lease, elasticache_lease_state::Miss, |l| l.state.into()) }
}

/// Whether the lease carries a value (HIT, REFRESH, STALE).
///
/// # Safety
/// `lease` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_lease_has_value(lease: *const elasticache_lease) -> bool {
    // SAFETY: caller's contract.
    unsafe { with_lease(lease, false, |l| l.item.is_some()) }
}

/// The value's bytes (valid until `elasticache_lease_free`; NULL without a value).
///
/// # Safety
/// `lease` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_lease_data(lease: *const elasticache_lease) -> *const u8 {
    // SAFETY: caller's contract.
    unsafe {
        with_lease(lease, std::ptr::null(), |l| {
            l.item
                .as_ref()
                .map_or(std::ptr::null(), |i| i.value.as_ptr())
        })
    }
}

/// The value's length (0 without a value).
///
/// # Safety
/// `lease` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_lease_len(lease: *const elasticache_lease) -> usize {
    // SAFETY: caller's contract.
    unsafe { with_lease(lease, 0, |l| l.item.as_ref().map_or(0, |i| i.value.len())) }
}

/// The value's flags (0 without a value).
///
/// # Safety
/// `lease` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_lease_flags(lease: *const elasticache_lease) -> u32 {
    // SAFETY: caller's contract.
    unsafe { with_lease(lease, 0, |l| l.item.as_ref().map_or(0, |i| i.flags)) }
}

/// The value's cas id (0 without a value, or on a node without the meta protocol).
///
/// # Safety
/// `lease` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_lease_cas(lease: *const elasticache_lease) -> u64 {
    // SAFETY: caller's contract.
    unsafe { with_lease(lease, 0, |l| l.item.as_ref().map_or(0, |i| i.cas)) }
}

/// Whether the value was invalidated (`elasticache_invalidate`).
///
/// # Safety
/// `lease` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_lease_stale(lease: *const elasticache_lease) -> bool {
    // SAFETY: caller's contract.
    unsafe { with_lease(lease, false, |l| l.stale) }
}

/// False when the node has no meta protocol and this was a plain get (then
/// every caller that misses gets MISS: no stampede protection).
///
/// # Safety
/// `lease` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_lease_protected(lease: *const elasticache_lease) -> bool {
    // SAFETY: caller's contract.
    unsafe { with_lease(lease, false, |l| l.protected) }
}

/// The item's remaining TTL in seconds: -1 for none, -2 when unknown (NULL,
/// or a node without the meta protocol).
///
/// # Safety
/// `lease` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_lease_ttl(lease: *const elasticache_lease) -> i64 {
    // SAFETY: caller's contract.
    unsafe { with_lease(lease, -2, |l| l.ttl.unwrap_or(-2)) }
}

/// Free a lease answer. NULL is accepted and ignored.
///
/// # Safety
/// `lease` NULL or from `elasticache_get_or_lease(_multi)`, freed once.
#[no_mangle]
pub unsafe extern "C" fn elasticache_lease_free(lease: *mut elasticache_lease) {
    // SAFETY: caller's contract.
    unsafe { elasticache_lease::free(lease) }
}
