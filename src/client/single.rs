//! Single-key operations (and the per-node ones: flush_all, version, stats):
//! one request, one reply, on the key's node.


use super::*;

impl Client {
    /// Read a value; `Ok(None)` on a miss.
    pub fn get(&self, key: &[u8]) -> Result<Option<Item>> {
        self.get_inner(key, false)
    }

    /// Read a value with its cas id; `Ok(None)` on a miss.
    pub fn gets(&self, key: &[u8]) -> Result<Option<Item>> {
        self.get_inner(key, true)
    }

    pub(super) fn get_inner(&self, key: &[u8], with_cas: bool) -> Result<Option<Item>> {
        if self.opts.binary_keys && crate::protocol::meta::needs_binary(key) {
            return self.binary_get(key, with_cas);
        }
        let op = if with_cas { "gets" } else { "get" };
        protocol::check_key(key)?;
        let t = self.topology()?;
        let node = self.owner(&t, key)?;
        let label = node.label();
        let r = self.exchange(node, op, |conn| {
            protocol::encode_get(&mut conn.wbuf, with_cas, [key]);
            conn.send(label, op)?;
            let mut found = None;
            conn.read_until(label, op, |r| match r {
                Reply::Value {
                    key: k,
                    flags,
                    cas,
                    data,
                } if k == key && found.is_none() => {
                    found = Some(Item {
                        value: data.to_vec(),
                        flags,
                        cas: cas.unwrap_or(0),
                    });
                    Ok(None)
                }
                Reply::End => Ok(Some(())),
                other => Err(unexpected(label, op, other)),
            })?;
            Ok(found)
        });
        if let Ok(found) = &r {
            node.metrics()
                .add_reads(found.is_some() as u64, found.is_none() as u64);
        }
        r
    }

    /// `set`, `add`, `replace`, `append`, `prepend` or `cas` (with `cas_id`).
    /// `Err(NotStored)` when the condition failed, `Err(Exists)` on a cas
    /// conflict, `Err(NotFound)` for cas on a missing key.
    pub fn store(
        &self,
        cmd: StoreCommand,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: i64,
        cas_id: u64,
    ) -> Result<()> {
        if self.opts.binary_keys && crate::protocol::meta::needs_binary(key) {
            return self.binary_store(cmd, key, value, flags, exptime, cas_id);
        }
        if value.len() > self.opts.max_value_size {
            protocol::check_key(key)?;
            return Err(Error::TooBig {
                len: value.len(),
                max: self.opts.max_value_size,
            });
        }
        let op = cmd.name();
        self.keyed(key, op, |conn, label| {
            protocol::encode_store(
                &mut conn.wbuf,
                cmd,
                key,
                flags,
                exptime,
                value,
                cas_id,
                false,
            );
            conn.send(label, op)?;
            // A refused store is an answer, not a broken stream: consume it.
            conn.read_until(label, op, |r| match store_reply(label, op, r) {
                Err(e @ Error::Protocol { .. }) => Err(e),
                other => Ok(Some(other)),
            })?
        })
    }

    /// `set`: store unconditionally.
    pub fn set(&self, key: &[u8], value: &[u8], flags: u32, exptime: i64) -> Result<()> {
        self.store(StoreCommand::Set, key, value, flags, exptime, 0)
    }

    /// Delete a key; `Err(NotFound)` on a miss.
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        if self.opts.binary_keys && crate::protocol::meta::needs_binary(key) {
            return self.binary_delete(key);
        }
        self.keyed(key, "delete", |conn, label| {
            protocol::encode_delete(&mut conn.wbuf, key, false);
            conn.round_trip(label, "delete", |r| match r {
                Reply::Deleted => Ok(Some(Ok(()))),
                Reply::NotFound => Ok(Some(Err(Error::NotFound))),
                other => Err(unexpected(label, "delete", other)),
            })?
        })
    }

    /// `incr` (or `decr` when `incr` is false) by `delta`; the new value.
    /// `Err(NotFound)` on a miss; decr stops at 0; a non-numeric value gives
    /// `Err(Client)` with the server's text.
    pub fn arith(&self, key: &[u8], incr: bool, delta: u64) -> Result<u64> {
        if self.opts.binary_keys && crate::protocol::meta::needs_binary(key) {
            return self.binary_arith(key, incr, delta);
        }
        let op = if incr { "incr" } else { "decr" };
        self.keyed(key, op, |conn, label| {
            protocol::encode_arith(&mut conn.wbuf, incr, key, delta, false);
            conn.round_trip(label, op, |r| match r {
                Reply::Number(n) => Ok(Some(Ok(n))),
                Reply::NotFound => Ok(Some(Err(Error::NotFound))),
                other => Err(unexpected(label, op, other)),
            })?
        })
    }

    /// Set a new expiry; `Err(NotFound)` on a miss.
    pub fn touch(&self, key: &[u8], exptime: i64) -> Result<()> {
        if self.opts.binary_keys && crate::protocol::meta::needs_binary(key) {
            return self.binary_touch(key, exptime);
        }
        self.keyed(key, "touch", |conn, label| {
            protocol::encode_touch(&mut conn.wbuf, key, exptime, false);
            conn.round_trip(label, "touch", |r| match r {
                Reply::Touched => Ok(Some(Ok(()))),
                Reply::NotFound => Ok(Some(Err(Error::NotFound))),
                other => Err(unexpected(label, "touch", other)),
            })?
        })
    }

    pub(super) fn each_node<T>(
        &self,
        op: &'static str,
        mut f: impl FnMut(&mut Conn, &str) -> Result<T>,
    ) -> Result<PerNode<T>> {
        let t = self.topology()?;
        if t.nodes.is_empty() {
            return Err(no_servers(&t));
        }
        Ok(t.nodes
            .iter()
            .map(|n| {
                (
                    n.label().to_string(),
                    self.exchange(n, op, |c| f(c, n.label())),
                )
            })
            .collect())
    }

    /// `flush_all` on every node (after `delay` seconds when non-zero); the
    /// first node error is returned after all nodes were tried.
    pub fn flush_all(&self, delay: u32) -> Result<()> {
        let results = self.each_node("flush_all", |conn, label| {
            protocol::encode_flush_all(&mut conn.wbuf, delay, false);
            conn.round_trip(label, "flush_all", |r| match r {
                Reply::Ok => Ok(Some(())),
                other => Err(unexpected(label, "flush_all", other)),
            })
        })?;
        results.into_iter().try_for_each(|(_, r)| r)
    }

    /// Each node's `version`.
    pub fn version(&self) -> Result<PerNode<String>> {
        self.each_node("version", |conn, label| {
            protocol::encode_version(&mut conn.wbuf);
            conn.round_trip(label, "version", |r| match r {
                Reply::Version(v) => Ok(Some(String::from_utf8_lossy(v).into_owned())),
                other => Err(unexpected(label, "version", other)),
            })
        })
    }

    /// Each node's `stats` (or `stats ARG`) as name/value pairs.
    pub fn stats(&self, arg: Option<&str>) -> Result<PerNode<Vec<(String, String)>>> {
        if let Some(a) = arg {
            if a.is_empty() || a.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return Err(Error::InvalidArgument(format!("bad stats argument {a:?}")));
            }
        }
        self.each_node("stats", |conn, label| {
            protocol::encode_stats(&mut conn.wbuf, arg.map(str::as_bytes));
            conn.send(label, "stats")?;
            let mut out = Vec::new();
            conn.read_until(label, "stats", |r| match r {
                Reply::Stat { name, value } => {
                    out.push((
                        String::from_utf8_lossy(name).into_owned(),
                        String::from_utf8_lossy(value).into_owned(),
                    ));
                    Ok(None)
                }
                Reply::End => Ok(Some(())),
                other => Err(unexpected(label, "stats", other)),
            })?;
            Ok(out)
        })
    }

}
