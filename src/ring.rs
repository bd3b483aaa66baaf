//! Key placement: which server owns a key, exactly as libmemcached (modula,
//! ketama, ketama_weighted) or pymemcache's `HashClient` (rendezvous) decides.
//! No I/O, no allocation per lookup. The rules, and the traps they avoid, are
//! those of `docs/ketama.md`; the oracle tests in
//! `tests/ring_oracle.rs` hold them against the real clients and servers.
//!
//! * **Server names.** A server's name is its host string exactly as given (an
//!   IP or a host name, never resolved) when its port is 11211, else
//!   `host:port`; the N-th point of a server hashes `name-N`. Rendezvous names
//!   are always `host:port` (pymemcache's).
//! * **modula**: `hash(key) % server_count`.
//! * **ketama**: 100 points per server, each `hash("name-N")` with the same
//!   hash as the keys. The continuum is sorted by (value, server index),
//!   libmemcached's comparator, so ties go to the lower index; a key goes to the
//!   first point >= its hash, wrapping around. libmemcached 1.1.4's C API keeps
//!   the points of the hash in force when the distribution was set; we always
//!   use one hash for both (set the hash first there, as pylibmc does).
//! * **ketama with weights**: when any server has a weight above 1, the
//!   continuum is built the ketama_weighted way (md5 points, below) while keys
//!   keep the configured hash. That is what pylibmc (its bundled 1.0.16) and
//!   the libmemcached C API (servers added after the distribution is chosen)
//!   do; a pylibmc built on libmemcached 1.1.4 would ignore the weights.
//! * **ketama_weighted**: pylibmc's `ketama_weighted` behavior, which sets md5
//!   as the key hash *after* `hash`: keys always hash with md5, whatever hash is
//!   passed. Each server gets `floor(w/W * 160/4 * live + 1e-10) * 4` points
//!   (computed in `f32`, as libmemcached does), four per `md5("name-N")`.
//! * **rendezvous**: each server scores `murmur3_32("host:port-KEY", 0)` over
//!   the *characters* of that Python string, each taken as `ord(ch) & 0xFF`; the
//!   highest score wins, a tie goes to the larger name. A key that is valid
//!   UTF-8 is treated as the Python `str` it decodes to (what Django and most
//!   callers pass); any other key as a Python `bytes` key, which pymemcache
//!   formats as its `repr`, `b'...'`.
//! * **Dead servers** ([`Ring::with_live`]): ketama and ketama_weighted rebuild
//!   the continuum from the live servers only (libmemcached's `remove_failed`,
//!   where `live` and the total weight count live servers only), rendezvous
//!   drops them from the candidates (pymemcache's `remove_server`). Modula
//!   never moves a key: libmemcached divides by all servers, dead or not, so
//!   the owner can be a dead server and the caller reports it as dead.
//! * **Signed `char`.** Hashes follow x86-64 libmemcached (see [`crate::hash`]).

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::hash::{md5_digest, HashAlgorithm, Murmur3};

/// libmemcached's `MEMCACHED_DEFAULT_PORT`: the port left out of point names.
pub const DEFAULT_PORT: u16 = 11211;
/// Points per server in ketama (`MEMCACHED_POINTS_PER_SERVER`).
pub const KETAMA_POINTS: u32 = 100;
/// Points per server of weight 1 in ketama_weighted (`MEMCACHED_POINTS_PER_SERVER_KETAMA`).
pub const KETAMA_WEIGHTED_POINTS: u32 = 160;

/// How keys are spread over servers (pylibmc's `distribution` / `ketama` behaviors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Distribution {
    /// `hash(key) % servers` (pylibmc's default).
    Modula,
    /// libmemcached's consistent mode: 100 points per server (django-elasticache's choice).
    #[default]
    Ketama,
    /// libmemcached's weighted ketama: md5, 160 points per server scaled by weight.
    KetamaWeighted,
    /// pymemcache `HashClient`'s rendezvous hashing.
    Rendezvous,
}

impl Distribution {
    /// Parse a distribution name (`modula`, `ketama`/`consistent`, `ketama_weighted`, `rendezvous`).
    pub fn from_name(name: &str) -> Result<Distribution> {
        Ok(match name {
            "modula" => Distribution::Modula,
            "ketama" | "consistent" | "consistent_ketama" => Distribution::Ketama,
            "ketama_weighted" | "consistent_weighted" => Distribution::KetamaWeighted,
            "rendezvous" => Distribution::Rendezvous,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown distribution {other:?}"
                )))
            }
        })
    }

    /// The canonical name (`from_name` accepts it).
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Modula => "modula",
            Distribution::Ketama => "ketama",
            Distribution::KetamaWeighted => "ketama_weighted",
            Distribution::Rendezvous => "rendezvous",
        }
    }
}

/// One server as placement sees it: the host string exactly as given (IP or
/// name, never resolved), its port and its weight.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerSpec {
    /// Host string, hashed exactly as given.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Weight, 1 unless set: used by ketama_weighted, and by ketama once any
    /// server's weight is above 1 (see the module docs). A weight of 0 gives
    /// the server no points, as in libmemcached.
    pub weight: u32,
}

impl ServerSpec {
    /// A server of weight 1.
    pub fn new(host: impl Into<String>, port: u16) -> ServerSpec {
        ServerSpec {
            host: host.into(),
            port,
            weight: 1,
        }
    }

    /// libmemcached's name for the server: `host` on port 11211, else `host:port`.
    pub fn ketama_name(&self) -> String {
        if self.port == DEFAULT_PORT {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// pymemcache's name for the server: always `host:port`.
    pub fn rendezvous_name(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A built placement over a fixed server list. Immutable; share it freely
/// between threads.
#[derive(Debug, Clone)]
pub struct Ring {
    servers: usize,
    live: usize,
    distribution: Distribution,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// No live server (or no point at all): every lookup answers `None`.
    Empty,
    Modula {
        hash: HashAlgorithm,
        count: u32,
    },
    Continuum(Continuum),
    Rendezvous(Vec<RendezvousNode>),
}

/// The sorted points, split into two arrays so the search touches only values,
/// plus a table from the top bits of a hash to the range of points that can
/// hold its successor: a lookup is one table read and a search over a handful
/// of points, instead of a binary search over all of them.
#[derive(Debug, Clone)]
struct Continuum {
    hash: HashAlgorithm,
    values: Vec<u32>,
    owners: Vec<u32>,
    buckets: Vec<u32>,
    shift: u32,
}

#[derive(Debug, Clone)]
struct RendezvousNode {
    /// MurmurHash3 state after `"host:port-"`.
    prefix: Murmur3,
    name: Box<str>,
    index: u32,
}

impl Ring {
    /// Build a ring over `servers` (all live).
    pub fn new(servers: &[ServerSpec], distribution: Distribution, hash: HashAlgorithm) -> Ring {
        Ring::with_live(servers, &[], distribution, hash)
    }

    /// Build a ring leaving out the servers whose `live` flag is false; lookups
    /// still answer indexes into `servers` (libmemcached's `remove_failed`). A
    /// server without a flag (`live` shorter than `servers`) counts as live.
    pub fn with_live(
        servers: &[ServerSpec],
        live: &[bool],
        distribution: Distribution,
        hash: HashAlgorithm,
    ) -> Ring {
        let is_live = |i: usize| live.get(i).copied().unwrap_or(true);
        let live_idx: Vec<usize> = (0..servers.len()).filter(|&i| is_live(i)).collect();
        let kind = if live_idx.is_empty() || servers.len() > u32::MAX as usize {
            Kind::Empty
        } else {
            match distribution {
                Distribution::Modula => Kind::Modula {
                    hash,
                    count: servers.len() as u32,
                },
                // libmemcached switches a consistent ring to weighted points as
                // soon as a server of weight > 1 is added, keeping the key hash.
                Distribution::Ketama if servers.iter().any(|s| s.weight > 1) => {
                    Continuum::weighted(servers, &live_idx, hash)
                }
                Distribution::Ketama => Continuum::ketama(servers, &live_idx, hash),
                Distribution::KetamaWeighted => {
                    Continuum::weighted(servers, &live_idx, HashAlgorithm::Md5)
                }
                Distribution::Rendezvous => Kind::Rendezvous(
                    live_idx
                        .iter()
                        .map(|&i| RendezvousNode::new(&servers[i], i as u32))
                        .collect(),
                ),
            }
        };
        Ring {
            servers: servers.len(),
            live: live_idx.len(),
            distribution,
            kind,
        }
    }

    /// The index (into the server list) of the server owning `key`, or `None`
    /// when the ring has no live server.
    #[inline]
    pub fn owner(&self, key: &[u8]) -> Option<usize> {
        match &self.kind {
            Kind::Empty => None,
            Kind::Modula { hash, count } => Some((hash.hash(key) % count) as usize),
            Kind::Continuum(c) => Some(c.owner(c.hash.hash(key))),
            Kind::Rendezvous(nodes) => rendezvous_owner(nodes, key),
        }
    }

    /// The number of servers the ring was built over (live or not).
    pub fn len(&self) -> usize {
        self.servers
    }

    /// Whether the ring was built over no server at all.
    pub fn is_empty(&self) -> bool {
        self.servers == 0
    }

    /// The number of live servers.
    pub fn live_count(&self) -> usize {
        self.live
    }

    /// The distribution the ring was built with.
    pub fn distribution(&self) -> Distribution {
        self.distribution
    }

    /// The continuum as (point value, server index) pairs in lookup order;
    /// empty for modula and rendezvous. For tests and diagnostics.
    pub fn points(&self) -> Vec<(u32, usize)> {
        match &self.kind {
            Kind::Continuum(c) => c
                .values
                .iter()
                .zip(&c.owners)
                .map(|(&v, &o)| (v, o as usize))
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl Continuum {
    fn ketama(servers: &[ServerSpec], live: &[usize], hash: HashAlgorithm) -> Kind {
        let mut points = Vec::with_capacity(live.len() * KETAMA_POINTS as usize);
        let mut buf = String::new();
        for &i in live {
            let name = servers[i].ketama_name();
            for n in 0..KETAMA_POINTS {
                buf.clear();
                let _ = write!(buf, "{name}-{n}");
                points.push((hash.hash(buf.as_bytes()), i as u32));
            }
        }
        Continuum::build(points, hash)
    }

    fn weighted(servers: &[ServerSpec], live: &[usize], key_hash: HashAlgorithm) -> Kind {
        let total: u64 = live.iter().map(|&i| servers[i].weight as u64).sum();
        let mut points = Vec::with_capacity(live.len() * KETAMA_WEIGHTED_POINTS as usize);
        let mut buf = String::new();
        for &i in live {
            let per_server = weighted_points(servers[i].weight, total, live.len());
            let name = servers[i].ketama_name();
            for n in 0..per_server / 4 {
                buf.clear();
                let _ = write!(buf, "{name}-{n}");
                let d = md5_digest(buf.as_bytes());
                for k in 0..4 {
                    let v =
                        u32::from_le_bytes([d[4 * k], d[4 * k + 1], d[4 * k + 2], d[4 * k + 3]]);
                    points.push((v, i as u32));
                }
            }
        }
        Continuum::build(points, key_hash)
    }

    fn build(mut points: Vec<(u32, u32)>, hash: HashAlgorithm) -> Kind {
        if points.is_empty() {
            return Kind::Empty;
        }
        // libmemcached's qsort comparator: by value, then by server index.
        points.sort_unstable();
        let values: Vec<u32> = points.iter().map(|p| p.0).collect();
        let owners: Vec<u32> = points.iter().map(|p| p.1).collect();
        let bits = (usize::BITS - (values.len() - 1).leading_zeros()).clamp(4, 16);
        let shift = 32 - bits;
        let mut buckets = Vec::with_capacity((1 << bits) + 1);
        let mut p = 0usize;
        for b in 0..=(1u64 << bits) {
            // The first point whose value is >= the bucket's lowest hash.
            let low = b << shift;
            while p < values.len() && (values[p] as u64) < low {
                p += 1;
            }
            buckets.push(p as u32);
        }
        Kind::Continuum(Continuum {
            hash,
            values,
            owners,
            buckets,
            shift,
        })
    }

    #[inline]
    fn owner(&self, h: u32) -> usize {
        let b = (h >> self.shift) as usize;
        // Every point before `lo` is < h's bucket, every point from `hi` on is > h.
        let (lo, hi) = (self.buckets[b] as usize, self.buckets[b + 1] as usize);
        let mut p = lo + self.values[lo..hi].partition_point(|&v| v < h);
        if p == self.values.len() {
            p = 0;
        }
        self.owners[p] as usize
    }
}

/// ketama_weighted's points for one server, exactly as libmemcached computes
/// them (single-precision floats throughout).
pub fn weighted_points(weight: u32, total_weight: u64, live_servers: usize) -> u32 {
    let pct = weight as f32 / total_weight as f32;
    let x = pct * KETAMA_WEIGHTED_POINTS as f32 / 4.0 * live_servers as f32 + 0.000_000_000_1_f32;
    // `as` saturates (NaN -> 0) where C's cast would be undefined.
    (x.floor() as u32).saturating_mul(4)
}

/// A Python character as pymemcache's murmur3 reads it: `ord(ch) & 0xFF`.
#[inline(always)]
fn py_char_byte(c: char) -> u8 {
    (c as u32 & 0xff) as u8
}

impl RendezvousNode {
    fn new(s: &ServerSpec, index: u32) -> RendezvousNode {
        let name = s.rendezvous_name();
        let mut prefix = Murmur3::new(0);
        for c in name.chars() {
            prefix.push(py_char_byte(c));
        }
        prefix.push(b'-');
        RendezvousNode {
            prefix,
            name: name.into_boxed_str(),
            index,
        }
    }
}

/// Call `f` with each character of the Python string `f"{key}"` stands for,
/// as pymemcache's murmur3 reads it: a UTF-8 key as its `str`, any other key as
/// a `bytes` object's `repr` (CPython's `bytes_repr`).
#[inline]
fn for_each_py_byte(key: &[u8], mut f: impl FnMut(u8)) {
    if let Ok(s) = std::str::from_utf8(key) {
        if s.is_ascii() {
            key.iter().for_each(|&b| f(b));
        } else {
            s.chars().for_each(|c| f(py_char_byte(c)));
        }
        return;
    }
    let quote = if key.contains(&b'\'') && !key.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    f(b'b');
    f(quote);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &c in key {
        match c {
            _ if c == quote || c == b'\\' => {
                f(b'\\');
                f(c);
            }
            b'\t' => {
                f(b'\\');
                f(b't');
            }
            b'\n' => {
                f(b'\\');
                f(b'n');
            }
            b'\r' => {
                f(b'\\');
                f(b'r');
            }
            0..=0x1f | 0x7f..=0xff => {
                f(b'\\');
                f(b'x');
                f(HEX[(c >> 4) as usize]);
                f(HEX[(c & 0xf) as usize]);
            }
            _ => f(c),
        }
    }
    f(quote);
}

fn rendezvous_owner(nodes: &[RendezvousNode], key: &[u8]) -> Option<usize> {
    // Longest projection: a non-UTF-8 key's repr, 4 bytes per byte plus `b''`.
    const STACK: usize = 1024;
    let mut buf = [0u8; STACK];
    let projected: Option<&[u8]> = if key.len() * 4 + 3 <= STACK {
        let mut n = 0;
        for_each_py_byte(key, |b| {
            buf[n] = b;
            n += 1;
        });
        Some(&buf[..n])
    } else {
        None
    };
    let mut best: Option<(u32, &RendezvousNode)> = None;
    for node in nodes {
        let mut st = node.prefix;
        match projected {
            Some(p) => st.update(p),
            None => for_each_py_byte(key, |b| st.push(b)),
        }
        let score = st.finish();
        best = match best {
            Some((s, b)) if s > score || (s == score && *b.name >= *node.name) => Some((s, b)),
            _ => Some((score, node)),
        };
    }
    best.map(|(_, n)| n.index as usize)
}

/// The Python string pymemcache hashes for `key` on server `name`
/// (`f"{name}-{key}"`), for tests and diagnostics.
pub fn rendezvous_input(name: &str, key: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = name.chars().map(py_char_byte).collect();
    out.push(b'-');
    for_each_py_byte(key, |b| out.push(b));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(n: usize) -> Vec<ServerSpec> {
        (0..n)
            .map(|i| ServerSpec::new(format!("10.0.0.{}", i + 1), 11211))
            .collect()
    }

    #[test]
    fn names() {
        assert_eq!(ServerSpec::new("h", 11211).ketama_name(), "h");
        assert_eq!(ServerSpec::new("h", 11212).ketama_name(), "h:11212");
        assert_eq!(ServerSpec::new("h", 11211).rendezvous_name(), "h:11211");
    }

    #[test]
    fn empty_and_all_dead_rings_have_no_owner() {
        for d in [
            Distribution::Modula,
            Distribution::Ketama,
            Distribution::KetamaWeighted,
            Distribution::Rendezvous,
        ] {
            assert_eq!(
                Ring::new(&[], d, HashAlgorithm::OneAtATime).owner(b"k"),
                None
            );
            let r = Ring::with_live(&specs(3), &[false; 3], d, HashAlgorithm::OneAtATime);
            assert_eq!(r.owner(b"k"), None);
            assert_eq!(r.live_count(), 0);
        }
    }

    #[test]
    fn continuum_is_sorted_with_ties_to_lower_index() {
        let r = Ring::new(&specs(5), Distribution::Ketama, HashAlgorithm::OneAtATime);
        let pts = r.points();
        assert_eq!(pts.len(), 500);
        assert!(pts.windows(2).all(|w| w[0] <= w[1]));
        // Lookup equals a plain lower-bound search over the points.
        let mut rng = 1u32;
        for _ in 0..10_000 {
            rng = rng.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let key = rng.to_le_bytes();
            let h = HashAlgorithm::OneAtATime.hash(&key);
            let p = pts.partition_point(|&(v, _)| v < h);
            let want = pts[if p == pts.len() { 0 } else { p }].1;
            assert_eq!(r.owner(&key), Some(want));
        }
    }

    #[test]
    fn crc_points_share_one_bucket_and_still_work() {
        // crc hashes are 15-bit: every point lands in the first table bucket.
        let r = Ring::new(&specs(7), Distribution::Ketama, HashAlgorithm::Crc);
        let pts = r.points();
        for i in 0..2000u32 {
            let key = format!("k{i}");
            let h = HashAlgorithm::Crc.hash(key.as_bytes());
            let p = pts.partition_point(|&(v, _)| v < h);
            let want = pts[if p == pts.len() { 0 } else { p }].1;
            assert_eq!(r.owner(key.as_bytes()), Some(want));
        }
    }

    #[test]
    fn weighted_point_counts() {
        assert_eq!(weighted_points(1, 3, 3), 160);
        assert_eq!(weighted_points(1, 1, 1), 160);
        // 2/3 * 40 * 2 = 53.33 -> 53 * 4
        assert_eq!(weighted_points(2, 3, 2), 212);
        assert_eq!(weighted_points(0, 3, 2), 0);
        let mut w = specs(3);
        w[0].weight = 3;
        let r = Ring::new(&w, Distribution::KetamaWeighted, HashAlgorithm::OneAtATime);
        let pts = r.points();
        let of = |i| pts.iter().filter(|p| p.1 == i).count() as u32;
        assert_eq!(of(0), weighted_points(3, 5, 3));
        assert_eq!(of(1), weighted_points(1, 5, 3));
    }

    #[test]
    fn python_repr_of_bytes_keys() {
        let s = |k: &[u8]| String::from_utf8(rendezvous_input("h:1", k)).unwrap();
        assert_eq!(s(b"abc"), "h:1-abc");
        assert_eq!(s(b"a\xffb"), "h:1-b'a\\xffb'");
        assert_eq!(s(b"'\xff"), "h:1-b\"'\\xff\"");
        assert_eq!(s(b"'\"\xff"), "h:1-b'\\'\"\\xff'");
        assert_eq!(s(b"\\\t\x80"), "h:1-b'\\\\\\t\\x80'");
        // Non-ASCII UTF-8: one byte per character, `ord & 0xFF`.
        assert_eq!(
            rendezvous_input("h:1", "ключ".as_bytes())[4..],
            [0x3a, 0x3b, 0x4e, 0x47]
        );
    }

    #[test]
    fn rendezvous_long_keys_stream_identically() {
        let nodes: Vec<RendezvousNode> = specs(4)
            .iter()
            .enumerate()
            .map(|(i, s)| RendezvousNode::new(s, i as u32))
            .collect();
        let key: Vec<u8> = (0..600u32).map(|i| (i * 7 % 256) as u8).collect();
        let want = nodes
            .iter()
            .map(|n| {
                (
                    crate::hash::murmur3_32(&rendezvous_input(&n.name, &key), 0),
                    n.name.clone(),
                    n.index,
                )
            })
            .max()
            .unwrap()
            .2;
        assert_eq!(rendezvous_owner(&nodes, &key), Some(want as usize));
    }
}
