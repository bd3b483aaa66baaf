//! The C ABI conventions, exercised through the `extern "C"` functions themselves:
//! NULL and bad arguments give INVALID_ARGUMENT with a message, outputs are
//! untouched on failure, `_free(NULL)` is harmless, the last error is per thread.

use std::ffi::{c_char, CStr, CString};
use std::ptr;

use elasticache::ffi::config::*;
use elasticache::ffi::options::*;
use elasticache::ffi::*;
use elasticache::Status;

fn last_error() -> String {
    let mut buf = [0 as c_char; 512];
    let mut n = 0usize;
    let st = unsafe { elasticache_last_error_message(buf.as_mut_ptr(), buf.len(), &mut n) };
    assert_eq!(st, Status::Ok);
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(s.len(), n);
    s
}

#[test]
fn status_strings() {
    for code in 0..19u32 {
        let s = unsafe { CStr::from_ptr(elasticache_status_str(code)) }
            .to_str()
            .unwrap();
        assert_eq!(s, Status::from_u32(code).unwrap().as_str());
    }
    let s = unsafe { CStr::from_ptr(elasticache_status_str(9999)) };
    assert_eq!(s.to_str().unwrap(), "unknown status");
    let v = unsafe { CStr::from_ptr(elasticache_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn null_arguments_are_invalid_not_crashes() {
    unsafe {
        assert_eq!(
            elasticache_options_new(ptr::null_mut()),
            Status::InvalidArgument
        );
        assert!(last_error().contains("out is NULL"));

        let mut out: *mut elasticache_config = ptr::null_mut();
        assert_eq!(
            elasticache_discover(ptr::null(), ptr::null(), &mut out),
            Status::InvalidArgument
        );
        assert!(last_error().contains("endpoint"));
        assert!(out.is_null(), "no output on failure");

        let ep = CString::new("127.0.0.1:1").unwrap();
        assert_eq!(
            elasticache_discover(ep.as_ptr(), ptr::null(), ptr::null_mut()),
            Status::InvalidArgument
        );
        assert_eq!(
            elasticache_refresh(ptr::null(), ptr::null(), ptr::null_mut()),
            Status::InvalidArgument
        );

        let name = CString::new("hash").unwrap();
        assert_eq!(
            elasticache_options_set(ptr::null_mut(), name.as_ptr(), name.as_ptr()),
            Status::InvalidArgument
        );
        let mut opts = ptr::null_mut();
        assert_eq!(elasticache_options_new(&mut opts), Status::Ok);
        assert_eq!(
            elasticache_options_set(opts, name.as_ptr(), ptr::null()),
            Status::InvalidArgument
        );
        assert!(last_error().contains("value is NULL"));
        let bad = CString::new("sha1").unwrap();
        assert_eq!(
            elasticache_options_set(opts, name.as_ptr(), bad.as_ptr()),
            Status::InvalidArgument
        );
        assert!(last_error().contains("sha1"));
        let unknown = CString::new("no_such_option").unwrap();
        assert_eq!(
            elasticache_options_set(opts, unknown.as_ptr(), bad.as_ptr()),
            Status::InvalidArgument
        );
        assert!(last_error().contains("no_such_option"));
        // Invalid UTF-8 in a string argument.
        let latin1 = [0xffu8, 0];
        assert_eq!(
            elasticache_options_set(opts, latin1.as_ptr().cast(), bad.as_ptr()),
            Status::InvalidArgument
        );
        assert!(last_error().contains("UTF-8"));
        elasticache_options_free(opts);

        let (mut h, mut i, mut p) = (ptr::null(), ptr::null(), 0u16);
        assert_eq!(
            elasticache_config_node(ptr::null(), 0, &mut h, &mut i, &mut p),
            Status::InvalidArgument
        );
        assert!(h.is_null() && i.is_null() && p == 0);
        assert_eq!(elasticache_config_version(ptr::null()), 0);
        assert_eq!(elasticache_config_node_count(ptr::null()), 0);

        elasticache_config_free(ptr::null_mut());
        elasticache_options_free(ptr::null_mut());
    }
}

#[test]
fn success_clears_the_last_error() {
    unsafe {
        assert_eq!(
            elasticache_options_new(ptr::null_mut()),
            Status::InvalidArgument
        );
        assert!(!last_error().is_empty());
        let mut opts = ptr::null_mut();
        assert_eq!(elasticache_options_new(&mut opts), Status::Ok);
        assert_eq!(last_error(), "");
        elasticache_options_free(opts);
    }
}

#[test]
fn last_error_is_per_thread_and_survives_a_short_buffer() {
    unsafe {
        assert_eq!(
            elasticache_options_new(ptr::null_mut()),
            Status::InvalidArgument
        );
        let other = std::thread::spawn(last_error).join().unwrap();
        assert_eq!(other, "", "another thread does not see this thread's error");

        let mut small = [0 as c_char; 4];
        let mut n = 0usize;
        let st = elasticache_last_error_message(small.as_mut_ptr(), small.len(), &mut n);
        assert_eq!(st, Status::BufferTooSmall);
        assert!(n > 4, "the full length is reported");
        assert_eq!(
            CStr::from_ptr(small.as_ptr()).to_bytes().len(),
            3,
            "cut and NUL-terminated"
        );
        assert_eq!(
            last_error().len(),
            n,
            "the message is still there for a second try"
        );
        // NULL buffer with a zero length only asks for the size.
        let mut n2 = 0usize;
        assert_eq!(
            elasticache_last_error_message(ptr::null_mut(), 0, &mut n2),
            Status::BufferTooSmall
        );
        assert_eq!(n2, n);
        // NULL buffer with a non-zero length is refused.
        assert_eq!(
            elasticache_last_error_message(ptr::null_mut(), 8, &mut n2),
            Status::InvalidArgument
        );
    }
}

#[test]
fn config_accessors_and_index_out_of_range() {
    // A plain memcached with ignore_cluster_errors gives a one-node config without AWS.
    let server = elasticache::testkit::Memcached::start().unwrap();
    unsafe {
        let mut opts = ptr::null_mut();
        assert_eq!(elasticache_options_new(&mut opts), Status::Ok);
        let (n, v) = (
            CString::new("ignore_cluster_errors").unwrap(),
            CString::new("true").unwrap(),
        );
        assert_eq!(
            elasticache_options_set(opts, n.as_ptr(), v.as_ptr()),
            Status::Ok
        );
        let ep = CString::new(server.addr()).unwrap();
        let mut cfg = ptr::null_mut();
        assert_eq!(
            elasticache_discover(ep.as_ptr(), opts, &mut cfg),
            Status::Ok,
            "{}",
            last_error()
        );
        assert_eq!(elasticache_config_version(cfg), 0);
        assert_eq!(elasticache_config_node_count(cfg), 1);
        let (mut h, mut i, mut p) = (ptr::null(), ptr::null(), 0u16);
        assert_eq!(
            elasticache_config_node(cfg, 0, &mut h, &mut i, &mut p),
            Status::Ok
        );
        assert_eq!(CStr::from_ptr(h).to_str().unwrap(), "127.0.0.1");
        assert_eq!(CStr::from_ptr(i).to_str().unwrap(), "");
        assert_eq!(p, server.port());
        let (mut h2, mut p2) = (ptr::null(), 0u16);
        assert_eq!(
            elasticache_config_node(cfg, 1, &mut h2, ptr::null_mut(), &mut p2),
            Status::InvalidArgument
        );
        assert!(last_error().contains("out of range"));
        assert!(h2.is_null() && p2 == 0);
        elasticache_config_free(cfg);
        elasticache_options_free(opts);
    }
}

/// Run in a process of its own by `the_load_time_constructor_registers_the_fork_handler`,
/// where no other test has touched the library: only the constructor can
/// have registered the handler by the time this runs.
#[test]
#[ignore = "run alone in a child process by the test below"]
fn probe_atfork_registered_before_any_call() {
    assert!(
        elasticache::cluster::registry::atfork_registered(),
        "the fork handler is not registered before the first library call"
    );
}

#[test]
fn the_load_time_constructor_registers_the_fork_handler() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "probe_atfork_registered_before_any_call",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn fork_child_gets_a_new_generation() {
    let before = elasticache_fork_generation();
    let ((), end) = elasticache::testkit::fork_and_wait(
        std::time::Duration::from_secs(10),
        || elasticache_fork_generation() == before + 1 && elasticache::fork::child_runs() >= 1,
        || {},
    );
    assert_eq!(
        end,
        elasticache::testkit::ChildEnd::Exited(0),
        "child saw generation + 1"
    );
    assert_eq!(
        elasticache_fork_generation(),
        before,
        "the parent's generation is unchanged"
    );
}
