//! Discovery against the clock: a hung configuration endpoint costs one
//! timeout, and concurrent first calls share one discovery. Timing-bound, so
//! this binary runs alone with one test thread (scripts/test.sh); bounds are
//! the timeout plus [`MARGIN`], below what a second discovery would take.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use elasticache::discovery::{self, Config, Node};
use elasticache::registry;
use elasticache::testkit::{ConfigEndpoint, LocalCluster, Request};
use elasticache::{Error, Status};

const TIMEOUT_MS: u64 = 300;
/// Scheduling slack on a loaded 2-core machine.
const MARGIN: Duration = Duration::from_millis(300);

fn fake_node(host: &str, port: u16) -> Node {
    Node {
        host: host.to_string(),
        ip: "127.0.0.1".to_string(),
        port,
    }
}

#[test]
fn endpoint_that_never_answers_times_out() {
    let ep = ConfigEndpoint::start(vec![fake_node("a", 11211)]).unwrap();
    ep.set_hang(true);
    let opts = discovery::options(TIMEOUT_MS, TIMEOUT_MS, false);
    let t = Instant::now();
    let e = discovery::discover(&ep.addr(), &opts, None).unwrap_err();
    let took = t.elapsed();
    assert!(
        matches!(&e, Error::Timeout { addr, op } if addr == &ep.addr() && *op == "config get cluster"),
        "{e:?}"
    );
    assert_eq!(e.status(), Status::Timeout);
    assert!(e.to_string().contains(&ep.addr()), "{e}");
    let limit = Duration::from_millis(TIMEOUT_MS);
    assert!(took >= limit - Duration::from_millis(20), "{took:?}");
    assert!(took < limit + MARGIN, "{took:?}");
    assert_eq!(ep.requests(Request::ConfigGet), 1);
}

#[test]
fn concurrent_first_calls_to_a_hung_endpoint_share_one_timeout() {
    let ep = ConfigEndpoint::start(vec![fake_node("a", 11211)]).unwrap();
    ep.set_hang(true);
    let addr = ep.addr();
    let timeout = Duration::from_millis(500);
    let opts = discovery::options(500, 500, false);
    let barrier = Arc::new(Barrier::new(16));
    let t = Instant::now();
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (addr, barrier, opts) = (addr.clone(), barrier.clone(), opts.clone());
            std::thread::spawn(move || {
                barrier.wait();
                registry::get_or_discover(&addr, &opts)
            })
        })
        .collect();
    for th in threads {
        let r = th.join().unwrap();
        assert!(
            matches!(&r, Err(Error::Timeout { addr: a, .. }) if *a == addr),
            "{r:?}"
        );
    }
    // One discovery paid the timeout; the others waited for it and shared its
    // failure (a second discovery would take a second timeout).
    assert!(t.elapsed() < timeout + MARGIN, "{:?}", t.elapsed());
    assert_eq!(ep.connections(), 1);
    assert_eq!(ep.requests(Request::ConfigGet), 1);
}

#[test]
fn sixteen_concurrent_first_calls_discover_once() {
    let cluster = LocalCluster::start(2).unwrap();
    let ep = cluster.endpoint();
    // Slow enough that all 16 threads arrive while the first discovery is
    // under way, even when the machine is busy.
    ep.set_reply_delay(Duration::from_millis(500));
    let addr = ep.addr();
    let barrier = Arc::new(Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (addr, barrier) = (addr.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                registry::get_or_discover(&addr, &discovery::options(2000, 2000, false))
            })
        })
        .collect();
    let configs: Vec<Arc<Config>> = threads
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    assert!(configs.iter().all(|c| Arc::ptr_eq(c, &configs[0])));
    assert_eq!(configs[0].nodes, cluster.nodes());
    assert_eq!(ep.requests(Request::ConfigGet), 1);
    assert_eq!(ep.connections(), 1);
    assert_eq!(registry::cluster(&addr).unwrap().discoveries(), 1);
}
