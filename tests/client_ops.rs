//! Every operation against real memcached processes, checked against the
//! semantics of memcached's protocol.txt.

use std::time::Duration;

use elasticache::client::Client;
use elasticache::protocol::StoreCommand;
use elasticache::testkit::{client_for, Memcached};
use elasticache::Error;

fn one() -> (Memcached, Client) {
    let m = Memcached::start().unwrap();
    let c = client_for(&[&m], |_| {});
    (m, c)
}

#[test]
fn get_set_miss_and_flags_round_trip() {
    let (_m, c) = one();
    assert_eq!(c.get(b"nope").unwrap(), None);
    c.set(b"k", b"v1", 0xdead_beef, 0).unwrap();
    let it = c.get(b"k").unwrap().unwrap();
    assert_eq!(it.value, b"v1");
    assert_eq!(it.flags, 0xdead_beef);
    // Overwrite, empty value.
    c.set(b"k", b"", 7, 0).unwrap();
    let it = c.get(b"k").unwrap().unwrap();
    assert_eq!((it.value.as_slice(), it.flags), (&b""[..], 7));
}

#[test]
fn binary_values_with_protocol_bytes_inside() {
    let (_m, c) = one();
    let v: Vec<u8> = b"a\r\nEND\r\nVALUE x 0 1\r\n\0\xff"
        .iter()
        .copied()
        .chain(0..=255u8)
        .collect();
    c.set(b"bin", &v, 0, 0).unwrap();
    assert_eq!(c.get(b"bin").unwrap().unwrap().value, v);
}

#[test]
fn one_mebibyte_values_and_too_big() {
    let m = Memcached::start_on("127.0.0.1", &["-I", "2m"]).unwrap();
    let c = client_for(&[&m], |_| {});
    let v: Vec<u8> = (0..(1 << 20)).map(|i| (i * 7 % 251) as u8).collect();
    c.set(b"big", &v, 3, 0).unwrap();
    assert_eq!(c.get(b"big").unwrap().unwrap().value, v);
    // One byte over the client's maximum: refused before sending.
    let over = vec![0u8; (1 << 20) + 1];
    assert!(matches!(
        c.set(b"big2", &over, 0, 0),
        Err(Error::TooBig { .. })
    ));
    assert_eq!(
        m.get_raw(b"big2").unwrap(),
        None,
        "nothing reached the server"
    );
    assert_eq!(
        c.get(b"big").unwrap().unwrap().value.len(),
        1 << 20,
        "client still usable"
    );
}

#[test]
fn add_replace_append_prepend() {
    let (_m, c) = one();
    c.store(StoreCommand::Add, b"a", b"1", 0, 0, 0).unwrap();
    assert_eq!(
        c.store(StoreCommand::Add, b"a", b"2", 0, 0, 0),
        Err(Error::NotStored)
    );
    assert_eq!(
        c.store(StoreCommand::Replace, b"missing", b"x", 0, 0, 0),
        Err(Error::NotStored)
    );
    c.store(StoreCommand::Replace, b"a", b"r", 0, 0, 0).unwrap();
    c.store(StoreCommand::Append, b"a", b">", 0, 0, 0).unwrap();
    c.store(StoreCommand::Prepend, b"a", b"<", 0, 0, 0).unwrap();
    assert_eq!(c.get(b"a").unwrap().unwrap().value, b"<r>");
    assert_eq!(
        c.store(StoreCommand::Append, b"missing", b"x", 0, 0, 0),
        Err(Error::NotStored)
    );
    assert_eq!(
        c.store(StoreCommand::Prepend, b"missing", b"x", 0, 0, 0),
        Err(Error::NotStored)
    );
}

#[test]
fn cas_conflict_and_missing() {
    let (_m, c) = one();
    c.set(b"c", b"v0", 0, 0).unwrap();
    let first = c.gets(b"c").unwrap().unwrap();
    assert_ne!(first.cas, 0);
    c.store(StoreCommand::Cas, b"c", b"v1", 0, 0, first.cas)
        .unwrap();
    // The old cas id no longer matches.
    assert_eq!(
        c.store(StoreCommand::Cas, b"c", b"v2", 0, 0, first.cas),
        Err(Error::Exists)
    );
    assert_eq!(c.get(b"c").unwrap().unwrap().value, b"v1");
    assert_eq!(
        c.store(StoreCommand::Cas, b"gone", b"v", 0, 0, 1),
        Err(Error::NotFound)
    );
}

#[test]
fn delete_incr_decr_touch() {
    let (_m, c) = one();
    assert_eq!(c.delete(b"d"), Err(Error::NotFound));
    c.set(b"d", b"x", 0, 0).unwrap();
    c.delete(b"d").unwrap();
    assert_eq!(c.get(b"d").unwrap(), None);

    assert_eq!(c.arith(b"n", true, 1), Err(Error::NotFound));
    c.set(b"n", b"10", 0, 0).unwrap();
    assert_eq!(c.arith(b"n", true, 5).unwrap(), 15);
    assert_eq!(c.arith(b"n", false, 3).unwrap(), 12);
    assert_eq!(c.arith(b"n", false, 100).unwrap(), 0, "decr stops at 0");
    c.set(b"n", b"18446744073709551615", 0, 0).unwrap();
    assert_eq!(c.arith(b"n", true, 2).unwrap(), 1, "incr wraps at 2^64");
    c.set(b"text", b"abc", 0, 0).unwrap();
    match c.arith(b"text", true, 1) {
        Err(e @ Error::Client { .. }) => assert!(e.to_string().contains("non-numeric"), "{e}"),
        other => panic!("incr on a non-number: {other:?}"),
    }
    assert_eq!(
        c.get(b"text").unwrap().unwrap().value,
        b"abc",
        "connection still usable"
    );

    assert_eq!(c.touch(b"missing", 10), Err(Error::NotFound));
    c.set(b"t", b"x", 0, 1).unwrap();
    c.touch(b"t", 100).unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    assert!(c.get(b"t").unwrap().is_some(), "touch extended the expiry");
}

#[test]
fn expiry_and_negative_exptime() {
    let (_m, c) = one();
    c.set(b"e", b"x", 0, 1).unwrap();
    assert!(c.get(b"e").unwrap().is_some());
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(c.get(b"e").unwrap(), None, "expired after its exptime");
    c.set(b"neg", b"x", 0, -1).unwrap();
    assert_eq!(
        c.get(b"neg").unwrap(),
        None,
        "negative exptime expires at once"
    );
}

#[test]
fn bad_keys_never_reach_the_server() {
    let (m, c) = one();
    let long = vec![b'k'; 251];
    for key in [
        &b""[..],
        b"has space",
        b"ctl\x01",
        b"tab\t",
        b"nl\n",
        b"del\x7f",
        &long,
    ] {
        assert!(matches!(c.get(key), Err(Error::BadKey { .. })), "{key:?}");
        assert!(
            matches!(c.set(key, b"v", 0, 0), Err(Error::BadKey { .. })),
            "{key:?}"
        );
        assert!(
            matches!(c.delete(key), Err(Error::BadKey { .. })),
            "{key:?}"
        );
    }
    let ok = vec![b'k'; 250];
    c.set(&ok, b"v", 0, 0).unwrap();
    assert_eq!(c.get(&ok).unwrap().unwrap().value, b"v");
    // UTF-8 keys are fine (bytes above 0x7f are not control characters).
    c.set("ключ:1".as_bytes(), b"u", 0, 0).unwrap();
    assert_eq!(m.get_raw("ключ:1".as_bytes()).unwrap().unwrap(), b"u");
    let stats = c.stats(None).unwrap();
    let (_, s) = &stats[0];
    let cmd_set = s
        .as_ref()
        .unwrap()
        .iter()
        .find(|(k, _)| k == "cmd_set")
        .unwrap()
        .1
        .clone();
    assert_eq!(cmd_set, "2", "only the two valid sets were sent");
}

#[test]
fn flush_all_version_stats_on_every_node() {
    let (a, b) = (Memcached::start().unwrap(), Memcached::start().unwrap());
    let c = client_for(&[&a, &b], |_| {});
    for i in 0..50 {
        c.set(format!("f{i}").as_bytes(), b"x", 0, 0).unwrap();
    }
    let versions = c.version().unwrap();
    assert_eq!(versions.len(), 2);
    for (label, v) in &versions {
        assert!(label.starts_with("127.0.0.1:"));
        assert!(v.as_ref().unwrap().starts_with("1."), "{v:?}");
    }
    let stats = c.stats(Some("settings")).unwrap();
    assert!(stats
        .iter()
        .all(|(_, s)| s.as_ref().unwrap().iter().any(|(k, _)| k == "maxbytes")));
    assert!(matches!(
        c.stats(Some("bad arg")),
        Err(Error::InvalidArgument(_))
    ));
    c.flush_all(0).unwrap();
    for i in 0..50 {
        assert_eq!(c.get(format!("f{i}").as_bytes()).unwrap(), None);
    }
}

#[test]
fn multi_get_1000_keys_over_4_nodes() {
    let nodes: Vec<Memcached> = (0..4).map(|_| Memcached::start().unwrap()).collect();
    let c = client_for(&nodes, |_| {});
    let keys: Vec<Vec<u8>> = (0..1000).map(|i| format!("mk:{i}").into_bytes()).collect();
    let items: Vec<(&[u8], Vec<u8>)> = keys
        .iter()
        .map(|k| (k.as_slice(), [k.as_slice(), b"=v"].concat()))
        .collect();
    // Every other key is stored; the rest must come back as misses.
    let stored: Vec<(&[u8], &[u8], u32, i64)> = items
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(i, (k, v))| (*k, v.as_slice(), i as u32, 0))
        .collect();
    let res = c.store_multi(StoreCommand::Set, &stored);
    assert_eq!(res.len(), stored.len());
    assert!(res.iter().all(|r| *r == Ok(())), "{res:?}");
    // The keys really are spread over all four nodes.
    for n in &nodes {
        let on_node = keys
            .iter()
            .step_by(2)
            .filter(|k| n.get_raw(k).unwrap().is_some())
            .count();
        assert!(on_node > 50, "node {} holds {on_node} keys", n.addr());
    }
    let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
    let got = c.get_multi(&refs, false);
    assert_eq!(got.len(), 1000);
    for (i, r) in got.iter().enumerate() {
        let r = r.as_ref().unwrap();
        if i % 2 == 0 {
            let it = r.as_ref().unwrap();
            assert_eq!(it.value, items[i].1);
            assert_eq!(it.flags, i as u32);
        } else {
            assert!(r.is_none(), "key {i} is a miss");
        }
    }
    // Repeated keys and a bad key in the same call.
    let mixed: Vec<&[u8]> = vec![b"mk:0", b"bad key", b"mk:0", b"mk:1"];
    let got = c.get_multi(&mixed, true);
    assert_eq!(got[0].as_ref().unwrap().as_ref().unwrap().value, b"mk:0=v");
    assert!(got[0].as_ref().unwrap().as_ref().unwrap().cas != 0);
    assert!(matches!(got[1], Err(Error::BadKey { .. })));
    assert_eq!(got[2].as_ref().unwrap().as_ref().unwrap().value, b"mk:0=v");
    assert!(got[3].as_ref().unwrap().is_none());
    // delete_multi reports misses per key.
    let del = c.delete_multi(&[b"mk:0", b"mk:1"]);
    assert_eq!(del[0], Ok(()));
    assert_eq!(del[1], Err(Error::NotFound));
}

#[test]
fn multi_set_large_batches_do_not_deadlock() {
    // Requests far larger than the socket buffers force the interleaved path.
    let nodes: Vec<Memcached> = (0..2).map(|_| Memcached::start().unwrap()).collect();
    let c = client_for(&nodes, |o| o.io_timeout = Duration::from_secs(5));
    let value = vec![b'x'; 100_000];
    let keys: Vec<Vec<u8>> = (0..200).map(|i| format!("big:{i}").into_bytes()).collect();
    let items: Vec<(&[u8], &[u8], u32, i64)> = keys
        .iter()
        .map(|k| (k.as_slice(), value.as_slice(), 0, 0))
        .collect();
    let res = c.store_multi(StoreCommand::Set, &items);
    assert!(
        res.iter().all(|r| r.is_ok()),
        "{:?}",
        res.iter().find(|r| r.is_err())
    );
    let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
    let got = c.get_multi(&refs, false);
    assert!(got
        .iter()
        .all(|r| r.as_ref().unwrap().as_ref().unwrap().value.len() == 100_000));
}

#[test]
fn multi_get_with_a_dead_node_returns_the_others() {
    let mut nodes: Vec<Memcached> = (0..3).map(|_| Memcached::start().unwrap()).collect();
    let c = client_for(&nodes, |o| {
        o.connect_timeout = Duration::from_millis(300);
        o.io_timeout = Duration::from_millis(300);
        o.failure_limit = 100; // keep the dead node on the ring for this test
    });
    let keys: Vec<Vec<u8>> = (0..300).map(|i| format!("dk:{i}").into_bytes()).collect();
    for k in &keys {
        c.set(k, k, 0, 0).unwrap();
    }
    let dead = nodes[1].addr();
    nodes[1].kill();
    let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
    let got = c.get_multi(&refs, false);
    let (mut hits, mut errors) = (0, 0);
    for (k, r) in keys.iter().zip(&got) {
        let owner = c.server_for(k).unwrap();
        match r {
            Ok(Some(it)) => {
                assert_ne!(owner, dead);
                assert_eq!(&it.value, k);
                hits += 1;
            }
            Err(Error::Connection { addr, .. }) => {
                assert_eq!(owner, dead, "only the dead node's keys fail");
                assert_eq!(addr, &dead);
                errors += 1;
            }
            Err(e) => panic!("a refused connection, not {e:?}"),
            Ok(None) => panic!("no key is a miss here"),
        }
    }
    assert!(hits > 100 && errors > 50, "hits {hits}, errors {errors}");
}

#[test]
fn threads_share_one_client_without_cross_talk() {
    let nodes: Vec<Memcached> = (0..3).map(|_| Memcached::start().unwrap()).collect();
    let c = client_for(&nodes, |o| o.max_connections_per_node = 4);
    let c = &c;
    std::thread::scope(|s| {
        for t in 0..8u32 {
            s.spawn(move || {
                for i in 0..10_000u32 {
                    let key = format!("t{t}:{}", i % 97);
                    let val = format!("{t}:{i}:{}", "x".repeat((i % 50) as usize));
                    match i % 4 {
                        0 | 1 => c.set(key.as_bytes(), val.as_bytes(), t, 0).unwrap(),
                        2 => {
                            if let Some(it) = c.get(key.as_bytes()).unwrap() {
                                let s = String::from_utf8(it.value).unwrap();
                                assert!(s.starts_with(&format!("{t}:")), "thread {t} read {s}");
                                assert_eq!(it.flags, t);
                            }
                        }
                        _ => {
                            c.set(key.as_bytes(), val.as_bytes(), t, 0).unwrap();
                            let it = c.get(key.as_bytes()).unwrap().unwrap();
                            assert_eq!(
                                it.value,
                                val.as_bytes(),
                                "thread {t} reads back its own write"
                            );
                        }
                    }
                }
            });
        }
    });
}

#[test]
fn multi_get_arena_holds_every_value_in_one_buffer() {
    let nodes: Vec<Memcached> = (0..3).map(|_| Memcached::start().unwrap()).collect();
    let c = client_for(&nodes, |_| {});
    let keys: Vec<Vec<u8>> = (0..60).map(|i| format!("ak:{i}").into_bytes()).collect();
    // Lengths vary (0 included) so a wrong offset shows as a wrong value.
    let values: Vec<Vec<u8>> = (0..60)
        .map(|i| vec![b'a' + (i % 26) as u8; i * 7 % 50])
        .collect();
    for (i, (k, v)) in keys.iter().zip(&values).enumerate() {
        if i % 3 != 2 {
            c.set(k, v, i as u32, 0).unwrap();
        }
    }
    let mut refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
    refs.push(b"bad key");
    refs.push(keys[0].as_slice());
    let m = c.get_multi_arena(&refs, true);
    assert_eq!(m.entries.len(), 62);
    let stored_bytes: usize = (0..60)
        .filter(|i| i % 3 != 2)
        .map(|i| values[i].len())
        .sum();
    assert_eq!(m.data.len(), stored_bytes + values[0].len());
    for (i, (entry, value)) in m.entries.iter().zip(&values).enumerate() {
        match entry.as_ref().unwrap() {
            Some(slot) => {
                assert_ne!(i % 3, 2, "key {i} was never stored");
                assert_eq!(m.value(slot), value.as_slice(), "key {i}");
                assert_eq!(slot.flags, i as u32);
                assert_ne!(slot.cas, 0);
            }
            None => assert_eq!(i % 3, 2, "key {i} was stored"),
        }
    }
    assert!(matches!(m.entries[60], Err(Error::BadKey { .. })));
    let again = m.entries[61].as_ref().unwrap().unwrap();
    assert_eq!(m.value(&again), values[0].as_slice());
    // get_multi gives the same answers as owned items.
    let items = c.get_multi(&refs, true);
    for (i, (a, b)) in m.entries.iter().zip(&items).enumerate() {
        match (a, b) {
            (Ok(Some(s)), Ok(Some(it))) => {
                assert_eq!(m.value(s), it.value.as_slice(), "key {i}");
                assert_eq!((s.flags, s.cas), (it.flags, it.cas));
            }
            (Ok(None), Ok(None)) => {}
            (Err(x), Err(y)) => assert_eq!(x, y),
            other => panic!("key {i}: {other:?}"),
        }
    }
}
