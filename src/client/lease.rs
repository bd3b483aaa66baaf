//! Leases against cache stampedes, and invalidation that serves stale values.
//!
//! `get_or_lease` is one `mg <key> v f c t N<lease_ttl> [R<recache_before>]`:
//! the server answers a value, or makes the caller the one that recomputes it
//! (`W`), or tells it that another caller does (`Z`), so one caller per expiry
//! recomputes a hot key while the others serve the old value or wait.
//! `invalidate` is `md <key> I [T<ttl>]`: the item stays, marked stale, and
//! the next `get_or_lease` wins the refresh. Stored values are plain items
//! with the caller's flags, so every other client reads them.
//!
//! Nodes without the final meta dialect get today's behaviour instead (plain
//! `get`, `delete`), said once per node (a `meta_unsupported` event, or
//! stderr without an event handler) and visible in [`Lease::protected`].

use std::sync::Arc;

use super::meta::{check_meta_key, meta_error, read_meta, NO_META};
use super::{Client, Item};
use crate::error::{Error, Result};
use crate::protocol::meta::{self, Code, Dialect, LeaseState, Request};
use crate::pool::NodePool;
use crate::protocol;

/// The longest lease or TTL taken: beyond 30 days memcached reads a number
/// as a point in time.
pub const MAX_LEASE_TTL: u32 = 30 * 24 * 3600;

/// The answer of [`Client::get_or_lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// What the caller should do.
    pub state: LeaseState,
    /// The value, for `Hit`, `Refresh` and `Stale`.
    pub item: Option<Item>,
    /// Whether the value was invalidated (`X`).
    pub stale: bool,
    /// The item's remaining TTL in seconds (-1: none), when the node said.
    pub ttl: Option<i64>,
    /// False when the node does not speak the meta protocol and this was a
    /// plain `get` (a miss is then `Miss` for every caller).
    pub protected: bool,
}

impl Lease {
    /// A plain read's answer as a lease (a node without the meta protocol,
    /// or a key it cannot carry): a hit or a miss, no protection.
    pub(crate) fn unprotected(item: Option<Item>) -> Lease {
        let state = if item.is_some() { LeaseState::Hit } else { LeaseState::Miss };
        Lease { state, item, ..Lease::default() }
    }
}

impl Default for Lease {
    /// A miss without protection: what a lease reads as once moved out.
    fn default() -> Lease {
        Lease { state: LeaseState::Miss, item: None, stale: false, ttl: None, protected: false }
    }
}

/// The lease read, `mg <key> v f c t N<lease_ttl> [R<recache_before>]`:
/// value, flags, cas and TTL, a lease on a miss (and early when the TTL is
/// below `recache_before`). Callers add what their framing needs.
pub(super) fn lease_request<'b>(buf: &'b mut Vec<u8>, key: &[u8], lease_ttl: u32, recache_before: u32) -> Request<'b> {
    let r = Request::new(buf, b"mg", key, None)
        .flag(b'v')
        .flag(b'f')
        .flag(b'c')
        .flag(b't')
        .num(b'N', u64::from(lease_ttl));
    if recache_before > 0 {
        r.num(b'R', u64::from(recache_before))
    } else {
        r
    }
}

pub(super) fn check_ttl(name: &str, v: u32, zero_ok: bool) -> Result<()> {
    if (v == 0 && !zero_ok) || v > MAX_LEASE_TTL {
        return Err(Error::InvalidArgument(format!(
            "{name} {v} is not between {} and {MAX_LEASE_TTL} seconds",
            u32::from(!zero_ok)
        )));
    }
    Ok(())
}

fn is_unknown_command(e: &Error) -> bool {
    matches!(e, Error::Client { message, .. } if message.starts_with("ERROR"))
}

/// The lease an `mg ... N` reply gives.
pub(super) fn lease_of(label: &str, op: &'static str, r: &meta::Reply<'_>) -> Result<Lease> {
    match r.code {
        Code::Value | Code::Miss => {
            let state = meta::lease_state(r.code, &r.flags, r.data);
            let item = match state {
                LeaseState::Miss | LeaseState::Wait => None,
                _ => r.data.map(|d| Item {
                    value: d.to_vec(),
                    flags: r.flags.client_flags.unwrap_or(0),
                    cas: r.flags.cas.unwrap_or(0),
                }),
            };
            Ok(Lease {
                state,
                item,
                stale: r.flags.stale,
                ttl: r.flags.ttl,
                protected: r.code == Code::Value,
            })
        }
        code => Err(meta_error(label, op, code)),
    }
}

impl Client {
    pub(super) fn lease_key_check(&self, key: &[u8]) -> Result<()> {
        if self.opts.binary_keys {
            check_meta_key(key)
        } else {
            protocol::check_key(key)
        }
    }

    /// The node owning `key`, and whether it speaks the final meta dialect.
    fn lease_node(&self, key: &[u8]) -> Result<(Arc<NodePool>, bool)> {
        self.lease_key_check(key)?;
        let t = self.topology()?;
        let node = self.owner(&t, key)?.clone();
        let is_final = self.dialect(&node)? == Dialect::Final;
        Ok((node, is_final))
    }

    /// Read `key`, taking a lease when it is missing (held for `lease_ttl`
    /// seconds, 1 to 30 days) or when its remaining TTL is below
    /// `recache_before` seconds (0: never early). One round trip; see
    /// [`LeaseState`] for the answers. The lease holder stores the new value
    /// with an ordinary `set`; if it never does, the lease lapses after
    /// `lease_ttl` and the next caller gets it.
    pub fn get_or_lease(&self, key: &[u8], lease_ttl: u32, recache_before: u32) -> Result<Lease> {
        check_ttl("lease_ttl", lease_ttl, false)?;
        check_ttl("recache_before", recache_before, true)?;
        let (node, is_final) = self.lease_node(key)?;
        if is_final {
            match self.lease_mg(&node, key, lease_ttl, recache_before) {
                Err(e) if is_unknown_command(&e) => self.demote(&node),
                other => return other,
            }
        }
        self.tell_fallback(&node, "get_or_lease");
        if meta::needs_binary(key) {
            return Err(Error::BadKey { reason: NO_META });
        }
        Ok(Lease::unprotected(self.get(key)?))
    }

    fn lease_mg(
        &self,
        node: &NodePool,
        key: &[u8],
        lease_ttl: u32,
        recache_before: u32,
    ) -> Result<Lease> {
        let op = "get_or_lease";
        let label = node.label();
        self.exchange(node, op, |conn| {
            lease_request(&mut conn.wbuf, key, lease_ttl, recache_before).end();
            conn.send(label, op)?;
            read_meta(conn, label, op, |r| lease_of(label, op, &r).map(Some))
        })
    }

    /// Mark `key` stale instead of deleting it: readers through
    /// [`Client::get_or_lease`] get the old value, and the first of them wins
    /// the refresh. `ttl` (seconds, 0: keep the item's) bounds how long the
    /// stale value lives. `Err(NotFound)` on a miss. On a node without the
    /// meta protocol this is a `delete`.
    pub fn invalidate(&self, key: &[u8], ttl: u32) -> Result<()> {
        check_ttl("ttl", ttl, true)?;
        let (node, is_final) = self.lease_node(key)?;
        if is_final {
            let op = "invalidate";
            let label = node.label();
            let r = self.exchange(&node, op, |conn| {
                let r = Request::new(&mut conn.wbuf, b"md", key, None).flag(b'I');
                let r = if ttl > 0 {
                    r.num(b'T', u64::from(ttl))
                } else {
                    r
                };
                r.end();
                conn.send(label, op)?;
                read_meta(conn, label, op, |r| match r.code {
                    Code::Done => Ok(Some(())),
                    code => Err(meta_error(label, op, code)),
                })
            });
            match r {
                Err(e) if is_unknown_command(&e) => self.demote(&node),
                other => return other,
            }
        }
        self.tell_fallback(&node, "invalidate");
        if meta::needs_binary(key) {
            return Err(Error::BadKey { reason: NO_META });
        }
        self.delete(key)
    }
}
