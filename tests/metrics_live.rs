//! Per-node client-side metrics against real memcached: the counts match
//! the operations done, a killed node shows errors, an ejection and the
//! ejected state, and latencies land in the histogram.

use elasticache::client::Client;
use elasticache::metrics::{NodeSnapshot, NodeState};
use elasticache::testkit::{client_for, Memcached};

fn client(nodes: &[Memcached]) -> Client {
    client_for(nodes, |o| {
        for (k, v) in [
            ("connect_timeout", "300"),
            ("io_timeout", "300"),
            ("failure_limit", "2"),
            ("retry_timeout", "30"),
        ] {
            o.set(k, v).unwrap();
        }
    })
}

fn by_node(c: &Client, node: &str) -> NodeSnapshot {
    c.node_metrics()
        .unwrap()
        .into_iter()
        .find(|s| s.node == node)
        .unwrap()
}

#[test]
fn counts_match_the_operations() {
    let nodes = [Memcached::start().unwrap(), Memcached::start().unwrap()];
    let c = client(&nodes);
    let (a, b) = (nodes[0].addr(), nodes[1].addr());
    let keys_of = |owner: &str| -> Vec<String> {
        (0..2000)
            .map(|i| format!("key:{i}"))
            .filter(|k| c.server_for(k.as_bytes()).unwrap() == owner)
            .take(10)
            .collect()
    };
    let (ka, kb) = (keys_of(&a), keys_of(&b));
    assert_eq!((ka.len(), kb.len()), (10, 10));

    // On node a: 4 sets, 4 hits, 6 misses, 1 delete, 1 delete of a missing
    // key (an answer, not an error): 16 requests.
    for k in &ka[..4] {
        c.set(k.as_bytes(), b"v", 0, 0).unwrap();
    }
    for k in &ka {
        c.get(k.as_bytes()).unwrap();
    }
    c.delete(ka[0].as_bytes()).unwrap();
    assert!(c.delete(ka[0].as_bytes()).is_err());
    let s = by_node(&c, &a);
    assert_eq!(
        (
            s.requests,
            s.hits,
            s.misses,
            s.errors,
            s.timeouts,
            s.ejections
        ),
        (16, 4, 6, 0, 0, 0),
        "{s:?}"
    );
    assert_eq!(s.timed(), 16);
    assert_eq!(s.state, NodeState::Up);
    assert!(s.open_connections >= 1, "{s:?}");
    assert!(s.latency_sum_us > 0);
    let p50 = s.quantile_us(0.5).unwrap();
    assert!((8..=1 << 20).contains(&p50), "p50 {p50}");
    assert!(s.quantile_us(0.99).unwrap() >= p50);

    // A multi-get over both nodes: one request per node, hits and misses per key.
    c.set(kb[0].as_bytes(), b"v", 0, 0).unwrap();
    let all: Vec<&[u8]> = ka.iter().chain(&kb).map(|k| k.as_bytes()).collect();
    c.get_multi(&all, false);
    let (sa, sb) = (by_node(&c, &a), by_node(&c, &b));
    assert_eq!(
        (sa.requests, sa.hits, sa.misses),
        (17, 4 + 3, 6 + 7),
        "{sa:?}"
    );
    assert_eq!((sb.requests, sb.hits, sb.misses), (2, 1, 9), "{sb:?}");
}

#[test]
fn a_dead_node_shows_errors_and_its_ejection() {
    let mut nodes = [Memcached::start().unwrap(), Memcached::start().unwrap()];
    let c = client(&nodes);
    let a = nodes[0].addr();
    let key = elasticache::testkit::key_on(&c, &a, "key:");
    c.set(key.as_bytes(), b"v", 0, 0).unwrap();
    nodes[0].kill();
    // Two failures eject it (failure_limit 2); its keys then move to b
    // (remove_failed), so a's counters stop at two failed requests.
    for _ in 0..5 {
        let _ = c.get(key.as_bytes());
    }
    let s = by_node(&c, &a);
    assert_eq!(s.state, NodeState::Ejected, "{s:?}");
    assert_eq!(s.ejections, 1, "{s:?}");
    assert_eq!(s.errors, 2, "{s:?}");
    assert_eq!(s.requests, 3, "one set and two failed gets: {s:?}");
    assert_eq!(s.hits + s.misses, 0);
    assert_eq!(s.open_connections, 0, "{s:?}");
}
