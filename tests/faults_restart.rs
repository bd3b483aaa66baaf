//! A node restarted on the same address (a maintenance reboot): pooled
//! connections to it are stale, which is not the node's fault. The first use
//! of a stale connection drops the node's idle connections and retries a safe
//! operation once on a fresh one; nothing is ejected.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use elasticache::client::Client;
use elasticache::options::Options;
use elasticache::testkit::{self, Memcached};
use elasticache::Error;

/// [`testkit::client_for`] with this file's timeouts and failure settings.
fn client_for(servers: &[&Memcached], tweak: impl FnOnce(&mut Options)) -> Client {
    testkit::client_for(servers, |o| {
        o.connect_timeout = Duration::from_millis(500);
        o.io_timeout = Duration::from_millis(500);
        o.failure_limit = 2;
        o.retry_timeout = Duration::from_secs(5);
        tweak(o);
    })
}

/// Leave `n` idle connections in the client's pool for `m`'s node: `n`
/// threads each hold one at the same time.
fn pool_connections(c: &Client, n: usize) {
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        for t in 0..n {
            let (c, barrier) = (&c, &barrier);
            s.spawn(move || {
                barrier.wait();
                for i in 0..50 {
                    let k = format!("warm:{t}:{i}");
                    c.set(k.as_bytes(), b"v", 0, 0).unwrap();
                    assert!(c.get(k.as_bytes()).unwrap().is_some());
                }
            });
        }
    });
}

#[test]
fn a_restarted_node_costs_no_failed_get_or_set_and_is_not_ejected() {
    let mut m = Memcached::start().unwrap();
    let c = client_for(&[&m], |_| {});
    pool_connections(&c, 4);
    m.restart().unwrap();

    let mut failures = Vec::new();
    for i in 0..30 {
        let k = format!("after:{i}");
        if let Err(e) = c.set(k.as_bytes(), b"value", 0, 0) {
            failures.push(format!("set {k}: {e}"));
        }
        match c.get(k.as_bytes()) {
            Ok(Some(item)) if item.value == b"value" => {}
            other => failures.push(format!("get {k}: {other:?}")),
        }
    }
    // get and set are retried on a fresh connection: none of them fails.
    assert!(
        failures.is_empty(),
        "{} failures: {failures:?}",
        failures.len()
    );
    for op in ["delete", "touch", "gets"] {
        let k = format!("{op}:k");
        c.set(k.as_bytes(), b"v", 0, 0).unwrap();
        pool_connections(&c, 4);
        m.restart().unwrap();
        // The restart emptied the node: the retried op sees the empty node.
        let r = match op {
            "delete" => c.delete(k.as_bytes()).map(|_| ()),
            "touch" => c.touch(k.as_bytes(), 0).map(|_| ()),
            _ => c.gets(k.as_bytes()).map(|_| ()),
        };
        assert!(
            matches!(r, Ok(()) | Err(Error::NotFound)),
            "{op} after a restart: {r:?}"
        );
    }
}

#[test]
fn an_unsafe_op_fails_at_most_once_after_a_restart_and_the_node_stays_in() {
    let mut m = Memcached::start().unwrap();
    let c = client_for(&[&m], |o| o.failure_limit = 1);
    pool_connections(&c, 3);
    m.restart().unwrap();
    c.set(b"counter", b"1", 0, 0).unwrap_or(());
    let mut failed = 0;
    for _ in 0..10 {
        match c.arith(b"counter", true, 1) {
            Ok(_) | Err(Error::NotFound) => {}
            Err(e) => {
                assert!(
                    matches!(e, Error::Connection { .. }),
                    "a stale connection shows as a connection error: {e}"
                );
                failed += 1;
            }
        }
    }
    // failure_limit 1: had the stale connection counted, the node would be
    // ejected and every later call would fail with ServerDead.
    assert!(failed <= 1, "{failed} incr failures after one restart");
    for op in 0..5 {
        c.set(b"after", b"x", 0, 0)
            .unwrap_or_else(|e| panic!("set {op}: {e}"));
    }
}

/// The soak shape: 8 threads on one shared client over two nodes; one node is
/// killed and restarted on its port. No thread may read a value it did not
/// write, every thread must succeed again after the restart, and the errors
/// stay below what stale connections used to cost.
#[test]
fn soak_eight_threads_through_a_kill_and_restart() {
    let a = Memcached::start().unwrap();
    let mut b = Memcached::start().unwrap();
    let c = client_for(&[&a, &b], |o| {
        o.failure_limit = 2;
        o.retry_timeout = Duration::from_secs(1);
        o.io_timeout = Duration::from_millis(300);
        o.connect_timeout = Duration::from_millis(300);
    });
    let victim = b.addr();
    let stop = AtomicBool::new(false);
    let restarted = AtomicBool::new(false);
    let wrong = AtomicUsize::new(0);
    let errors = AtomicUsize::new(0);
    let errors_after = AtomicUsize::new(0);
    let recovered = AtomicUsize::new(0);
    let kinds = std::sync::Mutex::new(std::collections::BTreeMap::new());
    let c = Arc::new(c);
    std::thread::scope(|s| {
        for t in 0..8 {
            let (c, stop, restarted, kinds) = (&c, &stop, &restarted, &kinds);
            let (wrong, errors, errors_after, recovered) =
                (&wrong, &errors, &errors_after, &recovered);
            let victim = victim.clone();
            s.spawn(move || {
                let mut seq = 0u64;
                let mut ok_after = false;
                while !stop.load(Ordering::Acquire) {
                    seq += 1;
                    let k = format!("soak:{t}:{}", seq % 64);
                    let v = format!("{t}:{seq}");
                    let after = restarted.load(Ordering::Acquire);
                    let on_victim = c.server_for(k.as_bytes()).is_ok_and(|o| o == victim);
                    let set = c.set(k.as_bytes(), v.as_bytes(), 0, 0);
                    let got = c.get(k.as_bytes());
                    match (&set, &got) {
                        (Ok(()), Ok(Some(item))) if item.value == v.as_bytes() => {
                            ok_after |= after && on_victim;
                        }
                        // A miss right after the node lost its data is not a wrong value.
                        (_, Ok(None)) => {}
                        // Only this thread writes this key: anything but its
                        // last value (or a miss) is wrong; after a failed set,
                        // an earlier value of its own is fine.
                        (_, Ok(Some(item)))
                            if set.is_ok()
                                || !item.value.starts_with(format!("{t}:").as_bytes()) =>
                        {
                            wrong.fetch_add(1, Ordering::AcqRel);
                        }
                        _ => {}
                    }
                    for e in [set.as_ref().err(), got.as_ref().err()]
                        .into_iter()
                        .flatten()
                    {
                        let mut kinds = kinds.lock().unwrap();
                        let kind = format!("{e}")
                            .split(':')
                            .next_back()
                            .unwrap_or("")
                            .trim()
                            .to_string();
                        *kinds.entry(kind).or_insert(0usize) += 1;
                    }
                    let n = usize::from(set.is_err()) + usize::from(got.is_err());
                    errors.fetch_add(n, Ordering::AcqRel);
                    if after {
                        errors_after.fetch_add(n, Ordering::AcqRel);
                    }
                }
                if ok_after {
                    recovered.fetch_add(1, Ordering::AcqRel);
                }
            });
        }
        std::thread::sleep(Duration::from_millis(500));
        // Killed and started again at once, as a reboot that the client's
        // threads notice only through their pooled connections.
        restarted.store(true, Ordering::Release);
        b.restart().unwrap();
        // Long enough for an ejection (1 s) to run out and be noticed.
        std::thread::sleep(Duration::from_millis(2000));
        stop.store(true, Ordering::Release);
    });
    let (wrong, errors, after, recovered) = (
        wrong.into_inner(),
        errors.into_inner(),
        errors_after.into_inner(),
        recovered.into_inner(),
    );
    eprintln!("soak errors by kind: {:?}", kinds.lock().unwrap());
    eprintln!(
        "soak: wrong {wrong}, errors {errors} ({after} after the restart), recovered {recovered}/8"
    );
    assert_eq!(wrong, 0, "values read that were not written");
    assert_eq!(
        recovered, 8,
        "every thread succeeds on the restarted node again"
    );
    // A stale pooled connection is retried, never an error: what may remain
    // are refused connects while the process starts and, after those, the
    // ejection they cause (both the node's real downtime). Before the retry
    // each stale connection was an error "connection closed by the server".
    let kinds = kinds.into_inner().unwrap();
    let stale = kinds
        .iter()
        .filter(|(k, _)| k.contains("closed by the server"))
        .map(|(_, n)| n)
        .sum::<usize>();
    assert_eq!(
        stale, 0,
        "stale connections surfaced as errors: {kinds:?} ({after} after the restart)"
    );
}
