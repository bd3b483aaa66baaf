//! Ports no earlier testkit server in this process has had.
//!
//! The library caches what discovery found per endpoint address
//! (`127.0.0.1:PORT`) for the life of the process. The kernel hands out a
//! port again once its listener is closed, so an endpoint started late in a
//! test binary could get the port of one an earlier test used, and a client
//! pointed at it would be answered from the earlier endpoint's cached node
//! list. Every port the testkit takes from the kernel is therefore recorded
//! here and never handed out twice; re-binding a port on purpose
//! (`start_again`, `restart`) goes around this, as it should.

use std::collections::BTreeSet;
use std::io;
use std::net::TcpListener;

use parking_lot::{const_mutex, Mutex};

/// How many ports the kernel may offer that were handed out before, in a row,
/// before giving up (it offers ephemeral ports in a spread-out order, so more
/// than a few in a row means something else is wrong).
const TRIES: usize = 64;

static HANDED_OUT: Mutex<BTreeSet<u16>> = const_mutex(BTreeSet::new());

/// A listener on `ip` and a port of the kernel's choosing that no earlier
/// call in this process returned.
pub fn bind_unique(ip: &str) -> io::Result<TcpListener> {
    bind_unique_with(ip, || TcpListener::bind((ip, 0)))
}

/// A free port on `ip` that no earlier call in this process returned, for a
/// server that binds it itself (bound then released: the caller binds it next).
pub fn free_port(ip: &str) -> io::Result<u16> {
    Ok(bind_unique(ip)?.local_addr()?.port())
}

/// [`bind_unique`] over any way of binding (tests offer a used port first).
fn bind_unique_with(
    ip: &str,
    mut bind: impl FnMut() -> io::Result<TcpListener>,
) -> io::Result<TcpListener> {
    // A rejected listener stays bound until the end, so the next bind cannot
    // be given the same port again.
    let mut rejected = Vec::new();
    for _ in 0..TRIES {
        let listener = bind()?;
        let port = listener.local_addr()?.port();
        if HANDED_OUT.lock().insert(port) {
            return Ok(listener);
        }
        rejected.push(listener);
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("{TRIES} ports in a row on {ip} were ones this process had handed out before"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_handed_out_before_is_refused_and_another_bound() {
        let earlier = bind_unique("127.0.0.1").unwrap();
        let port = earlier.local_addr().unwrap().port();
        drop(earlier);
        // The kernel offers the released port first, as it may at any time.
        let mut offers = 0;
        let l = bind_unique_with("127.0.0.1", || {
            offers += 1;
            let want = if offers == 1 { port } else { 0 };
            TcpListener::bind(("127.0.0.1", want))
        })
        .unwrap();
        assert_eq!(offers, 2);
        assert_ne!(l.local_addr().unwrap().port(), port);
    }

    #[test]
    fn released_ports_are_never_handed_out_again() {
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            let port = free_port("127.0.0.1").unwrap();
            assert!(seen.insert(port), "port {port} handed out twice");
        }
    }
}
