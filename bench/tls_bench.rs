//! TLS against plain TCP on the same memcached (one process, a TLS and a plain
//! listener): single-key get and a 100-key multi-get, as ratios.
//!
//! `cargo run --release --features testkit --example tls_bench [ROUNDS]`

use std::time::{Duration, Instant};

use elasticache::client::Client;
use elasticache::options::Options;
use elasticache::ring::ServerSpec;
use elasticache::testkit::tls::{TempDir, TlsMemcached};
use rcgen::{CertificateParams, KeyPair};

fn time(rounds: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..rounds / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..rounds {
        f();
    }
    t.elapsed() / rounds as u32
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let dir = TempDir::new("ec-tls-bench").expect("temp dir");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .and_then(|p| p.self_signed(&key))
        .expect("certificate");
    let cert_file = dir.write("c.pem", cert.pem().as_bytes()).expect("write");
    let key_file = dir
        .write("k.pem", key.serialize_pem().as_bytes())
        .expect("write");
    let m = TlsMemcached::start("127.0.0.1", &cert_file, &key_file, &[]).expect("memcached -Z");

    let client = |port: u16, tls: bool| {
        let mut o = Options::default();
        if tls {
            o.set("tls", "true").expect("option");
            o.set("tls_ca_file", cert_file.to_str().expect("utf-8"))
                .expect("option");
        }
        let spec = ServerSpec {
            host: "localhost".into(),
            port,
            weight: 1,
        };
        Client::from_servers(vec![spec], o).expect("client")
    };
    let plain = client(m.plain_port(), false);
    let tls = client(m.port(), true);

    let value = vec![b'v'; 100];
    let keys: Vec<String> = (0..100).map(|i| format!("bench:key:{i}")).collect();
    for k in &keys {
        plain.set(k.as_bytes(), &value, 0, 0).expect("set");
    }
    let kb: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();

    let get = |c: &Client| assert!(c.get(b"bench:key:7").expect("get").is_some());
    let multi = |c: &Client| {
        assert!(c
            .get_multi(&kb, false)
            .iter()
            .all(|r| matches!(r, Ok(Some(_)))))
    };
    let g_plain = time(rounds, || get(&plain));
    let g_tls = time(rounds, || get(&tls));
    let m_plain = time(rounds / 10, || multi(&plain));
    let m_tls = time(rounds / 10, || multi(&tls));
    println!(
        "get (100-byte value):   plain {g_plain:?}  tls {g_tls:?}  tls/plain {:.2}",
        g_tls.as_secs_f64() / g_plain.as_secs_f64()
    );
    println!(
        "get_multi (100 keys):   plain {m_plain:?}  tls {m_tls:?}  tls/plain {:.2}",
        m_tls.as_secs_f64() / m_plain.as_secs_f64()
    );
}
