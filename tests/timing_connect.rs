//! A multi-key call connects to its nodes in parallel: nodes that drop SYNs
//! (a listener whose accept queue is full, on loopback) cost one
//! connect_timeout together, and the healthy node's hits are kept.

use std::net::TcpStream;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use elasticache::client::Client;
use elasticache::options::Options;
use elasticache::ring::ServerSpec;
use elasticache::testkit::Memcached;
use elasticache::Error;

/// A listener on 127.0.0.1 with backlog 0 whose accept queue is then filled,
/// so the kernel drops further SYNs: connects to it hang until their timeout.
fn syn_dropper() -> (OwnedFd, u16, Vec<TcpStream>) {
    // SAFETY: plain socket calls on a descriptor we own.
    let (fd, port) = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        a.sin_family = libc::AF_INET as libc::sa_family_t;
        a.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            libc::bind(fd, (&a as *const libc::sockaddr_in).cast(), len),
            0
        );
        assert_eq!(libc::listen(fd, 0), 0);
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut l = len;
        libc::getsockname(fd, (&mut got as *mut libc::sockaddr_in).cast(), &mut l);
        (OwnedFd::from_raw_fd(fd), u16::from_be(got.sin_port))
    };
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut fill = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fill.push(s),
            Err(_) => return (fd, port, fill),
        }
    }
    panic!("the accept queue of a backlog-0 listener never filled");
}

#[test]
fn unreachable_nodes_cost_one_connect_timeout_together() {
    let real = Memcached::start().unwrap();
    let droppers: Vec<_> = (0..3).map(|_| syn_dropper()).collect();
    let mut specs = vec![ServerSpec {
        host: "127.0.0.1".into(),
        port: real.port(),
        weight: 1,
    }];
    specs.extend(droppers.iter().map(|d| ServerSpec {
        host: "127.0.0.1".into(),
        port: d.1,
        weight: 1,
    }));
    let c = Client::from_servers(
        specs,
        Options {
            connect_timeout: Duration::from_millis(500),
            io_timeout: Duration::from_millis(500),
            failure_limit: 100,
            ..Options::default()
        },
    )
    .unwrap();
    let keys: Vec<Vec<u8>> = (0..100).map(|i| format!("p:{i}").into_bytes()).collect();
    let healthy: Vec<bool> = keys
        .iter()
        .map(|k| c.server_for(k).unwrap() == real.addr())
        .collect();
    for (k, &h) in keys.iter().zip(&healthy) {
        if h {
            real.command(&format!("set {} 0 0 2\r\nok", String::from_utf8_lossy(k)))
                .unwrap();
        }
    }
    let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    let t0 = Instant::now();
    let got = c.get_multi(&refs, false);
    let took = t0.elapsed();
    // One connect timeout (500 ms) plus a margin a loaded 2-core machine
    // keeps; one after another the three would take 1.5 s.
    assert!(took < Duration::from_millis(950), "took {took:?}");
    for ((k, r), &h) in keys.iter().zip(&got).zip(&healthy) {
        let k = String::from_utf8_lossy(k);
        if h {
            assert!(matches!(r, Ok(Some(i)) if i.value == b"ok"), "{k}: {r:?}");
        } else {
            assert!(
                matches!(r, Err(Error::Timeout { op: "connect", .. })),
                "{k}: {r:?}"
            );
        }
    }
    assert!(healthy.iter().any(|&h| h) && healthy.iter().any(|&h| !h));
}
