//! Discovery on bad days (issue 15): hostile replies, option values at the
//! limits, a TLS client next to a plain one, a cluster re-created behind the
//! same name. Real memcached nodes; the configuration endpoint is the testkit
//! emulator or, where a test needs a fixed address, a stand-in of its own.
//! Time bounds live in tests/timing_discovery.rs; the limits here are only
//! "eventually, within several refresh intervals".

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use elasticache::client::Client;
use elasticache::discovery::{self, Node};
use elasticache::options::Options;
use elasticache::testkit::{ConfigEndpoint, LocalCluster, Memcached, Request};
use elasticache::transport::set_test_resolver_override;
use elasticache::{Error, Status};

const TIMEOUT_MS: u64 = 300;

fn node(host: &str, ip: &str, port: u16) -> Node {
    Node {
        host: host.to_string(),
        ip: ip.to_string(),
        port,
    }
}

fn config_reply(payload: &str) -> Vec<u8> {
    format!("CONFIG cluster 0 {}\r\n{payload}\r\nEND\r\n", payload.len()).into_bytes()
}

fn payload(version: u64, nodes: &[Node]) -> String {
    let entries: Vec<String> = nodes
        .iter()
        .map(|n| format!("{}|{}|{}", n.host, n.ip, n.port))
        .collect();
    format!("{version}\n{}\n", entries.join(" "))
}

fn client_opts(refresh_ms: u64) -> Options {
    Options {
        connect_timeout: Duration::from_millis(TIMEOUT_MS),
        io_timeout: Duration::from_millis(TIMEOUT_MS),
        refresh_interval: Duration::from_millis(refresh_ms),
        retry_timeout: Duration::from_millis(2000),
        ..Options::default()
    }
}

fn labels_of(nodes: &[Node]) -> Vec<String> {
    let mut v: Vec<String> = nodes.iter().map(|n| n.label()).collect();
    v.sort();
    v
}

fn servers(c: &Client) -> Vec<String> {
    let mut v = c.servers().unwrap();
    v.sort();
    v
}

// ---------------------------------------------------------------- defect 3: node cap

#[test]
fn a_reply_listing_more_nodes_than_any_cluster_is_a_discovery_error() {
    // 150,000 nodes fit in the 4 MB reply limit (about 3.6 MB).
    let many: Vec<Node> = (0..150_000u32)
        .map(|i| {
            let ip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
            node(&format!("n{i}"), &ip, 11211)
        })
        .collect();
    let reply = config_reply(&payload(1, &many));
    assert!(reply.len() < discovery::MAX_REPLY, "{}", reply.len());
    let ep = ConfigEndpoint::start(vec![node("a", "127.0.0.1", 1)]).unwrap();
    ep.set_raw_reply(Some(reply));
    let opts = discovery::options(2000, 2000, false);
    let e = discovery::discover(&ep.addr(), &opts, None).expect_err("150,000 nodes accepted");
    match &e {
        Error::Discovery { endpoint, detail } => {
            assert_eq!(endpoint, &ep.addr());
            assert!(detail.contains("4096"), "{detail}");
        }
        other => panic!("expected a discovery error, got {other:?}"),
    }
    assert_eq!(e.status(), Status::Discovery);
    assert!(e.to_string().contains(&ep.addr()), "{e}");

    // The cap itself is a valid size; one more is not.
    let at_cap = payload(1, &many[..4096]);
    let c = discovery::parse_payload("cfg:1", at_cap.as_bytes()).unwrap();
    assert_eq!(c.nodes.len(), 4096);
    let over = payload(1, &many[..4097]);
    let e = discovery::parse_payload("cfg:1", over.as_bytes()).unwrap_err();
    assert_eq!(e.status(), Status::Discovery, "{e}");
}

// ---------------------------------------------------------------- defect 11: cache key, options

#[test]
fn a_tls_client_never_reuses_a_node_list_discovered_over_plain_text() {
    let cluster = LocalCluster::start(1).unwrap();
    let addr = cluster.endpoint_addr();
    let plain = Client::from_endpoint(&addr, client_opts(0)).unwrap();
    assert_eq!(servers(&plain), labels_of(&cluster.nodes()));
    let before = cluster.endpoint().connections();

    let mut tls = client_opts(0);
    tls.set("tls", "true").unwrap();
    tls.set("tls_insecure_skip_verify", "true").unwrap();
    // The endpoint speaks plain text only: a TLS client must discover over
    // TLS itself, and that fails; the plain list must not stand in for it.
    let r = Client::from_endpoint(&addr, tls);
    assert!(r.is_err(), "the TLS client reused the plain-text node list");
    assert!(
        cluster.endpoint().connections() > before,
        "the TLS client never contacted the endpoint"
    );
    // The plain client still has its list.
    assert_eq!(servers(&plain), labels_of(&cluster.nodes()));
}

#[test]
fn option_values_near_u64_max_saturate_instead_of_wrapping() {
    let max = u64::MAX.to_string();
    let mut o = client_opts(0);
    for name in [
        "connect_timeout",
        "io_timeout",
        "retry_timeout",
        "refresh_interval",
        "refresh_interval_ms",
        "failure_limit",
        "max_value_size",
    ] {
        o.set(name, &max).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // Beyond u64 as well: a run of digits is "practically forever".
    o.set("io_timeout", "99999999999999999999999").unwrap();
    for d in [
        o.connect_timeout,
        o.io_timeout,
        o.retry_timeout,
        o.refresh_interval,
    ] {
        assert!(d >= Duration::from_secs(86_400), "{d:?}");
        assert!(d <= Duration::from_secs(100 * 86_400), "{d:?}");
    }
    assert_eq!(o.failure_limit, u32::MAX);
    // Garbage is still refused.
    assert!(o.set("io_timeout", "-1").is_err());
    assert!(o.set("io_timeout", "12x").is_err());

    // The client works with them: no deadline overflows, no refresh
    // interval wraps into "refresh on every request".
    let cluster = LocalCluster::start(1).unwrap();
    let c = Client::from_endpoint(&cluster.endpoint_addr(), o).unwrap();
    for i in 0..20 {
        let k = format!("sat:{i}");
        c.set(k.as_bytes(), b"v", 0, 0).unwrap();
        assert_eq!(c.get(k.as_bytes()).unwrap().unwrap().value, b"v");
    }
    std::thread::sleep(Duration::from_millis(100));
    let _ = c.get(b"sat:0");
    assert_eq!(cluster.endpoint().requests(Request::ConfigGet), 1);

    // A struct built by hand with Duration::MAX is saturated by the client.
    let by_hand = Options {
        io_timeout: Duration::MAX,
        connect_timeout: Duration::MAX,
        ..client_opts(0)
    };
    let mc = Memcached::start().unwrap();
    let spec = elasticache::ring::ServerSpec {
        host: mc.ip().to_string(),
        port: mc.port(),
        weight: 1,
    };
    let c = Client::from_servers(vec![spec], by_hand).unwrap();
    c.set(b"hand", b"v", 0, 0).unwrap();
    assert_eq!(c.get(b"hand").unwrap().unwrap().value, b"v");
}

// ---------------------------------------------------------------- defect 10: re-created cluster

/// A configuration endpoint stand-in on a fixed address (the testkit emulator
/// picks its own port): answers `config get cluster` with `reply` until dropped.
struct StandIn {
    stop: Arc<AtomicBool>,
}

impl StandIn {
    fn start(ip: &str, port: u16, reply: Vec<u8>) -> StandIn {
        let listener = TcpListener::bind((ip, port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let reply = reply.clone();
                        std::thread::spawn(move || serve_stand_in(s, &reply));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        StandIn { stop }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn serve_stand_in(mut s: TcpStream, reply: &[u8]) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        while let Some(eol) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=eol).collect();
            let answer: &[u8] = if line.starts_with(b"config get cluster") {
                reply
            } else {
                b"ERROR\r\n"
            };
            if s.write_all(answer).is_err() {
                return;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn mc_nodes(prefix: &str, servers: &[Memcached]) -> Vec<Node> {
    servers
        .iter()
        .enumerate()
        .map(|(i, m)| node(&format!("{prefix}{i}"), m.ip(), m.port()))
        .collect()
}

/// Run operations until the client lists `want` and a write lands on one of
/// those nodes; fails after `limit`.
fn until_adopted(c: &Client, want: &[Node], new_servers: &[Memcached], limit: Duration) {
    let t0 = Instant::now();
    loop {
        let ok = c.set(b"after", b"new", 0, 0).is_ok();
        if ok && servers(c) == labels_of(want) {
            let found = new_servers
                .iter()
                .any(|m| m.get_raw(b"after").unwrap().as_deref() == Some(b"new".as_slice()));
            assert!(found, "the write did not reach the new cluster");
            return;
        }
        assert!(
            t0.elapsed() < limit,
            "after {:?} the client still lists {:?}, the new cluster is {:?}",
            t0.elapsed(),
            servers(c),
            labels_of(want)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_cluster_recreated_behind_the_same_name_at_a_new_address_is_adopted() {
    let old_servers = vec![Memcached::start().unwrap(), Memcached::start().unwrap()];
    let new_servers = vec![Memcached::start().unwrap(), Memcached::start().unwrap()];
    let old = mc_nodes("old", &old_servers);
    let new = mc_nodes("new", &new_servers);
    let old_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let new_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
    let old_ep = ConfigEndpoint::start_on("127.0.0.2", old.clone()).unwrap();
    old_ep.set_config(5, old.clone());
    // The new cluster's endpoint answers on the same port at another address,
    // with a version that starts over.
    let _new_ep = StandIn::start("127.0.0.3", old_ep.port(), config_reply(&payload(1, &new)));
    let name = format!("cfg-{}.recreated.test", std::process::id());
    set_test_resolver_override(&name, Some(old_ip));
    let endpoint = format!("{name}:{}", old_ep.port());
    let c = Client::from_endpoint(&endpoint, client_opts(200)).unwrap();
    assert_eq!(servers(&c), labels_of(&old));
    c.set(b"before", b"old", 0, 0).unwrap();

    // The old cluster is deleted and the name now points at the new one.
    let mut old_servers = old_servers;
    for m in &mut old_servers {
        m.kill();
    }
    old_ep.stop();
    set_test_resolver_override(&name, Some(new_ip));
    until_adopted(&c, &new, &new_servers, Duration::from_secs(10));
    set_test_resolver_override(&name, None);
}

#[test]
fn every_known_node_dead_and_a_disjoint_list_with_a_lower_version_is_adopted() {
    let mut old_servers = vec![Memcached::start().unwrap(), Memcached::start().unwrap()];
    let new_servers = vec![Memcached::start().unwrap(), Memcached::start().unwrap()];
    let old = mc_nodes("old", &old_servers);
    let new = mc_nodes("new", &new_servers);
    let ep = ConfigEndpoint::start(old.clone()).unwrap();
    ep.set_config(5, old.clone());
    let c = Client::from_endpoint(&ep.addr(), client_opts(200)).unwrap();
    assert_eq!(servers(&c), labels_of(&old));
    // Re-created on the same endpoint address: only the dead nodes tell.
    for m in &mut old_servers {
        m.kill();
    }
    ep.set_config(1, new.clone());
    until_adopted(&c, &new, &new_servers, Duration::from_secs(10));
}

#[test]
fn a_lower_version_while_the_known_nodes_live_is_still_ignored() {
    let live_servers = vec![Memcached::start().unwrap(), Memcached::start().unwrap()];
    let live = mc_nodes("live", &live_servers);
    let ep = ConfigEndpoint::start(live.clone()).unwrap();
    ep.set_config(5, live.clone());
    let c = Client::from_endpoint(&ep.addr(), client_opts(100)).unwrap();
    // A lagging answer: lower version, other nodes (nobody listens there).
    ep.set_config(4, vec![node("lag", "127.0.0.1", 1)]);
    let asked = ep.requests(Request::ConfigGet);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(1500) {
        c.set(b"lag", b"v", 0, 0).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        ep.requests(Request::ConfigGet) > asked,
        "no refresh ran, so nothing was tested"
    );
    assert_eq!(servers(&c), labels_of(&live));
}

// ---------------------------------------------------------------- defect 8: fork

#[test]
fn a_forked_child_refreshes_on_its_own() {
    let mut cluster = LocalCluster::start(2).unwrap();
    let c = Client::from_endpoint(&cluster.endpoint_addr(), client_opts(100)).unwrap();
    c.set(b"fk", b"v", 0, 0).unwrap();
    // SAFETY: the child only uses the client and exits with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // The parent adds a node; the child learns of it through its own
        // refreshes (the parent's refresher thread does not exist here).
        let t0 = Instant::now();
        let mut ok = false;
        while t0.elapsed() < Duration::from_secs(8) {
            let _ = c.get(b"fk");
            if c.servers().map(|s| s.len()).unwrap_or(0) == 3 {
                ok = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    cluster.add_node().unwrap();
    let mut status = 0;
    let t0 = Instant::now();
    loop {
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if t0.elapsed() > Duration::from_secs(15) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!("the child hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child never saw the added node (status {status})"
    );
}
