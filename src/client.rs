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
use crate::options::{NodeNaming, Options};
use crate::pool::{Conn, NodeAddr, NodePool};
use crate::protocol::{self, Parse, Reply, StoreCommand};
use crate::registry::{self, Cluster};
use crate::ring::{Ring, ServerSpec};

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
        let cluster = registry::cluster(endpoint)?;
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
        let nodes = addrs
            .into_iter()
            .map(|a| {
                Arc::new(NodePool::new(
                    a,
                    opts.connect_options(),
                    opts.max_connections_per_node,
                ))
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
        let cluster = old_topo
            .cluster
            .as_ref()
            .and_then(|c| registry::cluster(c.endpoint()).ok());
        let nodes = old_topo
            .nodes
            .iter()
            .map(|n| {
                Arc::new(NodePool::new(
                    n.addr().clone(),
                    self.opts.connect_options(),
                    self.opts.max_connections_per_node,
                ))
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
                    // A failed refresh keeps the last good list; the next try is in one interval.
                    cluster
                        .refresh_if_older(since, &known, &self.opts.discovery_options())
                        .ok()
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
                        Arc::new(NodePool::new(
                            a,
                            self.opts.connect_options(),
                            self.opts.max_connections_per_node,
                        ))
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
    pub fn disconnect_all(&self) {
        for n in &self.state().topo.read().nodes {
            n.close_idle();
        }
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
        f: impl FnOnce(&mut Conn) -> Result<T>,
    ) -> Result<T> {
        let timer = crate::metrics::Timer::start();
        let r = self.exchange_untimed(node, op, f);
        node.metrics()
            .record(timer, crate::metrics::Outcome::of(&r));
        r
    }

    /// Run one request/reply exchange on `node`, keeping the connection when it
    /// is clean and counting node failures.
    fn exchange_untimed<T>(
        &self,
        node: &NodePool,
        op: &'static str,
        f: impl FnOnce(&mut Conn) -> Result<T>,
    ) -> Result<T> {
        let mut conn = match node.checkout(op) {
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
                Ok(v)
            }
            Err(e) => {
                if e.is_node_failure() {
                    node.discard(conn);
                    self.node_failed(node, &e);
                } else {
                    node.record_success();
                    node.checkin(conn);
                }
                Err(e)
            }
        }
    }

    fn keyed<T>(
        &self,
        key: &[u8],
        op: &'static str,
        f: impl FnOnce(&mut Conn, &str) -> Result<T>,
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
        let op = if with_cas { "gets" } else { "get" };
        let mut results: Vec<Result<Option<Slot>>> = keys.iter().map(|_| Ok(None)).collect();
        let mut data = Vec::new();
        let Some((t, groups)) = self.group(keys, &mut results) else {
            return MultiGet {
                data,
                entries: results,
            };
        };
        let mut batches = Vec::with_capacity(groups.len());
        for (node, idxs) in groups {
            let mut b = Batch::new(&t.nodes[node], idxs);
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
            batches.push(b);
        }
        self.run_batches(
            &mut batches,
            op,
            &mut results,
            |results, b, reply, label| match reply {
                Reply::Value {
                    key,
                    flags,
                    cas,
                    data: value,
                } => {
                    while b.cursor < b.keys.len() && keys[b.keys[b.cursor]] != key {
                        b.cursor += 1;
                    }
                    let Some(&i) = b.keys.get(b.cursor) else {
                        return Err(Error::Protocol {
                            addr: label.to_string(),
                            op,
                            detail: format!(
                                "value for a key not asked for: {}",
                                crate::error::quote_bytes(key, 260)
                            ),
                        });
                    };
                    results[i] = Ok(Some(Slot {
                        offset: data.len(),
                        len: value.len(),
                        flags,
                        cas: cas.unwrap_or(0),
                    }));
                    data.extend_from_slice(value);
                    b.cursor += 1;
                    Ok(false)
                }
                Reply::End => {
                    b.ends = b.ends.saturating_sub(1);
                    if b.ends > 0 {
                        return Ok(false);
                    }
                    b.cursor = b.keys.len();
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
        let mut batches = Vec::with_capacity(groups.len());
        for (node, idxs) in groups {
            let mut b = Batch::new(&t.nodes[node], idxs);
            if let Some(conn) = b.conn.as_mut() {
                for &i in &b.cursor.keys {
                    let (k, v, flags, exp) = items[i];
                    protocol::encode_store(&mut conn.wbuf, cmd, k, flags, exp, v, 0, false);
                }
            }
            batches.push(b);
        }
        self.run_batches(
            &mut batches,
            op,
            &mut results,
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
        let mut results: Vec<Result<()>> = keys.iter().map(|_| Ok(())).collect();
        let Some((t, groups)) = self.group(keys, &mut results) else {
            return results;
        };
        let mut batches = Vec::with_capacity(groups.len());
        for (node, idxs) in groups {
            let mut b = Batch::new(&t.nodes[node], idxs);
            if let Some(conn) = b.conn.as_mut() {
                for &i in &b.cursor.keys {
                    protocol::encode_delete(&mut conn.wbuf, keys[i], false);
                }
            }
            batches.push(b);
        }
        self.run_batches(
            &mut batches,
            "delete",
            &mut results,
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

    /// Write every batch's request, then read every batch's replies, handing
    /// each reply to `on_reply` (which returns true when the batch is complete).
    /// A batch whose node fails gives its unanswered keys that error.
    fn run_batches<T>(
        &self,
        batches: &mut [Batch<'_>],
        op: &'static str,
        results: &mut [Result<T>],
        mut on_reply: impl FnMut(&mut [Result<T>], &mut Cursor, Reply<'_>, &str) -> Result<bool>,
    ) {
        let timer = crate::metrics::Timer::start();
        let mut all_sent = true;
        for b in batches.iter_mut() {
            let Some(conn) = b.conn.as_mut() else {
                continue;
            };
            match conn.send_nonblocking(0) {
                Ok(n) => {
                    b.sent = n;
                    if n < conn.wbuf.len() {
                        all_sent = false;
                    } else {
                        conn.wbuf.clear();
                        b.sent = 0;
                    }
                }
                Err(e) => b.error = Some(Error::io(b.node.label(), op, e)),
            }
        }
        if all_sent {
            // Every request is out and each node only has replies left to send,
            // so reading the nodes one after another cannot deadlock. One
            // deadline for the whole call: N silent nodes cost one I/O timeout.
            let deadline = Instant::now() + self.opts.io_timeout;
            for b in batches.iter_mut() {
                if b.error.is_some() {
                    continue;
                }
                let Some(conn) = b.conn.as_mut() else {
                    continue;
                };
                conn.set_deadline(deadline);
                let label = b.node.label();
                let cursor = &mut b.cursor;
                let r = conn.read_until(label, op, |reply| {
                    on_reply(results, cursor, reply, label).map(|done| done.then_some(()))
                });
                if let Err(e) = r {
                    b.error = Some(e);
                }
            }
        } else {
            self.poll_batches(batches, op, results, &mut on_reply);
        }
        for b in batches.iter_mut() {
            crate::metrics::record_batch(b.node.metrics(), timer, b.error.as_ref());
            let conn = b.conn.take();
            match b.error.take() {
                None => {
                    if let Some(c) = conn {
                        b.node.checkin(c);
                    }
                    b.node.record_success();
                }
                Some(e) => {
                    if let Some(c) = conn {
                        b.node.discard(c);
                    }
                    if b.blame_node && e.is_node_failure() {
                        self.node_failed(b.node, &e);
                    }
                    for &i in &b.cursor.keys[b.cursor.cursor.min(b.cursor.keys.len())..] {
                        results[i] = Err(e.clone());
                    }
                }
            }
        }
    }

    /// The slow path of [`Client::run_batches`]: some request did not fit in
    /// the socket buffer, so writes and reads are interleaved with poll.
    fn poll_batches<T>(
        &self,
        batches: &mut [Batch<'_>],
        op: &'static str,
        results: &mut [Result<T>],
        on_reply: &mut impl FnMut(&mut [Result<T>], &mut Cursor, Reply<'_>, &str) -> Result<bool>,
    ) {
        let deadline = Instant::now() + self.opts.io_timeout;
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(batches.len());
        let mut which: Vec<usize> = Vec::with_capacity(batches.len());
        loop {
            fds.clear();
            which.clear();
            // TLS may hold decrypted bytes while its socket has nothing to read:
            // those connections are read without waiting.
            let mut buffered = false;
            for (i, b) in batches.iter().enumerate() {
                if b.error.is_some() || b.done {
                    continue;
                }
                let Some(conn) = b.conn.as_ref() else {
                    continue;
                };
                let mut events = libc::POLLIN;
                if !conn.wbuf.is_empty() {
                    events |= libc::POLLOUT;
                }
                buffered |= conn.has_buffered_input();
                fds.push(libc::pollfd {
                    fd: conn.fd(),
                    events,
                    revents: 0,
                });
                which.push(i);
            }
            if fds.is_empty() {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                for &i in &which {
                    batches[i].error = Some(Error::Timeout {
                        addr: batches[i].node.label().to_string(),
                        op,
                    });
                }
                return;
            }
            let ms = if buffered {
                0
            } else {
                (deadline - now).as_millis().clamp(1, i32::MAX as u128) as i32
            };
            // SAFETY: fds is a valid array of fds.len() pollfd structs.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                for &i in &which {
                    batches[i].error = Some(Error::io(
                        batches[i].node.label(),
                        op,
                        std::io::Error::from(e.kind()),
                    ));
                }
                return;
            }
            for (slot, &i) in which.iter().enumerate() {
                let b = &mut batches[i];
                let label = b.node.label();
                let Some(conn) = b.conn.as_mut() else {
                    continue;
                };
                let mut revents = fds[slot].revents;
                if conn.has_buffered_input() {
                    revents |= libc::POLLIN;
                }
                if revents == 0 {
                    continue;
                }
                if revents & libc::POLLOUT != 0 && !conn.wbuf.is_empty() {
                    match conn.send_nonblocking(b.sent) {
                        Ok(n) if n >= conn.wbuf.len() => {
                            conn.wbuf.clear();
                            b.sent = 0;
                        }
                        Ok(n) => b.sent = n,
                        Err(e) => {
                            b.error = Some(Error::io(label, op, e));
                            continue;
                        }
                    }
                }
                if revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0 {
                    if let Err(e) = drain(
                        conn,
                        label,
                        op,
                        results,
                        &mut b.cursor,
                        &mut b.done,
                        on_reply,
                    ) {
                        b.error = Some(e);
                    }
                }
            }
        }
    }
}

/// Parse everything received so far on a polled connection.
fn drain<T>(
    conn: &mut Conn,
    label: &str,
    op: &'static str,
    results: &mut [Result<T>],
    cursor: &mut Cursor,
    done: &mut bool,
    on_reply: &mut impl FnMut(&mut [Result<T>], &mut Cursor, Reply<'_>, &str) -> Result<bool>,
) -> Result<()> {
    let mut needed = None;
    loop {
        if !conn
            .fill_nonblocking(needed)
            .map_err(|e| Error::io(label, op, e))?
        {
            return Ok(());
        }
        loop {
            match protocol::parse(conn.pending()) {
                Ok(Parse::Done(reply, used)) => {
                    let finished = on_reply(results, cursor, reply, label)?;
                    conn.consume(used);
                    if finished {
                        *done = true;
                        return Ok(());
                    }
                }
                Ok(Parse::Incomplete { needed: n }) => {
                    needed = n;
                    break;
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
}

/// Which of a batch's keys have been answered.
#[derive(Debug)]
pub struct Cursor {
    keys: Vec<usize>,
    cursor: usize,
    /// `END` lines still to come (a multi-get split over several request lines).
    ends: usize,
}

/// The longest `get`/`gets` request line a multi-get sends. ElastiCache
/// Serverless caps a request at 16 KB; memcached 1.6 over TLS stalls on
/// pipelined lines close to its 16 KB read buffer (seen with 1.6.18), so lines
/// stay at half that. Splitting costs one `END` per ~40 long keys.
const MAX_GET_LINE: usize = 8 * 1024;
/// `gets` + CRLF.
const GET_LINE_OVERHEAD: usize = 6;

struct Batch<'a> {
    node: &'a NodePool,
    conn: Option<Conn>,
    cursor: Cursor,
    sent: usize,
    done: bool,
    error: Option<Error>,
    /// False when the error is not the node's fault (no free connection).
    blame_node: bool,
}

impl<'a> Batch<'a> {
    fn new(node: &'a Arc<NodePool>, keys: Vec<usize>) -> Batch<'a> {
        let (conn, error, blame_node) = match node.checkout("multi") {
            Ok(mut c) => {
                c.begin();
                (Some(c), None, true)
            }
            Err(e) => (None, Some(e.error), e.node_failed),
        };
        Batch {
            node,
            conn,
            cursor: Cursor {
                keys,
                cursor: 0,
                ends: 1,
            },
            sent: 0,
            done: false,
            error,
            blame_node,
        }
    }
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
