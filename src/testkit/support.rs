//! What every test file needs and must not copy: deciding about a missing
//! tool (fail under CI, skip loudly elsewhere), a client over given servers,
//! and fork-and-wait with a time limit.

use std::borrow::Borrow;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::options::Options;
use crate::ring::ServerSpec;

use super::Memcached;

/// Whether this run is CI's (`CI=true`): there a missing tool fails the test.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Decide about a prerequisite the test cannot run without. `available` is
/// whether it is there; `what` names it for a person. Under CI a missing one
/// panics naming it (a skipped check must not pass silently there); elsewhere
/// the skip is printed to stderr and `false` returned, so the test returns.
pub fn require(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    if in_ci() {
        panic!("missing under CI=true: {what} (scripts/deps.sh installs what it can)");
    }
    eprintln!("SKIPPED: {what} is missing (under CI=true this fails)");
    false
}

/// Whether `tool` is an executable on the PATH (or a path to one).
pub fn have_tool(tool: &str) -> bool {
    if tool.contains('/') {
        return is_executable(Path::new(tool));
    }
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| is_executable(&dir.join(tool)))
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// [`require`] for an executable on the PATH.
pub fn require_tool(tool: &str) -> bool {
    require(&format!("the `{tool}` program"), have_tool(tool))
}

/// [`require`] for the IPv6 loopback address `::1`.
pub fn require_ipv6_loopback() -> bool {
    require(
        "the IPv6 loopback address ::1",
        std::net::TcpListener::bind("[::1]:0").is_ok(),
    )
}

/// Return from the calling test unless every named tool is on the PATH
/// (under CI=true: fail naming the missing one). `require_tool!("valgrind")`.
#[macro_export]
macro_rules! require_tool {
    ($($tool:expr),+ $(,)?) => {
        $(
            if !$crate::testkit::support::require_tool($tool) {
                return;
            }
        )+
    };
}

/// A client over `servers` (weight 1 each; `&[&m]` or `&nodes`), with
/// `tweak` applied to the default options first.
pub fn client_for(servers: &[impl Borrow<Memcached>], tweak: impl FnOnce(&mut Options)) -> Client {
    let mut opts = Options::default();
    tweak(&mut opts);
    let specs = servers
        .iter()
        .map(|m| ServerSpec {
            host: m.borrow().ip().to_string(),
            port: m.borrow().port(),
            weight: 1,
        })
        .collect();
    Client::from_servers(specs, opts).expect("a client over running servers")
}

/// A C-API client over `servers` ("host:port", in this order) with default
/// options, for tests of the C boundary; free it with `elasticache_client_free`.
pub fn c_client(servers: &[String]) -> *mut crate::ffi::client::elasticache_client {
    let names: Vec<std::ffi::CString> = servers
        .iter()
        .map(|s| std::ffi::CString::new(s.as_str()).expect("a server name without NUL"))
        .collect();
    let ptrs: Vec<*const std::ffi::c_char> = names.iter().map(|s| s.as_ptr()).collect();
    let mut c = std::ptr::null_mut();
    // SAFETY: `ptrs` holds ptrs.len() NUL-terminated strings alive for the call; NULL weights and options.
    let st = unsafe {
        crate::ffi::client::elasticache_client_new_servers(
            ptrs.as_ptr(),
            ptrs.len(),
            std::ptr::null(),
            std::ptr::null(),
            &mut c,
        )
    };
    assert_eq!(st, crate::Status::Ok, "a C client over {servers:?}");
    c
}

/// The first of `{prefix}0`, `{prefix}1`, ... (up to 10,000 tried) that the
/// client places on the node labelled `node` ("host:port").
pub fn key_on(c: &Client, node: &str, prefix: &str) -> String {
    (0..10_000)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| {
            c.server_for(k.as_bytes())
                .expect("a client over servers places every key")
                == node
        })
        .unwrap_or_else(|| panic!("no key {prefix}N of 10,000 lands on {node}"))
}

/// The keys `key:0` .. `key:{n-1}` grouped by the node the client places
/// them on: entry `i` holds those of `nodes[i]`.
pub fn keys_by_node(c: &Client, nodes: &[impl Borrow<Memcached>], n: usize) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new(); nodes.len()];
    for i in 0..n {
        let k = format!("key:{i}");
        let owner = c
            .server_for(k.as_bytes())
            .expect("a client over servers places every key");
        let idx = nodes
            .iter()
            .position(|m| m.borrow().addr() == owner)
            .unwrap_or_else(|| panic!("{k} placed on {owner}, none of the nodes"));
        out[idx].push(k);
    }
    out
}

/// How a forked child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEnd {
    /// It called `exit`/`_exit` with this code.
    Exited(i32),
    /// A signal killed it (SIGSEGV, SIGABRT, ...).
    Signalled(i32),
    /// It was still running at the limit and was killed with SIGKILL.
    TimedOut,
}

/// Fork; the child runs `child` and `_exit`s with its result (0 true, 1
/// false, 2 if it panicked) without running the parent's destructors; the
/// parent runs `parent` meanwhile, then waits at most `limit` for the child.
/// Returns the parent's result and how the child ended.
///
/// The child of a multi-threaded process may only rely on what the library
/// promises after fork; that is what the callers test.
pub fn fork_and_wait<P, R>(
    limit: Duration,
    child: impl FnOnce() -> bool,
    parent: P,
) -> (R, ChildEnd)
where
    P: FnOnce() -> R,
{
    // SAFETY: the child only runs `child` and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)) {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(_) => 2,
        };
        // SAFETY: ends the child without unwinding into the test harness.
        unsafe { libc::_exit(code) };
    }
    let r = parent();
    (r, wait_child(pid, limit))
}

/// Wait at most `limit` for child `pid`; kill it with SIGKILL past that.
pub fn wait_child(pid: libc::pid_t, limit: Duration) -> ChildEnd {
    let deadline = Instant::now() + limit;
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        assert!(
            r == 0,
            "waitpid({pid}): {}",
            std::io::Error::last_os_error()
        );
        if Instant::now() >= deadline {
            // SAFETY: our own child; the blocking wait reaps it after SIGKILL.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return ChildEnd::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if libc::WIFEXITED(status) {
        ChildEnd::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        ChildEnd::Signalled(libc::WTERMSIG(status))
    } else {
        // WNOHANG without WUNTRACED reports only ended children.
        ChildEnd::Signalled(-1)
    }
}
