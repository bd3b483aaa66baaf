//! The process-global node cache: configuration endpoint -> [`Cluster`].
//!
//! The first call for an endpoint discovers (blocking) and caches; later calls,
//! from any client or thread, reuse the answer. Concurrent first calls run
//! discovery once: the others wait for it and share its result, success or
//! failure. [`refresh`] re-discovers on demand and keeps the last good
//! configuration when the endpoint fails.
//!
//! Fork safety: a `pthread_atfork` child handler bumps [`generation`]. The
//! registry notices a new generation on its next use and starts over with an
//! empty map, leaking (never closing, never using) whatever the parent had,
//! including locks another parent thread may have held at the moment of fork.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::discovery::{self, Command, Config, DiscoveryOptions};
use crate::error::{Error, Result};
use crate::transport;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK_REGISTERED: AtomicBool = AtomicBool::new(false);
static FORK_CHILD_RUNS: AtomicU64 = AtomicU64::new(0);

/// The fork generation: 0 in the process that loaded the library, +1 in a child
/// after each `fork()`. Anything holding sockets remembers the generation it
/// opened them in and abandons them when this differs.
#[inline]
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// How many times the fork child handler has run in this process's ancestry
/// (proof for tests that the handler is registered).
pub fn fork_child_runs() -> u64 {
    FORK_CHILD_RUNS.load(Ordering::Acquire)
}

// The registry lock is held across fork (taken in `prepare`, released in both
// processes) so a child never inherits it locked by a thread that no longer
// exists. It is only ever held for map operations, never across I/O.
extern "C" fn atfork_prepare() {
    std::mem::forget(REGISTRY.lock());
}

extern "C" fn atfork_parent() {
    // SAFETY: locked by atfork_prepare on this thread, guard forgotten.
    unsafe { REGISTRY.force_unlock() };
}

extern "C" fn atfork_child() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    FORK_CHILD_RUNS.fetch_add(1, Ordering::AcqRel);
    // SAFETY: locked by atfork_prepare in the parent before the fork.
    unsafe { REGISTRY.force_unlock() };
}

/// Register the fork handler once. Called from the library constructor and,
/// in case a static link dropped the constructor, on first use of the registry.
pub fn ensure_atfork() {
    if ATFORK_REGISTERED
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        // SAFETY: the handlers touch only atomics and the registry lock.
        unsafe {
            libc::pthread_atfork(
                Some(atfork_prepare),
                Some(atfork_parent),
                Some(atfork_child),
            );
        }
    }
}

#[ctor::ctor]
fn register_atfork_at_load() {
    ensure_atfork();
}

/// Whether the fork handler is registered (by the constructor or lazily).
pub fn atfork_registered() -> bool {
    ATFORK_REGISTERED.load(Ordering::Acquire)
}

/// What is known about one configuration endpoint.
#[derive(Debug)]
pub struct Cluster {
    endpoint: String,
    state: Mutex<ClusterState>,
    /// Serialises discoveries of this endpoint; held across I/O, never on a hot path.
    discovering: Mutex<()>,
}

#[derive(Debug, Default)]
struct ClusterState {
    config: Option<Arc<Config>>,
    command: Option<Command>,
    discoveries: u64,
    last_failure: Option<(Instant, Error)>,
    last_success: Option<Instant>,
    rotation: usize,
}

impl Cluster {
    /// The configuration endpoint, normalised to `host:port`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The cached configuration, if discovery has succeeded once.
    pub fn config(&self) -> Option<Arc<Config>> {
        self.state.lock().config.clone()
    }

    /// How many discoveries were run for this endpoint (for tests and stats).
    pub fn discoveries(&self) -> u64 {
        self.state.lock().discoveries
    }

    /// When the configuration was last confirmed or changed.
    pub fn last_success(&self) -> Option<Instant> {
        self.state.lock().last_success
    }

    /// The cached configuration, discovering first if there is none yet.
    pub fn get_or_discover(&self, opts: &DiscoveryOptions) -> Result<Arc<Config>> {
        if let Some(c) = self.config() {
            return Ok(c);
        }
        let waited_since = Instant::now();
        let _turn = self.discovering.lock();
        {
            let st = self.state.lock();
            if let Some(c) = &st.config {
                return Ok(c.clone());
            }
            // Another thread tried while we waited: share its failure rather than
            // making every waiter pay the same timeout again.
            if let Some((at, err)) = &st.last_failure {
                if *at >= waited_since {
                    return Err(err.clone());
                }
            }
        }
        self.discover_locked(opts)
    }

    /// Re-discover now. On success the new configuration replaces the old one
    /// when its payload differs and its version did not go down; on failure the
    /// last good configuration stays and the error is returned.
    pub fn refresh(&self, opts: &DiscoveryOptions) -> Result<Arc<Config>> {
        let _turn = self.discovering.lock();
        self.discover_locked(opts)
    }

    /// Re-discover unless a discovery of this endpoint succeeded after `since`
    /// (then that result is used): clients sharing the endpoint refresh once.
    /// `known` nodes are asked first, one per call in turn, then the endpoint
    /// itself with its DNS name resolved afresh, so a cluster replaced behind
    /// DNS is found again while a down endpoint does not stop a refresh.
    pub fn refresh_if_older(
        &self,
        since: Instant,
        known: &[(String, u16)],
        opts: &DiscoveryOptions,
    ) -> Result<Arc<Config>> {
        let _turn = self.discovering.lock();
        let start = {
            let mut st = self.state.lock();
            if let (Some(c), Some(t)) = (&st.config, st.last_success) {
                if t > since {
                    return Ok(c.clone());
                }
            }
            st.rotation = st.rotation.wrapping_add(1);
            st.rotation
        };
        if !known.is_empty() {
            let (host, port) = &known[start % known.len()];
            // A node is asked strictly: it must answer with a config, never stand in for one.
            let strict = DiscoveryOptions {
                ignore_cluster_errors: false,
                ..opts.clone()
            };
            let command = self.state.lock().command;
            let endpoint = transport::join_host_port(host, *port);
            if let Ok(found) = discovery::discover(&endpoint, &strict, command) {
                if found.command.is_some() {
                    return self.apply_result(Ok(found));
                }
            }
        }
        self.discover_locked(opts)
    }

    fn discover_locked(&self, opts: &DiscoveryOptions) -> Result<Arc<Config>> {
        let command = self.state.lock().command;
        let result = discovery::discover(&self.endpoint, opts, command);
        self.apply_result(result)
    }

    fn apply_result(&self, result: Result<discovery::Discovered>) -> Result<Arc<Config>> {
        let mut st = self.state.lock();
        st.discoveries += 1;
        match result {
            Ok(found) => {
                st.command = found.command.or(st.command);
                st.last_failure = None;
                st.last_success = Some(Instant::now());
                let keep_old = match &st.config {
                    Some(old) => {
                        old.payload == found.config.payload || found.config.version < old.version
                    }
                    None => false,
                };
                if !keep_old {
                    crate::events::config_changed(
                        &self.endpoint,
                        st.config.as_deref(),
                        &found.config,
                    );
                    st.config = Some(Arc::new(found.config));
                }
                st.config.clone().ok_or_else(|| Error::NoServers {
                    detail: "no configuration".into(),
                })
            }
            Err(e) => {
                crate::events::refresh_failed(&self.endpoint, &e);
                st.last_failure = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }
}

struct Registry {
    generation: u64,
    clusters: HashMap<String, Arc<Cluster>>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// Normalise an endpoint string to the `host:port` key the cache uses.
pub fn endpoint_key(endpoint: &str) -> Result<String> {
    let (host, port) = transport::split_host_port(endpoint)?;
    Ok(transport::join_host_port(&host.to_ascii_lowercase(), port))
}

/// The cache entry for `endpoint`, created empty on first use.
pub fn cluster(endpoint: &str) -> Result<Arc<Cluster>> {
    ensure_atfork();
    let key = endpoint_key(endpoint)?;
    let gen = generation();
    let mut guard = lock_registry(gen);
    let reg = guard.get_or_insert_with(|| Registry {
        generation: gen,
        clusters: HashMap::new(),
    });
    Ok(reg
        .clusters
        .entry(key.clone())
        .or_insert_with(|| {
            Arc::new(Cluster {
                endpoint: key,
                state: Mutex::new(ClusterState::default()),
                discovering: Mutex::new(()),
            })
        })
        .clone())
}

/// Lock the registry, starting over if a fork happened since it was filled.
fn lock_registry(gen: u64) -> parking_lot::MutexGuard<'static, Option<Registry>> {
    let mut guard = REGISTRY.lock();
    if guard.as_ref().is_some_and(|reg| reg.generation != gen) {
        // Leak the parent's clusters: never close or use what the parent opened.
        if let Some(old) = guard.take() {
            std::mem::forget(old);
        }
    }
    guard
}

/// The cached configuration for `endpoint`, discovering on the first call.
pub fn get_or_discover(endpoint: &str, opts: &DiscoveryOptions) -> Result<Arc<Config>> {
    let r = cluster(endpoint).and_then(|c| c.get_or_discover(opts));
    crate::events::dispatch_pending();
    r
}

/// Re-discover `endpoint` now (see [`Cluster::refresh`]).
pub fn refresh(endpoint: &str, opts: &DiscoveryOptions) -> Result<Arc<Config>> {
    let r = cluster(endpoint).and_then(|c| c.refresh(opts));
    crate::events::dispatch_pending();
    r
}
