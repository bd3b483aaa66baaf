//! fork() while another thread holds a lock: the child must not wait for a
//! lock whose holder does not exist in it. `disconnect_all()` in the child
//! starts the child's own pools without touching the parent's state, and the
//! TLS connector cache is never inherited locked.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use elasticache::client::Client;
use elasticache::options::Options;
use elasticache::ring::ServerSpec;
use elasticache::testkit::Memcached;

/// Fork while `hold` (run on another thread) holds its locks; the child runs
/// `child` and exits 0 when it returns true. Fails when the child is still
/// running after `limit` (it is killed) or exits otherwise.
fn fork_while_held(
    hold: impl FnOnce(&dyn Fn()) + Send,
    child: impl FnOnce() -> bool,
    limit: Duration,
) {
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(move || hold(&move || tx.send(()).unwrap()));
        rx.recv().unwrap();
        // SAFETY: the child only runs `child` and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ok = child();
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let t0 = Instant::now();
        let mut status = 0;
        loop {
            // SAFETY: our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
            if t0.elapsed() > limit {
                let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let st = st.lines().take(3).collect::<Vec<_>>().join(" ");
                // SAFETY: our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                panic!("the child hung for {limit:?} on a lock held at fork: {st}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child failed (status {status})"
        );
    });
}

#[test]
fn disconnect_all_in_a_child_takes_none_of_the_parents_locks() {
    let m = Memcached::start().unwrap();
    let spec = ServerSpec {
        host: m.ip().to_string(),
        port: m.port(),
        weight: 1,
    };
    let c = Client::from_servers(vec![spec], Options::default()).unwrap();
    for i in 0..20 {
        c.set(format!("k{i}").as_bytes(), b"v", 0, 0).unwrap();
    }
    let c = &c;
    fork_while_held(
        |taken| c.hold_locks_for_test(Duration::from_secs(3), taken),
        || {
            // The parent thread holding the locks does not exist here.
            c.disconnect_all();
            c.set(b"child", b"c", 0, 0).is_ok()
                && c.get(b"k3").ok().flatten().is_some_and(|i| i.value == b"v")
        },
        Duration::from_millis(2000),
    );
}

#[test]
fn a_tls_connector_cache_held_at_fork_is_free_in_the_child() {
    let mut opts = Options::default();
    opts.tls.enabled = true;
    opts.tls.insecure_skip_verify = true;
    let spec = ServerSpec {
        host: "127.0.0.1".into(),
        port: 1,
        weight: 1,
    };
    // Builds the connector once, so the cache is shared with `opts`' clones.
    let c = Client::from_servers(vec![spec.clone()], opts.clone()).unwrap();
    let opts = &opts;
    let t0 = Instant::now();
    fork_while_held(
        |taken| {
            opts.tls
                .hold_connector_cache_for_test(Duration::from_millis(1500), taken)
        },
        || {
            // Building a client builds (or looks up) the TLS connector.
            Client::from_servers(vec![spec], opts.clone()).is_ok()
        },
        Duration::from_millis(5000),
    );
    drop(c);
    // The fork waited for the holder (at most its 1.5 s), not forever.
    assert!(t0.elapsed() < Duration::from_secs(6));
}
