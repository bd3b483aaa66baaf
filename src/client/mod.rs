//! The client: every memcached operation over the discovered (or given) nodes.
//!
//! A [`Client`] holds a [`Topology`] (nodes, their pools, the ring) behind a
//! read-mostly lock; an operation clones the `Arc`, picks the node, checks a
//! connection out, does one write and reads until its reply is complete.
//! Multi-key operations group keys by node, write every node's request before
//! reading any reply, and report a result per key.
//!
//! Maintenance (applying a refreshed node list, ejecting and reviving nodes,
//! starting over after `fork()`) happens on the calling thread when due, one
//! thread at a time, while other threads carry on with the topology they have.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::cluster::discovery::Config;
use crate::cluster::registry::{self, Cluster};
use crate::error::{Error, Result};
use crate::fork;
use crate::options::{NodeNaming, Options};
use crate::pool::{Conn, NodeAddr, NodePool};
use crate::protocol::{self, Reply, StoreCommand};
use crate::ring::{Ring, ServerSpec};

pub mod batch;
mod lease;
mod lease_multi;
mod maintenance;
mod meta;
mod meta_multi;
mod multi;
mod single;
mod topology;

use topology::specs_from_config;

pub use lease::{Lease, MAX_LEASE_TTL};

/// A value read from the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The value's bytes.
    pub value: Vec<u8>,
    /// The flags stored with it (pylibmc and pymemcache keep the value's type here).
    pub flags: u32,
    /// The cas id (0 unless read with `gets`).
    pub cas: u64,
}

/// Where a hit of [`Client::get_multi_arena`] sits in [`MultiGet::data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Offset of the value's first byte in the arena.
    pub offset: usize,
    /// The value's length.
    pub len: usize,
    /// The flags stored with it.
    pub flags: u32,
    /// The cas id (0 unless read with `gets`).
    pub cas: u64,
}

/// The result of [`Client::get_multi_arena`]: one entry per key, in the order
/// given, and every hit's bytes in one buffer.
#[derive(Debug, Default)]
pub struct MultiGet {
    /// Every value read, back to back, in the order the replies came.
    pub data: Vec<u8>,
    /// Per key: a hit's place in `data`, `None` for a miss, or the error that key met.
    pub entries: Vec<Result<Option<Slot>>>,
}

impl MultiGet {
    /// The bytes of a hit.
    pub fn value(&self, slot: &Slot) -> &[u8] {
        &self.data[slot.offset..slot.offset + slot.len]
    }
}

/// One node and where it sits in the topology, for `stats`/`version` results.
pub type PerNode<T> = Vec<(String, Result<T>)>;

#[derive(Debug)]
struct Topology {
    cluster: Option<Arc<Cluster>>,
    config: Option<Arc<Config>>,
    specs: Vec<ServerSpec>,
    nodes: Vec<Arc<NodePool>>,
    ring: Ring,
}

/// Everything a client may use only in the process that made it: after
/// `fork()` a child starts a new `State`, because a lock in the old one may be
/// held by a parent thread that does not exist in the child.
#[derive(Debug)]
struct State {
    fork_gen: u64,
    topo: RwLock<Arc<Topology>>,
    maintaining: Mutex<()>,
}

impl State {
    fn new(topo: Topology) -> Box<State> {
        Box::new(State {
            fork_gen: fork::generation(),
            topo: RwLock::new(Arc::new(topo)),
            maintaining: Mutex::new(()),
        })
    }
}

/// What a maintenance pass does about the node list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refresh {
    /// Re-discover if the refresh time has come.
    IfDue,
    /// A re-discovery just ran: apply what the shared cache holds now.
    Applied,
}

/// A memcached client over a cluster. One client is safe to share between threads.
#[derive(Debug)]
pub struct Client {
    opts: Options,
    /// Never NULL. Replaced only in a forked child, where the old one is leaked.
    state: AtomicPtr<State>,
    epoch: Instant,
    /// Milliseconds since `epoch` at which maintenance is next due (refresh or revival).
    next_check_ms: AtomicU64,
    /// Milliseconds since `epoch` at which the node list is next refreshed.
    next_refresh_ms: AtomicU64,
}

const NEVER: u64 = u64::MAX;

impl Client {
    /// A client for the cluster behind a configuration endpoint. The node list
    /// comes from the process-global cache (discovered on the first call for
    /// this endpoint in the process) and is refreshed every `refresh_interval`.
    /// ElastiCache Serverless (the `serverless` option, or detected) is one TLS
    /// node: no ring, no refresh.
    pub fn from_endpoint(endpoint: &str, opts: Options) -> Result<Client> {
        let r = Client::from_endpoint_inner(endpoint, opts);
        crate::events::dispatch_pending();
        r
    }

    fn from_endpoint_inner(endpoint: &str, opts: Options) -> Result<Client> {
        opts.check()?;
        if opts.serverless {
            let (host, port) = crate::net::addr::split_host_port(endpoint)?;
            let spec = ServerSpec {
                host,
                port,
                weight: 1,
            };
            return Client::from_servers(vec![spec], opts);
        }
        let cluster = registry::cluster_for(endpoint, &opts.discovery_options())?;
        let config = cluster.get_or_discover(&opts.discovery_options())?;
        let (specs, addrs) = specs_from_config(&config, opts.node_naming, opts.tls_enabled());
        let cluster = (!config.serverless).then_some(cluster);
        let client = Client::build(opts, cluster, Some(config), specs, addrs);
        Ok(client)
    }

    /// A client over a fixed list of servers (`ServerSpec::host` is both the
    /// name hashed onto the ring and the address connected to).
    pub fn from_servers(servers: Vec<ServerSpec>, opts: Options) -> Result<Client> {
        opts.check()?;
        if servers.is_empty() {
            return Err(Error::NoServers {
                detail: "the server list is empty".into(),
            });
        }
        let addrs = servers
            .iter()
            .map(|s| NodeAddr {
                host: s.host.clone(),
                port: s.port,
                listed_ip: String::new(),
            })
            .collect();
        Ok(Client::build(opts, None, None, servers, addrs))
    }

    /// The options this client was built with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    #[inline]
    fn state(&self) -> &State {
        // SAFETY: never NULL; a state is freed only when the client is dropped
        // (one replaced after fork is leaked), so it outlives `&self`.
        unsafe { &*self.state.load(Ordering::Acquire) }
    }

    /// The labels (`host:port`) of the current nodes, in ring order.
    pub fn servers(&self) -> Result<Vec<String>> {
        Ok(self
            .topology()?
            .nodes
            .iter()
            .map(|n| n.label().to_string())
            .collect())
    }

    /// The node (`host:port`) that owns `key` now.
    pub fn server_for(&self, key: &[u8]) -> Result<String> {
        protocol::check_key(key)?;
        let t = self.topology()?;
        let i = t.ring.owner(key).ok_or_else(|| no_servers(&t))?;
        Ok(t.nodes[i].label().to_string())
    }

    /// The index, in [`Client::servers`] order, of the node that owns `key` now.
    pub fn server_index_for(&self, key: &[u8]) -> Result<usize> {
        protocol::check_key(key)?;
        let t = self.topology()?;
        t.ring.owner(key).ok_or_else(|| no_servers(&t))
    }

    /// Close every idle connection; the next operations reconnect on demand
    /// (pylibmc's `disconnect_all`).
    /// In a forked child the parent's connections are not touched (closing
    /// a TLS session would write to the parent's connection) and its locks
    /// are not taken: the child starts its own, empty, pools.
    pub fn disconnect_all(&self) {
        let st = self.state();
        if st.fork_gen != fork::generation() {
            self.after_fork(st);
            return;
        }
        for n in &st.topo.read().nodes {
            n.close_idle();
        }
    }

    #[cfg(feature = "testkit")]
    /// Every idle connection's read buffer size (tests: buffers shrink back).
    #[doc(hidden)]
    pub fn idle_read_buffers_for_test(&self) -> Vec<usize> {
        let t = self.state().topo.read().clone();
        t.nodes.iter().flat_map(|n| n.idle_read_buffers()).collect()
    }

    #[cfg(feature = "testkit")]
    /// Hold the topology lock (for writing), the maintenance lock and every
    /// node's pool lock for `d`, as a thread in the middle of maintenance or
    /// a checkout does (tests: a fork at that moment must not hang the
    /// child). `taken` is called once they are all held.
    #[doc(hidden)]
    pub fn hold_locks_for_test(&self, d: Duration, taken: impl FnOnce()) {
        let st = self.state();
        let _m = st.maintaining.lock();
        let topo = st.topo.write();
        let pools: Vec<_> = topo.nodes.iter().map(|n| n.lock_for_test()).collect();
        taken();
        std::thread::sleep(d);
        drop(pools);
    }

    fn owner<'t>(&self, t: &'t Topology, key: &[u8]) -> Result<&'t Arc<NodePool>> {
        let i = t.ring.owner(key).ok_or_else(|| no_servers(t))?;
        let node = &t.nodes[i];
        if node.is_ejected() {
            node.metrics().refused();
            return Err(Error::ServerDead {
                addr: node.label().to_string(),
            });
        }
        Ok(node)
    }

    /// [`Client::exchange_untimed`], counted in the node's metrics.
    #[inline]
    fn exchange<T>(
        &self,
        node: &NodePool,
        op: &'static str,
        f: impl FnMut(&mut Conn) -> Result<T>,
    ) -> Result<T> {
        let timer = crate::metrics::Timer::start();
        let r = self.exchange_untimed(node, op, f);
        node.metrics()
            .record(timer, crate::metrics::Outcome::of(&r));
        r
    }

    /// Run one request/reply exchange on `node`, keeping the connection when it
    /// is clean and counting node failures.
    ///
    /// A pooled connection that breaks before any reply byte is stale (the
    /// node restarted since it was pooled): the node's idle connections are
    /// dropped, nothing is counted against it, and an operation that may run
    /// twice (see [`retry_safe`]) runs again once on a new connection.
    fn exchange_untimed<T>(
        &self,
        node: &NodePool,
        op: &'static str,
        mut f: impl FnMut(&mut Conn) -> Result<T>,
    ) -> Result<T> {
        let mut fresh = false;
        loop {
            let got = if fresh {
                node.checkout_fresh(op)
            } else {
                node.checkout(op)
            };
            let mut conn = match got {
                Ok(c) => c,
                Err(e) => {
                    if e.node_failed {
                        self.node_failed(node, &e.error);
                    }
                    return Err(e.error);
                }
            };
            conn.begin();
            match f(&mut conn) {
                Ok(v) => {
                    node.checkin(conn);
                    node.record_success();
                    return Ok(v);
                }
                Err(e) if e.is_node_failure() && conn.failed_stale() => {
                    node.discard(conn);
                    node.drop_stale();
                    if fresh || !retry_safe(op) {
                        return Err(e);
                    }
                    fresh = true;
                }
                Err(e) => {
                    if e.is_node_failure() {
                        node.discard(conn);
                        self.node_failed(node, &e);
                    } else {
                        node.record_success();
                        node.checkin(conn);
                    }
                    return Err(e);
                }
            }
        }
    }

    fn keyed<T>(
        &self,
        key: &[u8],
        op: &'static str,
        mut f: impl FnMut(&mut Conn, &str) -> Result<T>,
    ) -> Result<T> {
        protocol::check_key(key)?;
        let t = self.topology()?;
        let node = self.owner(&t, key)?;
        self.exchange(node, op, |c| f(c, node.label()))
    }

}

fn anomaly(label: &str, op: &'static str, what: &str, key: &[u8]) -> Error {
    Error::Protocol {
        addr: label.to_string(),
        op,
        detail: format!("{what} {}", crate::error::quote_bytes(key, 260)),
    }
}

/// The longest `get`/`gets` request line a multi-get sends. ElastiCache
/// Serverless caps a request at 16 KB; memcached 1.6 over TLS stalls on
/// pipelined lines close to its 16 KB read buffer (seen with 1.6.18), so lines
/// stay at half that. Splitting costs one `END` per ~40 long keys.
const MAX_GET_LINE: usize = 8 * 1024;
/// `gets` + CRLF.
const GET_LINE_OVERHEAD: usize = 6;

/// Whether running `op` a second time after a failure with no reply does no
/// harm: reads, and writes whose second run leaves what the first would
/// (never incr/decr, append/prepend, add/replace or cas).
fn retry_safe(op: &str) -> bool {
    matches!(op, "get" | "gets" | "set" | "delete" | "touch")
}

fn no_servers(t: &Topology) -> Error {
    Error::NoServers {
        detail: if t.nodes.is_empty() {
            "the cluster lists no nodes".into()
        } else {
            format!("all {} nodes are ejected after failures", t.nodes.len())
        },
    }
}

fn store_reply(label: &str, op: &'static str, r: Reply<'_>) -> Result<()> {
    match r {
        Reply::Stored => Ok(()),
        Reply::NotStored => Err(Error::NotStored),
        Reply::Exists => Err(Error::Exists),
        Reply::NotFound => Err(Error::NotFound),
        Reply::ServerError(m) => Err(Error::Server {
            addr: label.to_string(),
            op,
            message: String::from_utf8_lossy(m).into_owned(),
        }),
        other => Err(unexpected(label, op, other)),
    }
}

/// A reply that does not belong to the request: server and client errors are
/// reported as such; anything else means the stream is out of step.
fn unexpected(label: &str, op: &'static str, r: Reply<'_>) -> Error {
    match r {
        Reply::ServerError(m) => Error::Server {
            addr: label.to_string(),
            op,
            message: String::from_utf8_lossy(m).into_owned(),
        },
        Reply::ClientError(m) => Error::Client {
            addr: label.to_string(),
            op,
            message: format!("CLIENT_ERROR {}", String::from_utf8_lossy(m)),
        },
        Reply::Error => Error::Client {
            addr: label.to_string(),
            op,
            message: "ERROR (command not understood)".into(),
        },
        other => Error::Protocol {
            addr: label.to_string(),
            op,
            detail: format!("unexpected reply {other:?}"),
        },
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let p = *self.state.get_mut();
        // SAFETY: from Box::into_raw; the client is going away, nothing else uses it.
        drop(unsafe { Box::from_raw(p) });
    }
}
