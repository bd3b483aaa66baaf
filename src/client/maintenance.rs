//! Maintenance, done on a calling thread when due and one thread at a time:
//! applying a refreshed node list, ejecting and reviving nodes, and starting
//! over in a child after `fork()`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::*;

impl Client {
    #[inline]
    pub(super) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub(super) fn schedule_check(&self, at_ms: u64) {
        self.next_check_ms.fetch_min(at_ms, Ordering::AcqRel);
    }

    /// The current topology, after any maintenance that is due.
    #[inline]
    pub(super) fn topology(&self) -> Result<Arc<Topology>> {
        let st = self.state();
        if st.fork_gen != fork::generation() {
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
    pub(super) fn after_fork(&self, old: &State) -> Arc<Topology> {
        crate::events::fork_detected(fork::generation());
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
    pub(super) fn maintain(&self) -> Arc<Topology> {
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
    pub(super) fn maintain_locked(&self, st: &State, refresh: Refresh) -> Arc<Topology> {
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
    pub(super) fn node_failed(&self, node: &NodePool, why: &Error) {
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

    /// Each current node's client-side counters (the `metrics` module).
    pub fn node_metrics(&self) -> Result<Vec<crate::metrics::NodeSnapshot>> {
        let t = self.topology()?;
        Ok(t.nodes
            .iter()
            .map(|n| n.snapshot())
            .collect())
    }

}
