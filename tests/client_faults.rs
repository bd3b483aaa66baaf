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
