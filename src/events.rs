//! What happens to the cluster, reported to one process-wide handler:
//! discovery done, nodes added, removed or re-addressed, a failed refresh, a
//! node ejected or revived, a fork detected.
//!
//! Events are found where the library holds its own locks (the registry's
//! state, a client's maintenance turn), and a handler may call back into the
//! library (log through a binding, ask for metrics): so they are never handed
//! to it there. `emit` queues an event on the calling thread, and
//! `dispatch_pending` hands the queue to the handler from a place where this
//! thread holds no lock of the library; the client calls it on the way out of
//! every path that can emit. With no handler set, `emit` is one relaxed load.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::discovery::Config;
use crate::error::Error;
use crate::pool::NodePool;

/// What happened. The numbers are part of the C ABI.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A configuration endpoint gave a new node list (first discovery or a change).
    DiscoveryDone = 1,
    /// A node appeared in the node list.
    NodeAdded = 2,
    /// A node left the node list.
    NodeRemoved = 3,
    /// A node kept its name but got a new IP.
    NodeReaddressed = 4,
    /// A discovery or refresh failed (the last good node list stays in use).
    RefreshFailed = 5,
    /// A node failed `failure_limit` times in a row and is out until its retry time.
    NodeEjected = 6,
    /// An ejected node's retry time came: it takes requests again.
    NodeRevived = 7,
    /// The process is a child after `fork()`: connections are opened afresh.
    ForkDetected = 8,
    /// A node does not speak the final meta protocol (memcached before
    /// 1.6.10): leases and invalidation fall back to plain get/set/delete there.
    MetaUnsupported = 9,
}

impl EventKind {
    /// A short lower-case name ("node_ejected").
    pub fn name(self) -> &'static str {
        match self {
            EventKind::DiscoveryDone => "discovery_done",
            EventKind::NodeAdded => "node_added",
            EventKind::NodeRemoved => "node_removed",
            EventKind::NodeReaddressed => "node_readdressed",
            EventKind::RefreshFailed => "refresh_failed",
            EventKind::NodeEjected => "node_ejected",
            EventKind::NodeRevived => "node_revived",
            EventKind::ForkDetected => "fork_detected",
            EventKind::MetaUnsupported => "meta_unsupported",
        }
    }

    /// The kind with C number `n`.
    pub fn from_u32(n: u32) -> Option<EventKind> {
        use EventKind::*;
        [
            DiscoveryDone,
            NodeAdded,
            NodeRemoved,
            NodeReaddressed,
            RefreshFailed,
            NodeEjected,
            NodeRevived,
            ForkDetected,
            MetaUnsupported,
        ]
        .into_iter()
        .find(|k| *k as u32 == n)
    }
}

/// One event. Text fields are empty when they do not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The node concerned, as `host:port` (the address connected to).
    pub node: String,
    /// The configuration endpoint concerned (`host:port`).
    pub endpoint: String,
    /// The configuration version (discovery and node-list events).
    pub config_version: u64,
    /// Nodes listed before the change (node-list events).
    pub nodes_before: u32,
    /// Nodes listed after the change (node-list events).
    pub nodes_after: u32,
    /// Why: the error of a failed refresh or of the failure that ejected a
    /// node, the new address of a re-addressed node, the new fork generation,
    /// the version of a node without the meta protocol and what falls back.
    pub reason: String,
}

impl Event {
    fn new(kind: EventKind) -> Event {
        Event {
            kind,
            node: String::new(),
            endpoint: String::new(),
            config_version: 0,
            nodes_before: 0,
            nodes_after: 0,
            reason: String::new(),
        }
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind.name())?;
        if !self.node.is_empty() {
            write!(f, " node={}", self.node)?;
        }
        if !self.endpoint.is_empty() {
            write!(f, " endpoint={}", self.endpoint)?;
        }
        if matches!(
            self.kind,
            EventKind::DiscoveryDone
                | EventKind::NodeAdded
                | EventKind::NodeRemoved
                | EventKind::NodeReaddressed
        ) {
            write!(
                f,
                " version={} nodes={}->{}",
                self.config_version, self.nodes_before, self.nodes_after
            )?;
        }
        if !self.reason.is_empty() {
            write!(f, " reason={}", self.reason)?;
        }
        Ok(())
    }
}

/// A handler for every event of the process.
pub type Handler = Arc<dyn Fn(&Event) + Send + Sync>;

static ACTIVE: AtomicBool = AtomicBool::new(false);
static HANDLER: RwLock<Option<Handler>> = RwLock::new(None);
static FORK_REPORTED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static QUEUE: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
    static DISPATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Set (or with `None` remove) the process-wide handler. A call already
/// running the old handler on another thread may still finish after this
/// returns.
pub fn set_handler(handler: Option<Handler>) {
    let on = handler.is_some();
    *HANDLER.write() = handler;
    ACTIVE.store(on, Ordering::Release);
}

/// Whether a handler is set (events are only built when one is).
#[inline]
pub(crate) fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Queue an event for the handler (see [`dispatch_pending`]).
pub(crate) fn emit(ev: Event) {
    if !active() {
        return;
    }
    // A thread being torn down has no queue left: the event is dropped.
    let _ = QUEUE.try_with(|q| q.borrow_mut().push(ev));
}

/// Hand this thread's queued events to the handler. Call only where this
/// thread holds none of the library's locks. A handler that causes events
/// gets them after it returns, from the same loop.
#[inline]
pub(crate) fn dispatch_pending() {
    if !active() {
        return;
    }
    dispatch_slow();
}

#[cold]
fn dispatch_slow() {
    if DISPATCHING.try_with(|d| d.replace(true)).unwrap_or(true) {
        return;
    }
    loop {
        let batch = QUEUE
            .try_with(|q| std::mem::take(&mut *q.borrow_mut()))
            .unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        let handler = HANDLER.read().clone();
        if let Some(h) = handler {
            for ev in &batch {
                // A handler that panics loses its event, not the caller's call.
                let _ = catch_unwind(AssertUnwindSafe(|| h(ev)));
            }
        }
    }
    let _ = DISPATCHING.try_with(|d| d.set(false));
}

/// Report a new configuration for `endpoint`: the first one as discovery
/// done, a later one as discovery done plus one event per node added,
/// removed or re-addressed.
pub(crate) fn config_changed(endpoint: &str, old: Option<&Config>, new: &Config) {
    if !active() {
        return;
    }
    let before = old.map_or(0, |c| c.nodes.len()) as u32;
    let after = new.nodes.len() as u32;
    let base = |kind| Event {
        endpoint: endpoint.to_string(),
        config_version: new.version,
        nodes_before: before,
        nodes_after: after,
        ..Event::new(kind)
    };
    let label =
        |n: &crate::discovery::Node| crate::net::addr::join_host_port(n.connect_host(), n.port);
    let identity = |n: &crate::discovery::Node| {
        let name = if n.host.is_empty() { &n.ip } else { &n.host };
        (name.clone(), n.port)
    };
    let mut done = base(EventKind::DiscoveryDone);
    done.reason = new.nodes.iter().map(label).collect::<Vec<_>>().join(",");
    emit(done);
    let Some(old) = old else { return };
    let before_map: HashMap<_, _> = old.nodes.iter().map(|n| (identity(n), n)).collect();
    let after_map: HashMap<_, _> = new.nodes.iter().map(|n| (identity(n), n)).collect();
    for n in &new.nodes {
        match before_map.get(&identity(n)) {
            None => emit(Event {
                node: label(n),
                ..base(EventKind::NodeAdded)
            }),
            Some(o) if o.ip != n.ip => emit(Event {
                node: label(n),
                reason: format!("was {}", label(o)),
                ..base(EventKind::NodeReaddressed)
            }),
            Some(_) => {}
        }
    }
    for o in &old.nodes {
        if !after_map.contains_key(&identity(o)) {
            emit(Event {
                node: label(o),
                ..base(EventKind::NodeRemoved)
            });
        }
    }
}

/// Report a failed discovery or refresh of `endpoint`.
pub(crate) fn refresh_failed(endpoint: &str, error: &Error) {
    if !active() {
        return;
    }
    emit(Event {
        endpoint: endpoint.to_string(),
        reason: error.to_string(),
        ..Event::new(EventKind::RefreshFailed)
    });
}

/// Report (and count) that `node` was ejected after `why`, for `retry`.
#[cold]
pub(crate) fn node_ejected(node: &NodePool, why: &Error, retry: std::time::Duration) {
    node.metrics().ejected();
    if !active() {
        return;
    }
    emit(Event {
        node: node.label().to_string(),
        reason: format!("{why} (out for {} s)", retry.as_secs()),
        ..Event::new(EventKind::NodeEjected)
    });
}

/// `NodePool::revive_if_due`, reporting a revival.
pub(crate) fn revive_if_due(node: &NodePool) -> bool {
    let revived = node.revive_if_due();
    if revived && active() {
        emit(Event {
            node: node.label().to_string(),
            ..Event::new(EventKind::NodeRevived)
        });
    }
    revived
}

/// Report, once per fork generation however many clients notice it, that
/// this process is a child after `fork()`.
pub(crate) fn fork_detected(generation: u64) {
    if FORK_REPORTED.fetch_max(generation, Ordering::AcqRel) >= generation || !active() {
        return;
    }
    emit(Event {
        reason: format!("fork generation {generation}"),
        ..Event::new(EventKind::ForkDetected)
    });
}

/// Report that `node` lacks the final meta protocol; `reason` names its
/// version and what falls back.
#[cold]
pub(crate) fn meta_unsupported(node: &str, reason: String) {
    if !active() {
        return;
    }
    emit(Event {
        node: node.to_string(),
        reason,
        ..Event::new(EventKind::MetaUnsupported)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::Node;

    fn cfg(version: u64, nodes: &[(&str, &str)]) -> Config {
        Config {
            version,
            nodes: nodes
                .iter()
                .map(|(h, ip)| Node {
                    host: h.to_string(),
                    ip: ip.to_string(),
                    port: 11211,
                })
                .collect(),
            payload: Vec::new(),
            serverless: false,
        }
    }

    #[test]
    fn kinds_round_trip() {
        for n in 1..=9 {
            assert_eq!(EventKind::from_u32(n).map(|k| k as u32), Some(n));
        }
        assert_eq!(EventKind::from_u32(0), None);
        assert_eq!(EventKind::from_u32(10), None);
    }

    #[test]
    fn config_diff_names_each_node() {
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let s = seen.clone();
        let me = std::thread::current().id();
        set_handler(Some(Arc::new(move |e: &Event| {
            if std::thread::current().id() == me {
                s.lock().push(e.clone())
            }
        })));
        let old = cfg(
            1,
            &[("a", "10.0.0.1"), ("b", "10.0.0.2"), ("c", "10.0.0.3")],
        );
        let new = cfg(
            2,
            &[("a", "10.0.0.1"), ("b", "10.0.0.9"), ("d", "10.0.0.4")],
        );
        config_changed("cfg:11211", Some(&old), &new);
        dispatch_pending();
        set_handler(None);
        let got: Vec<(EventKind, String)> = seen
            .lock()
            .iter()
            .filter(|e| e.endpoint == "cfg:11211")
            .map(|e| (e.kind, e.node.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (EventKind::DiscoveryDone, String::new()),
                (EventKind::NodeReaddressed, "10.0.0.9:11211".into()),
                (EventKind::NodeAdded, "10.0.0.4:11211".into()),
                (EventKind::NodeRemoved, "10.0.0.3:11211".into()),
            ]
        );
    }
}
