//! Failures and fork with real memcached processes: ejection without
//! remove_failed fails fast, a forked child never shares a socket, and a busy
//! pool is not a failing node. (The clock-bound failover tests are in
//! tests/timing_failover.rs.)

use std::time::Duration;

use elasticache::options::Options;
use elasticache::testkit::{client_for, fork_and_wait, keys_by_node, ChildEnd, Memcached};
use elasticache::Error;

fn short(o: &mut Options) {
    o.connect_timeout = Duration::from_millis(300);
    o.io_timeout = Duration::from_millis(300);
}

/// memcached's count of connections ever accepted.
fn total_connections(m: &Memcached) -> u64 {
    let s = m.command("stats").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("STAT total_connections "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no total_connections in {s:?}"))
}

#[test]
fn without_remove_failed_an_ejected_node_fails_fast() {
    let mut nodes: Vec<Memcached> = (0..2).map(|_| Memcached::start().unwrap()).collect();
    let c = client_for(&nodes, |o| {
        short(o);
        o.failure_limit = 1;
        o.retry_timeout = Duration::from_secs(30);
        o.remove_failed = false;
    });
    let by_node = keys_by_node(&c, &nodes, 100);
    let victim = nodes[0].addr();
    nodes[0].kill();
    match c.get(by_node[0][0].as_bytes()) {
        Err(Error::Connection { addr, .. }) => assert_eq!(addr, victim),
        other => panic!("expected a refused connection, got {other:?}"),
    }
    for k in &by_node[0][..5] {
        match c.get(k.as_bytes()) {
            Err(Error::ServerDead { addr }) => assert_eq!(addr, victim),
            other => panic!("expected ServerDead, got {other:?}"),
        }
        assert_eq!(
            c.server_for(k.as_bytes()).unwrap(),
            victim,
            "keys never move without remove_failed"
        );
    }
    c.set(by_node[1][0].as_bytes(), b"ok", 0, 0).unwrap();
}

#[test]
fn parent_and_child_each_see_only_their_own_replies() {
    let nodes: Vec<Memcached> = (0..2).map(|_| Memcached::start().unwrap()).collect();
    let c = client_for(&nodes, |o| o.io_timeout = Duration::from_secs(2));
    // Open connections in the parent before forking.
    for i in 0..20 {
        c.set(format!("pre:{i}").as_bytes(), b"parent", 0, 0)
            .unwrap();
    }
    // Each reading opens one connection of its own, counted in the next one.
    let before: Vec<u64> = nodes.iter().map(total_connections).collect();
    let generation = elasticache::fork::generation();
    let ((), end) = fork_and_wait(
        Duration::from_secs(20),
        || {
            let mut ok = elasticache::fork::generation() == generation + 1;
            for i in 0..500 {
                let k = format!("child:{i}");
                ok &= c.set(k.as_bytes(), k.as_bytes(), 1, 0).is_ok();
                ok &= c
                    .get(k.as_bytes())
                    .ok()
                    .flatten()
                    .is_some_and(|it| it.value == k.as_bytes() && it.flags == 1);
            }
            ok && c
                .get(b"pre:3")
                .ok()
                .flatten()
                .is_some_and(|it| it.value == b"parent")
        },
        || {
            // The parent keeps working concurrently on the same (inherited) client.
            for i in 0..500 {
                let k = format!("parent:{i}");
                c.set(k.as_bytes(), k.as_bytes(), 2, 0).unwrap();
                let it = c.get(k.as_bytes()).unwrap().unwrap();
                assert_eq!((it.value.as_slice(), it.flags), (k.as_bytes(), 2));
            }
        },
    );
    assert_eq!(
        end,
        ChildEnd::Exited(0),
        "the child saw only its own replies"
    );
    assert_eq!(elasticache::fork::generation(), generation);
    // The parent kept its pooled connections; the child, writing keys on both
    // nodes, had to open its own: each node accepted the second reading's
    // connection plus at least one from the child. A child reusing the
    // parent's sockets leaves a difference of exactly 1.
    for (n, b) in nodes.iter().zip(&before) {
        let opened = total_connections(n) - b;
        assert!(
            opened >= 2,
            "{}: {opened} connections since the fork",
            n.addr()
        );
    }
    // And the parent's connections are still its own.
    assert_eq!(c.get(b"child:7").unwrap().unwrap().value, b"child:7");
    assert_eq!(c.get(b"parent:7").unwrap().unwrap().flags, 2);
}

#[test]
fn waiting_for_a_free_connection_is_not_the_nodes_fault() {
    use elasticache::net::connect::ConnectOptions;
    use elasticache::pool::{NodeAddr, NodePool};
    let m = Memcached::start().unwrap();
    let pool = NodePool::new(
        NodeAddr {
            host: "127.0.0.1".into(),
            port: m.port(),
            listed_ip: String::new(),
        },
        ConnectOptions {
            io_timeout: Duration::from_millis(100),
            ..ConnectOptions::default()
        },
        1,
    );
    let held = pool.checkout("get").unwrap();
    let e = pool.checkout("get").unwrap_err();
    assert!(
        matches!(&e.error, Error::Timeout { addr, .. } if *addr == m.addr()),
        "{:?}",
        e.error
    );
    assert!(!e.node_failed, "a busy pool is not a failing node");
    pool.checkin(held);
    assert!(pool.checkout("get").is_ok());
    // A refused connection is the node's failure.
    let gone = NodePool::new(
        NodeAddr {
            host: "127.0.0.1".into(),
            port: 1,
            listed_ip: String::new(),
        },
        ConnectOptions::default(),
        1,
    );
    assert!(gone.checkout("get").unwrap_err().node_failed);
}
