//! The packed multi-key calls (src/ffi/packed.rs) through their `extern "C"`
//! functions against real memcached processes: results cut by the documented
//! layout agree with the per-key calls, per-key statuses and messages, and the
//! whole-call refusals that send nothing.

use std::ffi::CStr;
use std::ptr;

use elasticache::ffi::client::*;
use elasticache::ffi::packed::*;
use elasticache::ffi::single::*;
use elasticache::testkit::Memcached;
use elasticache::Status;

struct Client(*mut elasticache_client);

impl Drop for Client {
    fn drop(&mut self) {
        unsafe { elasticache_client_free(self.0) };
    }
}

fn client(servers: &[String]) -> Client {
    Client(elasticache::testkit::c_client(servers))
}

/// A port nothing listens on (bound, then released).
fn dead_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap().to_string();
    drop(l);
    a
}

/// One key's answer, read back from a packed result by its documented layout.
#[derive(Debug, PartialEq)]
enum Got {
    Hit(Vec<u8>, u32),
    Status(u32, Option<String>),
}

/// `elasticache_get_multi_packed` of `n` keys, space-separated in `keys`:
/// its status and its result (to free).
fn get_multi_packed(
    c: &Client,
    prefix: &[u8],
    keys: &[u8],
    n: usize,
) -> (Status, *mut elasticache_packed) {
    let mut out = ptr::null_mut();
    let st = unsafe {
        elasticache_get_multi_packed(
            c.0,
            prefix.as_ptr(),
            prefix.len(),
            keys.as_ptr(),
            keys.len(),
            n,
            &mut out,
        )
    };
    (st, out)
}

fn get_packed(c: &Client, prefix: &[u8], keys: &[&[u8]]) -> Vec<Got> {
    let (st, out) = get_multi_packed(c, prefix, &keys.join(&b' '), keys.len());
    assert_eq!(st, Status::Ok);
    let p = unsafe { &*out };
    let data = unsafe { std::slice::from_raw_parts(p.data.cast::<u8>(), p.len) };
    let n = keys.len();
    assert_eq!(p.n, n);
    let (mask, statuses) = (&data[..n], &data[n..2 * n]);
    assert_eq!(p.values_offset, 2 * n);
    // The format: "<len>s" per hit, the values back to back at values_offset.
    let format = std::str::from_utf8(&data[p.format_offset..]).unwrap();
    let lens: Vec<usize> = format
        .split_terminator('s')
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(lens.len(), p.hits);
    assert_eq!(p.values_offset + lens.iter().sum::<usize>(), p.flags_offset);
    assert_eq!(p.flags_offset + 4 * p.hits, p.format_offset);
    let flags: Vec<u32> = data[p.flags_offset..p.format_offset]
        .chunks(4)
        .map(|b| u32::from_ne_bytes(b.try_into().unwrap()))
        .collect();
    if let Some(&f) = flags.first() {
        let same = flags.iter().all(|&g| g == f);
        assert_eq!(p.flags, if same { f } else { u32::MAX });
    } else {
        assert_eq!(p.flags, u32::MAX);
    }
    let (mut at, mut hit) = (p.values_offset, 0);
    let mut errors = 0;
    let mut got = Vec::new();
    for i in 0..n {
        assert_eq!(mask[i] == 1, statuses[i] == Status::Ok as u8, "key {i}");
        let msg = unsafe { elasticache_packed_error(out, i) };
        if mask[i] == 1 {
            assert!(msg.is_null());
            got.push(Got::Hit(data[at..at + lens[hit]].to_vec(), flags[hit]));
            at += lens[hit];
            hit += 1;
        } else {
            let st = statuses[i] as u32;
            let msg = (!msg.is_null())
                .then(|| unsafe { CStr::from_ptr(msg) }.to_str().unwrap().to_string());
            assert_eq!(
                msg.is_some(),
                st != Status::NotFound as u32,
                "key {i}: {st}"
            );
            errors += msg.is_some() as usize;
            got.push(Got::Status(st, msg));
        }
    }
    assert_eq!(p.errors, errors);
    assert!(unsafe { elasticache_packed_error(out, n) }.is_null());
    unsafe { elasticache_packed_free(out) };
    got
}

fn set_packed(
    c: &Client,
    prefix: &[u8],
    items: &[(&[u8], &[u8], u32)],
    per_item_flags: bool,
) -> (Status, Vec<u32>) {
    let keys: Vec<&[u8]> = items.iter().map(|i| i.0).collect();
    let joined = keys.join(&b' ');
    let values: Vec<u8> = items.iter().flat_map(|i| i.1.iter().copied()).collect();
    let lens: Vec<usize> = items.iter().map(|i| i.1.len()).collect();
    let flags: Vec<u32> = items.iter().map(|i| i.2).collect();
    let mut statuses = vec![u32::MAX; items.len()];
    let st = unsafe {
        elasticache_set_multi_packed(
            c.0,
            prefix.as_ptr(),
            prefix.len(),
            joined.as_ptr(),
            joined.len(),
            values.as_ptr(),
            values.len(),
            lens.as_ptr(),
            if per_item_flags {
                flags.as_ptr()
            } else {
                ptr::null()
            },
            items.first().map_or(0, |i| i.2),
            0,
            false,
            items.len(),
            statuses.as_mut_ptr(),
        )
    };
    (st, statuses)
}

fn get_one(c: &Client, key: &[u8]) -> Option<(Vec<u8>, u32)> {
    let mut v = ptr::null_mut();
    let st = unsafe { elasticache_get(c.0, key.as_ptr(), key.len(), &mut v) };
    if st == Status::NotFound {
        return None;
    }
    assert_eq!(st, Status::Ok);
    let out = unsafe {
        let d = std::slice::from_raw_parts(
            elasticache_value_data(v).cast::<u8>(),
            elasticache_value_len(v),
        );
        (d.to_vec(), elasticache_value_flags(v))
    };
    unsafe { elasticache_value_free(v) };
    Some(out)
}

#[test]
fn packed_set_get_delete_agree_with_the_per_key_calls() {
    let nodes: Vec<Memcached> = (0..3).map(|_| Memcached::start().unwrap()).collect();
    let c = client(&nodes.iter().map(|m| m.addr()).collect::<Vec<_>>());
    let names: Vec<Vec<u8>> = (0..60).map(|i| format!("pk:{i}").into_bytes()).collect();
    let vals: Vec<Vec<u8>> = (0..60)
        .map(|i| vec![b'a' + (i % 26) as u8; i * 37 % 500])
        .collect();
    let items: Vec<(&[u8], &[u8], u32)> = names
        .iter()
        .zip(&vals)
        .enumerate()
        .map(|(i, (k, v))| (&k[..], &v[..], (i % 3) as u32 * 8))
        .collect();
    let (st, statuses) = set_packed(&c, b"", &items, true);
    assert_eq!(st, Status::Ok);
    assert!(statuses.iter().all(|&s| s == Status::Ok as u32));
    for (k, v, f) in &items {
        assert_eq!(get_one(&c, k), Some((v.to_vec(), *f)));
    }

    // Hits, a miss, an empty key and a control character, in the order asked.
    let mut keys: Vec<&[u8]> = names.iter().map(|k| &k[..]).collect();
    keys.insert(5, b"pk:missing");
    keys.insert(9, b"");
    keys.insert(12, b"pk:\x01");
    let got = get_packed(&c, b"", &keys);
    for (k, g) in keys.iter().zip(&got) {
        if k.is_empty() || k.contains(&1) {
            assert!(
                matches!(g, Got::Status(s, Some(_)) if *s == Status::BadKey as u32),
                "{g:?}"
            );
            continue;
        }
        match get_one(&c, k) {
            Some((v, f)) => assert_eq!(g, &Got::Hit(v, f)),
            None => assert_eq!(g, &Got::Status(Status::NotFound as u32, None)),
        }
    }
    assert_eq!(
        got.iter().filter(|g| matches!(g, Got::Hit(..))).count(),
        names.len()
    );

    // A prefix, common flags (NULL flags array), values of length 0.
    let short: Vec<(&[u8], &[u8], u32)> = vec![(b"x", b"", 16), (b"y", b"yy", 16)];
    assert_eq!(set_packed(&c, b"pre:", &short, false).0, Status::Ok);
    assert_eq!(get_one(&c, b"pre:x"), Some((vec![], 16)));
    let got = get_packed(&c, b"pre:", &[b"x", b"y", b"z"]);
    assert_eq!(
        got,
        vec![
            Got::Hit(vec![], 16),
            Got::Hit(b"yy".to_vec(), 16),
            Got::Status(Status::NotFound as u32, None)
        ]
    );

    let joined = b"x z";
    let mut statuses = [u32::MAX; 2];
    let st = unsafe {
        elasticache_delete_multi_packed(
            c.0,
            b"pre:".as_ptr(),
            4,
            joined.as_ptr(),
            3,
            2,
            statuses.as_mut_ptr(),
        )
    };
    assert_eq!(st, Status::NotFound);
    assert_eq!(statuses, [Status::Ok as u32, Status::NotFound as u32]);
    assert_eq!(get_one(&c, b"pre:x"), None);
    assert!(get_one(&c, b"pre:y").is_some());
}

#[test]
fn refusals_send_nothing() {
    let m = Memcached::start().unwrap();
    let c = client(&[m.addr()]);
    let long = vec![b'k'; 251];
    let cases: Vec<(&[u8], Vec<u8>, usize)> = vec![
        (b"", b"a b".to_vec(), 1),         // a key with a space: 2 keys, not 1
        (b"", b"a".to_vec(), 2),           // too few keys
        (b"", long.clone(), 1),            // over 250 bytes
        (&[b'p'; 200], vec![b'k'; 51], 1), // over 250 with the prefix
    ];
    for (prefix, keys, n) in &cases {
        let vals = vec![b'v'; *n];
        let lens = vec![1usize; *n];
        let mut statuses = vec![u32::MAX; *n];
        let st = unsafe {
            elasticache_set_multi_packed(
                c.0,
                prefix.as_ptr(),
                prefix.len(),
                keys.as_ptr(),
                keys.len(),
                vals.as_ptr(),
                vals.len(),
                lens.as_ptr(),
                ptr::null(),
                0,
                0,
                false,
                *n,
                statuses.as_mut_ptr(),
            )
        };
        assert_eq!(st, Status::InvalidArgument, "{keys:?}");
        assert!(
            statuses.iter().all(|&s| s == u32::MAX),
            "statuses untouched"
        );
        let (st, out) = get_multi_packed(&c, prefix, keys, *n);
        assert_eq!(st, Status::InvalidArgument);
        assert!(out.is_null(), "no output on failure");
    }
    for k in [&b"a"[..], b"b", b"a b"] {
        assert_eq!(m.get_raw(k).unwrap(), None, "nothing was stored");
    }
    // Lengths that do not add up to the values buffer.
    let mut statuses = [u32::MAX; 2];
    for lens in [[1usize, 1], [2, 2], [usize::MAX, 3]] {
        let st = unsafe {
            elasticache_set_multi_packed(
                c.0,
                ptr::null(),
                0,
                b"a b".as_ptr(),
                3,
                b"vvv".as_ptr(),
                3,
                lens.as_ptr(),
                ptr::null(),
                0,
                0,
                false,
                2,
                statuses.as_mut_ptr(),
            )
        };
        assert_eq!(st, Status::InvalidArgument, "{lens:?}");
    }
    assert_eq!(m.get_raw(b"a").unwrap(), None);
    // NULL client and NULL out.
    let mut out = ptr::null_mut();
    let st = unsafe {
        elasticache_get_multi_packed(ptr::null(), ptr::null(), 0, b"a".as_ptr(), 1, 1, &mut out)
    };
    assert_eq!(st, Status::InvalidArgument);
    let st = unsafe {
        elasticache_get_multi_packed(c.0, ptr::null(), 0, b"a".as_ptr(), 1, 1, ptr::null_mut())
    };
    assert_eq!(st, Status::InvalidArgument);
    let st = unsafe {
        elasticache_delete_multi_packed(c.0, ptr::null(), 0, ptr::null(), 1, 1, ptr::null_mut())
    };
    assert_eq!(st, Status::InvalidArgument);
    unsafe { elasticache_packed_free(ptr::null_mut()) };
    assert!(unsafe { elasticache_packed_error(ptr::null(), 0) }.is_null());
}

#[test]
fn a_dead_node_fails_its_keys_and_keeps_the_others() {
    let m = Memcached::start().unwrap();
    let c = client(&[m.addr(), dead_addr()]);
    let names: Vec<Vec<u8>> = (0..40).map(|i| format!("dn:{i}").into_bytes()).collect();
    let items: Vec<(&[u8], &[u8], u32)> = names.iter().map(|k| (&k[..], &b"v"[..], 0)).collect();
    let (st, statuses) = set_packed(&c, b"", &items, false);
    assert_ne!(st, Status::Ok, "some keys live on the dead node");
    let stored = statuses.iter().filter(|&&s| s == Status::Ok as u32).count();
    assert!(stored > 0 && stored < names.len(), "{statuses:?}");
    let keys: Vec<&[u8]> = names.iter().map(|k| &k[..]).collect();
    let got = get_packed(&c, b"", &keys);
    for (st, g) in statuses.iter().zip(&got) {
        if *st == Status::Ok as u32 {
            assert_eq!(g, &Got::Hit(b"v".to_vec(), 0));
        } else {
            assert!(
                matches!(g, Got::Status(s, Some(msg))
                if *s != Status::NotFound as u32 && !msg.is_empty()),
                "{g:?}"
            );
        }
    }
}
