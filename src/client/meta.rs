//! Keys the text protocol cannot carry, sent through meta commands.
//!
//! With the `binary_keys` option, a key of 1 to 186 bytes that holds
//! whitespace or control bytes goes to its node base64-encoded with the `b`
//! flag; memcached stores the decoded bytes, so the item is the one pylibmc's
//! binary protocol reads and writes under the same key. Keys the text protocol
//! can carry keep using it. Placement is unchanged: the ring hashes the raw key
//! bytes, as libmemcached does in binary mode.
//!
//! Whether a node speaks the final meta dialect comes from its `version`
//! reply, remembered per node (see [`Client::dialect`]).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use super::{unexpected, Client, Item};
use crate::error::{Error, Result};
use crate::protocol::meta::{self, Code, Dialect, Request};
use crate::pool::{Conn, NodePool};
use crate::protocol::{self, Reply, StoreCommand};

/// How long a node's `version` answer is trusted: an engine upgrade restarts
/// the node under the same address.
const RECHECK: Duration = Duration::from_secs(300);

struct Known {
    /// Holds the pool's allocation, so its address (the map key) cannot be
    /// reused by another pool while this entry exists.
    node: Weak<NodePool>,
    dialect: Dialect,
    version: String,
    at: Instant,
    /// Whether the fallback notice for this node was printed.
    told: bool,
}

fn known() -> &'static RwLock<HashMap<usize, Known>> {
    static KNOWN: OnceLock<RwLock<HashMap<usize, Known>>> = OnceLock::new();
    KNOWN.get_or_init(|| RwLock::new(HashMap::new()))
}

fn node_id(node: &Arc<NodePool>) -> usize {
    Arc::as_ptr(node) as usize
}

pub(crate) const NO_META: &str =
    "the key holds whitespace or control bytes, which only memcached 1.6.10 or \
                       later carries (meta protocol, base64 key); this node does not speak it";
const TOO_LONG: &str =
    "a key with whitespace or control bytes can be at most 186 bytes (memcached \
                        takes 250 bytes of base64)";

/// Check a key for the meta commands: any text key, or 1 to 186 other bytes.
pub(crate) fn check_meta_key(key: &[u8]) -> Result<()> {
    if meta::is_text_key(key) {
        return Ok(());
    }
    protocol::check_key(key).or_else(|e| match e {
        // Empty and over-long keys keep the text protocol's reasons.
        Error::BadKey { .. } if !meta::needs_binary(key) => Err(e),
        _ if key.len() > meta::MAX_BINARY_KEY_LEN => Err(Error::BadKey { reason: TOO_LONG }),
        _ => Ok(()),
    })
}

/// The error a non-success meta reply means (`ERROR` included).
pub(crate) fn meta_error(label: &str, op: &'static str, code: Code<'_>) -> Error {
    match code {
        Code::Error => Error::Client {
            addr: label.to_string(),
            op,
            message: "ERROR (meta command not understood)".into(),
        },
        Code::ClientError(m) => Error::Client {
            addr: label.to_string(),
            op,
            message: format!("CLIENT_ERROR {}", String::from_utf8_lossy(m)),
        },
        Code::ServerError(m) => Error::Server {
            addr: label.to_string(),
            op,
            message: String::from_utf8_lossy(m).into_owned(),
        },
        Code::NotFound => Error::NotFound,
        Code::NotStored => Error::NotStored,
        Code::Exists => Error::Exists,
        other => Error::Protocol {
            addr: label.to_string(),
            op,
            detail: format!("unexpected meta reply {other:?}"),
        },
    }
}

/// Read meta replies, handing each to `f` until it returns `Some`. Every
/// reply is consumed before `f`'s error is returned, so a refused request
/// leaves the connection clean.
pub(crate) fn read_meta<T>(
    conn: &mut Conn,
    label: &str,
    op: &'static str,
    mut f: impl FnMut(meta::Reply<'_>) -> Result<Option<T>>,
) -> Result<T> {
    loop {
        match meta::parse(conn.pending()) {
            Ok(meta::Parse::Done(reply, used)) => {
                let out = f(reply);
                conn.consume(used);
                if let Some(v) = out? {
                    return Ok(v);
                }
            }
            Ok(meta::Parse::Incomplete { needed }) => {
                conn.fill(needed).map_err(|e| Error::io(label, op, e))?
            }
            Err(detail) => {
                return Err(Error::Protocol {
                    addr: label.to_string(),
                    op,
                    detail,
                })
            }
        }
    }
}

impl Client {
    /// The meta dialect `node` speaks: from its `version` reply, asked on
    /// first use and again after [`RECHECK`].
    pub(crate) fn dialect(&self, node: &Arc<NodePool>) -> Result<Dialect> {
        let id = node_id(node);
        if let Some(k) = known().read().get(&id) {
            if k.at.elapsed() < RECHECK {
                return Ok(k.dialect);
            }
        }
        let version = self.exchange(node, "version", |conn| {
            let label = node.label();
            protocol::encode_version(&mut conn.wbuf);
            conn.round_trip(label, "version", |r| match r {
                Reply::Version(v) => Ok(Some(String::from_utf8_lossy(v).into_owned())),
                // Something that does not know `version` knows no meta commands.
                Reply::Error => Ok(Some(String::new())),
                other => Err(unexpected(label, "version", other)),
            })
        })?;
        let dialect = meta::dialect_of(&version);
        self.remember(node, dialect, version);
        Ok(dialect)
    }

    fn remember(&self, node: &Arc<NodePool>, dialect: Dialect, version: String) {
        let mut map = known().write();
        map.retain(|_, k| k.node.strong_count() > 0);
        let told = map.get(&node_id(node)).is_some_and(|k| k.told);
        map.insert(
            node_id(node),
            Known {
                node: Arc::downgrade(node),
                dialect,
                version,
                at: Instant::now(),
                told,
            },
        );
    }

    /// A node we took for the final dialect answered `ERROR` to a meta
    /// command (a proxy in front, a downgrade): treat it as speaking none.
    pub(crate) fn demote(&self, node: &Arc<NodePool>) {
        let version = known()
            .read()
            .get(&node_id(node))
            .map(|k| k.version.clone())
            .unwrap_or_default();
        self.remember(node, Dialect::None, version);
    }

    /// Say once per node that `what` runs without the meta protocol there: as
    /// a `meta_unsupported` event when a handler is set (Python logs it),
    /// else on stderr.
    pub(crate) fn tell_fallback(&self, node: &Arc<NodePool>, what: &str) {
        let version = {
            let mut map = known().write();
            match map.get_mut(&node_id(node)) {
                Some(k) if !k.told => {
                    k.told = true;
                    k.version.clone()
                }
                _ => return,
            }
        };
        let version = if version.is_empty() {
            "(no version reply)".to_string()
        } else {
            version
        };
        let reason = format!(
            "memcached {version} does not speak the final meta protocol (1.6.10+); {what} \
             falls back to plain get/set/delete, without stampede protection"
        );
        if crate::events::active() {
            crate::events::meta_unsupported(node.label(), reason);
            crate::events::dispatch_pending();
        } else {
            eprintln!("elasticache: {}: {reason}", node.label());
        }
    }

    /// The owning node of a key checked for the meta commands.
    fn meta_owner(&self, key: &[u8]) -> Result<(Arc<super::Topology>, usize)> {
        check_meta_key(key)?;
        let t = self.topology()?;
        let i = t.ring.owner(key).ok_or_else(|| super::no_servers(&t))?;
        self.owner(&t, key)?;
        Ok((t, i))
    }

    /// One meta request/reply on the node owning a binary `key`: `encode`
    /// writes the request, `on_reply` reads its one reply.
    fn binary_exchange<T>(
        &self,
        key: &[u8],
        op: &'static str,
        encode: impl Fn(&mut Vec<u8>),
        on_reply: impl FnOnce(&str, meta::Reply<'_>) -> Result<T>,
    ) -> Result<T> {
        let (t, i) = self.meta_owner(key)?;
        let node = &t.nodes[i];
        if self.dialect(node)? != Dialect::Final {
            return Err(Error::BadKey { reason: NO_META });
        }
        let label = node.label();
        let mut on_reply = Some(on_reply);
        let r = self.exchange(node, op, |conn| {
            encode(&mut conn.wbuf);
            conn.send(label, op)?;
            read_meta(conn, label, op, |r| match on_reply.take() {
                Some(f) => f(label, r).map(Some),
                None => Err(meta_error(label, op, r.code)),
            })
        });
        if let Err(Error::Client { message, .. }) = &r {
            if message.starts_with("ERROR") {
                self.demote(node);
                return Err(Error::BadKey { reason: NO_META });
            }
        }
        r
    }

    /// `get`/`gets` of a binary key (`mg <b64> b v f [c]`).
    pub(crate) fn binary_get(&self, key: &[u8], with_cas: bool) -> Result<Option<Item>> {
        let op = if with_cas { "gets" } else { "get" };
        self.binary_exchange(
            key,
            op,
            |buf| {
                let r = Request::new(buf, b"mg", key, None).flag(b'v').flag(b'f');
                let r = if with_cas { r.flag(b'c') } else { r };
                r.end()
            },
            |label, r| match (r.code, r.data) {
                (Code::Value, Some(data)) => Ok(Some(Item {
                    value: data.to_vec(),
                    flags: r.flags.client_flags.unwrap_or(0),
                    cas: r.flags.cas.unwrap_or(0),
                })),
                (Code::Miss, _) => Ok(None),
                (code, _) => Err(meta_error(label, op, code)),
            },
        )
    }

    /// A storage command for a binary key (`ms <b64> <len> b F T M [C]`).
    pub(crate) fn binary_store(
        &self,
        cmd: StoreCommand,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: i64,
        cas_id: u64,
    ) -> Result<()> {
        if value.len() > self.opts.max_value_size {
            check_meta_key(key)?;
            return Err(Error::TooBig {
                len: value.len(),
                max: self.opts.max_value_size,
            });
        }
        let op = cmd.name();
        self.binary_exchange(
            key,
            op,
            |buf| encode_ms(buf, cmd, key, value, flags, exptime, cas_id, false, None),
            |label, r| match r.code {
                Code::Done => Ok(()),
                code => Err(meta_error(label, op, code)),
            },
        )
    }

    /// `delete` of a binary key (`md <b64> b`).
    pub(crate) fn binary_delete(&self, key: &[u8]) -> Result<()> {
        self.binary_exchange(
            key,
            "delete",
            |buf| Request::new(buf, b"md", key, None).end(),
            |label, r| match r.code {
                Code::Done => Ok(()),
                code => Err(meta_error(label, "delete", code)),
            },
        )
    }

    /// `incr`/`decr` of a binary key (`ma <b64> b v D<delta> M<I|D>`).
    pub(crate) fn binary_arith(&self, key: &[u8], incr: bool, delta: u64) -> Result<u64> {
        let op = if incr { "incr" } else { "decr" };
        self.binary_exchange(
            key,
            op,
            |buf| {
                Request::new(buf, b"ma", key, None)
                    .flag(b'v')
                    .num(b'D', delta)
                    .arg(b'M', if incr { b"I" } else { b"D" })
                    .end()
            },
            |label, r| match (r.code, r.data) {
                (Code::Value, Some(d)) => std::str::from_utf8(d)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or_else(|| Error::Protocol {
                        addr: label.to_string(),
                        op,
                        detail: format!("ma value {}", crate::error::quote_bytes(d, 40)),
                    }),
                (code, _) => Err(meta_error(label, op, code)),
            },
        )
    }

    /// `touch` of a binary key (`mg <b64> b T<exptime>`: `HD` on a hit).
    pub(crate) fn binary_touch(&self, key: &[u8], exptime: i64) -> Result<()> {
        self.binary_exchange(
            key,
            "touch",
            |buf| {
                Request::new(buf, b"mg", key, None)
                    .signed(b'T', exptime)
                    .end()
            },
            |label, r| match r.code {
                Code::Done => Ok(()),
                Code::Miss => Err(Error::NotFound),
                code => Err(meta_error(label, "touch", code)),
            },
        )
    }
}

/// Append an `ms` for `cmd` (a cas store is `C<cas>` in set mode). Append and
/// prepend keep the item's flags and TTL, as the text commands do.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode_ms(
    buf: &mut Vec<u8>,
    cmd: StoreCommand,
    key: &[u8],
    value: &[u8],
    flags: u32,
    exptime: i64,
    cas_id: u64,
    quiet: bool,
    opaque: Option<u64>,
) {
    let mut r = Request::new(buf, b"ms", key, Some(value.len()));
    let mode = match cmd {
        StoreCommand::Set | StoreCommand::Cas => b'S',
        StoreCommand::Add => b'E',
        StoreCommand::Replace => b'R',
        StoreCommand::Append => b'A',
        StoreCommand::Prepend => b'P',
    };
    if !matches!(cmd, StoreCommand::Append | StoreCommand::Prepend) {
        r = r.num(b'F', u64::from(flags)).signed(b'T', exptime);
    }
    if mode != b'S' {
        r = r.arg(b'M', &[mode]);
    }
    if cmd == StoreCommand::Cas {
        r = r.num(b'C', cas_id);
    }
    if let Some(o) = opaque {
        r = r.num(b'O', o);
    }
    if quiet {
        r = r.flag(b'q');
    }
    r.end_with(value);
}
