//! The C API of leases, invalidation and binary keys, called as C would,
//! against a real memcached.

use std::ffi::{c_char, CString};
use std::ptr;

use elasticache::ffi::client::*;
use elasticache::ffi::meta::*;
use elasticache::ffi::options::*;
use elasticache::ffi::single::*;
use elasticache::testkit::Memcached;
use elasticache::Status;

const OK: Status = Status::Ok;

unsafe fn new_client(addr: &str, binary: bool) -> *mut elasticache_client {
    let mut opts = ptr::null_mut();
    assert_eq!(elasticache_options_new(&mut opts), OK);
    let (name, val) = (
        CString::new("binary_keys").unwrap(),
        CString::new(binary.to_string()).unwrap(),
    );
    assert_eq!(
        elasticache_options_set(opts, name.as_ptr(), val.as_ptr()),
        OK
    );
    let server = CString::new(addr).unwrap();
    let servers: [*const c_char; 1] = [server.as_ptr()];
    let mut c = ptr::null_mut();
    assert_eq!(
        elasticache_client_new_servers(servers.as_ptr(), 1, ptr::null(), opts, &mut c),
        OK
    );
    elasticache_options_free(opts);
    c
}

#[test]
fn lease_round_trip_through_the_c_api() {
    let m = Memcached::start().unwrap();
    unsafe {
        let c = new_client(&m.addr(), true);
        for key in [&b"c:lease"[..], b"c lease\x00"] {
            let mut l = ptr::null_mut();
            assert_eq!(
                elasticache_get_or_lease(c, key.as_ptr(), key.len(), 30, 0, &mut l),
                OK
            );
            assert_eq!(
                elasticache_lease_get_state(l),
                elasticache_lease_state::Miss
            );
            assert!(!elasticache_lease_has_value(l) && elasticache_lease_data(l).is_null());
            assert!(elasticache_lease_protected(l));
            elasticache_lease_free(l);

            let mut l = ptr::null_mut();
            assert_eq!(
                elasticache_get_or_lease(c, key.as_ptr(), key.len(), 30, 0, &mut l),
                OK
            );
            assert_eq!(
                elasticache_lease_get_state(l),
                elasticache_lease_state::Wait
            );
            elasticache_lease_free(l);

            assert_eq!(
                elasticache_set(c, key.as_ptr(), key.len(), b"val".as_ptr(), 3, 16, 0),
                OK
            );
            let mut l = ptr::null_mut();
            assert_eq!(
                elasticache_get_or_lease(c, key.as_ptr(), key.len(), 30, 0, &mut l),
                OK
            );
            assert_eq!(elasticache_lease_get_state(l), elasticache_lease_state::Hit);
            let data =
                std::slice::from_raw_parts(elasticache_lease_data(l), elasticache_lease_len(l));
            assert_eq!((data, elasticache_lease_flags(l)), (&b"val"[..], 16));
            assert!(elasticache_lease_cas(l) > 0);
            assert_eq!(elasticache_lease_ttl(l), -1);
            assert!(!elasticache_lease_stale(l));
            elasticache_lease_free(l);

            assert_eq!(elasticache_invalidate(c, key.as_ptr(), key.len(), 60), OK);
            let mut l = ptr::null_mut();
            assert_eq!(
                elasticache_get_or_lease(c, key.as_ptr(), key.len(), 30, 0, &mut l),
                OK
            );
            assert_eq!(
                elasticache_lease_get_state(l),
                elasticache_lease_state::Refresh
            );
            assert!(elasticache_lease_stale(l));
            assert!((0..=60).contains(&elasticache_lease_ttl(l)));
            elasticache_lease_free(l);
        }
        let miss = b"c:none";
        assert_eq!(
            elasticache_invalidate(c, miss.as_ptr(), miss.len(), 0),
            Status::NotFound
        );
        // NULLs and bad arguments: statuses, never a crash.
        let mut l = ptr::null_mut();
        assert_eq!(
            elasticache_get_or_lease(ptr::null(), miss.as_ptr(), miss.len(), 30, 0, &mut l),
            Status::InvalidArgument
        );
        assert_eq!(
            elasticache_get_or_lease(c, miss.as_ptr(), miss.len(), 30, 0, ptr::null_mut()),
            Status::InvalidArgument
        );
        assert_eq!(
            elasticache_get_or_lease(c, miss.as_ptr(), miss.len(), 0, 0, &mut l),
            Status::InvalidArgument
        );
        assert!(l.is_null(), "no output on failure");
        assert_eq!(
            elasticache_lease_get_state(ptr::null()),
            elasticache_lease_state::Miss
        );
        assert_eq!(elasticache_lease_len(ptr::null()), 0);
        assert_eq!(elasticache_lease_ttl(ptr::null()), -2);
        elasticache_lease_free(ptr::null_mut());
        elasticache_client_free(c);

        // Without binary_keys a binary key is BAD_KEY, as before.
        let c = new_client(&m.addr(), false);
        let key = b"a b";
        assert_eq!(
            elasticache_get_or_lease(c, key.as_ptr(), key.len(), 30, 0, &mut l),
            Status::BadKey
        );
        assert_eq!(
            elasticache_set(c, key.as_ptr(), key.len(), b"v".as_ptr(), 1, 0, 0),
            Status::BadKey
        );
        elasticache_client_free(c);
    }
}

#[test]
fn multi_key_leases_through_the_c_api() {
    let m = Memcached::start().unwrap();
    unsafe {
        let c = new_client(&m.addr(), true);
        let keys: [&[u8]; 3] = [b"c:hit", b"", b"c miss\x01"];
        assert_eq!(
            elasticache_set(c, keys[0].as_ptr(), keys[0].len(), b"v".as_ptr(), 1, 7, 0),
            OK
        );
        let ptrs: Vec<*const u8> = keys.iter().map(|k| k.as_ptr()).collect();
        let lens: Vec<usize> = keys.iter().map(|k| k.len()).collect();
        let mut leases = [ptr::null_mut(); 3];
        let mut statuses = [u32::MAX; 3];
        let rc = elasticache_get_or_lease_multi(
            c,
            ptrs.as_ptr(),
            lens.as_ptr(),
            3,
            30,
            0,
            leases.as_mut_ptr(),
            statuses.as_mut_ptr(),
        );
        let bad_key = Status::BadKey;
        assert_eq!(rc, bad_key, "the first failing key's status");
        assert_eq!(statuses, [OK as u32, bad_key as u32, OK as u32]);
        assert!(leases[1].is_null());
        assert_eq!(
            elasticache_lease_get_state(leases[0]),
            elasticache_lease_state::Hit
        );
        assert_eq!(elasticache_lease_flags(leases[0]), 7);
        assert_eq!(
            elasticache_lease_get_state(leases[2]),
            elasticache_lease_state::Miss
        );
        for l in leases {
            elasticache_lease_free(l);
        }
        // NULL where n entries are needed is an error, never a crash.
        let rc = elasticache_get_or_lease_multi(
            c,
            ptrs.as_ptr(),
            lens.as_ptr(),
            3,
            30,
            0,
            ptr::null_mut(),
            ptr::null_mut(),
        );
        assert_eq!(rc, Status::InvalidArgument);
        assert_eq!(
            elasticache_get_or_lease_multi(
                c,
                ptr::null(),
                ptr::null(),
                0,
                30,
                0,
                ptr::null_mut(),
                ptr::null_mut()
            ),
            OK
        );
        elasticache_client_free(c);
    }
}
