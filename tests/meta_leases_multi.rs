//! Multi-key leases (`get_or_lease_multi`) against real memcached: one
//! pipelined round trip per node answering each key as `get_or_lease`
//! would, and a node without the meta protocol answered by a plain
//! multi-get next to one that has it.

mod meta_common;

use elasticache::client::Client;
use elasticache::error::Error;
use elasticache::testkit::Memcached;
use elasticache::LeaseState;
use meta_common::{addrs, client, FakeNode};

fn states(c: &Client, keys: &[&[u8]]) -> Vec<LeaseState> {
    c.get_or_lease_multi(keys, 30, 0)
        .into_iter()
        .map(|r| r.expect("answered").state)
        .collect()
}

#[test]
fn each_key_answered_as_one_lease_would_be() {
    let servers: Vec<Memcached> = (0..3).map(|_| Memcached::start().unwrap()).collect();
    let c = client(&addrs(&servers), |o| o.binary_keys = true);
    let names: Vec<Vec<u8>> = (0..60)
        .map(|i| {
            if i % 10 == 9 {
                format!("bin key \x01{i}").into_bytes()
            } else {
                format!("page:{i}").into_bytes()
            }
        })
        .collect();
    let keys: Vec<&[u8]> = names.iter().map(|k| &k[..]).collect();
    let on_nodes = keys
        .iter()
        .filter(|k| !k.contains(&1))
        .map(|k| c.server_for(k).unwrap())
        .collect::<std::collections::HashSet<_>>();
    assert_eq!(on_nodes.len(), 3, "the keys span every node");
    // Every third key is there; one of those is then invalidated.
    for k in keys.iter().step_by(3) {
        c.set(k, b"cached", 16, 0).unwrap();
    }
    c.invalidate(keys[3], 30).unwrap();

    let first = c.get_or_lease_multi(&keys, 30, 0);
    for (i, r) in first.iter().enumerate() {
        let l = r.as_ref().expect("answered");
        let want = match i {
            3 => LeaseState::Refresh,
            _ if i % 3 == 0 => LeaseState::Hit,
            _ => LeaseState::Miss,
        };
        assert_eq!(l.state, want, "key {i}");
        assert!(l.protected);
        if i % 3 == 0 {
            let item = l.item.as_ref().unwrap();
            assert_eq!(
                (&item.value[..], item.flags),
                (&b"cached"[..], 16),
                "key {i}"
            );
        } else {
            assert!(l.item.is_none());
        }
    }
    assert!(first[3].as_ref().unwrap().stale);
    // A second caller: the leased keys are someone else's now.
    let second = states(&c, &keys);
    for (i, s) in second.iter().enumerate() {
        let want = match i {
            3 => LeaseState::Stale,
            _ if i % 3 == 0 => LeaseState::Hit,
            _ => LeaseState::Wait,
        };
        assert_eq!(*s, want, "key {i}");
    }
    // The one-key call agrees.
    assert_eq!(
        c.get_or_lease(keys[1], 30, 0).unwrap().state,
        LeaseState::Wait
    );
    // Bad keys are their own errors; bad TTLs fail every key.
    let with_bad: Vec<&[u8]> = vec![keys[0], b"", keys[1]];
    let got = c.get_or_lease_multi(&with_bad, 30, 0);
    assert_eq!(got[0].as_ref().unwrap().state, LeaseState::Hit);
    assert!(matches!(got[1], Err(Error::BadKey { .. })));
    assert_eq!(got[2].as_ref().unwrap().state, LeaseState::Wait);
    assert!(c
        .get_or_lease_multi(&keys[..2], 0, 0)
        .iter()
        .all(|r| matches!(r, Err(Error::InvalidArgument(_)))));
    assert!(c.get_or_lease_multi(&[], 30, 0).is_empty());
}

#[test]
fn a_node_without_meta_is_a_plain_multi_get() {
    let real = Memcached::start().unwrap();
    let old = FakeNode::start("1.5.22");
    let c = client(
        &[
            (real.ip().to_string(), real.port()),
            ("127.0.0.1".into(), old.port),
        ],
        |_| {},
    );
    let names: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let keys: Vec<&[u8]> = names.iter().map(|k| k.as_bytes()).collect();
    let old_addr = format!("127.0.0.1:{}", old.port);
    let on_old: Vec<bool> = keys
        .iter()
        .map(|k| c.server_for(k).unwrap() == old_addr)
        .collect();
    assert!(on_old.iter().any(|&b| b) && on_old.iter().any(|&b| !b));
    for k in &keys {
        c.set(k, b"v", 0, 0).unwrap();
    }
    // One missing key on each node.
    let gone = [
        on_old.iter().position(|&o| !o).unwrap(),
        on_old.iter().position(|&o| o).unwrap(),
    ];
    for &i in &gone {
        c.delete(keys[i]).unwrap();
    }
    for round in 0..2 {
        for (i, r) in c.get_or_lease_multi(&keys, 30, 0).iter().enumerate() {
            let l = r.as_ref().expect("answered");
            assert_eq!(l.protected, !on_old[i], "key {i}");
            let want = match (gone.contains(&i), on_old[i], round) {
                (false, _, _) => LeaseState::Hit,
                // A missing key on the real node is leased: the next caller waits.
                (true, false, 1) => LeaseState::Wait,
                (true, _, _) => LeaseState::Miss,
            };
            assert_eq!(l.state, want, "round {round}, key {i}");
        }
    }
    let metas = old.commands().iter().filter(|w| w.starts_with('m')).count();
    assert_eq!(
        metas,
        0,
        "no meta command to the old node: {:?}",
        old.commands()
    );
}
