//! The C entry points' small faults: `elasticache_get_into` reports the cas id
//! (it read with `get`, which has none, and wrote 0).

use std::ffi::CString;
use std::ptr;

use elasticache::error::Status;
use elasticache::ffi::client::*;
use elasticache::ffi::single::*;
use elasticache::testkit::Memcached;

#[test]
fn get_into_reports_the_cas_id_that_gets_sees() {
    let m = Memcached::start().unwrap();
    let addr = CString::new(m.addr()).unwrap();
    let servers = [addr.as_ptr()];
    let mut c = ptr::null_mut();
    // SAFETY: valid arguments per the C contract.
    unsafe {
        assert_eq!(
            elasticache_client_new_servers(servers.as_ptr(), 1, ptr::null(), ptr::null(), &mut c),
            Status::Ok
        );
        assert_eq!(
            elasticache_set(c, b"k".as_ptr(), 1, b"vv".as_ptr(), 2, 7, 0),
            Status::Ok
        );
        let mut v = ptr::null_mut();
        assert_eq!(elasticache_gets(c, b"k".as_ptr(), 1, &mut v), Status::Ok);
        let want = elasticache_value_cas(v);
        elasticache_value_free(v);
        assert_ne!(want, 0);
        let mut buf = [0u8; 8];
        let (mut len, mut flags, mut cas) = (0usize, 0u32, 0u64);
        let st = elasticache_get_into(
            c,
            b"k".as_ptr(),
            1,
            buf.as_mut_ptr(),
            buf.len(),
            &mut len,
            &mut flags,
            &mut cas,
        );
        assert_eq!(st, Status::Ok);
        assert_eq!((&buf[..len], flags, cas), (&b"vv"[..], 7, want));
        elasticache_client_free(c);
    }
}
