//! Multi-key operations: keys grouped by node, every node's request written
//! before any reply is read (see [`super::batch`]), a result per key.

use std::sync::Arc;

use super::*;

impl Client {
    /// Read many keys with one request per node; a result per key, in order.
    pub fn get_multi(&self, keys: &[&[u8]], with_cas: bool) -> Vec<Result<Option<Item>>> {
        let m = self.get_multi_arena(keys, with_cas);
        let data = m.data;
        m.entries
            .into_iter()
            .map(|e| {
                e.map(|hit| {
                    hit.map(|s| Item {
                        value: data[s.offset..s.offset + s.len].to_vec(),
                        flags: s.flags,
                        cas: s.cas,
                    })
                })
            })
            .collect()
    }

    /// [`Client::get_multi`] with every value in one buffer: a multi-get of
    /// many small values spent a third of its time allocating one vector per
    /// value.
    pub fn get_multi_arena(&self, keys: &[&[u8]], with_cas: bool) -> MultiGet {
        if self.opts.binary_keys && keys.iter().any(|k| crate::protocol::meta::needs_binary(k)) {
            return self.binary_get_multi(keys, with_cas);
        }
        let op = if with_cas { "gets" } else { "get" };
        let mut results: Vec<Result<Option<Slot>>> = keys.iter().map(|_| Ok(None)).collect();
        let mut data = Vec::new();
        let Some((t, groups)) = self.group(keys, &mut results) else {
            return MultiGet {
                data,
                entries: results,
            };
        };
        let mut batches =
            batch::open_batches(groups.into_iter().map(|(n, idxs)| (&t.nodes[n], idxs)), op);
        for b in &mut batches {
            if let Some(conn) = b.conn.as_mut() {
                // Request lines stay below 16 KB (ElastiCache Serverless refuses
                // longer ones); each line is answered by its own END.
                let mut rest = &b.cursor.keys[..];
                b.cursor.ends = 0;
                while !rest.is_empty() {
                    let mut line = GET_LINE_OVERHEAD;
                    let n = rest
                        .iter()
                        .take_while(|&&i| {
                            line += keys[i].len() + 1;
                            line <= MAX_GET_LINE
                        })
                        .count()
                        .max(1);
                    protocol::encode_get(
                        &mut conn.wbuf,
                        with_cas,
                        rest[..n].iter().map(|&i| keys[i]),
                    );
                    rest = &rest[n..];
                    b.cursor.ends += 1;
                }
            }
        }
        batch::run_batches(
            &mut batches,
            op,
            &mut results,
            self.opts.io_timeout,
            |n, why| self.node_failed(n, why),
            |results, b, reply, label| match reply {
                Reply::Value {
                    key,
                    flags,
                    cas,
                    data: value,
                } => {
                    let bk = &b.keys;
                    let m = batch::match_value(
                        &mut b.cursor,
                        &mut b.disordered,
                        bk.len(),
                        |p| keys[bk[p]],
                        |p| matches!(results[bk[p]], Ok(Some(_))),
                        key,
                    );
                    match m {
                        batch::Matched::Hit(p) => {
                            results[bk[p]] = Ok(Some(Slot {
                                offset: data.len(),
                                len: value.len(),
                                flags,
                                cas: cas.unwrap_or(0),
                            }));
                            data.extend_from_slice(value);
                        }
                        batch::Matched::Duplicate(p) => {
                            results[bk[p]] = Err(anomaly(label, op, "a second value for", key));
                        }
                        batch::Matched::Stray => {}
                    }
                    Ok(false)
                }
                Reply::End => {
                    b.ends = b.ends.saturating_sub(1);
                    if b.ends > 0 {
                        return Ok(false);
                    }
                    b.cursor = b.keys.len();
                    if b.disordered {
                        // Every key without exactly one value is in doubt; the
                        // connection goes (the returned error closes it).
                        let e = Error::Protocol {
                            addr: label.to_string(),
                            op,
                            detail: "multi-get reply out of order, with a key not asked for, or twice for a key".into(),
                        };
                        for &i in &b.keys {
                            if matches!(results[i], Ok(None)) {
                                results[i] = Err(e.clone());
                            }
                        }
                        return Err(e);
                    }
                    Ok(true)
                }
                other => Err(unexpected(label, op, other)),
            },
        );
        for b in &batches {
            crate::metrics::count_reads(b.node.metrics(), &b.cursor.keys, &results);
        }
        MultiGet {
            data,
            entries: results,
        }
    }

    /// Store many items (`set`, `add`, `replace`, ...) with one write per node;
    /// a result per item, in order.
    pub fn store_multi(
        &self,
        cmd: StoreCommand,
        items: &[(&[u8], &[u8], u32, i64)],
    ) -> Vec<Result<()>> {
        if self.opts.binary_keys && items.iter().any(|it| crate::protocol::meta::needs_binary(it.0)) {
            return self.binary_store_multi(cmd, items);
        }
        let op = cmd.name();
        let keys: Vec<&[u8]> = items.iter().map(|it| it.0).collect();
        let mut results: Vec<Result<()>> = items
            .iter()
            .map(|it| {
                if it.1.len() > self.opts.max_value_size {
                    Err(Error::TooBig {
                        len: it.1.len(),
                        max: self.opts.max_value_size,
                    })
                } else {
                    Ok(())
                }
            })
            .collect();
        let Some((t, groups)) = self.group(&keys, &mut results) else {
            return results;
        };
        let mut batches =
            batch::open_batches(groups.into_iter().map(|(n, idxs)| (&t.nodes[n], idxs)), op);
        for b in &mut batches {
            if let Some(conn) = b.conn.as_mut() {
                for &i in &b.cursor.keys {
                    let (k, v, flags, exp) = items[i];
                    protocol::encode_store(&mut conn.wbuf, cmd, k, flags, exp, v, 0, false);
                }
            }
        }
        batch::run_batches(
            &mut batches,
            op,
            &mut results,
            self.opts.io_timeout,
            |n, why| self.node_failed(n, why),
            |results, b, reply, label| {
                let Some(&i) = b.keys.get(b.cursor) else {
                    return Err(unexpected(label, op, reply));
                };
                results[i] = store_reply(label, op, reply);
                if let Err(e @ Error::Protocol { .. }) = &results[i] {
                    return Err(e.clone());
                }
                b.cursor += 1;
                Ok(b.cursor == b.keys.len())
            },
        );
        results
    }

    /// Delete many keys with one write per node; a result per key (`Err(NotFound)` on a miss).
    pub fn delete_multi(&self, keys: &[&[u8]]) -> Vec<Result<()>> {
        if self.opts.binary_keys && keys.iter().any(|k| crate::protocol::meta::needs_binary(k)) {
            return self.binary_delete_multi(keys);
        }
        let mut results: Vec<Result<()>> = keys.iter().map(|_| Ok(())).collect();
        let Some((t, groups)) = self.group(keys, &mut results) else {
            return results;
        };
        let mut batches = batch::open_batches(
            groups.into_iter().map(|(n, idxs)| (&t.nodes[n], idxs)),
            "delete",
        );
        for b in &mut batches {
            if let Some(conn) = b.conn.as_mut() {
                for &i in &b.cursor.keys {
                    protocol::encode_delete(&mut conn.wbuf, keys[i], false);
                }
            }
        }
        batch::run_batches(
            &mut batches,
            "delete",
            &mut results,
            self.opts.io_timeout,
            |n, why| self.node_failed(n, why),
            |results, b, reply, label| {
                let Some(&i) = b.keys.get(b.cursor) else {
                    return Err(unexpected(label, "delete", reply));
                };
                results[i] = match reply {
                    Reply::Deleted => Ok(()),
                    Reply::NotFound => Err(Error::NotFound),
                    // A server or client error answers this key only; the
                    // stream is still in step (anything else is not).
                    other => match unexpected(label, "delete", other) {
                        e @ Error::Protocol { .. } => return Err(e),
                        e => Err(e),
                    },
                };
                b.cursor += 1;
                Ok(b.cursor == b.keys.len())
            },
        );
        results
    }

    /// Check keys (bad ones get their error in `results`, which must hold `Ok`
    /// for the keys to send) and group the rest by owning node.
    #[allow(clippy::type_complexity)]
    pub(super) fn group<T>(
        &self,
        keys: &[&[u8]],
        results: &mut [Result<T>],
    ) -> Option<(Arc<Topology>, Vec<(usize, Vec<usize>)>)> {
        let t = match self.topology() {
            Ok(t) => t,
            Err(e) => {
                results.iter_mut().for_each(|r| *r = Err(e.clone()));
                return None;
            }
        };
        // Owners first, then each node's list allocated at its exact size:
        // pushing into empty lists cost a chain of reallocations per node.
        // Index by node; most calls touch few nodes, so a small vector beats a map.
        const SKIP: usize = usize::MAX;
        let mut owners: Vec<usize> = Vec::with_capacity(keys.len());
        let mut counts = vec![0usize; t.nodes.len()];
        for (i, key) in keys.iter().enumerate() {
            owners.push(SKIP);
            if results[i].is_err() {
                continue;
            }
            if let Err(e) = protocol::check_key(key) {
                results[i] = Err(e);
                continue;
            }
            match t.ring.owner(key) {
                Some(n) if t.nodes[n].is_ejected() => {
                    t.nodes[n].metrics().refused();
                    results[i] = Err(Error::ServerDead {
                        addr: t.nodes[n].label().to_string(),
                    })
                }
                Some(n) => {
                    owners[i] = n;
                    counts[n] += 1;
                }
                None => results[i] = Err(no_servers(&t)),
            }
        }
        let mut by_node: Vec<Vec<usize>> = counts.iter().map(|&c| Vec::with_capacity(c)).collect();
        for (i, &n) in owners.iter().enumerate() {
            if n != SKIP {
                by_node[n].push(i);
            }
        }
        let groups = by_node
            .into_iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        Some((t, groups))
    }
}
