//! Multi-key calls against broken nodes (scripted fakes beside a real
//! memcached): a silent node costs only its own keys, reply anomalies are
//! protocol errors naming the node, and a server's claims do not size our
//! buffers.

use std::time::{Duration, Instant};

use elasticache::client::Client;
use elasticache::options::Options;
use elasticache::ring::ServerSpec;
use elasticache::testkit::{FakeNode, Memcached, Script};
use elasticache::Error;

fn spec(port: u16) -> ServerSpec {
    ServerSpec {
        host: "127.0.0.1".into(),
        port,
        weight: 1,
    }
}

fn client(ports: &[u16], tweak: impl FnOnce(&mut Options)) -> Client {
    let mut o = Options {
        io_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        failure_limit: 2,
        retry_timeout: Duration::from_secs(30),
        ..Options::default()
    };
    tweak(&mut o);
    Client::from_servers(ports.iter().map(|&p| spec(p)).collect(), o).unwrap()
}

fn keys(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{prefix}:{i}").into_bytes())
        .collect()
}

fn refs(k: &[Vec<u8>]) -> Vec<&[u8]> {
    k.iter().map(Vec::as_slice).collect()
}

/// Which keys the client places on `addr`.
fn on(c: &Client, ks: &[Vec<u8>], addr: &str) -> Vec<bool> {
    ks.iter()
        .map(|k| c.server_for(k).unwrap() == addr)
        .collect()
}

#[test]
fn a_silent_node_costs_only_its_own_keys_in_every_multi_call() {
    // The silent node first in ring order, so it is read first.
    let silent = FakeNode::start(Script::Silent).unwrap();
    let real = Memcached::start().unwrap();
    // Without remove_failed an ejected node's keys fail fast (ServerDead)
    // instead of moving, so every call shows who is blamed.
    let c = client(&[silent.port(), real.port()], |o| o.remove_failed = false);
    let ks = keys("m", 80);
    let mine = on(&c, &ks, &silent.addr());
    assert!(mine.iter().any(|&m| m) && mine.iter().any(|&m| !m));
    for (k, &m) in ks.iter().zip(&mine) {
        if !m {
            real.command(&format!("set {} 0 0 1\r\nv", String::from_utf8_lossy(k)))
                .unwrap();
        }
    }
    // Several calls: with the healthy node blamed twice it would be ejected.
    for round in 0..3 {
        let got = c.get_multi(&refs(&ks), false);
        for ((k, r), &m) in ks.iter().zip(&got).zip(&mine) {
            let k = String::from_utf8_lossy(k);
            if m {
                match r {
                    Err(Error::Timeout { addr, .. }) | Err(Error::ServerDead { addr }) => {
                        assert_eq!(*addr, silent.addr(), "{k}")
                    }
                    other => panic!("round {round}: {k} on the silent node: {other:?}"),
                }
            } else {
                assert!(
                    matches!(r, Ok(Some(i)) if i.value == b"v"),
                    "round {round}: {k} on the healthy node: {r:?}"
                );
            }
        }
    }
    // set_multi and delete_multi: the healthy node's keys are stored and deleted.
    let items: Vec<(&[u8], &[u8], u32, i64)> = ks
        .iter()
        .map(|k| (k.as_slice(), b"w".as_slice(), 0, 0))
        .collect();
    let stored = c.store_multi(elasticache::protocol::StoreCommand::Set, &items);
    for (r, &m) in stored.iter().zip(&mine) {
        assert_eq!(r.is_ok(), !m, "{r:?}");
    }
    let deleted = c.delete_multi(&refs(&ks));
    for (r, &m) in deleted.iter().zip(&mine) {
        assert_eq!(r.is_ok(), !m, "{r:?}");
    }
    // The healthy node was never blamed: still in, still serving.
    c.set(b"after", b"x", 0, 0).unwrap_or(());
    for (k, &m) in ks.iter().zip(&mine) {
        if !m {
            assert_eq!(c.get(k).unwrap(), None, "deleted");
        }
    }
}

fn anomaly(script: Script) {
    let fake = FakeNode::start(script.clone()).unwrap();
    let c = client(&[fake.port()], |_| {});
    let ks = keys("a", 12);
    let got = c.get_multi(&refs(&ks), false);
    let mut protocol = 0;
    for (k, r) in ks.iter().zip(&got) {
        match r {
            Ok(Some(i)) => assert_eq!(i.value, *k, "{script:?}: a hit is its key's value"),
            Err(Error::Protocol { addr, .. }) => {
                assert_eq!(*addr, fake.addr());
                protocol += 1;
            }
            other => panic!(
                "{script:?}: {} read as {other:?}",
                String::from_utf8_lossy(k)
            ),
        }
    }
    assert!(protocol > 0, "{script:?}: no protocol error in {got:?}");
}

#[test]
fn reply_anomalies_are_protocol_errors_not_misses() {
    anomaly(Script::Reversed);
    anomaly(Script::UnknownKey);
    anomaly(Script::Duplicated);
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_gigantic_value_header_is_a_protocol_error_without_allocating() {
    let fake = FakeNode::start(Script::HugeHeader(1 << 30)).unwrap();
    let c = client(&[fake.port()], |_| {});
    let before = rss_kib();
    let t0 = Instant::now();
    match c.get(b"k") {
        Err(Error::Protocol { addr, detail, .. }) => {
            assert_eq!(addr, fake.addr());
            assert!(detail.contains("max_value_size"), "{detail}");
        }
        other => panic!("single get: {other:?}"),
    }
    let got = c.get_multi(&[b"k1".as_slice(), b"k2"], false);
    assert!(
        got.iter().all(|r| matches!(r, Err(Error::Protocol { .. }))),
        "{got:?}"
    );
    assert!(t0.elapsed() < Duration::from_millis(250), "refused at once");
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
}

#[test]
fn a_read_buffer_shrinks_back_after_a_large_value() {
    let m = Memcached::start_on("127.0.0.1", &["-I", "8m"]).unwrap();
    let c = client(&[m.port()], |o| o.max_value_size = 4 << 20);
    let big = vec![b'x'; 3 << 20];
    c.set(b"big", &big, 0, 0).unwrap();
    assert_eq!(c.get(b"big").unwrap().unwrap().value.len(), big.len());
    for _ in 0..8 {
        c.set(b"small", b"s", 0, 0).unwrap();
        c.get(b"small").unwrap();
    }
    let sizes = c.idle_read_buffers_for_test();
    assert!(!sizes.is_empty());
    assert!(
        sizes.iter().all(|&s| s <= 64 * 1024),
        "idle read buffers after small ops: {sizes:?}"
    );
}

#[test]
fn a_babbling_node_cannot_hold_a_multi_get_past_its_deadline() {
    let silent = FakeNode::start(Script::Silent).unwrap();
    let babbler = FakeNode::start(Script::Babble).unwrap();
    let c = client(&[silent.port(), babbler.port()], |o| {
        o.io_timeout = Duration::from_millis(300)
    });
    let ks = keys("b", 40);
    let t0 = Instant::now();
    let got = c.get_multi(&refs(&ks), false);
    let took = t0.elapsed();
    // One I/O timeout for the silent node, at most one more for a node that
    // kept sending; a loaded 2-core machine keeps 400 ms of margin.
    assert!(took < Duration::from_millis(1000), "took {took:?}");
    assert!(got.iter().all(|r| r.is_err()), "{got:?}");
}
