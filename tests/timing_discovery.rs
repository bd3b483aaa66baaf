//! Time bounds of discovery under faults (issue 15, defects 7 and 8). Run
//! alone with one test thread: each bound is what the behaviour promises plus
//! a margin that a loaded 2-core machine keeps.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use elasticache::client::Client;
use elasticache::discovery::{self, Node};
use elasticache::options::Options;
use elasticache::registry;
use elasticache::testkit::{ConfigEndpoint, LocalCluster, Request};
use elasticache::Status;

/// Promised: under 1 ms. Allowed: a scheduler hiccup on a busy machine.
const AT_ONCE: Duration = Duration::from_millis(25);

fn fake_node() -> Node {
    Node {
        host: "a".into(),
        ip: "127.0.0.1".into(),
        port: 11211,
    }
}

#[test]
fn a_hung_endpoint_costs_only_the_first_caller_the_timeout() {
    let ep = ConfigEndpoint::start(vec![fake_node()]).unwrap();
    ep.set_hang(true);
    let opts = discovery::options(300, 300, false);
    let t = Instant::now();
    let first = registry::get_or_discover(&ep.addr(), &opts).unwrap_err();
    assert!(
        t.elapsed() >= Duration::from_millis(290),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(first.status(), Status::Timeout);
    // Within the backoff window (1 s): the same error at once, no new attempt.
    for i in 0..4 {
        let t = Instant::now();
        let e = registry::get_or_discover(&ep.addr(), &opts).unwrap_err();
        let took = t.elapsed();
        assert!(took < AT_ONCE, "call {} took {took:?}", i + 2);
        assert_eq!(e.to_string(), first.to_string());
    }
    // Clients too (Python's Client.from_endpoint is this call).
    let client_opts = Options {
        connect_timeout: Duration::from_millis(300),
        io_timeout: Duration::from_millis(300),
        ..Options::default()
    };
    let t = Instant::now();
    let e = Client::from_endpoint(&ep.addr(), client_opts).unwrap_err();
    assert!(t.elapsed() < AT_ONCE, "{:?}", t.elapsed());
    assert_eq!(e.status(), Status::Timeout);
    assert_eq!(ep.connections(), 1, "a call inside the window tried again");
}

#[test]
fn after_the_window_one_caller_retries_the_window_doubles_and_recovery_is_seen() {
    let ep = ConfigEndpoint::start(vec![fake_node()]).unwrap();
    ep.set_hang(true);
    let addr = ep.addr();
    let opts = discovery::options(300, 300, false);
    registry::get_or_discover(&addr, &opts).unwrap_err();
    let failed_at = Instant::now();
    assert_eq!(ep.connections(), 1);

    // The 1 s window has passed: eight callers at once, one retries.
    std::thread::sleep(Duration::from_millis(1150).saturating_sub(failed_at.elapsed()));
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (addr, opts, barrier) = (addr.clone(), opts.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let t = Instant::now();
                let r = registry::get_or_discover(&addr, &opts);
                (t.elapsed(), r.is_err())
            })
        })
        .collect();
    let mut took: Vec<Duration> = threads
        .into_iter()
        .map(|t| {
            let (d, failed) = t.join().unwrap();
            assert!(failed);
            d
        })
        .collect();
    took.sort();
    let second_failed_at = Instant::now();
    assert_eq!(ep.connections(), 2, "exactly one caller retried");
    assert!(took[7] >= Duration::from_millis(290), "{took:?}");
    // The ones that found a retry in flight did not queue behind it.
    assert!(took[6] < AT_ONCE, "{took:?}");

    // Second failure: the window is now 2 s. 1.2 s later it still holds.
    std::thread::sleep(Duration::from_millis(1200));
    let t = Instant::now();
    registry::get_or_discover(&addr, &opts).unwrap_err();
    assert!(t.elapsed() < AT_ONCE, "{:?}", t.elapsed());
    assert_eq!(ep.connections(), 2, "the window did not double");

    // The endpoint answers again: the first attempt after the window succeeds.
    ep.set_hang(false);
    std::thread::sleep(Duration::from_millis(2150).saturating_sub(second_failed_at.elapsed()));
    let c = registry::get_or_discover(&addr, &opts).unwrap();
    assert_eq!(c.nodes, vec![fake_node()]);
    assert_eq!(ep.connections(), 3);
}

#[test]
fn requests_never_wait_for_a_refresh_against_a_hung_endpoint() {
    let cluster = LocalCluster::start(2).unwrap();
    let opts = Options {
        connect_timeout: Duration::from_millis(1000),
        io_timeout: Duration::from_millis(1000),
        refresh_interval: Duration::from_millis(200),
        ..Options::default()
    };
    let c = Client::from_endpoint(&cluster.endpoint_addr(), opts).unwrap();
    let keys: Vec<String> = (0..20).map(|i| format!("hung:{i}")).collect();
    for k in &keys {
        c.set(k.as_bytes(), b"v", 0, 0).unwrap();
    }
    let ep = cluster.endpoint();
    ep.set_hang(true);
    let asked = ep.requests(Request::ConfigGet);
    // Several refresh intervals and more than two I/O timeouts.
    let t0 = Instant::now();
    let mut worst = Duration::ZERO;
    let mut n = 0u32;
    while t0.elapsed() < Duration::from_millis(2500) {
        for k in &keys {
            let t = Instant::now();
            assert_eq!(c.get(k.as_bytes()).unwrap().unwrap().value, b"v");
            worst = worst.max(t.elapsed());
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        ep.requests(Request::ConfigGet) > asked,
        "no refresh reached the hung endpoint, so nothing was tested"
    );
    // A normal get is well under a millisecond; a waiting one would take the
    // I/O timeout (1 s).
    assert!(
        worst < Duration::from_millis(150),
        "worst of {n} gets: {worst:?}"
    );
    ep.set_hang(false);
}
