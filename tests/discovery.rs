//! Discovery end to end: the emulated configuration endpoint (testkit::ConfigEndpoint)
//! in front of real memcached nodes (testkit::Memcached / LocalCluster).
//!
//! Every test has its own endpoint on its own port, so the process-global node
//! cache (keyed by endpoint) never mixes tests and they can run in parallel.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use elasticache::discovery::{self, Command, DiscoveryOptions, Node};
use elasticache::registry;
use elasticache::testkit::{ConfigEndpoint, Engine, LocalCluster, Memcached, Request, Variant};
use elasticache::{Error, Status};

/// Short timeouts keep the file fast; the emulator answers in well under 1 ms.
const TIMEOUT_MS: u64 = 300;

fn opts() -> DiscoveryOptions {
    discovery::options(TIMEOUT_MS, TIMEOUT_MS, false)
}

fn fake_node(host: &str, port: u16) -> Node {
    Node {
        host: host.to_string(),
        ip: "127.0.0.1".to_string(),
        port,
    }
}

/// A reply in the documented layout around `payload`, with a chosen byte count.
fn config_reply(count: usize, payload: &str) -> Vec<u8> {
    format!("CONFIG cluster 0 {count}\r\n{payload}\r\nEND\r\n").into_bytes()
}

/// A reply with the right byte count around `payload`.
fn counted(payload: &str) -> Vec<u8> {
    config_reply(payload.len(), payload)
}

/// Ask the server at `host:port` for its version: proves a discovered node is a
/// live memcached at the address the client would use.
fn memcached_version(host: &str, port: u16) -> String {
    let mut s = TcpStream::connect((host, port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(b"version\r\n").unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    while !buf.ends_with(b"\r\n") {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "{host}:{port} closed");
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buf).unwrap()
}

fn assert_live(nodes: &[Node]) {
    for n in nodes {
        let v = memcached_version(n.connect_host(), n.port);
        assert!(v.starts_with("VERSION 1.6"), "{}: {v:?}", n.label());
    }
}

/// The error of a discovery that must fail, with its message checked to name `endpoint`.
fn failure<T: std::fmt::Debug>(r: elasticache::Result<T>, endpoint: &str) -> (Error, String) {
    let e = r.expect_err("discovery should have failed");
    let msg = e.to_string();
    assert!(
        msg.contains(endpoint),
        "message does not name {endpoint}: {msg}"
    );
    (e, msg)
}

fn discovery_failure(ep: &ConfigEndpoint) -> String {
    let (e, msg) = failure(discovery::discover(&ep.addr(), &opts(), None), &ep.addr());
    match &e {
        Error::Discovery { endpoint, .. } => assert_eq!(endpoint, &ep.addr()),
        other => panic!("expected a discovery error, got {other:?}"),
    }
    assert_eq!(e.status(), Status::Discovery);
    msg
}

// ---------------------------------------------------------------- both commands

#[test]
fn config_get_lists_the_live_nodes() {
    let cluster = LocalCluster::start(3).unwrap();
    let ep = cluster.endpoint();
    let found = discovery::discover(&ep.addr(), &opts(), None).unwrap();
    assert_eq!(found.command, Some(Command::ConfigGet));
    assert_eq!(found.config.version, 1);
    assert_eq!(found.config.nodes, cluster.nodes());
    assert_eq!(found.config.payload, ep.payload());
    assert_live(&found.config.nodes);
    assert_eq!(ep.requests(Request::ConfigGet), 1);
    assert_eq!(ep.requests(Request::LegacyGet), 0);
    assert_eq!(ep.connections(), 1);
}

#[test]
fn legacy_get_when_asked_for_it() {
    let cluster = LocalCluster::start(2).unwrap();
    let ep = cluster.endpoint();
    let found = discovery::discover(&ep.addr(), &opts(), Some(Command::LegacyGet)).unwrap();
    assert_eq!(found.command, Some(Command::LegacyGet));
    assert_eq!(found.config.nodes, cluster.nodes());
    assert_eq!(ep.requests(Request::ConfigGet), 0);
    assert_eq!(ep.requests(Request::LegacyGet), 1);
}

#[test]
fn old_engine_falls_back_to_legacy_on_the_same_connection() {
    let cluster = LocalCluster::start_with(2, Variant::CrlfAfterVersion, Engine::Legacy).unwrap();
    let ep = cluster.endpoint();
    let found = discovery::discover(&ep.addr(), &opts(), None).unwrap();
    assert_eq!(found.command, Some(Command::LegacyGet));
    assert_eq!(found.config.nodes, cluster.nodes());
    assert_live(&found.config.nodes);
    assert_eq!(ep.requests(Request::ConfigGet), 1);
    assert_eq!(ep.requests(Request::LegacyGet), 1);
    assert_eq!(ep.connections(), 1);
}

#[test]
fn registry_discovers_and_caches() {
    let cluster = LocalCluster::start(2).unwrap();
    let ep = cluster.endpoint();
    let a = registry::get_or_discover(&ep.addr(), &opts()).unwrap();
    let b = registry::get_or_discover(&ep.addr(), &opts()).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(a.nodes, cluster.nodes());
    assert_live(&a.nodes);
    assert_eq!(ep.requests(Request::ConfigGet), 1);
    assert_eq!(registry::cluster(&ep.addr()).unwrap().discoveries(), 1);
}

// ---------------------------------------------------------------- layouts

#[test]
fn every_layout_variant_end_to_end() {
    for variant in Variant::all() {
        if variant == Variant::Ipv6 && !elasticache::testkit::support::require_ipv6_loopback() {
            continue;
        }
        let cluster = LocalCluster::start_with(2, variant, Engine::ElastiCache).unwrap();
        let ep = cluster.endpoint();
        let found = discovery::discover(&ep.addr(), &opts(), None)
            .unwrap_or_else(|e| panic!("{}: {e}", variant.name()));
        let c = &found.config;
        assert_eq!(c.nodes, cluster.nodes(), "{}", variant.name());
        assert_eq!(c.payload, ep.payload(), "{}", variant.name());
        let text = String::from_utf8(c.payload.clone()).unwrap();
        match variant {
            Variant::Standard => assert!(text.starts_with("1\nnode0001.")),
            Variant::CrlfAfterVersion => assert!(text.starts_with("1\r\n"), "{text:?}"),
            Variant::TrailingSpace => assert!(text.ends_with(" \n"), "{text:?}"),
            Variant::SpaceRuns => assert!(text.contains("   "), "{text:?}"),
            Variant::EmptyIp => {
                assert!(text.contains("localhost||"), "{text:?}");
                assert!(c.nodes.iter().all(|n| n.connect_host() == "localhost"));
            }
            Variant::Ipv6 => {
                assert!(text.contains("|::1|"), "{text:?}");
                assert!(c.nodes[0].label().starts_with("[::1]:"));
            }
            Variant::DigitHost => {
                assert!(
                    c.nodes.iter().all(|n| n.host.starts_with("000")),
                    "{text:?}"
                );
            }
        }
        // The nodes are reachable where the client would connect (the name for an
        // empty IP, the unbracketed IPv6 address, never the `.invalid` name).
        assert_live(&c.nodes);
    }
}

// ---------------------------------------------------------------- malformed

#[test]
fn malformed_replies_are_discovery_errors_quoting_the_bytes() {
    let ep = ConfigEndpoint::start(vec![fake_node("a", 11211)]).unwrap();
    let good = "1\nnode-a|127.0.0.1|11211\n";
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "byte count too small",
            config_reply(good.len() - 3, good),
            vec!["byte count", "node-a|127.0.0.1|11211"],
        ),
        (
            "byte count too large",
            config_reply(good.len() + 5, good),
            vec!["byte count", "does not match", "node-a|127.0.0.1|11211"],
        ),
        (
            "non-integer version",
            counted("v7\nnode-a|127.0.0.1|1\n"),
            vec!["not an integer", "\"v7\""],
        ),
        (
            "missing |",
            counted("1\nnode-a 127.0.0.1 11211\n"),
            vec!["host|ip|port", "\"node-a\""],
        ),
        (
            "one | only",
            counted("1\nnode-a|127.0.0.1:1\n"),
            vec!["host|ip|port", "node-a|127.0.0.1:1"],
        ),
        (
            "bad port",
            counted("1\nnode-a|127.0.0.1|99999\n"),
            vec!["port", "node-a|127.0.0.1|99999"],
        ),
        (
            "port not a number",
            counted("1\nnode-a|127.0.0.1|11x11\n"),
            vec!["port", "node-a|127.0.0.1|11x11"],
        ),
        (
            "garbage line",
            b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
            vec!["unexpected reply", "HTTP/1.1 400 Bad Request"],
        ),
        (
            "binary garbage with a LF",
            b"\x00\xffhello\n".to_vec(),
            vec!["\\x00\\xffhello\\n"],
        ),
        (
            "non-numeric byte count",
            b"CONFIG cluster 0 many\r\n".to_vec(),
            vec!["byte count", "CONFIG cluster 0 many"],
        ),
        (
            "server error",
            b"SERVER_ERROR out of memory\r\n".to_vec(),
            vec!["SERVER_ERROR out of memory"],
        ),
        (
            "ERROR to both commands",
            b"ERROR\r\n".to_vec(),
            vec![
                "not an ElastiCache configuration endpoint",
                "\"ERROR\\r\\n\" to `config get cluster`",
                "\"ERROR\\r\\n\" to `get AmazonElastiCache:cluster`",
                "ignore_cluster_errors",
            ],
        ),
    ];
    for (name, raw, wanted) in cases {
        ep.set_raw_reply(Some(raw));
        let msg = discovery_failure(&ep);
        for w in wanted {
            assert!(msg.contains(w), "{name}: {w:?} not in {msg}");
        }
    }
}

#[test]
fn malformed_legacy_reply_after_error_is_quoted() {
    let ep = ConfigEndpoint::start(vec![fake_node("a", 11211)]).unwrap();
    ep.set_engine(Engine::Legacy);
    let p = "1\nnode-a|127.0.0.1|0\n";
    ep.set_raw_reply_to(
        Request::LegacyGet,
        Some(
            format!(
                "VALUE AmazonElastiCache:cluster 0 {}\r\n{p}\r\nEND\r\n",
                p.len()
            )
            .into_bytes(),
        ),
    );
    let msg = discovery_failure(&ep);
    assert!(
        msg.contains("port") && msg.contains("node-a|127.0.0.1|0"),
        "{msg}"
    );
    assert_eq!(ep.requests(Request::ConfigGet), 1);
    assert_eq!(ep.requests(Request::LegacyGet), 1);
}

#[test]
fn truncated_reply_then_close() {
    let ep = ConfigEndpoint::start(vec![fake_node("node-a", 11211)]).unwrap();
    let full = ep.reply_to(Request::ConfigGet);
    for cut in [0, 10, 22, full.len() - 3] {
        ep.set_truncate(Some(cut));
        let msg = discovery_failure(&ep);
        assert!(msg.contains("connection closed"), "cut {cut}: {msg}");
        let shown = elasticache::error::quote_bytes(&full[..cut], 200);
        assert!(msg.contains(&shown), "cut {cut}: {shown} not in {msg}");
    }
}

// ---------------------------------------------------------------- network failures

#[test]
fn refused_connection_is_a_connection_error_and_later_calls_retry() {
    let cluster = LocalCluster::start(1).unwrap();
    let ep = cluster.endpoint();
    ep.stop();
    let (e, msg) = failure(registry::get_or_discover(&ep.addr(), &opts()), &ep.addr());
    assert!(
        matches!(&e, Error::Connection { addr, op: "connect", .. } if addr == &ep.addr()),
        "{e:?}"
    );
    assert_eq!(e.status(), Status::Connection);
    assert!(msg.contains("refused"), "{msg}");
    // A failed first discovery is not cached: the first call after the
    // backoff window (issue 15) tries again.
    ep.start_again().unwrap();
    std::thread::sleep(registry::BACKOFF_START + Duration::from_millis(100));
    let c = registry::get_or_discover(&ep.addr(), &opts()).unwrap();
    assert_eq!(c.nodes, cluster.nodes());
}

#[test]
fn unresolvable_host_is_a_host_lookup_error() {
    let endpoint = "no-such-host.invalid:11211";
    let (e, msg) = failure(
        discovery::discover(endpoint, &opts(), None),
        "no-such-host.invalid",
    );
    assert!(
        matches!(&e, Error::HostLookup { host, .. } if host == "no-such-host.invalid"),
        "{e:?}"
    );
    assert_eq!(e.status(), Status::HostLookup);
    let (e2, _) = failure(
        registry::get_or_discover(endpoint, &opts()),
        "no-such-host.invalid",
    );
    assert_eq!(e2.status(), Status::HostLookup, "{msg}");
}

// ---------------------------------------------------------------- plain memcached

#[test]
fn plain_memcached_needs_ignore_cluster_errors() {
    let mc = Memcached::start().unwrap();
    let addr = mc.addr();
    let (e, msg) = failure(discovery::discover(&addr, &opts(), None), &addr);
    assert_eq!(e.status(), Status::Discovery);
    for w in [
        "not an ElastiCache configuration endpoint",
        "\"ERROR\\r\\n\"",
        "\"END\\r\\n\"",
        "ignore_cluster_errors",
    ] {
        assert!(msg.contains(w), "{w:?} not in {msg}");
    }

    let lenient = discovery::options(TIMEOUT_MS, TIMEOUT_MS, true);
    let found = discovery::discover(&addr, &lenient, None).unwrap();
    assert_eq!(found.command, None);
    assert_eq!(found.config.version, 0);
    assert_eq!(
        found.config.nodes,
        vec![Node {
            host: "127.0.0.1".into(),
            ip: String::new(),
            port: mc.port()
        }]
    );
    // Through the cache too, and the single node is the memcached itself.
    let c = registry::get_or_discover(&addr, &lenient).unwrap();
    assert_eq!(c.nodes, found.config.nodes);
    assert_live(&c.nodes);
}

#[test]
fn plain_memcached_seeded_with_the_legacy_item_is_discovered() {
    // Amazon's own client tests seed a stock memcached this way.
    let node = Memcached::start().unwrap();
    let fake_endpoint = Memcached::start().unwrap();
    let payload = format!("9\nseeded.localcluster.invalid|127.0.0.1|{}\n", node.port());
    let reply = fake_endpoint
        .command(&format!(
            "set AmazonElastiCache:cluster 0 0 {}\r\n{payload}",
            payload.len()
        ))
        .unwrap();
    assert_eq!(reply, "STORED\r\n");
    let found = discovery::discover(&fake_endpoint.addr(), &opts(), None).unwrap();
    assert_eq!(found.command, Some(Command::LegacyGet));
    assert_eq!(found.config.version, 9);
    assert_eq!(found.config.nodes[0].port, node.port());
    assert_live(&found.config.nodes);
}

// ---------------------------------------------------------------- the global cache

#[test]
fn refresh_picks_up_an_added_node() {
    let mut cluster = LocalCluster::start(2).unwrap();
    let addr = cluster.endpoint_addr();
    let before = registry::get_or_discover(&addr, &opts()).unwrap();
    assert_eq!(before.nodes.len(), 2);
    let added = cluster.add_node().unwrap();
    let after = registry::refresh(&addr, &opts()).unwrap();
    assert_eq!(after.version, 2);
    assert_eq!(after.nodes, cluster.nodes());
    assert!(after.nodes.contains(&added));
    assert_live(&after.nodes);
    let cached = registry::get_or_discover(&addr, &opts()).unwrap();
    assert!(Arc::ptr_eq(&cached, &after));
    // Removing and replacing are picked up the same way.
    let gone = cluster.remove_node(before.nodes[0].port).unwrap();
    let replaced = cluster.replace_node(before.nodes[1].port).unwrap();
    let last = registry::refresh(&addr, &opts()).unwrap();
    assert_eq!(last.version, 4);
    assert!(!last.nodes.contains(&gone));
    assert!(last.nodes.contains(&replaced));
    assert_eq!(replaced.host, before.nodes[1].host);
    assert_ne!(replaced.ip, before.nodes[1].ip);
    assert_live(&last.nodes);
}

#[test]
fn refresh_keeps_the_last_good_config_when_the_endpoint_fails() {
    let mut cluster = LocalCluster::start(2).unwrap();
    let addr = cluster.endpoint_addr();
    let good = registry::get_or_discover(&addr, &opts()).unwrap();
    let ep = cluster.endpoint();

    ep.stop();
    let (e, _) = failure(registry::refresh(&addr, &opts()), &addr);
    assert_eq!(e.status(), Status::Connection);
    ep.start_again().unwrap();

    ep.set_raw_reply(Some(b"garbage\r\n".to_vec()));
    let (e, _) = failure(registry::refresh(&addr, &opts()), &addr);
    assert_eq!(e.status(), Status::Discovery);
    ep.set_raw_reply(None);

    ep.set_hang(true);
    let (e, _) = failure(registry::refresh(&addr, &opts()), &addr);
    assert_eq!(e.status(), Status::Timeout);
    ep.set_hang(false);

    for c in [
        registry::get_or_discover(&addr, &opts()).unwrap(),
        registry::cluster(&addr).unwrap().config().unwrap(),
    ] {
        assert!(Arc::ptr_eq(&c, &good));
    }
    // Back on the same port: the next refresh sees the change made meanwhile.
    cluster.add_node().unwrap();
    let fresh = registry::refresh(&addr, &opts()).unwrap();
    assert_eq!(fresh.nodes, cluster.nodes());
    assert_eq!(fresh.nodes.len(), 3);
}

#[test]
fn a_lower_version_is_ignored() {
    let ep = ConfigEndpoint::start(vec![fake_node("a", 1)]).unwrap();
    ep.set_config(5, vec![fake_node("a", 1), fake_node("b", 2)]);
    let addr = ep.addr();
    let v5 = registry::get_or_discover(&addr, &opts()).unwrap();
    assert_eq!(v5.version, 5);
    ep.set_config(4, vec![fake_node("c", 3)]);
    let still = registry::refresh(&addr, &opts()).unwrap();
    assert!(Arc::ptr_eq(&still, &v5));
    assert_eq!(ep.requests(Request::ConfigGet), 2);
    ep.set_config(6, vec![fake_node("c", 3)]);
    let v6 = registry::refresh(&addr, &opts()).unwrap();
    assert_eq!(v6.version, 6);
    assert_eq!(v6.nodes, vec![fake_node("c", 3)]);
}

#[test]
fn same_version_with_a_different_payload_is_applied() {
    let cluster = LocalCluster::start(2).unwrap();
    let ep = cluster.endpoint();
    let addr = ep.addr();
    let before = registry::get_or_discover(&addr, &opts()).unwrap();
    // A replaced node comes back on a new address under the same version.
    let newcomer = Memcached::start_on("127.0.0.9", &[]).unwrap();
    let mut nodes = cluster.nodes();
    nodes[0].ip = newcomer.ip().to_string();
    nodes[0].port = newcomer.port();
    ep.set_nodes_same_version(nodes.clone());
    let after = registry::refresh(&addr, &opts()).unwrap();
    assert_eq!(after.version, before.version);
    assert_eq!(after.nodes, nodes);
    assert_ne!(after.nodes, before.nodes);
    assert_live(&after.nodes);
    // An identical payload keeps the cached Arc.
    let again = registry::refresh(&addr, &opts()).unwrap();
    assert!(Arc::ptr_eq(&again, &after));
}

#[test]
fn a_legacy_endpoint_is_remembered() {
    let cluster = LocalCluster::start_with(2, Variant::Standard, Engine::Legacy).unwrap();
    let ep = cluster.endpoint();
    let addr = ep.addr();
    let c = registry::get_or_discover(&addr, &opts()).unwrap();
    assert_eq!(c.nodes, cluster.nodes());
    assert_eq!(ep.requests(Request::ConfigGet), 1);
    assert_eq!(ep.requests(Request::LegacyGet), 1);
    for i in 2..=3 {
        registry::refresh(&addr, &opts()).unwrap();
        assert_eq!(ep.requests(Request::ConfigGet), 1, "refresh {i}");
        assert_eq!(ep.requests(Request::LegacyGet), i, "refresh {i}");
    }
    assert_eq!(ep.connections(), 3);
}

/// A reply with no line feed on a connection the server keeps open: bytes that
/// cannot begin any reply line fail at once, quoted, not as a bare timeout.
#[test]
fn garbage_without_a_line_feed_is_quoted() {
    let ep = ConfigEndpoint::start(vec![fake_node("a", 11211)]).unwrap();
    ep.set_raw_reply(Some(b"garbage".to_vec()));
    let msg = discovery_failure(&ep);
    assert!(msg.contains("\"garbage\""), "{msg}");
}
