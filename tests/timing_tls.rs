//! TLS failures against the clock: a refused certificate and a plain client
//! at a TLS endpoint fail within the timeouts, not after a hang. Runs alone
//! with one test thread (scripts/test.sh).

use std::time::{Duration, Instant};

use elasticache::client::Client;
use elasticache::discovery;
use elasticache::options::Options;
use elasticache::testkit::tls::TlsConfigEndpoint;
use elasticache::Status;

mod tls_common;
use tls_common::{spec, tls_opts, Pki};

const TIMEOUT: Duration = Duration::from_millis(400);
/// Scheduling slack on a loaded 2-core machine (handshakes included).
const MARGIN: Duration = Duration::from_millis(400);

#[test]
fn a_refused_certificate_fails_within_the_timeouts() {
    let pki = Pki::new("tfail");
    let wrong_name = pki.server(&pki.leaf("wrong", &["elsewhere.test"], false, false), &[]);
    let mut o = tls_opts(&pki);
    o.connect_timeout = TIMEOUT;
    o.io_timeout = TIMEOUT;
    o.failure_limit = 0; // never eject: every attempt handshakes
    let c = Client::from_servers(vec![spec("localhost", wrong_name.port())], o).unwrap();
    for i in 0..3 {
        let t0 = Instant::now();
        let e = c.set(format!("k{i}").as_bytes(), b"v", 0, 0).unwrap_err();
        let took = t0.elapsed();
        assert_eq!(e.status(), Status::Tls, "{e}");
        // The refusal is local: no timeout is waited out at all.
        assert!(took < MARGIN, "attempt {i}: {took:?}");
    }
}

#[test]
fn a_plain_client_at_a_tls_endpoint_fails_within_the_timeouts() {
    let pki = Pki::new("tplain");
    let leaf = pki.leaf("cfg", &["localhost"], false, false);
    let ep =
        TlsConfigEndpoint::start("127.0.0.1", &leaf.cert, &leaf.key, "1\nn|127.0.0.1|1\n").unwrap();
    let plain = Options {
        connect_timeout: TIMEOUT,
        io_timeout: TIMEOUT,
        ..Options::default()
    };
    let endpoint = format!("localhost:{}", ep.port());
    let t0 = Instant::now();
    let e = discovery::discover(&endpoint, &plain.discovery_options(), None).unwrap_err();
    let took = t0.elapsed();
    // At most both discovery commands time out.
    assert!(took < 2 * TIMEOUT + MARGIN, "{took:?}: {e}");
}
