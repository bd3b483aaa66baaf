//! `elasticache_ring`: key placement over a fixed server list, for C callers
//! that route keys themselves (or want to know where a key lives).

use std::ffi::{c_char, CString};

use super::boundary::{bytes, call, non_null, server_list};
use super::handle::{Handle, Out};
use super::options::elasticache_options;
use crate::error::{Error, Status};
use crate::net::addr::join_host_port;
use crate::ring::Ring;

/// A placement ring over a fixed list of servers (see `elasticache_ring_new`).
/// Immutable once built: lookups may run from many threads at once; free it
/// once with `elasticache_ring_free` after every lookup has returned.
#[allow(non_camel_case_types)]
pub struct elasticache_ring {
    ring: Ring,
    // "host:port" of each server, NUL-terminated, alive as long as the ring.
    names: Vec<CString>,
}

impl Handle for elasticache_ring {
    const NAME: &'static str = "ring";
}

/// Build a ring over `n` servers, each a NUL-terminated "host:port" string
/// (port 11211 when omitted; `[v6addr]:port` for IPv6). The host string is
/// hashed exactly as written, never resolved. `weights` is NULL (all weights
/// equal to one) or `n` weights, none of them 0; `ketama_weighted` uses them,
/// and so does `ketama` once a weight is above 1 (weighted points, the key
/// hash kept, as libmemcached does); `modula` and `rendezvous` ignore them. `opts` may be NULL (defaults); its `distribution` (modula, ketama,
/// ketama_weighted, rendezvous; default ketama) and `hash` (default
/// one_at_a_time) are used, except that ketama_weighted always hashes keys
/// with md5, as libmemcached does, and rendezvous always uses pymemcache's
/// murmur3. `n` may be 0: every lookup then returns NO_SERVERS. The ring is
/// stored in `*out`.
///
/// # Safety
/// `servers` must point to `n` NUL-terminated strings (or be NULL with `n == 0`);
/// `weights` NULL or valid for `n` reads; `opts` NULL or live; `out` valid for
/// one pointer write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_ring_new(
    servers: *const *const c_char,
    n: usize,
    weights: *const u32,
    opts: *const elasticache_options,
    out: *mut *mut elasticache_ring,
) -> Status {
    call(|| {
        // SAFETY (this block): the caller's contract.
        let (out, opts, specs) = unsafe {
            let out = Out::new(out)?;
            (
                out,
                elasticache_options::or_default(opts),
                server_list(servers, n, weights)?,
            )
        };
        let names = specs
            .iter()
            .map(|s| {
                CString::new(join_host_port(&s.host, s.port))
                    .map_err(|_| Error::InvalidArgument("a server name holds a NUL".into()))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let ring = Ring::new(&specs, opts.distribution, opts.hash);
        out.give(elasticache_ring { ring, names });
        Ok(())
    })
}

/// Store in `*index` the index (into the list given to `elasticache_ring_new`)
/// of the server owning the key of `key_len` bytes at `key`. Any bytes are
/// accepted (placement does not validate keys). NO_SERVERS when the ring has
/// no server. Does not allocate.
///
/// # Safety
/// `ring` must be live; `key` valid for `key_len` bytes (NULL only with
/// `key_len == 0`); `index` valid for one write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_ring_lookup(
    ring: *const elasticache_ring,
    key: *const u8,
    key_len: usize,
    index: *mut usize,
) -> Status {
    call(|| {
        non_null(index, "index")?;
        // SAFETY: caller's contract.
        let r = unsafe { elasticache_ring::try_ref(ring)? };
        // SAFETY: caller's contract.
        let key = unsafe { bytes(key, key_len, "key")? };
        let i = r.ring.owner(key).ok_or_else(|| Error::NoServers {
            detail: "the ring has no server".into(),
        })?;
        // SAFETY: checked non-NULL.
        unsafe { index.write(i) };
        Ok(())
    })
}

/// Store in `*host_port` server `index`'s "host:port" (`[v6addr]:port` for
/// IPv6), a string that lives as long as `ring`. INVALID_ARGUMENT for an index
/// out of range.
///
/// # Safety
/// `ring` must be live; `host_port` valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn elasticache_ring_server(
    ring: *const elasticache_ring,
    index: usize,
    host_port: *mut *const c_char,
) -> Status {
    call(|| {
        non_null(host_port, "host_port")?;
        // SAFETY: caller's contract.
        let r = unsafe { elasticache_ring::try_ref(ring)? };
        let name = r.names.get(index).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "server index {index} is out of range (the ring has {} servers)",
                r.names.len()
            ))
        })?;
        // SAFETY: checked non-NULL.
        unsafe { host_port.write(name.as_ptr()) };
        Ok(())
    })
}

/// The number of servers the ring was built over. Returns 0 for NULL.
///
/// # Safety
/// `ring` must be NULL or live.
#[no_mangle]
pub unsafe extern "C" fn elasticache_ring_server_count(ring: *const elasticache_ring) -> usize {
    // SAFETY: caller's contract.
    unsafe { Handle::read(ring, 0, |r| r.names.len()) }
}

/// Free a ring. NULL is accepted and ignored.
///
/// # Safety
/// `ring` must be NULL or come from `elasticache_ring_new`, freed once.
#[no_mangle]
pub unsafe extern "C" fn elasticache_ring_free(ring: *mut elasticache_ring) {
    // SAFETY: caller's contract.
    unsafe { elasticache_ring::free(ring) }
}
