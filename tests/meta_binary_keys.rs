//! Keys with whitespace and control bytes (pylibmc's binary protocol carries
//! them) through memcached's meta protocol, against real memcached: every
//! single-key and multi-key operation, the item stored under the decoded
//! bytes on the node the ring picks for the raw key, and refusals (option
//! off, too long, an engine without the meta protocol).

mod meta_common;

use elasticache::error::Error;
use elasticache::hash::HashAlgorithm;
use elasticache::protocol::StoreCommand;
use elasticache::ring::{Distribution, Ring, ServerSpec};
use elasticache::testkit::Memcached;
use meta_common::{addrs, b64, client, raw_meta, FakeNode};

const KEYS: [&[u8]; 6] = [
    b"\x00\x01",
    "\u{b5} bad".as_bytes(),
    b"with space",
    b"line\r\nbreak",
    b"\x7f",
    b" ",
];

#[test]
fn binary_keys_single_key_operations() {
    let m = Memcached::start().unwrap();
    let c = client(&addrs(std::slice::from_ref(&m)), |o| o.binary_keys = true);
    for (i, key) in KEYS.iter().enumerate() {
        let val = format!("value {i}");
        assert_eq!(c.get(key).unwrap(), None, "{key:?} starts missing");
        c.set(key, val.as_bytes(), 16, 0).unwrap();
        let got = c.get(key).unwrap().expect("hit after set");
        assert_eq!((got.value.as_slice(), got.flags), (val.as_bytes(), 16));
        assert!(matches!(
            c.store(StoreCommand::Add, key, b"x", 0, 0, 0),
            Err(Error::NotStored)
        ));
        c.store(StoreCommand::Append, key, b"+a", 0, 0, 0).unwrap();
        c.store(StoreCommand::Prepend, key, b"p+", 0, 0, 0).unwrap();
        let got = c.gets(key).unwrap().unwrap();
        assert_eq!(got.value, format!("p+{val}+a").into_bytes());
        assert_eq!(got.flags, 16, "append/prepend keep the flags");
        assert!(got.cas > 0, "gets returns a cas id");
        assert!(matches!(
            c.store(StoreCommand::Cas, key, b"c", 1, 0, got.cas + 1000),
            Err(Error::Exists)
        ));
        c.store(StoreCommand::Cas, key, b"c", 1, 0, got.cas)
            .unwrap();
        assert_eq!(c.get(key).unwrap().unwrap().value, b"c");
        c.store(StoreCommand::Replace, key, b"41", 2, 0, 0).unwrap();
        assert_eq!(c.arith(key, true, 1).unwrap(), 42);
        assert_eq!(c.arith(key, false, 50).unwrap(), 0);
        c.touch(key, 100).unwrap();
        c.delete(key).unwrap();
        assert!(matches!(c.delete(key), Err(Error::NotFound)));
        assert!(matches!(c.touch(key, 1), Err(Error::NotFound)));
        assert!(matches!(c.arith(key, true, 1), Err(Error::NotFound)));
        assert!(matches!(
            c.store(StoreCommand::Replace, key, b"x", 0, 0, 0),
            Err(Error::NotStored)
        ));
        // A text key next to the binary ones still goes the text way and works.
        c.set(b"plain", b"p", 0, 0).unwrap();
        assert_eq!(c.get(b"plain").unwrap().unwrap().value, b"p");
    }
    // Non-numeric incr is the server's CLIENT_ERROR, with the connection still usable.
    c.set(b"a b", b"text", 0, 0).unwrap();
    assert!(matches!(
        c.arith(b"a b", true, 1),
        Err(Error::Client { .. })
    ));
    assert_eq!(c.get(b"a b").unwrap().unwrap().value, b"text");
}

#[test]
fn binary_key_is_stored_under_its_decoded_bytes_on_the_ring_owner() {
    let nodes: Vec<Memcached> = (0..3).map(|_| Memcached::start().unwrap()).collect();
    let c = client(&addrs(&nodes), |o| o.binary_keys = true);
    let specs: Vec<ServerSpec> = nodes
        .iter()
        .map(|m| ServerSpec::new(m.ip(), m.port()))
        .collect();
    let ring = Ring::new(&specs, Distribution::Ketama, HashAlgorithm::OneAtATime);
    let mut owners = std::collections::HashSet::new();
    for i in 0..30u8 {
        let key = [b'k', b' ', i, 0];
        c.set(&key, &[i], 0, 0).unwrap();
        let owner = ring.owner(&key).unwrap();
        owners.insert(owner);
        for (n, m) in nodes.iter().enumerate() {
            // Asked independently of the library: mg with the base64 key.
            let req = format!("mg {} b v\r\nmn\r\n", b64(&key));
            let got = raw_meta(m.ip(), m.port(), req.as_bytes());
            if n == owner {
                assert_eq!(got, [b"VA 1\r\n".as_slice(), &[i], b"\r\nMN\r\n"].concat());
            } else {
                assert_eq!(got, b"EN\r\nMN\r\n", "key {key:?} only on node {owner}");
            }
        }
    }
    assert!(owners.len() > 1, "30 keys spread over more than one node");
}

#[test]
fn binary_keys_multi_key_operations_mixed_with_text_keys() {
    let nodes: Vec<Memcached> = (0..3).map(|_| Memcached::start().unwrap()).collect();
    let c = client(&addrs(&nodes), |o| o.binary_keys = true);
    let keys: Vec<Vec<u8>> = (0..200)
        .map(|i| {
            if i % 2 == 0 {
                format!("bin {i}\x01").into_bytes()
            } else {
                format!("text:{i}").into_bytes()
            }
        })
        .collect();
    let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
    let items: Vec<(&[u8], &[u8], u32, i64)> = refs
        .iter()
        .filter(|k| !k.ends_with(b"7") && !k.ends_with(b"8\x01"))
        .map(|k| (*k, *k, 16u32, 0i64))
        .collect();
    assert!(c
        .store_multi(StoreCommand::Set, &items)
        .iter()
        .all(|r| r.is_ok()));
    let got = c.get_multi(&refs, true);
    for (k, r) in refs.iter().zip(&got) {
        let skipped = k.ends_with(b"7") || k.ends_with(b"8\x01");
        match r.as_ref().unwrap() {
            Some(item) => {
                assert!(!skipped, "{k:?} was never stored");
                assert_eq!((item.value.as_slice(), item.flags), (*k, 16));
                assert!(item.cas > 0);
            }
            None => assert!(skipped, "{k:?} was stored"),
        }
    }
    // add over existing keys: NotStored per key, text and binary alike.
    let adds: Vec<_> = items.iter().take(6).copied().collect();
    for r in c.store_multi(StoreCommand::Add, &adds) {
        assert!(matches!(r, Err(Error::NotStored)), "{r:?}");
    }
    let del = c.delete_multi(&refs);
    for (k, r) in refs.iter().zip(&del) {
        let skipped = k.ends_with(b"7") || k.ends_with(b"8\x01");
        assert_eq!(matches!(r, Err(Error::NotFound)), skipped, "{k:?}: {r:?}");
        assert!(skipped || r.is_ok());
    }
    assert!(c
        .get_multi(&refs, false)
        .iter()
        .all(|r| matches!(r, Ok(None))));
}

#[test]
fn binary_keys_refused_when_off_too_long_or_on_old_engines() {
    let m = Memcached::start().unwrap();
    let off = client(&addrs(std::slice::from_ref(&m)), |_| {});
    assert!(matches!(
        off.set(b"a b", b"v", 0, 0),
        Err(Error::BadKey { .. })
    ));
    assert!(matches!(
        off.get_multi(&[b"a b"], false)[0],
        Err(Error::BadKey { .. })
    ));

    let on = client(&addrs(std::slice::from_ref(&m)), |o| o.binary_keys = true);
    on.set(&[1u8; 186], b"v", 0, 0).unwrap();
    assert_eq!(on.get(&[1u8; 186]).unwrap().unwrap().value, b"v");
    match on.set(&[1u8; 187], b"v", 0, 0) {
        Err(Error::BadKey { reason }) => assert!(reason.contains("186"), "{reason}"),
        other => panic!("187-byte binary key: {other:?}"),
    }
    match on.get(b"") {
        Err(Error::BadKey { reason }) => assert!(reason.contains("empty"), "{reason}"),
        other => panic!("empty key: {other:?}"),
    }

    for version in ["1.5.22", "1.6.6", "1.4.34"] {
        let fake = FakeNode::start(version);
        let c = client(&[("127.0.0.1".into(), fake.port)], |o| o.binary_keys = true);
        match c.set(b"a b", b"v", 0, 0) {
            Err(Error::BadKey { reason }) => assert!(reason.contains("1.6.10"), "{reason}"),
            other => panic!("{version}: {other:?}"),
        }
        assert!(matches!(c.get(b"\x00"), Err(Error::BadKey { .. })));
        assert!(matches!(
            c.get_multi(&[b"\x00", b"ok"], false)[0],
            Err(Error::BadKey { .. })
        ));
        // Text keys keep working on that engine.
        c.set(b"ok", b"v", 0, 0).unwrap();
        assert_eq!(c.get(b"ok").unwrap().unwrap().value, b"v");
        let cmds = fake.commands();
        assert_eq!(
            cmds.iter().filter(|w| *w == "version").count(),
            1,
            "{version}: the version is asked once and remembered: {cmds:?}"
        );
        assert!(
            cmds.iter().all(|w| !w.starts_with('m')),
            "{version}: no meta command reaches an old engine: {cmds:?}"
        );
    }

    // A node that claims 1.6.18 but answers ERROR to meta commands (a proxy in
    // front): refused with the same reason, and not asked again.
    let liar = FakeNode::start("1.6.18");
    let c = client(&[("127.0.0.1".into(), liar.port)], |o| o.binary_keys = true);
    assert!(matches!(c.get(b"a b"), Err(Error::BadKey { .. })));
    assert!(matches!(c.get(b"a b"), Err(Error::BadKey { .. })));
    let mgs = liar.commands().iter().filter(|w| *w == "mg").count();
    assert_eq!(mgs, 1, "after one ERROR the node is taken as meta-less");
}
