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

use crate::discovery::Config;
use crate::error::{Error, Result};
use crate::multi;
use crate::options::{NodeNaming, Options};
use crate::pool::{Conn, NodeAddr, NodePool};
use crate::protocol::{self, Reply, StoreCommand};
use crate::registry::{self, Cluster};
use crate::ring::{Ring, ServerSpec};

// Meta-protocol operations (binary keys, leases) live in their own files.
#[path = "client_lease.rs"]
mod client_lease;
#[path = "client_lease_multi.rs"]
mod client_lease_multi;
#[path = "client_meta.rs"]
mod client_meta;
#[path = "client_meta_multi.rs"]
mod client_meta_multi;
pub use client_lease::{Lease, MAX_LEASE_TTL};

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
            fork_gen: registry::generation(),
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

/// Ring names and connect addresses for a node list. Under TLS a node is
/// reached by its host name, which its certificate names (the listed IP is not
/// verifiable).
fn specs_from_config(
    config: &Config,
    naming: NodeNaming,
    tls: bool,
) -> (Vec<ServerSpec>, Vec<NodeAddr>) {
    config
        .nodes
        .iter()
        .map(|n| {
            let name = match naming {
                NodeNaming::Ip if !n.ip.is_empty() => n.ip.clone(),
                _ if n.host.is_empty() => n.ip.clone(),
                _ => n.host.clone(),
            };
            (
                ServerSpec {
                    host: name,
                    port: n.port,
                    weight: 1,
                },
                NodeAddr {
                    host: if tls && !n.host.is_empty() {
                        n.host.clone()
                    } else {
                        n.connect_host().to_string()
                    },
                    port: n.port,
                    listed_ip: n.ip.clone(),
                },
            )
        })
        .unzip()
}

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
            let (host, port) = crate::transport::split_host_port(endpoint)?;
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

    fn build(
        opts: Options,
        cluster: Option<Arc<Cluster>>,
        config: Option<Arc<Config>>,
        specs: Vec<ServerSpec>,
        addrs: Vec<NodeAddr>,
    ) -> Client {
        let opts = opts.saturated();
        let nodes = addrs
            .into_iter()
            .map(|a| {
                Arc::new(
                    NodePool::new(a, opts.connect_options(), opts.max_connections_per_node)
                        .with_value_limit(opts.max_value_size),
                )
            })
            .collect::<Vec<_>>();
        let ring = Ring::new(&specs, opts.distribution, opts.hash);
        let refreshing = cluster.is_some() && !opts.refresh_interval.is_zero();
        let state = State::new(Topology {
            cluster,
            config,
            specs,
            nodes,
            ring,
        });
        let client = Client {
            state: AtomicPtr::new(Box::into_raw(state)),
            epoch: Instant::now(),
            next_check_ms: AtomicU64::new(NEVER),
            next_refresh_ms: AtomicU64::new(NEVER),
            opts,
        };
        if refreshing {
            let at = client.now_ms() + client.opts.refresh_interval.as_millis() as u64;
            client.next_refresh_ms.store(at, Ordering::Release);
            client.next_check_ms.store(at, Ordering::Release);
        }
        client
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

    #[inline]
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn schedule_check(&self, at_ms: u64) {
        self.next_check_ms.fetch_min(at_ms, Ordering::AcqRel);
    }

    /// The current topology, after any maintenance that is due.
    #[inline]
    fn topology(&self) -> Result<Arc<Topology>> {
        let st = self.state();
        if st.fork_gen != registry::generation() {
            let t = self.after_fork(st);
            crate::events::dispatch_pending();
            return Ok(t);
        }
        let t = st.topo.read().clone();
        // NEVER (a fixed server list with no ejected node) needs no clock read.
        let next = self.next_check_ms.load(Ordering::Acquire);
        if next != NEVER && self.now_ms() >= next {
            let t = self.maintain();
            crate::events::dispatch_pending();
            return Ok(t);
        }
        Ok(t)
    }

    /// In a child after fork: a new state with fresh pools for the same
    /// nodes. The parent's state is leaked: its sockets are never used or
    /// closed (closing a TLS session would write to the parent's connection),
    /// and its locks, which a parent thread may have held at the fork, are
    /// never taken.
    #[cold]
    fn after_fork(&self, old: &State) -> Arc<Topology> {
        crate::events::fork_detected(registry::generation());
        // SAFETY: the old topology is read without its lock (see above). A
        // writer interrupted by the fork has either stored the new Arc or not;
        // both are live, since the old one is dropped only after the store.
        let old_topo: Arc<Topology> = unsafe { (*old.topo.data_ptr()).clone() };
        let cluster = old_topo.cluster.as_ref().map(|c| registry::reopen(c));
        let nodes = old_topo
            .nodes
            .iter()
            .map(|n| {
                Arc::new(
                    NodePool::new(
                        n.addr().clone(),
                        self.opts.connect_options(),
                        self.opts.max_connections_per_node,
                    )
                    .with_value_limit(self.opts.max_value_size),
                )
            })
            .collect();
        let fresh = State::new(Topology {
            cluster,
            config: old_topo.config.clone(),
            specs: old_topo.specs.clone(),
            nodes,
            ring: Ring::new(&old_topo.specs, self.opts.distribution, self.opts.hash),
        });
        let fresh = Box::into_raw(fresh);
        let old_ptr = old as *const State as *mut State;
        if self
            .state
            .compare_exchange(old_ptr, fresh, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Another thread of the child got there first.
            // SAFETY: `fresh` was never shared.
            drop(unsafe { Box::from_raw(fresh) });
        }
        std::mem::forget(old_topo);
        self.state().topo.read().clone()
    }

    /// Refresh the node list and revive ejected nodes when due. Only one
    /// thread does it; the others keep the topology they have.
    #[cold]
    fn maintain(&self) -> Arc<Topology> {
        let st = self.state();
        let Some(_guard) = st.maintaining.try_lock() else {
            return st.topo.read().clone();
        };
        if self.now_ms() < self.next_check_ms.load(Ordering::Acquire) {
            return st.topo.read().clone();
        }
        self.maintain_locked(st, Refresh::IfDue)
    }

    /// One maintenance pass, with `st.maintaining` held.
    fn maintain_locked(&self, st: &State, refresh: Refresh) -> Arc<Topology> {
        let now = self.now_ms();
        self.next_check_ms.store(NEVER, Ordering::Release);
        let current = st.topo.read().clone();
        let mut changed_config = None;
        let mut pending = false;
        let due =
            refresh == Refresh::Applied || now >= self.next_refresh_ms.load(Ordering::Acquire);
        if let (true, Some(cluster)) = (due, &current.cluster) {
            let cfg = match refresh {
                Refresh::Applied => cluster.config(),
                Refresh::IfDue => {
                    let since = Instant::now()
                        .checked_sub(self.opts.refresh_interval.min(Duration::from_secs(1)))
                        .unwrap_or(self.epoch);
                    let known: Vec<(String, u16)> = current
                        .nodes
                        .iter()
                        .map(|n| (n.addr().host.clone(), n.addr().port))
                        .collect();
                    let all_dead = current.nodes.iter().all(|n| n.is_ejected());
                    // Off the request path: a background refresh, picked up by a
                    // later pass. A failed one keeps the last good list; the next
                    // try is in one interval.
                    let opts = self.opts.discovery_options();
                    match cluster.refresh_in_background(since, known, all_dead, &opts) {
                        registry::Background::Done(cfg) => cfg,
                        registry::Background::Running => {
                            pending = true;
                            None
                        }
                    }
                }
            };
            if let Some(cfg) = cfg {
                if current
                    .config
                    .as_ref()
                    .map_or(true, |c| !Arc::ptr_eq(c, &cfg))
                {
                    changed_config = Some(cfg);
                }
            }
            let next = if self.opts.refresh_interval.is_zero() {
                NEVER
            } else if pending {
                now + registry::poll_ms(self.opts.refresh_interval)
            } else {
                now + self.opts.refresh_interval.as_millis() as u64
            };
            self.next_refresh_ms.store(next, Ordering::Release);
        }
        // Whatever this pass did, the next refresh and revivals stay scheduled.
        let next_refresh = self.next_refresh_ms.load(Ordering::Acquire);
        if next_refresh != NEVER {
            self.schedule_check(next_refresh);
        }
        let revived = current
            .nodes
            .iter()
            .fold(false, |acc, n| crate::events::revive_if_due(n) | acc);
        let ejected_now = current.nodes.iter().any(|n| n.is_ejected());
        for n in &current.nodes {
            if let Some(until) = n.ejected_until() {
                let ms = until.saturating_duration_since(self.epoch).as_millis() as u64;
                self.schedule_check(ms);
            }
        }
        let needs_ring = revived || ejected_now || current.nodes.len() != current.specs.len();
        if changed_config.is_none() && !needs_ring && !self.ring_is_stale(&current) {
            return current;
        }
        let fresh = Arc::new(match changed_config {
            Some(cfg) => self.apply_config(&current, cfg),
            None => self.rebuild_ring(&current),
        });
        *st.topo.write() = fresh.clone();
        fresh
    }

    fn ring_is_stale(&self, t: &Topology) -> bool {
        // The ring leaves out ejected nodes only with remove_failed.
        self.opts.remove_failed && t.nodes.iter().any(|n| n.ejection_flag())
    }

    fn live_mask(&self, nodes: &[Arc<NodePool>]) -> Vec<bool> {
        nodes
            .iter()
            .map(|n| !(self.opts.remove_failed && n.is_ejected()))
            .collect()
    }

    fn rebuild_ring(&self, t: &Topology) -> Topology {
        let live = self.live_mask(&t.nodes);
        Topology {
            cluster: t.cluster.clone(),
            config: t.config.clone(),
            specs: t.specs.clone(),
            nodes: t.nodes.clone(),
            ring: Ring::with_live(&t.specs, &live, self.opts.distribution, self.opts.hash),
        }
    }

    /// A new node list: nodes that stay keep their pools (and connections).
    fn apply_config(&self, t: &Topology, cfg: Arc<Config>) -> Topology {
        let (specs, addrs) =
            specs_from_config(&cfg, self.opts.node_naming, self.opts.tls_enabled());
        let nodes: Vec<Arc<NodePool>> = addrs
            .into_iter()
            .map(|a| {
                t.nodes
                    .iter()
                    .find(|n| *n.addr() == a)
                    .cloned()
                    .unwrap_or_else(|| {
                        Arc::new(
                            NodePool::new(
                                a,
                                self.opts.connect_options(),
                                self.opts.max_connections_per_node,
                            )
                            .with_value_limit(self.opts.max_value_size),
                        )
                    })
            })
            .collect();
        let live = self.live_mask(&nodes);
        Topology {
            cluster: t.cluster.clone(),
            config: Some(cfg),
            ring: Ring::with_live(&specs, &live, self.opts.distribution, self.opts.hash),
            specs,
            nodes,
        }
    }

    /// Re-discover now (through the shared node cache) and apply a changed
    /// list; ejected nodes stay scheduled for revival.
    pub fn refresh(&self) -> Result<()> {
        let r = self.refresh_inner();
        crate::events::dispatch_pending();
        r
    }

    fn refresh_inner(&self) -> Result<()> {
        let t = self.topology()?;
        let Some(cluster) = &t.cluster else {
            return Ok(());
        };
        cluster.refresh(&self.opts.discovery_options())?;
        let st = self.state();
        let _guard = st.maintaining.lock();
        self.maintain_locked(st, Refresh::Applied);
        Ok(())
    }

    /// A node failed: count it (ejecting it at the limit) and ask for an early
    /// refresh, so a replaced node is learnt about while the client runs.
    fn node_failed(&self, node: &NodePool, why: &Error) {
        if node.record_failure(self.opts.failure_limit, self.opts.retry_timeout) {
            crate::events::node_ejected(node, why, self.opts.retry_timeout);
            self.schedule_check(0);
        }
        let refreshing =
            !self.opts.refresh_interval.is_zero() && self.state().topo.read().cluster.is_some();
        if refreshing {
            // At most about once a second however many operations fail.
            let soon = self.now_ms() + 1000.min(self.opts.refresh_interval.as_millis() as u64);
            if self.next_refresh_ms.load(Ordering::Acquire) > soon {
                self.next_refresh_ms.store(soon, Ordering::Release);
                self.schedule_check(soon);
            }
        }
        crate::events::dispatch_pending();
    }

    /// Each current node's client-side counters (see [`crate::metrics`]).
    pub fn node_metrics(&self) -> Result<Vec<crate::metrics::NodeSnapshot>> {
        let t = self.topology()?;
        Ok(t.nodes
            .iter()
            .map(|n| crate::metrics::snapshot(n))
            .collect())
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
        if st.fork_gen != registry::generation() {
            self.after_fork(st);
            return;
        }
        for n in &st.topo.read().nodes {
            n.close_idle();
        }
    }

    /// Every idle connection's read buffer size (tests: buffers shrink back).
    #[doc(hidden)]
    pub fn idle_read_buffers_for_test(&self) -> Vec<usize> {
        let t = self.state().topo.read().clone();
        t.nodes.iter().flat_map(|n| n.idle_read_buffers()).collect()
    }

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

    /// Read a value; `Ok(None)` on a miss.
    pub fn get(&self, key: &[u8]) -> Result<Option<Item>> {
        self.get_inner(key, false)
    }

    /// Read a value with its cas id; `Ok(None)` on a miss.
    pub fn gets(&self, key: &[u8]) -> Result<Option<Item>> {
        self.get_inner(key, true)
    }

    fn get_inner(&self, key: &[u8], with_cas: bool) -> Result<Option<Item>> {
        if self.opts.binary_keys && crate::meta::needs_binary(key) {
            return self.binary_get(key, with_cas);
        }
        let op = if with_cas { "gets" } else { "get" };
        protocol::check_key(key)?;
        let t = self.topology()?;
        let node = self.owner(&t, key)?;
        let label = node.label();
        let r = self.exchange(node, op, |conn| {
            protocol::encode_get(&mut conn.wbuf, with_cas, [key]);
            conn.flush().map_err(|e| Error::io(label, op, e))?;
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
        if self.opts.binary_keys && crate::meta::needs_binary(key) {
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
            conn.flush().map_err(|e| Error::io(label, op, e))?;
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
        if self.opts.binary_keys && crate::meta::needs_binary(key) {
            return self.binary_delete(key);
        }
        self.keyed(key, "delete", |conn, label| {
            protocol::encode_delete(&mut conn.wbuf, key, false);
            conn.flush().map_err(|e| Error::io(label, "delete", e))?;
            conn.read_until(label, "delete", |r| match r {
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
        if self.opts.binary_keys && crate::meta::needs_binary(key) {
            return self.binary_arith(key, incr, delta);
        }
        let op = if incr { "incr" } else { "decr" };
        self.keyed(key, op, |conn, label| {
            protocol::encode_arith(&mut conn.wbuf, incr, key, delta, false);
            conn.flush().map_err(|e| Error::io(label, op, e))?;
            conn.read_until(label, op, |r| match r {
                Reply::Number(n) => Ok(Some(Ok(n))),
                Reply::NotFound => Ok(Some(Err(Error::NotFound))),
                other => Err(unexpected(label, op, other)),
            })?
        })
    }

    /// Set a new expiry; `Err(NotFound)` on a miss.
    pub fn touch(&self, key: &[u8], exptime: i64) -> Result<()> {
        if self.opts.binary_keys && crate::meta::needs_binary(key) {
            return self.binary_touch(key, exptime);
        }
        self.keyed(key, "touch", |conn, label| {
            protocol::encode_touch(&mut conn.wbuf, key, exptime, false);
            conn.flush().map_err(|e| Error::io(label, "touch", e))?;
            conn.read_until(label, "touch", |r| match r {
                Reply::Touched => Ok(Some(Ok(()))),
                Reply::NotFound => Ok(Some(Err(Error::NotFound))),
                other => Err(unexpected(label, "touch", other)),
            })?
        })
    }

    fn each_node<T>(
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
            conn.flush().map_err(|e| Error::io(label, "flush_all", e))?;
            conn.read_until(label, "flush_all", |r| match r {
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
            conn.flush().map_err(|e| Error::io(label, "version", e))?;
            conn.read_until(label, "version", |r| match r {
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
            conn.flush().map_err(|e| Error::io(label, "stats", e))?;
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
        if self.opts.binary_keys && keys.iter().any(|k| crate::meta::needs_binary(k)) {
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
            multi::open_batches(groups.into_iter().map(|(n, idxs)| (&t.nodes[n], idxs)), op);
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
        multi::run_batches(
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
                    let m = multi::match_value(
                        &mut b.cursor,
                        &mut b.disordered,
                        bk.len(),
                        |p| keys[bk[p]],
                        |p| matches!(results[bk[p]], Ok(Some(_))),
                        key,
                    );
                    match m {
                        multi::Matched::Hit(p) => {
                            results[bk[p]] = Ok(Some(Slot {
                                offset: data.len(),
                                len: value.len(),
                                flags,
                                cas: cas.unwrap_or(0),
                            }));
                            data.extend_from_slice(value);
                        }
                        multi::Matched::Duplicate(p) => {
                            results[bk[p]] = Err(anomaly(label, op, "a second value for", key));
                        }
                        multi::Matched::Stray => {}
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
        if self.opts.binary_keys && items.iter().any(|it| crate::meta::needs_binary(it.0)) {
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
            multi::open_batches(groups.into_iter().map(|(n, idxs)| (&t.nodes[n], idxs)), op);
        for b in &mut batches {
            if let Some(conn) = b.conn.as_mut() {
                for &i in &b.cursor.keys {
                    let (k, v, flags, exp) = items[i];
                    protocol::encode_store(&mut conn.wbuf, cmd, k, flags, exp, v, 0, false);
                }
            }
        }
        multi::run_batches(
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
        if self.opts.binary_keys && keys.iter().any(|k| crate::meta::needs_binary(k)) {
            return self.binary_delete_multi(keys);
        }
        let mut results: Vec<Result<()>> = keys.iter().map(|_| Ok(())).collect();
        let Some((t, groups)) = self.group(keys, &mut results) else {
            return results;
        };
        let mut batches = multi::open_batches(
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
        multi::run_batches(
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
    fn group<T>(
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
