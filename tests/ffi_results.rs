//! What the C result objects report beyond values: the client's own node
//! list, a multi-key entry's status *and* its last-error message, and a
//! failed node's message in a stats result (not an invented entry).

use std::ffi::{c_char, CStr};
use std::ptr;

use elasticache::error::Status;
use elasticache::ffi::client::*;
use elasticache::ffi::elasticache_last_error_message;
use elasticache::ffi::multi::*;
use elasticache::ffi::single::*;
use elasticache::ffi::stats::*;
use elasticache::testkit::memcached::free_port;
use elasticache::testkit::Memcached;

fn last_error() -> String {
    let mut buf = [0 as c_char; 512];
    // SAFETY: the buffer is valid for its length.
    unsafe { elasticache_last_error_message(buf.as_mut_ptr(), buf.len(), ptr::null_mut()) };
    // SAFETY: NUL-terminated by the call.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

use elasticache::testkit::c_client as client;

/// A real node, the address of a dead one (nothing listens), and a client over both.
fn live_and_dead() -> (Memcached, String, *mut elasticache_client) {
    let live = Memcached::start().unwrap();
    let dead = format!("127.0.0.1:{}", free_port("127.0.0.1").unwrap());
    let c = client(&[live.addr(), dead.clone()]);
    (live, dead, c)
}

#[test]
fn client_servers_is_the_routing_list_in_order() {
    let (a, b) = (Memcached::start().unwrap(), Memcached::start().unwrap());
    let c = client(&[b.addr(), a.addr()]);
    let want = format!("{}\n{}", b.addr(), a.addr());
    let mut buf = [0 as c_char; 128];
    let mut n = 0usize;
    // SAFETY (this block): live client, buffers valid for their lengths.
    unsafe {
        assert_eq!(
            elasticache_client_servers(c, buf.as_mut_ptr(), buf.len(), &mut n),
            Status::Ok
        );
        assert_eq!(CStr::from_ptr(buf.as_ptr()).to_str().unwrap(), want);
        assert_eq!(n, want.len());
        // Too small: the needed length is reported, and the message says so.
        let mut small = [0 as c_char; 4];
        let st = elasticache_client_servers(c, small.as_mut_ptr(), small.len(), &mut n);
        assert_eq!(st, Status::BufferTooSmall);
        assert_eq!(n, want.len());
        // The index a key routes to counts in this list.
        let mut i = usize::MAX;
        assert_eq!(
            elasticache_server_index_for_key(c, b"k".as_ptr(), 1, &mut i),
            Status::Ok
        );
        let mut owner = [0 as c_char; 64];
        assert_eq!(
            elasticache_server_for_key(c, b"k".as_ptr(), 1, owner.as_mut_ptr(), 64, &mut n),
            Status::Ok
        );
        let owner = CStr::from_ptr(owner.as_ptr()).to_str().unwrap().to_string();
        assert_eq!(want.split('\n').nth(i), Some(owner.as_str()));
        elasticache_client_free(c);
    }
}

#[test]
fn multi_item_sets_the_last_error_of_the_entry() {
    let (live, dead, c) = live_and_dead();
    // Keys on each node: some hit, some miss, some meet the dead node.
    let keys: Vec<String> = (0..40).map(|i| format!("mi{i}")).collect();
    let ptrs: Vec<*const u8> = keys.iter().map(|k| k.as_ptr()).collect();
    let lens: Vec<usize> = keys.iter().map(|k| k.len()).collect();
    let mut m = ptr::null_mut();
    // SAFETY (this block): live client and result, arrays of keys.len() entries.
    unsafe {
        // Even keys of the live node are stored, odd ones miss; the dead node
        // is first contacted by the multi-get (before failures could eject it).
        for k in keys.iter().step_by(2) {
            let mut owner = [0 as c_char; 64];
            let mut n = 0;
            assert_eq!(
                elasticache_server_for_key(c, k.as_ptr(), k.len(), owner.as_mut_ptr(), 64, &mut n),
                Status::Ok
            );
            if CStr::from_ptr(owner.as_ptr()).to_str().unwrap() == live.addr() {
                assert_eq!(
                    elasticache_set(c, k.as_ptr(), k.len(), b"v".as_ptr(), 1, 0, 0),
                    Status::Ok
                );
            }
        }
        assert_eq!(
            elasticache_get_multi(c, ptrs.as_ptr(), lens.as_ptr(), keys.len(), false, &mut m),
            Status::Ok
        );
        let (mut seen_dead, mut seen_miss) = (false, false);
        for i in 0..keys.len() {
            let (mut data, mut len) = (ptr::null(), usize::MAX);
            let st =
                elasticache_multi_item(m, i, &mut data, &mut len, ptr::null_mut(), ptr::null_mut());
            let msg = last_error();
            if st == Status::Ok {
                assert!(msg.is_empty(), "a hit leaves no message: {msg:?}");
                assert_eq!(std::slice::from_raw_parts(data, len), b"v");
            } else if st == Status::NotFound {
                seen_miss = true;
                assert_eq!(msg, "not found");
                assert_eq!(len, usize::MAX, "outputs are written only on success");
            } else {
                seen_dead = true;
                assert!(
                    msg.contains(&dead),
                    "entry {i}: status {st:?}, message {msg:?} does not name {dead}"
                );
                let text = CStr::from_ptr(elasticache_multi_error(m, i))
                    .to_str()
                    .unwrap();
                assert_eq!(text, msg);
            }
        }
        assert!(seen_dead && seen_miss);
        let st = elasticache_multi_item(
            m,
            keys.len(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        );
        assert_eq!(st, Status::InvalidArgument);
        assert!(last_error().contains("out of range"), "{}", last_error());
        elasticache_multi_free(m);
        elasticache_client_free(c);
    }
}

#[test]
fn a_failed_node_in_stats_has_its_message_and_no_entries() {
    let (live, dead, c) = live_and_dead();
    let mut s = ptr::null_mut();
    // SAFETY (this block): live client and result.
    unsafe {
        assert_eq!(elasticache_client_stats(c, ptr::null(), &mut s), Status::Ok);
        assert_eq!(elasticache_stats_node_count(s), 2);
        for i in 0..2 {
            let (mut server, mut status, mut entries) = (ptr::null(), u32::MAX, usize::MAX);
            assert_eq!(
                elasticache_stats_node(s, i, &mut server, &mut status, &mut entries),
                Status::Ok
            );
            let server = CStr::from_ptr(server).to_str().unwrap().to_string();
            let err = elasticache_stats_error(s, i);
            if server == live.addr() {
                assert_eq!(status, 0);
                assert!(entries > 10);
                assert!(err.is_null());
            } else {
                assert_eq!(server, dead);
                assert_ne!(status, 0);
                assert_eq!(entries, 0, "no invented entry for a failed node");
                let msg = CStr::from_ptr(err).to_str().unwrap();
                assert!(msg.contains(&dead), "{msg:?}");
            }
        }
        assert!(elasticache_stats_error(s, 2).is_null());
        assert!(elasticache_stats_error(ptr::null(), 0).is_null());
        elasticache_stats_free(s);
        elasticache_client_free(c);
    }
}

#[test]
fn a_successful_call_clears_this_threads_error_whatever_other_threads_hold() {
    let fail = || {
        // SAFETY: NULL output: the call refuses it without touching anything.
        let st = unsafe { elasticache::ffi::options::elasticache_options_new(ptr::null_mut()) };
        assert_eq!(st, Status::InvalidArgument);
        assert!(last_error().contains("out is NULL"));
    };
    let succeed = || {
        let mut o = ptr::null_mut();
        // SAFETY: valid output; freed below.
        unsafe {
            assert_eq!(
                elasticache::ffi::options::elasticache_options_new(&mut o),
                Status::Ok
            );
            elasticache::ffi::options::elasticache_options_free(o);
        }
        assert_eq!(last_error(), "");
    };
    // Another thread keeps a message for the whole test.
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        fail();
        ready_tx.send(()).unwrap();
        hold_rx.recv().unwrap();
        // Its own message survived the other thread's calls, then goes.
        assert!(last_error().contains("out is NULL"));
        succeed();
    });
    ready_rx.recv().unwrap();
    for _ in 0..3 {
        succeed();
        fail();
        succeed();
    }
    hold_tx.send(()).unwrap();
    holder.join().unwrap();
}
