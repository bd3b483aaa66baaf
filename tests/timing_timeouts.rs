//! Timeouts measured against the clock: a hung node, a dribbling reply and
//! silent nodes in a multi-get each cost one I/O timeout. Timing-bound, so
//! this binary runs alone with one test thread (scripts/test.sh); each bound
//! is the promised timeout plus [`MARGIN`], which a loaded 2-core machine keeps,
//! and stays below what the broken behaviour would take.

use std::time::{Duration, Instant};

use elasticache::client::Client;
use elasticache::options::Options;
use elasticache::ring::ServerSpec;
use elasticache::testkit::Memcached;
use elasticache::Error;

const IO_TIMEOUT: Duration = Duration::from_millis(400);
/// Scheduling slack on a busy machine; every bound below separates the right
/// behaviour from the wrong one by more than this.
const MARGIN: Duration = Duration::from_millis(300);
/// A timer may fire a little early by the monotonic clock (granularity).
const EARLY: Duration = Duration::from_millis(20);

fn spec(port: u16) -> ServerSpec {
    ServerSpec {
        host: "127.0.0.1".into(),
        port,
        weight: 1,
    }
}

#[test]
fn hung_node_times_out_within_the_io_timeout() {
    // A listener that accepts and never answers.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let _accepting = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().take(4) {
            held.push(s);
        }
        std::thread::sleep(Duration::from_secs(5));
    });
    let opts = Options {
        io_timeout: IO_TIMEOUT,
        ..Options::default()
    };
    let c = Client::from_servers(vec![spec(port)], opts).unwrap();
    let t0 = Instant::now();
    let r = c.get(b"k");
    let took = t0.elapsed();
    match &r {
        Err(e @ Error::Timeout { addr, .. }) => {
            assert_eq!(addr, &format!("127.0.0.1:{port}"), "{e}")
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        took >= IO_TIMEOUT - EARLY && took <= IO_TIMEOUT + MARGIN,
        "{took:?}"
    );
}

/// A listener that accepts and answers each request with `reply`, one byte
/// every `gap` (a node that is alive but far too slow).
fn dribbling_server(reply: &'static [u8], gap: Duration) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(4) {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                if s.read(&mut buf).unwrap_or(0) == 0 {
                    return;
                }
                for b in reply {
                    if s.write_all(&[*b]).is_err() {
                        return;
                    }
                    std::thread::sleep(gap);
                }
            });
        }
    });
    port
}

#[test]
fn a_dribbling_reply_times_out_within_the_io_timeout() {
    // 26 bytes at 60 ms: 1.5 s in all, each gap far below the timeout, so a
    // timeout per read would never fire and the whole reply would arrive.
    let port = dribbling_server(
        b"VALUE k 0 5\r\nhello\r\nEND\r\n",
        Duration::from_millis(60),
    );
    let c = Client::from_servers(
        vec![spec(port)],
        Options {
            io_timeout: IO_TIMEOUT,
            ..Options::default()
        },
    )
    .unwrap();
    let t0 = Instant::now();
    let r = c.get(b"k");
    let took = t0.elapsed();
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    assert!(
        took >= IO_TIMEOUT - EARLY && took < IO_TIMEOUT + MARGIN,
        "one I/O timeout for the whole reply, took {took:?}"
    );
}

#[test]
fn a_multi_get_with_silent_nodes_costs_one_io_timeout() {
    let real = Memcached::start().unwrap();
    let silent: Vec<std::net::TcpListener> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut specs = vec![spec(real.port())];
    specs.extend(silent.iter().map(|l| spec(l.local_addr().unwrap().port())));
    let c = Client::from_servers(
        specs,
        Options {
            io_timeout: IO_TIMEOUT,
            failure_limit: 100,
            ..Options::default()
        },
    )
    .unwrap();
    let keys: Vec<Vec<u8>> = (0..60).map(|i| format!("s:{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
    let t0 = Instant::now();
    let got = c.get_multi(&refs, false);
    let took = t0.elapsed();
    // Waiting on the two one after the other would take two timeouts.
    assert!(took < IO_TIMEOUT + MARGIN, "two silent nodes took {took:?}");
    let silent_labels: Vec<String> = silent
        .iter()
        .map(|l| format!("127.0.0.1:{}", l.local_addr().unwrap().port()))
        .collect();
    for (k, r) in keys.iter().zip(&got) {
        let owner = c.server_for(k).unwrap();
        match r {
            Err(Error::Timeout { addr, .. }) => {
                assert_eq!(addr, &owner);
                assert!(silent_labels.contains(addr), "{addr}");
            }
            Ok(None) => assert_eq!(owner, real.addr()),
            other => panic!("{}: {other:?}", String::from_utf8_lossy(k)),
        }
    }
    let misses = got.iter().filter(|r| matches!(r, Ok(None))).count();
    assert!(misses > 5 && misses < 55, "{misses} misses of 60");
}
