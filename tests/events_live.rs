//! Events from real memcached nodes behind the emulated configuration
//! endpoint: discovery done, a node added, removed and re-addressed, a node
//! ejected (with its failure) and revived, a refresh that failed. One test:
//! the handler is process-wide, and tests of one binary run in parallel.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use elasticache::client::Client;
use elasticache::events::{self, Event, EventKind};
use elasticache::options::Options;
use elasticache::testkit::LocalCluster;
use parking_lot::Mutex;

fn label(n: &elasticache::discovery::Node) -> String {
    format!("{}:{}", n.connect_host(), n.port)
}

/// Run `poke` until an event matching `want` arrives (or `within` passes).
fn wait_for(
    seen: &Mutex<Vec<Event>>,
    within: Duration,
    mut poke: impl FnMut(),
    want: impl Fn(&Event) -> bool,
) -> Option<(Event, Duration)> {
    let start = Instant::now();
    while start.elapsed() < within {
        poke();
        if let Some(e) = seen.lock().iter().find(|e| want(e)) {
            return Some((e.clone(), start.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn cluster_changes_and_failures_are_reported() {
    let seen = Arc::new(Mutex::new(Vec::<Event>::new()));
    let sink = seen.clone();
    let mut cluster = LocalCluster::start(3).unwrap();
    let endpoint = cluster.endpoint_addr();
    let client_cell: Arc<OnceLock<Arc<Client>>> = Arc::new(OnceLock::new());
    let (cell, ep) = (client_cell.clone(), endpoint.clone());
    // The handler calls back into the library: the registry's lock and the
    // cluster's state lock (held where the node list changes), and the
    // client's topology. Were events handed over under those locks, this
    // would deadlock.
    events::set_handler(Some(Arc::new(move |e: &Event| {
        let _ = elasticache::cluster::registry::cluster(&ep).map(|c| c.config());
        if let Some(c) = cell.get() {
            let _ = c.servers();
            let _ = c.node_metrics();
        }
        sink.lock().push(e.clone())
    })));
    let mut opts = Options::default();
    opts.set("refresh_interval_ms", "300").unwrap();
    opts.set("connect_timeout", "300").unwrap();
    opts.set("io_timeout", "300").unwrap();
    opts.set("failure_limit", "1").unwrap();
    opts.set("retry_timeout", "1").unwrap();
    let c = Arc::new(Client::from_endpoint(&endpoint, opts).unwrap());
    let _ = client_cell.set(c.clone());
    let ep_key = elasticache::cluster::registry::endpoint_key(&endpoint).unwrap();

    // Discovery done, dispatched before from_endpoint returned.
    {
        let s = seen.lock();
        let d = s
            .iter()
            .find(|e| e.kind == EventKind::DiscoveryDone && e.endpoint == ep_key)
            .expect("discovery done event");
        assert_eq!(d.nodes_after, 3);
        assert_eq!(d.config_version, 1);
        for n in cluster.nodes() {
            assert!(d.reason.contains(&label(&n)), "{d}");
        }
    }

    // A node added is reported within the refresh interval (plus slack for a
    // loaded machine), naming the node.
    let added = cluster.add_node().unwrap();
    let (ev, after) = wait_for(
        &seen,
        Duration::from_secs(5),
        || drop(c.get(b"poke")),
        |e| e.kind == EventKind::NodeAdded && e.node == label(&added),
    )
    .expect("node added event");
    assert_eq!((ev.nodes_before, ev.nodes_after), (3, 4), "{ev}");
    assert_eq!(ev.endpoint, ep_key);
    assert!(after < Duration::from_millis(300 + 1500), "took {after:?}");

    // Removed.
    let gone = cluster.remove_node(added.port).unwrap();
    wait_for(
        &seen,
        Duration::from_secs(5),
        || drop(c.get(b"poke")),
        |e| e.kind == EventKind::NodeRemoved && e.node == label(&gone),
    )
    .expect("node removed event");

    // Killed in place: the first failure ejects it (failure_limit 1) and the
    // event carries the error; after retry_timeout it is revived.
    let victim = cluster.nodes()[0].clone();
    cluster.server_mut(victim.port).unwrap().kill();
    let key = elasticache::testkit::key_on(&c, &label(&victim), "k");
    let (ev, _) = wait_for(
        &seen,
        Duration::from_secs(5),
        || drop(c.get(key.as_bytes())),
        |e| e.kind == EventKind::NodeEjected && e.node == label(&victim),
    )
    .expect("node ejected event");
    assert!(!ev.reason.is_empty(), "{ev}");
    cluster.server_mut(victim.port).unwrap().restart().unwrap();
    wait_for(
        &seen,
        Duration::from_secs(6),
        || drop(c.get(key.as_bytes())),
        |e| e.kind == EventKind::NodeRevived && e.node == label(&victim),
    )
    .expect("node revived event");

    // Replaced under the same host name with a new port: the old address
    // leaves the list and the new one joins.
    let old = cluster.nodes()[1].clone();
    let new = cluster.replace_node(old.port).unwrap();
    wait_for(
        &seen,
        Duration::from_secs(5),
        || drop(c.get(b"poke")),
        |e| {
            (e.kind == EventKind::NodeAdded || e.kind == EventKind::NodeReaddressed)
                && e.node == label(&new)
        },
    )
    .expect("replaced node reported");

    // The endpoint (and every node) unreachable: a refresh fails, with a reason.
    cluster.endpoint().stop();
    for n in cluster.nodes() {
        if let Some(s) = cluster.server_mut(n.port) {
            s.kill();
        }
    }
    let r = c.refresh();
    assert!(r.is_err(), "refresh with the endpoint down: {r:?}");
    let (ev, _) = wait_for(
        &seen,
        Duration::from_secs(1),
        || {},
        |e| e.kind == EventKind::RefreshFailed && e.endpoint == ep_key,
    )
    .expect("refresh failed event");
    assert!(!ev.reason.is_empty());

    events::set_handler(None);
    let n = seen.lock().len();
    drop(c.get(b"after"));
    assert_eq!(
        seen.lock().len(),
        n,
        "no events once the handler is removed"
    );
}
