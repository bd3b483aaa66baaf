//! Leases (`get_or_lease`) and invalidation against real memcached: one
//! owner per expiry among 16 threads, stale-while-revalidate after
//! `invalidate`, early refresh before expiry, a dead lease holder replaced
//! after `lease_ttl`, and the fallback on engines without the meta protocol.

mod meta_common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use elasticache::client::Client;
use elasticache::error::Error;
use elasticache::testkit::Memcached;
use elasticache::LeaseState;
use meta_common::{addrs, client, FakeNode};

fn one_server() -> (Memcached, Client) {
    let m = Memcached::start().unwrap();
    let c = client(&addrs(std::slice::from_ref(&m)), |o| {
        o.max_connections_per_node = 16;
        o.binary_keys = true;
    });
    (m, c)
}

/// 16 threads ask at once; returns each thread's state.
fn stampede(c: &Arc<Client>, key: &'static [u8], lease_ttl: u32, recache: u32) -> Vec<LeaseState> {
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (c, b) = (c.clone(), barrier.clone());
            thread::spawn(move || {
                b.wait();
                let l = c.get_or_lease(key, lease_ttl, recache).unwrap();
                assert!(l.protected);
                l.state
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn count(states: &[LeaseState], s: LeaseState) -> usize {
    states.iter().filter(|&&x| x == s).count()
}

#[test]
fn one_owner_per_expiry_among_16_threads() {
    let (_m, c) = one_server();
    let c = Arc::new(c);
    for (round, key) in [&b"hot"[..], b"hot key \x01"].into_iter().enumerate() {
        let key: &'static [u8] = key;
        for expiry in 0..3 {
            let states = stampede(&c, key, 30, 0);
            assert_eq!(
                count(&states, LeaseState::Miss),
                1,
                "round {round}/{expiry}: {states:?}"
            );
            assert_eq!(count(&states, LeaseState::Wait), 15, "{states:?}");
            // The owner stores; everyone now hits.
            c.set(key, format!("v{expiry}").as_bytes(), 16, 1).unwrap();
            let states = stampede(&c, key, 30, 0);
            assert_eq!(count(&states, LeaseState::Hit), 16, "{states:?}");
            let l = c.get_or_lease(key, 30, 0).unwrap();
            assert_eq!(l.item.unwrap().value, format!("v{expiry}").into_bytes());
            // Let the 1 s TTL run out (memcached's clock ticks in whole seconds).
            let t0 = Instant::now();
            while c.get(key).unwrap().is_some() {
                assert!(t0.elapsed() < Duration::from_secs(5), "the value expires");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

#[test]
fn invalidate_serves_the_stale_value_while_one_caller_refreshes() {
    let (_m, c) = one_server();
    let c = Arc::new(c);
    c.set(b"page", b"old", 16, 0).unwrap();
    c.invalidate(b"page", 30).unwrap();
    let states = stampede(&c, b"page", 30, 0);
    assert_eq!(count(&states, LeaseState::Refresh), 1, "{states:?}");
    assert_eq!(count(&states, LeaseState::Stale), 15, "{states:?}");
    let l = c.get_or_lease(b"page", 30, 0).unwrap();
    assert_eq!(l.state, LeaseState::Stale);
    assert!(l.stale);
    let item = l.item.unwrap();
    assert_eq!(
        (item.value.as_slice(), item.flags),
        (&b"old"[..], 16),
        "the old value and its flags"
    );
    // A plain get still reads the old value too.
    assert_eq!(c.get(b"page").unwrap().unwrap().value, b"old");
    c.set(b"page", b"new", 16, 0).unwrap();
    let l = c.get_or_lease(b"page", 30, 0).unwrap();
    assert_eq!((l.state, l.stale), (LeaseState::Hit, false));
    assert_eq!(l.item.unwrap().value, b"new");
    assert!(matches!(
        c.invalidate(b"never-set", 30),
        Err(Error::NotFound)
    ));
}

#[test]
fn early_refresh_before_expiry_goes_to_one_caller() {
    let (_m, c) = one_server();
    let c = Arc::new(c);
    c.set(b"soon", b"v1", 0, 5).unwrap();
    // Remaining TTL (5 s) is below recache_before (10 s): one caller refreshes,
    // the others keep reading the still-fresh value.
    let states = stampede(&c, b"soon", 30, 10);
    assert_eq!(count(&states, LeaseState::Refresh), 1, "{states:?}");
    assert_eq!(count(&states, LeaseState::Hit), 15, "{states:?}");
    let l = c.get_or_lease(b"soon", 30, 10).unwrap();
    assert_eq!(l.item.unwrap().value, b"v1");
    assert!(l.ttl.is_some_and(|t| (0..=5).contains(&t)), "{:?}", l.ttl);
    // A value with a long TTL is not refreshed early.
    c.set(b"later", b"v", 0, 1000).unwrap();
    assert_eq!(
        c.get_or_lease(b"later", 30, 10).unwrap().state,
        LeaseState::Hit
    );
}

#[test]
fn a_dead_lease_holder_is_replaced_after_lease_ttl() {
    let (_m, c) = one_server();
    let first = c.get_or_lease(b"job", 2, 0).unwrap();
    assert_eq!(first.state, LeaseState::Miss);
    // The holder never stores. Others wait...
    assert_eq!(
        c.get_or_lease(b"job", 2, 0).unwrap().state,
        LeaseState::Wait
    );
    // ...until the lease lapses (2 s, on a whole-second clock: at most 3 s).
    let t0 = Instant::now();
    let taken = loop {
        let l = c.get_or_lease(b"job", 2, 0).unwrap();
        if l.state == LeaseState::Miss {
            break t0.elapsed();
        }
        assert_eq!(l.state, LeaseState::Wait);
        assert!(t0.elapsed() < Duration::from_secs(6), "the lease lapses");
        thread::sleep(Duration::from_millis(100));
    };
    assert!(
        taken >= Duration::from_millis(900),
        "not before the lease ran out: {taken:?}"
    );
    assert_eq!(
        c.get_or_lease(b"job", 2, 0).unwrap().state,
        LeaseState::Wait
    );
}

#[test]
fn bad_arguments_are_refused() {
    let (_m, c) = one_server();
    assert!(matches!(
        c.get_or_lease(b"k", 0, 0),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.get_or_lease(b"k", 30 * 86400 + 1, 0),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.get_or_lease(b"", 5, 0),
        Err(Error::BadKey { .. })
    ));
    assert!(matches!(
        c.invalidate(&[b'x'; 251], 0),
        Err(Error::BadKey { .. })
    ));
}

#[test]
fn old_engines_fall_back_to_plain_get_and_delete() {
    for version in ["1.5.22", "1.6.6", "1.6.18"] {
        // The "1.6.18" fake answers ERROR to every meta command.
        let fake = FakeNode::start(version);
        let c = client(&[("127.0.0.1".into(), fake.port)], |_| {});
        for _ in 0..2 {
            let l = c.get_or_lease(b"k", 5, 0).unwrap();
            assert_eq!(
                (l.state, l.protected, l.item),
                (LeaseState::Miss, false, None),
                "{version}"
            );
        }
        c.set(b"k", b"v", 16, 0).unwrap();
        let l = c.get_or_lease(b"k", 5, 0).unwrap();
        assert_eq!((l.state, l.protected), (LeaseState::Hit, false));
        assert_eq!(
            l.item.map(|i| (i.value, i.flags)),
            Some((b"v".to_vec(), 16))
        );
        c.invalidate(b"k", 10).unwrap();
        assert_eq!(
            c.get(b"k").unwrap(),
            None,
            "{version}: invalidate fell back to delete"
        );
        assert!(matches!(c.invalidate(b"k", 10), Err(Error::NotFound)));
        let cmds = fake.commands();
        let metas = cmds.iter().filter(|w| w.starts_with('m')).count();
        let expected = usize::from(version == "1.6.18");
        assert_eq!(metas, expected, "{version}: meta commands sent: {cmds:?}");
    }
}

#[test]
fn the_fallback_is_one_meta_unsupported_event_per_node() {
    use elasticache::events::{self, Event, EventKind};
    use std::sync::Mutex;

    let fake = FakeNode::start("1.5.22");
    let node = format!("127.0.0.1:{}", fake.port);
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let s = seen.clone();
    let mine = node.clone();
    events::set_handler(Some(Arc::new(move |e: &Event| {
        if e.node == mine {
            s.lock().unwrap().push(e.clone());
        }
    })));
    let c = client(&[("127.0.0.1".into(), fake.port)], |_| {});
    for _ in 0..3 {
        assert!(!c.get_or_lease(b"k", 5, 0).unwrap().protected);
        let _ = c.invalidate(b"k", 0);
    }
    events::set_handler(None);
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "one event however many calls: {got:?}");
    assert_eq!(got[0].kind, EventKind::MetaUnsupported);
    assert!(
        got[0].reason.contains("memcached 1.5.22") && got[0].reason.contains("get_or_lease"),
        "the reason names the version and the call: {}",
        got[0].reason
    );
}
