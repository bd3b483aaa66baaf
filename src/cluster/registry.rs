//! The process-global node cache: configuration endpoint -> [`Cluster`].
//!
//! The cache is keyed by everything that changes the answer, not the address
//! alone: TLS or not and the TLS settings (a TLS client never trusts a list
//! read over plain text or under other trust roots), `ignore_cluster_errors`
//! and `serverless`.
//!
//! The first call for an endpoint discovers (blocking) and caches; later calls,
//! from any client or thread, reuse the answer. Concurrent first calls run
//! discovery once: the others wait for it and share its result, success or
//! failure. After a failed discovery the endpoint is left alone for a backoff
//! window (1 s, doubling to 30 s): callers get the last error at once, and
//! after the window one caller at a time tries again while the others keep
//! getting the error. [`refresh`] re-discovers on demand and keeps the last
//! good configuration when the endpoint fails. A client's periodic refresh
//! runs on a short-lived background thread
//! ([`Cluster::refresh_in_background`]) so no request waits for it.
//!
//! A lower config version is normally a lagging answer and ignored; it is
//! taken when it is a new cluster behind the same name: a disjoint node list
//! and either the endpoint answering from another address or every known
//! node dead.
//!
//! Fork safety: a `pthread_atfork` child handler bumps [`fork::generation`]. The
//! registry notices a new generation on its next use and starts over with an
//! empty map, leaking (never closing, never using) whatever the parent had,
//! including locks another parent thread may have held at the moment of fork.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::discovery::{self, Command, Config, DiscoveryOptions};
use crate::error::{Error, Result};
use crate::fork::{self, generation, ForkGuard, ForkLock};
use crate::net::addr;

static ATFORK_REGISTERED: AtomicBool = AtomicBool::new(false);

// The registry lock is held across fork (taken in `prepare`, released in both
// processes) so a child never inherits it locked by a thread that no longer
// exists. It is only ever held for map operations, never across I/O.
extern "C" fn atfork_prepare() {
    REGISTRY.hold_for_fork();
}

extern "C" fn atfork_parent() {
    // SAFETY: taken by atfork_prepare on this thread just before the fork.
    unsafe { REGISTRY.release_after_fork() };
}

extern "C" fn atfork_child() {
    fork::child_started();
    // SAFETY: taken by atfork_prepare in the parent before the fork.
    unsafe { REGISTRY.release_after_fork() };
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

#[cfg(feature = "testkit")]
/// Whether the fork handler is registered (by the constructor or lazily).
pub fn atfork_registered() -> bool {
    ATFORK_REGISTERED.load(Ordering::Acquire)
}

/// The first backoff window after a failed discovery.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// The longest backoff window (each consecutive failure doubles it).
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How soon (ms) a client looks again for the result of a background refresh:
/// well inside the `since` window it passes (`refresh_interval`, at most 1 s).
pub fn poll_ms(refresh_interval: Duration) -> u64 {
    let window = refresh_interval.min(Duration::from_secs(1)).as_millis() as u64;
    (window / 4).clamp(1, 25)
}

/// What makes two discoveries of one address give different answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    endpoint: String,
    tls: bool,
    tls_identity: String,
    ignore_cluster_errors: bool,
    serverless: bool,
}

impl Key {
    fn new(endpoint: &str, opts: &DiscoveryOptions) -> Result<Key> {
        let tls_identity = match (&opts.connect.tls, opts.tls_identity.is_empty()) {
            // Options built by hand with a connector but no identity: only that
            // connector (and clones sharing it) may share the entry.
            (Some(c), true) => format!("connector@{:p}", Arc::as_ptr(c)),
            _ => opts.tls_identity.clone(),
        };
        Ok(Key {
            endpoint: endpoint_key(endpoint)?,
            tls: opts.connect.tls.is_some() || opts.serverless,
            tls_identity,
            ignore_cluster_errors: opts.ignore_cluster_errors,
            serverless: opts.serverless,
        })
    }
}

/// What is known about one configuration endpoint.
#[derive(Debug)]
pub struct Cluster {
    key: Key,
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
    /// Consecutive failed discoveries, and until when callers get the last
    /// error without a new attempt.
    failures: u32,
    retry_at: Option<Instant>,
    /// The address the endpoint itself last answered from.
    endpoint_peer: Option<IpAddr>,
    /// The fork generation of a background refresh in flight.
    background: Option<u64>,
}

/// The outcome of [`Cluster::refresh_in_background`].
#[derive(Debug)]
pub enum Background {
    /// Nothing to wait for: the configuration the cache holds (refreshed
    /// recently, or the last good one after a recent failure).
    Done(Option<Arc<Config>>),
    /// A refresh runs on another thread; ask again shortly.
    Running,
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The configuration endpoint, its name resolved afresh.
    Endpoint,
    /// One of the cluster's own nodes.
    Node,
}

fn disjoint(a: &Config, b: &Config) -> bool {
    a.nodes.iter().all(|n| !b.nodes.contains(n))
}

impl Cluster {
    /// The configuration endpoint, normalised to `host:port`.
    pub fn endpoint(&self) -> &str {
        &self.key.endpoint
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

    /// Until when a caller without a configuration gets the last error
    /// instead of a new attempt (`None`: no failure since the last success).
    pub fn retry_at(&self) -> Option<Instant> {
        self.state.lock().retry_at
    }

    /// The last error while inside the backoff window (`None` outside it).
    fn backing_off(&self, now: Instant) -> Option<Error> {
        let st = self.state.lock();
        match (&st.last_failure, st.retry_at) {
            (Some((_, e)), Some(until)) if now < until => Some(e.clone()),
            _ => None,
        }
    }

    /// The cached configuration, discovering first if there is none yet.
    /// After a failure, callers inside the backoff window, and callers that
    /// find another one retrying, get the last error at once.
    pub fn get_or_discover(&self, opts: &DiscoveryOptions) -> Result<Arc<Config>> {
        if let Some(c) = self.config() {
            return Ok(c);
        }
        let waited_since = Instant::now();
        if let Some(e) = self.backing_off(waited_since) {
            return Err(e);
        }
        let _turn = match self.discovering.try_lock() {
            Some(turn) => turn,
            None => {
                // Someone is discovering. After an earlier failure that is a
                // retry: do not queue behind it. A first discovery is waited
                // for, and its result shared.
                if let Some((_, e)) = &self.state.lock().last_failure {
                    return Err(e.clone());
                }
                self.discovering.lock()
            }
        };
        {
            let st = self.state.lock();
            if let Some(c) = &st.config {
                return Ok(c.clone());
            }
            if let Some((at, err)) = &st.last_failure {
                let in_window = st.retry_at.is_some_and(|t| Instant::now() < t);
                if *at >= waited_since || in_window {
                    return Err(err.clone());
                }
            }
        }
        self.discover_locked(opts)
    }

    /// Re-discover now. On success the new configuration replaces the old one
    /// when its payload differs and its version did not go down (or it comes
    /// from a new cluster, see the module doc); on failure the last good
    /// configuration stays and the error is returned. Not held back by the
    /// backoff window: the caller asked for it.
    pub fn refresh(&self, opts: &DiscoveryOptions) -> Result<Arc<Config>> {
        let _turn = self.discovering.lock();
        self.discover_locked(opts)
    }

    /// Re-discover unless a discovery of this endpoint succeeded after `since`
    /// (then that result is used): clients sharing the endpoint refresh once.
    /// `known` nodes are asked first, one per call in turn, then the endpoint
    /// itself with its DNS name resolved afresh, so a cluster replaced behind
    /// DNS is found again while a down endpoint does not stop a refresh.
    /// `all_dead`: the caller finds every known node dead (evidence that a
    /// lower version with a disjoint node list is a new cluster).
    pub fn refresh_if_older(
        &self,
        since: Instant,
        known: &[(String, u16)],
        all_dead: bool,
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
        if !known.is_empty() && !all_dead {
            let (host, port) = &known[start % known.len()];
            // A node is asked strictly: it must answer with a config, never stand in for one.
            let strict = DiscoveryOptions {
                ignore_cluster_errors: false,
                ..opts.clone()
            };
            let command = self.state.lock().command;
            let endpoint = addr::join_host_port(host, *port);
            if let Ok(found) = discovery::discover(&endpoint, &strict, command) {
                if found.command.is_some() {
                    return self.apply_result(Ok(found), Source::Node, false);
                }
            }
        }
        let command = self.state.lock().command;
        let result = discovery::discover(self.endpoint(), opts, command);
        self.apply_result(result, Source::Endpoint, all_dead)
    }

    /// [`Cluster::refresh_if_older`] on a background thread, never waiting:
    /// `Done` when a discovery succeeded or failed after `since` (nothing new
    /// to try yet), else `Running` (started now, or already in flight). The
    /// thread does not survive `fork()`; a child's registry starts over and
    /// starts its own.
    pub fn refresh_in_background(
        self: &Arc<Self>,
        since: Instant,
        known: Vec<(String, u16)>,
        all_dead: bool,
        opts: &DiscoveryOptions,
    ) -> Background {
        let gen = generation();
        {
            let mut st = self.state.lock();
            if st.last_success.is_some_and(|t| t > since)
                || st.last_failure.as_ref().is_some_and(|(t, _)| *t > since)
            {
                return Background::Done(st.config.clone());
            }
            if st.background == Some(gen) {
                return Background::Running;
            }
            st.background = Some(gen);
        }
        let cluster = self.clone();
        let opts = opts.clone();
        let spawned = std::thread::Builder::new()
            .name("elasticache-refresh".into())
            .spawn(move || {
                // Cleared however the refresh ends, so the next one can start.
                struct Clear(Arc<Cluster>);
                impl Drop for Clear {
                    fn drop(&mut self) {
                        self.0.state.lock().background = None;
                    }
                }
                let clear = Clear(cluster);
                let _ = clear.0.refresh_if_older(since, &known, all_dead, &opts);
                drop(clear);
                // This thread's events (node list changed, refresh failed),
                // handed over now that it holds no lock.
                crate::events::dispatch_pending();
            });
        match spawned {
            Ok(_) => Background::Running,
            Err(_) => {
                // No thread to be had: skip this refresh rather than block a request.
                let mut st = self.state.lock();
                st.background = None;
                Background::Done(st.config.clone())
            }
        }
    }

    fn discover_locked(&self, opts: &DiscoveryOptions) -> Result<Arc<Config>> {
        let command = self.state.lock().command;
        let result = discovery::discover(self.endpoint(), opts, command);
        self.apply_result(result, Source::Endpoint, false)
    }

    fn apply_result(
        &self,
        result: Result<discovery::Discovered>,
        source: Source,
        all_dead: bool,
    ) -> Result<Arc<Config>> {
        let mut st = self.state.lock();
        st.discoveries += 1;
        match result {
            Ok(found) => {
                st.command = found.command.or(st.command);
                st.last_failure = None;
                st.failures = 0;
                st.retry_at = None;
                st.last_success = Some(Instant::now());
                let peer = found.peer.map(|p| p.ip());
                let keep_old = match &st.config {
                    Some(old) if old.payload == found.config.payload => true,
                    Some(old) if found.config.version < old.version => {
                        let moved = source == Source::Endpoint
                            && peer.is_some()
                            && st.endpoint_peer.is_some()
                            && peer != st.endpoint_peer;
                        // A lagging answer of the same cluster shares its nodes;
                        // a cluster re-created behind the name shares none.
                        !(disjoint(old, &found.config) && (moved || all_dead))
                    }
                    _ => false,
                };
                if source == Source::Endpoint && peer.is_some() {
                    st.endpoint_peer = peer;
                }
                if !keep_old {
                    crate::events::config_changed(
                        self.endpoint(),
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
                crate::events::refresh_failed(self.endpoint(), &e);
                let now = Instant::now();
                st.failures = st.failures.saturating_add(1);
                let doublings = (st.failures - 1).min(16);
                let window = BACKOFF_START
                    .saturating_mul(1u32 << doublings)
                    .min(BACKOFF_MAX);
                st.retry_at = Some(now + window);
                st.last_failure = Some((now, e.clone()));
                Err(e)
            }
        }
    }
}

struct Registry {
    generation: u64,
    clusters: HashMap<Key, Arc<Cluster>>,
}

static REGISTRY: ForkLock<Option<Registry>> = ForkLock::new(None);

/// Normalise an endpoint string to the `host:port` key the cache uses.
pub fn endpoint_key(endpoint: &str) -> Result<String> {
    let (host, port) = addr::split_host_port(endpoint)?;
    Ok(addr::join_host_port(&host.to_ascii_lowercase(), port))
}

/// The cache entry for `endpoint` discovered over plain text with default
/// options, created empty on first use.
pub fn cluster(endpoint: &str) -> Result<Arc<Cluster>> {
    cluster_for(endpoint, &DiscoveryOptions::default())
}

/// The cache entry for `endpoint` discovered with `opts` (TLS settings,
/// `ignore_cluster_errors`, `serverless`), created empty on first use.
pub fn cluster_for(endpoint: &str, opts: &DiscoveryOptions) -> Result<Arc<Cluster>> {
    Ok(entry(Key::new(endpoint, opts)?))
}

/// This process's entry for the same endpoint and settings as `cluster`
/// (after `fork()`, a child's own, empty one).
pub fn reopen(cluster: &Cluster) -> Arc<Cluster> {
    entry(cluster.key.clone())
}

fn entry(key: Key) -> Arc<Cluster> {
    ensure_atfork();
    let gen = generation();
    let mut guard = lock_registry(gen);
    let reg = guard.get_or_insert_with(|| Registry {
        generation: gen,
        clusters: HashMap::new(),
    });
    reg.clusters
        .entry(key.clone())
        .or_insert_with(|| {
            Arc::new(Cluster {
                key,
                state: Mutex::new(ClusterState::default()),
                discovering: Mutex::new(()),
            })
        })
        .clone()
}

/// Lock the registry, starting over if a fork happened since it was filled.
fn lock_registry(gen: u64) -> ForkGuard<'static, Option<Registry>> {
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
    let r = cluster_for(endpoint, opts).and_then(|c| c.get_or_discover(opts));
    crate::events::dispatch_pending();
    r
}

/// Re-discover `endpoint` now (see [`Cluster::refresh`]).
pub fn refresh(endpoint: &str, opts: &DiscoveryOptions) -> Result<Arc<Config>> {
    let r = cluster_for(endpoint, opts).and_then(|c| c.refresh(opts));
    crate::events::dispatch_pending();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> DiscoveryOptions {
        discovery::options(100, 100, false)
    }

    #[test]
    fn entries_are_keyed_by_what_changes_the_answer() {
        let ep = "Key-Test.example:11211";
        let plain = cluster_for(ep, &opts()).unwrap();
        assert!(Arc::ptr_eq(
            &plain,
            &cluster("key-test.example:11211").unwrap()
        ));
        let mut tls = opts();
        tls.connect.tls = Some(crate::net::tls::TlsOptions::default().connector());
        tls.tls_identity = "server_name=a".into();
        let mut other_name = tls.clone();
        other_name.tls_identity = "server_name=b".into();
        let lenient = discovery::options(100, 100, true);
        let serverless = DiscoveryOptions {
            serverless: true,
            ..opts()
        };
        let all = [
            plain,
            cluster_for(ep, &tls).unwrap(),
            cluster_for(ep, &other_name).unwrap(),
            cluster_for(ep, &lenient).unwrap(),
            cluster_for(ep, &serverless).unwrap(),
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert!(
                    !Arc::ptr_eq(a, b),
                    "{:?} and {:?} share an entry",
                    a.key,
                    b.key
                );
            }
            assert_eq!(a.endpoint(), "key-test.example:11211");
        }
        // Timeouts do not change the answer: same entry.
        let slow = discovery::options(5000, 5000, false);
        assert!(Arc::ptr_eq(&all[0], &cluster_for(ep, &slow).unwrap()));
        assert!(Arc::ptr_eq(&all[1], &reopen(&all[1])));
    }

    #[test]
    fn backoff_starts_at_one_second_and_doubles_to_thirty() {
        let c = cluster_for("backoff-test.invalid:1", &opts()).unwrap();
        let mut windows = Vec::new();
        for _ in 0..8 {
            let before = Instant::now();
            let _ = c.apply_result(
                Err(Error::NoServers {
                    detail: "test".into(),
                }),
                Source::Endpoint,
                false,
            );
            let w = c.retry_at().unwrap() - before;
            windows.push(w.as_secs());
        }
        assert_eq!(windows, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert!(c.get_or_discover(&opts()).is_err());
        assert_eq!(c.discoveries(), 8, "a call inside the window tried again");
    }
}
