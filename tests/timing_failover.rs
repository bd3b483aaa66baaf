//! Failover against the clock: a killed node fails within the timeouts and is
//! ejected, then used again after retry_timeout; an explicit refresh keeps an
//! ejected node scheduled for revival; a fork while another thread holds the
//! refresh does not deadlock the child. Sleeps order the steps here, so this
//! binary runs alone with one test thread (scripts/test.sh).

use std::time::{Duration, Instant};

use elasticache::client::Client;
use elasticache::options::Options;
use elasticache::testkit::{
    client_for, fork_and_wait, keys_by_node, ChildEnd, LocalCluster, Memcached, Request,
};
use elasticache::Error;

/// Scheduling slack on a busy 2-core machine.
const MARGIN: Duration = Duration::from_millis(300);

fn short(o: &mut Options) {
    o.connect_timeout = Duration::from_millis(300);
    o.io_timeout = Duration::from_millis(300);
}

#[test]
fn killed_node_is_ejected_then_revived() {
    let mut nodes: Vec<Memcached> = (0..3).map(|_| Memcached::start().unwrap()).collect();
    let retry = Duration::from_secs(1);
    let c = client_for(&nodes, |o| {
        short(o);
        o.failure_limit = 2;
        o.retry_timeout = retry;
        o.remove_failed = true;
    });
    let by_node = keys_by_node(&c, &nodes, 300);
    for k in by_node.iter().flatten() {
        c.set(k.as_bytes(), k.as_bytes(), 0, 0).unwrap();
    }
    let victim = nodes[0].addr();
    nodes[0].kill();

    // Ops on other nodes keep working; ops on the victim's keys fail fast
    // (refused connections: well under one connect timeout each) until the
    // failure limit ejects it.
    assert_eq!(
        c.get(by_node[1][0].as_bytes()).unwrap().unwrap().value,
        by_node[1][0].as_bytes()
    );
    let t0 = Instant::now();
    for (attempt, key) in by_node[0][..2].iter().enumerate() {
        match c.get(key.as_bytes()) {
            Err(Error::Connection { addr, .. }) => assert_eq!(addr, victim),
            other => panic!("attempt {attempt} on the dead node: {other:?}"),
        }
    }
    let took = t0.elapsed();
    assert!(took < MARGIN, "two refused connections took {took:?}");

    // Ejected: its keys now go to the next node on the ring (misses there, not errors).
    for k in &by_node[0][..20] {
        let owner = c.server_for(k.as_bytes()).unwrap();
        assert_ne!(owner, victim, "{k} moved off the ejected node");
        assert_eq!(c.get(k.as_bytes()).unwrap(), None);
    }
    // Keys of the other nodes did not move (consistent hashing).
    for k in by_node[1].iter().chain(&by_node[2]).take(100) {
        assert_eq!(c.get(k.as_bytes()).unwrap().unwrap().value, k.as_bytes());
    }

    // The node comes back; after retry_timeout the client uses it again.
    nodes[0].restart().unwrap();
    nodes[0]
        .command(&format!("set {} 0 0 1\r\nx", by_node[0][0]))
        .unwrap();
    std::thread::sleep(retry + Duration::from_millis(100));
    let back = c.get(by_node[0][0].as_bytes()).unwrap();
    assert_eq!(
        back.map(|i| i.value),
        Some(b"x".to_vec()),
        "revived node serves its keys again"
    );
    assert_eq!(c.server_for(by_node[0][0].as_bytes()).unwrap(), victim);
}

#[test]
fn explicit_refresh_keeps_an_ejected_node_scheduled_for_revival() {
    let mut cluster = LocalCluster::start(2).unwrap();
    let retry = Duration::from_millis(400);
    let c = Client::from_endpoint(
        &cluster.endpoint_addr(),
        Options {
            connect_timeout: Duration::from_millis(300),
            io_timeout: Duration::from_millis(300),
            failure_limit: 1,
            retry_timeout: retry,
            refresh_interval: Duration::ZERO,
            ..Options::default()
        },
    )
    .unwrap();
    let victim = cluster.nodes()[1].clone();
    let victim_label = format!("{}:{}", victim.ip, victim.port);
    let key = elasticache::testkit::key_on(&c, &victim_label, "rv:");
    // Kill the node behind the cluster's back (it stays listed), fail once: ejected.
    cluster.server_mut(victim.port).unwrap().kill();
    match c.get(key.as_bytes()) {
        Err(Error::Connection { addr, .. }) => assert_eq!(addr, victim_label),
        other => panic!("expected a connection error, got {other:?}"),
    }
    assert_ne!(
        c.server_for(key.as_bytes()).unwrap(),
        victim_label,
        "ejected"
    );
    cluster.server_mut(victim.port).unwrap().restart().unwrap();
    c.refresh().unwrap();
    std::thread::sleep(retry + Duration::from_millis(200));
    assert_eq!(
        c.server_for(key.as_bytes()).unwrap(),
        victim_label,
        "revived after retry_timeout"
    );
    c.set(key.as_bytes(), b"back", 0, 0).unwrap();
}

#[test]
fn fork_while_another_thread_is_refreshing_does_not_deadlock_the_child() {
    let cluster = LocalCluster::start(2).unwrap();
    let io_timeout = Duration::from_millis(1500);
    let c = Client::from_endpoint(
        &cluster.endpoint_addr(),
        Options {
            connect_timeout: Duration::from_millis(300),
            io_timeout,
            refresh_interval: Duration::from_millis(100),
            ..Options::default()
        },
    )
    .unwrap();
    c.set(b"fk", b"v", 0, 0).unwrap();
    let ep = cluster.endpoint();
    // The endpoint hangs, so the next due refresh (started by a request, run
    // on the library's background refresh thread) waits a whole I/O timeout
    // in the middle of discovery.
    ep.set_hang(true);
    std::thread::sleep(Duration::from_millis(150));
    let asked_before = ep.requests(Request::ConfigGet);
    std::thread::scope(|s| {
        s.spawn(|| {
            let _ = c.get(b"fk");
        });
        // Wait until the refresh has sent its request and waits on the hung
        // endpoint: it cannot be over before `io_timeout` from then.
        let t0 = Instant::now();
        while ep.requests(Request::ConfigGet) == asked_before {
            assert!(t0.elapsed() < io_timeout / 2, "no refresh started");
            std::thread::sleep(Duration::from_millis(5));
        }
        let sent = Instant::now();
        std::thread::sleep(Duration::from_millis(50));
        let ((), end) = fork_and_wait(
            Duration::from_secs(10),
            || {
                // The parent makes the endpoint answer again: the child's
                // refresh discovers, then needs the maintenance lock that the
                // parent's refreshing thread held at the fork.
                std::thread::sleep(Duration::from_millis(300));
                let refreshed = c.refresh().is_ok();
                refreshed
                    && c.get(b"fk")
                        .ok()
                        .flatten()
                        .is_some_and(|it| it.value == b"v")
            },
            || {
                // Still refreshing at the fork (checked right after it: the
                // hung request cannot end before its I/O timeout).
                assert!(
                    sent.elapsed() < io_timeout,
                    "the refresh was over before the fork: the test proves nothing"
                );
                ep.set_hang(false);
            },
        );
        assert_eq!(end, ChildEnd::Exited(0), "the child refreshed and read");
    });
}
