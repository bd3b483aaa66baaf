//! Multi-key calls whose keys include binary ones (see `client_meta.rs`):
//! text keys take the ordinary multi-key path, binary keys a pipeline of
//! quiet meta commands per node, tagged with opaque tokens and ended by `mn`.

use std::sync::Arc;

use super::meta::{check_meta_key, encode_ms, meta_error, read_meta, NO_META};
use super::{Client, MultiGet, Slot};
use crate::error::{Error, Result};
use crate::protocol::meta::{self, Code, Dialect, Request};
use crate::pool::NodePool;
use crate::protocol::StoreCommand;

/// A pipelined batch of `mg` is cut into requests of about this size, so a
/// request always fits in the socket buffers while the replies are unread.
const MAX_BATCH_REQUEST: usize = 8 * 1024;

/// Which keys of a multi-key call go through meta commands, grouped by node.
struct Split {
    text: Vec<usize>,
    /// (node index, key indexes) for the binary keys that have an owner.
    by_node: Vec<(usize, Vec<usize>)>,
}

impl Client {
    fn split<T>(
        &self,
        keys: &[&[u8]],
        results: &mut [Result<T>],
    ) -> Option<(Arc<super::Topology>, Split)> {
        let mut split = Split {
            text: Vec::new(),
            by_node: Vec::new(),
        };
        let t = match self.topology() {
            Ok(t) => t,
            Err(e) => {
                results.iter_mut().for_each(|r| *r = Err(e.clone()));
                return None;
            }
        };
        for (i, key) in keys.iter().enumerate() {
            if !meta::needs_binary(key) {
                split.text.push(i);
                continue;
            }
            if results[i].is_err() {
                continue;
            }
            if let Err(e) = check_meta_key(key).and_then(|_| self.owner(&t, key).map(|_| ())) {
                results[i] = Err(e);
                continue;
            }
            let Some(n) = t.ring.owner(key) else {
                results[i] = Err(super::no_servers(&t));
                continue;
            };
            match split.by_node.iter_mut().find(|(m, _)| *m == n) {
                Some((_, v)) => v.push(i),
                None => split.by_node.push((n, vec![i])),
            }
        }
        Some((t, split))
    }

    /// Run pipelined meta requests for `idxs` on `node`, `per_round` keys a
    /// round trip (all when `None`), each request tagged `O<position>` and the
    /// round ended by `mn`. `on_reply(position, reply)` sees every reply but `MN`.
    pub(super) fn pipeline(
        &self,
        node: &Arc<NodePool>,
        op: &'static str,
        idxs: &[usize],
        limit_bytes: Option<usize>,
        mut encode: impl FnMut(&mut Vec<u8>, usize, u64),
        mut on_reply: impl FnMut(&str, Option<usize>, meta::Reply<'_>) -> Result<()>,
    ) -> Result<()> {
        // Meta requests go only to a node that speaks the final dialect;
        // callers fall back to text commands where a key allows it.
        if self.dialect(node)? != Dialect::Final {
            return Err(Error::BadKey { reason: NO_META });
        }
        let label = node.label();
        let r = self.exchange(node, op, |conn| {
            let mut pos = 0;
            while pos < idxs.len() {
                let start = pos;
                while pos < idxs.len() && limit_bytes.map_or(true, |l| conn.wbuf.len() < l) {
                    encode(&mut conn.wbuf, idxs[pos], pos as u64);
                    pos += 1;
                }
                meta::encode_noop(&mut conn.wbuf);
                conn.send(label, op)?;
                read_meta(conn, label, op, |r| {
                    if r.code == Code::Noop {
                        return Ok(Some(()));
                    }
                    let at = r
                        .flags
                        .opaque
                        .and_then(|o| std::str::from_utf8(o).ok()?.parse::<usize>().ok())
                        .filter(|&p| p >= start && p < pos);
                    on_reply(label, at, r).map(|_| None)
                })?;
            }
            Ok(())
        });
        if let Err(Error::Client { message, .. }) = &r {
            if message.starts_with("ERROR") {
                self.demote(node);
                return Err(Error::BadKey { reason: NO_META });
            }
        }
        r
    }

    /// [`Client::get_multi_arena`] when some keys need meta commands.
    pub(crate) fn binary_get_multi(&self, keys: &[&[u8]], with_cas: bool) -> MultiGet {
        let op = if with_cas { "gets" } else { "get" };
        let mut results: Vec<Result<Option<Slot>>> = keys.iter().map(|_| Ok(None)).collect();
        let Some((t, split)) = self.split(keys, &mut results) else {
            return MultiGet {
                data: Vec::new(),
                entries: results,
            };
        };
        let text_keys: Vec<&[u8]> = split.text.iter().map(|&i| keys[i]).collect();
        let text = self.get_multi_arena(&text_keys, with_cas);
        let mut data = text.data;
        for (&i, e) in split.text.iter().zip(text.entries) {
            results[i] = e;
        }
        for (n, idxs) in &split.by_node {
            let node = &t.nodes[*n];
            let outcome = self.pipeline(
                    node,
                    op,
                    idxs,
                    Some(MAX_BATCH_REQUEST),
                    |buf, i, pos| {
                        let r = Request::new(buf, b"mg", keys[i], None)
                            .flag(b'v')
                            .flag(b'f')
                            .flag(b'q')
                            .num(b'O', pos);
                        let r = if with_cas { r.flag(b'c') } else { r };
                        r.end()
                    },
                    |label, at, r| {
                        let Some(i) = at.map(|p| idxs[p]) else {
                            return Err(meta_error(label, op, r.code));
                        };
                        results[i] = match (r.code, r.data) {
                            (Code::Value, Some(v)) => {
                                let slot = Slot {
                                    offset: data.len(),
                                    len: v.len(),
                                    flags: r.flags.client_flags.unwrap_or(0),
                                    cas: r.flags.cas.unwrap_or(0),
                                };
                                data.extend_from_slice(v);
                                Ok(Some(slot))
                            }
                            (code, _) => Err(meta_error(label, op, code)),
                        };
                        Ok(())
                    },
                );
            if let Err(e) = outcome {
                for &i in idxs {
                    if matches!(results[i], Ok(None)) {
                        results[i] = Err(e.clone());
                    }
                }
            }
        }
        MultiGet {
            data,
            entries: results,
        }
    }

    /// [`Client::store_multi`] when some keys need meta commands.
    pub(crate) fn binary_store_multi(
        &self,
        cmd: StoreCommand,
        items: &[(&[u8], &[u8], u32, i64)],
    ) -> Vec<Result<()>> {
        let keys: Vec<&[u8]> = items.iter().map(|it| it.0).collect();
        let max = self.opts.max_value_size;
        let mut results: Vec<Result<()>> = items
            .iter()
            .map(|it| match it.1.len() {
                len if len > max => Err(Error::TooBig { len, max }),
                _ => Ok(()),
            })
            .collect();
        let Some((t, split)) = self.split(&keys, &mut results) else {
            return results;
        };
        let text_items: Vec<_> = split.text.iter().map(|&i| items[i]).collect();
        for (&i, r) in split.text.iter().zip(self.store_multi(cmd, &text_items)) {
            results[i] = r;
        }
        let op = cmd.name();
        for (n, idxs) in &split.by_node {
            let idxs: Vec<usize> = idxs
                .iter()
                .copied()
                .filter(|&i| results[i].is_ok())
                .collect();
            let node = &t.nodes[*n];
            let outcome = self.pipeline(
                    node,
                    op,
                    &idxs,
                    None,
                    |buf, i, pos| {
                        let (k, v, flags, exp) = items[i];
                        encode_ms(buf, cmd, k, v, flags, exp, 0, true, Some(pos));
                    },
                    |label, at, r| match at.map(|p| idxs[p]) {
                        Some(i) => {
                            results[i] = Err(meta_error(label, op, r.code));
                            Ok(())
                        }
                        None => Err(meta_error(label, op, r.code)),
                    },
                );
            if let Err(e) = outcome {
                for &i in &idxs {
                    results[i] = Err(e.clone());
                }
            }
        }
        results
    }

    /// [`Client::delete_multi`] when some keys need meta commands.
    pub(crate) fn binary_delete_multi(&self, keys: &[&[u8]]) -> Vec<Result<()>> {
        let mut results: Vec<Result<()>> = keys.iter().map(|_| Ok(())).collect();
        let Some((t, split)) = self.split(keys, &mut results) else {
            return results;
        };
        let text_keys: Vec<&[u8]> = split.text.iter().map(|&i| keys[i]).collect();
        for (&i, r) in split.text.iter().zip(self.delete_multi(&text_keys)) {
            results[i] = r;
        }
        for (n, idxs) in &split.by_node {
            let node = &t.nodes[*n];
            let outcome = self.pipeline(
                    node,
                    "delete",
                    idxs,
                    Some(MAX_BATCH_REQUEST),
                    |buf, i, pos| {
                        Request::new(buf, b"md", keys[i], None)
                            .flag(b'q')
                            .num(b'O', pos)
                            .end()
                    },
                    |label, at, r| match at.map(|p| idxs[p]) {
                        Some(i) => {
                            results[i] = Err(meta_error(label, "delete", r.code));
                            Ok(())
                        }
                        None => Err(meta_error(label, "delete", r.code)),
                    },
                );
            if let Err(e) = outcome {
                for &i in idxs {
                    results[i] = Err(e.clone());
                }
            }
        }
        results
    }
}
