//! A running client follows a live cluster (emulated endpoint + real memcached):
//! nodes added, removed and replaced are picked up within the refresh interval
//! without a restart, keys on untouched nodes keep hitting, a down endpoint
//! leaves the last list serving, and a killed node triggers an early refresh.
//!
//! "Within the refresh interval" is measured: each change is followed within
//! the interval plus [`MARGIN`] (one discovery on loopback and scheduling on a
//! busy machine). Timing-bound, so this binary runs alone with one test thread.

use std::time::{Duration, Instant};

use elasticache::client::Client;
use elasticache::options::Options;
use elasticache::testkit::LocalCluster;
use elasticache::Error;

/// Scheduling slack on a loaded 2-core machine, on top of what is promised.
const MARGIN: Duration = Duration::from_millis(300);

/// An early refresh after a node failure comes within this (src/client.rs).
const EARLY_REFRESH: Duration = Duration::from_secs(1);

fn opts(refresh_ms: u64) -> Options {
    Options {
        connect_timeout: Duration::from_millis(300),
        io_timeout: Duration::from_millis(300),
        refresh_interval: Duration::from_millis(refresh_ms),
        retry_timeout: Duration::from_millis(500),
        ..Options::default()
    }
}

fn labels(c: &Client) -> Vec<String> {
    let mut v = c.servers().unwrap();
    v.sort();
    v
}

fn expected(cluster: &LocalCluster) -> Vec<String> {
    let mut v: Vec<String> = cluster
        .nodes()
        .iter()
        .map(|n| format!("{}:{}", n.ip, n.port))
        .collect();
    v.sort();
    v
}

/// Run operations until the client's node list equals the cluster's, or fail
/// after `limit`; returns how long it took.
fn until_followed(c: &Client, cluster: &LocalCluster, limit: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let _ = c.get(b"poke");
        if labels(c) == expected(cluster) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "client has {:?}, cluster lists {:?}",
            labels(c),
            expected(cluster)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write_keys(c: &Client, prefix: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let k = format!("{prefix}:{i}");
            c.set(k.as_bytes(), k.as_bytes(), 0, 0).unwrap();
            (k, c.server_for(format!("{prefix}:{i}").as_bytes()).unwrap())
        })
        .collect()
}

#[test]
fn follows_add_remove_and_replace_without_restart() {
    let mut cluster = LocalCluster::start(3).unwrap();
    let interval = Duration::from_millis(200);
    let c = Client::from_endpoint(&cluster.endpoint_addr(), opts(200)).unwrap();
    assert_eq!(labels(&c), expected(&cluster));
    let placed = write_keys(&c, "live", 600);

    // Add a node: about a quarter of the keys move to it, none between old nodes.
    let added = cluster.add_node().unwrap();
    until_followed(&c, &cluster, interval + MARGIN);
    let added_label = format!("{}:{}", added.ip, added.port);
    let mut moved = 0;
    for (k, before) in &placed {
        let now = c.server_for(k.as_bytes()).unwrap();
        if now != *before {
            assert_eq!(now, added_label, "{k} moved between old nodes");
            moved += 1;
        } else {
            assert_eq!(
                c.get(k.as_bytes()).unwrap().unwrap().value,
                k.as_bytes(),
                "{k} still hits"
            );
        }
    }
    assert!(
        (60..=260).contains(&moved),
        "{moved} of 600 keys moved to the new node"
    );

    // Remove a node: only its keys move; the others keep hitting.
    let victim = cluster.nodes()[0].clone();
    let victim_label = format!("{}:{}", victim.ip, victim.port);
    let placed = write_keys(&c, "live2", 300);
    cluster.remove_node(victim.port).unwrap();
    until_followed(&c, &cluster, interval + MARGIN);
    for (k, before) in &placed {
        if *before != victim_label {
            assert_eq!(c.server_for(k.as_bytes()).unwrap(), *before);
            assert_eq!(c.get(k.as_bytes()).unwrap().unwrap().value, k.as_bytes());
        }
    }

    // Replace a node (same host name, new IP and port): the running client connects to the new one.
    let old = cluster.nodes()[0].clone();
    let new = cluster.replace_node(old.port).unwrap();
    assert_eq!(new.host, old.host);
    until_followed(&c, &cluster, interval + MARGIN);
    let new_label = format!("{}:{}", new.ip, new.port);
    let k = elasticache::testkit::key_on(&c, &new_label, "r:");
    c.set(k.as_bytes(), b"on-new-node", 0, 0).unwrap();
    assert_eq!(
        cluster
            .server(new.port)
            .unwrap()
            .get_raw(k.as_bytes())
            .unwrap()
            .unwrap(),
        b"on-new-node"
    );
}

#[test]
fn same_version_with_a_new_ip_is_applied() {
    // The reported failure mode: a replaced node listed under the same version.
    let cluster = LocalCluster::start(2).unwrap();
    let c = Client::from_endpoint(&cluster.endpoint_addr(), opts(150)).unwrap();
    let spare = elasticache::testkit::Memcached::start().unwrap();
    let mut nodes = cluster.nodes();
    nodes[1].ip = spare.ip().to_string();
    nodes[1].port = spare.port();
    cluster.endpoint().set_nodes_same_version(nodes.clone());
    let t0 = Instant::now();
    loop {
        let _ = c.get(b"x");
        if c.servers().unwrap().contains(&spare.addr()) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_millis(150) + MARGIN,
            "same-version change not applied within the refresh interval"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn endpoint_down_keeps_the_last_list_serving() {
    let cluster = LocalCluster::start(2).unwrap();
    let c = Client::from_endpoint(&cluster.endpoint_addr(), opts(100)).unwrap();
    let placed = write_keys(&c, "down", 100);
    cluster.endpoint().stop();
    // Several refresh intervals pass with the endpoint down.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(500) {
        for (k, _) in placed.iter().take(10) {
            assert_eq!(c.get(k.as_bytes()).unwrap().unwrap().value, k.as_bytes());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(labels(&c), expected(&cluster));
    match c.refresh() {
        Err(Error::Connection { addr, .. }) => assert_eq!(addr, cluster.endpoint_addr()),
        other => panic!("an explicit refresh reports the refused endpoint: {other:?}"),
    }
    for (k, _) in &placed {
        assert_eq!(c.get(k.as_bytes()).unwrap().unwrap().value, k.as_bytes());
    }
    // The endpoint comes back on the same address and is used again.
    cluster.endpoint().start_again().unwrap();
    c.refresh().unwrap();
}

#[test]
fn a_failing_node_triggers_an_early_refresh() {
    // Refresh interval far longer than the test: only the failure can trigger it.
    let mut cluster = LocalCluster::start(3).unwrap();
    let c = Client::from_endpoint(&cluster.endpoint_addr(), opts(600_000)).unwrap();
    let old = cluster.nodes()[1].clone();
    let old_label = format!("{}:{}", old.ip, old.port);
    let key = elasticache::testkit::key_on(&c, &old_label, "e:");
    let new = cluster.replace_node(old.port).unwrap();
    let new_label = format!("{}:{}", new.ip, new.port);
    match c.get(key.as_bytes()) {
        Err(Error::Connection { addr, .. }) => assert_eq!(addr, old_label, "the old node is gone"),
        other => panic!("expected a refused connection, got {other:?}"),
    }
    let t0 = Instant::now();
    loop {
        if c.get(key.as_bytes()).is_ok() && c.servers().unwrap().contains(&new_label) {
            break;
        }
        assert!(
            t0.elapsed() < EARLY_REFRESH + MARGIN,
            "no refresh within {EARLY_REFRESH:?} of the failure"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!c.servers().unwrap().contains(&old_label));
}

#[test]
fn clients_of_one_endpoint_share_one_discovery() {
    let cluster = LocalCluster::start(2).unwrap();
    let ep = cluster.endpoint_addr();
    let clients: Vec<Client> = (0..5)
        .map(|_| Client::from_endpoint(&ep, opts(0)).unwrap())
        .collect();
    assert_eq!(
        cluster.endpoint().connections(),
        1,
        "the process-global cache discovered once"
    );
    for c in &clients {
        assert_eq!(labels(c), expected(&cluster));
    }
}
