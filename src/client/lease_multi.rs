//! Leases for many keys in one call: per node, one pipeline of
//! `mg <key> v f c t N<lease_ttl> [R<secs>] q O<position>` ended by `mn`
//! (cut into requests of about 8 KiB, as the binary-key multi-get does), so
//! a page that reads twenty cached fragments takes one round trip per node
//! and learns for each whether it must recompute it. With `N`, `q` can only
//! hide an `EN` (the server could not allocate the placeholder), which is a
//! `Miss`, as for one key. Nodes without the final meta dialect answer
//! through a plain multi-get instead (`protected` false, every miss a
//! `Miss`), said once per node as for one key.

use std::sync::Arc;

use super::lease::{check_ttl, lease_of, lease_request, Lease};
use super::meta::NO_META;
use super::Client;
use crate::error::{Error, Result};
use crate::protocol::meta::{self, Dialect, LeaseState};
use crate::pool::NodePool;

/// Bytes of requests sent before their replies are read: the request always
/// fits in the socket buffers while the replies wait.
const MAX_BATCH_REQUEST: usize = 8 * 1024;

const OP: &str = "get_or_lease";

impl Client {
    /// [`Client::get_or_lease`] for each of `keys`, one result per key in
    /// order: one pipelined round trip per node (per 8 KiB of requests). A
    /// key's error (a bad key, its node down) is its own; the others are
    /// answered.
    pub fn get_or_lease_multi(
        &self,
        keys: &[&[u8]],
        lease_ttl: u32,
        recache_before: u32,
    ) -> Vec<Result<Lease>> {
        let checked = check_ttl("lease_ttl", lease_ttl, false)
            .and_then(|_| check_ttl("recache_before", recache_before, true))
            .and_then(|_| self.topology());
        let t = match checked {
            Ok(t) => t,
            Err(e) => return keys.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut results: Vec<Option<Result<Lease>>> = keys.iter().map(|_| None).collect();
        let mut by_node: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let owner = self
                .lease_key_check(key)
                .and_then(|_| self.owner(&t, key).map(|_| ()))
                .and_then(|_| t.ring.owner(key).ok_or_else(|| super::no_servers(&t)));
            match owner {
                Err(e) => results[i] = Some(Err(e)),
                Ok(n) => match by_node.iter_mut().find(|(m, _)| *m == n) {
                    Some((_, v)) => v.push(i),
                    None => by_node.push((n, vec![i])),
                },
            }
        }
        for (n, idxs) in &by_node {
            let node = &t.nodes[*n];
            let leased = match self.dialect(node) {
                Ok(Dialect::Final) => {
                    self.lease_pipeline(node, keys, idxs, lease_ttl, recache_before, &mut results)
                }
                Ok(_) => Err(Error::BadKey { reason: NO_META }),
                Err(e) => Err(e),
            };
            match leased {
                Ok(()) => {}
                // Also what the pipeline says after a node answered ERROR (it is demoted).
                Err(Error::BadKey { reason }) if reason == NO_META => {
                    self.lease_fallback(node, keys, idxs, &mut results)
                }
                Err(e) => {
                    for &i in idxs {
                        results[i].get_or_insert_with(|| Err(e.clone()));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or(Ok(Lease {
                    state: LeaseState::Miss,
                    item: None,
                    stale: false,
                    ttl: None,
                    protected: true,
                }))
            })
            .collect()
    }

    fn lease_pipeline(
        &self,
        node: &Arc<NodePool>,
        keys: &[&[u8]],
        idxs: &[usize],
        lease_ttl: u32,
        recache_before: u32,
        results: &mut [Option<Result<Lease>>],
    ) -> Result<()> {
        self.pipeline(
            node,
            OP,
            idxs,
            Some(MAX_BATCH_REQUEST),
            |buf, i, pos| {
                lease_request(buf, keys[i], lease_ttl, recache_before)
                    .flag(b'q')
                    .num(b'O', pos)
                    .end()
            },
            |label, at, r| {
                let Some(i) = at.map(|p| idxs[p]) else {
                    return Err(super::meta::meta_error(label, OP, r.code));
                };
                results[i] = Some(lease_of(label, OP, &r));
                Ok(())
            },
        )
    }

    /// A node without the meta protocol: a plain multi-get of its keys.
    fn lease_fallback(
        &self,
        node: &Arc<NodePool>,
        keys: &[&[u8]],
        idxs: &[usize],
        results: &mut [Option<Result<Lease>>],
    ) {
        self.tell_fallback(node, "get_or_lease_multi");
        let mut text = Vec::with_capacity(idxs.len());
        for &i in idxs {
            if meta::needs_binary(keys[i]) {
                results[i] = Some(Err(Error::BadKey { reason: NO_META }));
            } else {
                text.push(i);
            }
        }
        let text_keys: Vec<&[u8]> = text.iter().map(|&i| keys[i]).collect();
        for (&i, got) in text.iter().zip(self.get_multi(&text_keys, false)) {
            results[i] = Some(got.map(Lease::unprotected));
        }
    }
}
