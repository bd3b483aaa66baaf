//! Failures and fork with real memcached processes: a killed node is ejected
//! and its keys move, it is used again after retry_timeout, ejection without
//! remove_failed fails fast, and a forked child never shares a socket.

use std::time::{Duration, Instant};

use elasticache::client::Client;
use elasticache::options::Options;
use elasticache::ring::ServerSpec;
use elasticache::testkit::Memcached;
use elasticache::Error;

fn client_for(servers: &[Memcached], tweak: impl FnOnce(&mut Options)) -> Client {
    let mut opts = Options {
        connect_timeout: Duration::from_millis(300),
        io_timeout: Duration::from_millis(300),
        ..Options::default()
    };
    tweak(&mut opts);
    let specs = servers
        .iter()
        .map(|m| ServerSpec {
            host: m.ip().to_string(),
            port: m.port(),
            weight: 1,
        })
        .collect();
    Client::from_servers(specs, opts).unwrap()
}

/// Keys owned by each node, by index, found through the client's own placement.
fn keys_by_node(c: &Client, nodes: &[Memcached], n: usize) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new(); nodes.len()];
    for i in 0..n {
        let k = format!("key:{i}");
        let owner = c.server_for(k.as_bytes()).unwrap();
        let idx = nodes.iter().position(|m| m.addr() == owner).unwrap();
        out[idx].push(k);
    }
    out
}

#[test]
fn killed_node_is_ejected_then_revived() {
    let mut nodes: Vec<Memcached> = (0..3).map(|_| Memcached::start().unwrap()).collect();
    let c = client_for(&nodes, |o| {
        o.failure_limit = 2;
        o.retry_timeout = Duration::from_secs(1);
        o.remove_failed = true;
    });
    let by_node = keys_by_node(&c, &nodes, 300);
    for k in by_node.iter().flatten() {
        c.set(k.as_bytes(), k.as_bytes(), 0, 0).unwrap();
    }
    let victim = nodes[0].addr();
    nodes[0].kill();

    // Ops on other nodes keep working; ops on the victim's keys fail fast
    // (refused connections) until the failure limit ejects it.
    assert_eq!(
        c.get(by_node[1][0].as_bytes()).unwrap().unwrap().value,
        by_node[1][0].as_bytes()
    );
    let t0 = Instant::now();
    for (attempt, key) in by_node[0][..2].iter().enumerate() {
        match c.get(key.as_bytes()) {
            Err(e @ Error::Connection { .. }) => assert!(e.to_string().contains(&victim), "{e}"),
            other => panic!("attempt {attempt} on the dead node: {other:?}"),
        }
    }
    assert!(
        t0.elapsed() < Duration::from_millis(700),
        "failures come within the timeouts"
    );

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
    std::thread::sleep(Duration::from_millis(1100));
    let back = c.get(by_node[0][0].as_bytes()).unwrap();
    assert_eq!(
        back.map(|i| i.value),
        Some(b"x".to_vec()),
        "revived node serves its keys again"
    );
    assert_eq!(c.server_for(by_node[0][0].as_bytes()).unwrap(), victim);
}

#[test]
fn without_remove_failed_an_ejected_node_fails_fast() {
    let mut nodes: Vec<Memcached> = (0..2).map(|_| Memcached::start().unwrap()).collect();
    let c = client_for(&nodes, |o| {
        o.failure_limit = 1;
        o.retry_timeout = Duration::from_secs(30);
        o.remove_failed = false;
    });
    let by_node = keys_by_node(&c, &nodes, 100);
    let victim = nodes[0].addr();
    nodes[0].kill();
    assert!(matches!(
        c.get(by_node[0][0].as_bytes()),
        Err(Error::Connection { .. })
    ));
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
    let before = elasticache::registry::generation();
    // SAFETY: the child only uses the client and exits with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let mut ok = elasticache::registry::generation() == before + 1;
        for i in 0..500 {
            let k = format!("child:{i}");
            ok &= c.set(k.as_bytes(), k.as_bytes(), 1, 0).is_ok();
            ok &= c
                .get(k.as_bytes())
                .ok()
                .flatten()
                .is_some_and(|it| it.value == k.as_bytes() && it.flags == 1);
        }
        ok &= c
            .get(b"pre:3")
            .ok()
            .flatten()
            .is_some_and(|it| it.value == b"parent");
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    // The parent keeps working concurrently on the same (inherited) client.
    for i in 0..500 {
        let k = format!("parent:{i}");
        c.set(k.as_bytes(), k.as_bytes(), 2, 0).unwrap();
        let it = c.get(k.as_bytes()).unwrap().unwrap();
        assert_eq!((it.value.as_slice(), it.flags), (k.as_bytes(), 2));
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child saw only its own replies"
    );
    assert_eq!(elasticache::registry::generation(), before);
    // Each node has seen connections from both processes: the child opened its own.
    let conns: u64 = nodes
        .iter()
        .map(|n| {
            let s = n.command("stats").unwrap();
            s.lines()
                .find_map(|l| l.strip_prefix("STAT total_connections "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap()
        })
        .sum();
    // 2 from the parent (one per node) + 2 from the child + our 2 stats connections.
    assert!(conns >= 6, "total connections {conns}");
}

/// A listener that accepts and answers each request with `reply`, one byte
/// every `gap` (a node that is alive but far too slow).
fn dribbling_server(reply: &'static [u8], gap: Duration) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(4) {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                if s.read(&mut buf).unwrap_or(0) == 0 {
                    return;
                }
                for b in reply {
                    if s.write_all(&[*b]).is_err() {
                        return;
                    }
                    std::thread::sleep(gap);
                }
            });
        }
    });
    port
}

#[test]
fn a_dribbling_reply_times_out_within_the_io_timeout() {
    let port = dribbling_server(
        b"VALUE k 0 5\r\nhello\r\nEND\r\n",
        Duration::from_millis(60),
    );
    let c = Client::from_servers(
        vec![ServerSpec {
            host: "127.0.0.1".into(),
            port,
            weight: 1,
        }],
        Options {
            io_timeout: Duration::from_millis(400),
            ..Options::default()
        },
    )
    .unwrap();
    let t0 = Instant::now();
    let r = c.get(b"k");
    let took = t0.elapsed();
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    // One I/O timeout for the whole reply, not one per read (+20% for a busy box).
    assert!(took < Duration::from_millis(480), "took {took:?}");
}

#[test]
fn a_multi_get_with_silent_nodes_costs_one_io_timeout() {
    let real = Memcached::start().unwrap();
    let silent: Vec<std::net::TcpListener> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut specs = vec![ServerSpec {
        host: "127.0.0.1".into(),
        port: real.port(),
        weight: 1,
    }];
    specs.extend(silent.iter().map(|l| ServerSpec {
        host: "127.0.0.1".into(),
        port: l.local_addr().unwrap().port(),
        weight: 1,
    }));
    let c = Client::from_servers(
        specs,
        Options {
            io_timeout: Duration::from_millis(400),
            failure_limit: 100,
            ..Options::default()
        },
    )
    .unwrap();
    let keys: Vec<Vec<u8>> = (0..60).map(|i| format!("s:{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
    let t0 = Instant::now();
    let got = c.get_multi(&refs, false);
    let took = t0.elapsed();
    assert!(
        took < Duration::from_millis(480),
        "two silent nodes took {took:?}"
    );
    let timeouts = got
        .iter()
        .filter(|r| matches!(r, Err(Error::Timeout { .. })))
        .count();
    let misses = got.iter().filter(|r| matches!(r, Ok(None))).count();
    assert!(
        timeouts > 10 && misses > 5,
        "timeouts {timeouts}, misses {misses}"
    );
}

#[test]
fn waiting_for_a_free_connection_is_not_the_nodes_fault() {
    use elasticache::pool::{NodeAddr, NodePool};
    use elasticache::transport::ConnectOptions;
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
    assert!(matches!(e.error, Error::Timeout { .. }));
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

#[test]
fn explicit_refresh_keeps_an_ejected_node_scheduled_for_revival() {
    let mut cluster = elasticache::testkit::LocalCluster::start(2).unwrap();
    let c = Client::from_endpoint(
        &cluster.endpoint_addr(),
        Options {
            connect_timeout: Duration::from_millis(300),
            io_timeout: Duration::from_millis(300),
            failure_limit: 1,
            retry_timeout: Duration::from_millis(400),
            refresh_interval: Duration::ZERO,
            ..Options::default()
        },
    )
    .unwrap();
    let victim = cluster.nodes()[1].clone();
    let victim_label = format!("{}:{}", victim.ip, victim.port);
    let key = (0..1000)
        .map(|i| format!("rv:{i}"))
        .find(|k| c.server_for(k.as_bytes()).unwrap() == victim_label)
        .unwrap();
    // Kill the node behind the cluster's back (it stays listed), fail once: ejected.
    kill_node(&mut cluster, victim.port);
    assert!(c.get(key.as_bytes()).is_err());
    assert_ne!(
        c.server_for(key.as_bytes()).unwrap(),
        victim_label,
        "ejected"
    );
    restart_node(&mut cluster, victim.port);
    c.refresh().unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        c.server_for(key.as_bytes()).unwrap(),
        victim_label,
        "revived after retry_timeout"
    );
    c.set(key.as_bytes(), b"back", 0, 0).unwrap();
}

fn kill_node(cluster: &mut elasticache::testkit::LocalCluster, port: u16) {
    cluster.server_mut(port).unwrap().kill();
}

fn restart_node(cluster: &mut elasticache::testkit::LocalCluster, port: u16) {
    cluster.server_mut(port).unwrap().restart().unwrap();
}

#[test]
fn fork_while_another_thread_is_refreshing_does_not_deadlock_the_child() {
    let cluster = elasticache::testkit::LocalCluster::start(2).unwrap();
    let c = Client::from_endpoint(
        &cluster.endpoint_addr(),
        Options {
            connect_timeout: Duration::from_millis(300),
            io_timeout: Duration::from_millis(1500),
            refresh_interval: Duration::from_millis(100),
            ..Options::default()
        },
    )
    .unwrap();
    c.set(b"fk", b"v", 0, 0).unwrap();
    // The endpoint hangs, so the next due refresh holds the client's
    // maintenance lock for a whole I/O timeout on another thread.
    cluster.endpoint().set_hang(true);
    std::thread::sleep(Duration::from_millis(150));
    std::thread::scope(|s| {
        s.spawn(|| {
            let _ = c.get(b"fk");
        });
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: the child only uses the client and exits with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // By now the parent has made the endpoint answer again: the
            // child's refresh discovers, then needs the maintenance lock that
            // the parent's refreshing thread held at the fork.
            std::thread::sleep(Duration::from_millis(300));
            let refreshed = c.refresh().is_ok();
            let ok = c
                .get(b"fk")
                .ok()
                .flatten()
                .is_some_and(|it| it.value == b"v");
            unsafe { libc::_exit(if refreshed && ok { 0 } else { 1 }) };
        }
        cluster.endpoint().set_hang(false);
        let t0 = Instant::now();
        let mut status = 0;
        loop {
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
                unsafe { libc::waitpid(pid, &mut status, 0) };
                panic!("the child deadlocked");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child status {status}"
        );
    });
}
