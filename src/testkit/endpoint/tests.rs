use super::*;

fn node(host: &str, port: u16) -> Node {
    Node {
        host: host.into(),
        ip: "127.0.0.1".into(),
        port,
    }
}

/// Send `req` in one write and read until `expect_len` bytes or EOF.
fn talk(ep: &ConfigEndpoint, req: &[u8], expect_len: usize) -> Vec<u8> {
    let mut s = TcpStream::connect(ep.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while out.len() < expect_len {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("read: {e} after {out:?}"),
        }
    }
    out
}

#[test]
fn pipelined_commands_get_documented_replies() {
    let ep = ConfigEndpoint::start(vec![node("b.x", 2), node("a.x", 1)]).unwrap();
    let payload = "1\nb.x|127.0.0.1|2 a.x|127.0.0.1|1\n";
    let expected = format!(
        "VERSION 1.6.12\r\nCONFIG cluster 0 {n}\r\n{payload}\r\nEND\r\n\
         VALUE AmazonElastiCache:cluster 0 {n}\r\n{payload}\r\nEND\r\nERROR\r\nEND\r\n",
        n = payload.len()
    );
    let got = talk(
        &ep,
        b"version\r\nconfig get cluster\r\nget AmazonElastiCache:cluster\r\nbogus\r\nget k\r\n",
        expected.len(),
    );
    assert_eq!(String::from_utf8_lossy(&got), expected);
    assert_eq!(ep.requests(Request::Version), 1);
    assert_eq!(ep.requests(Request::ConfigGet), 1);
    assert_eq!(ep.requests(Request::LegacyGet), 1);
    assert_eq!(ep.requests(Request::Other), 2);
    assert_eq!(ep.connections(), 1);
}

#[test]
fn engines_formats_and_versions() {
    let ep = ConfigEndpoint::start(vec![node("a", 1), node("b", 2)]).unwrap();
    assert_eq!(ep.set_nodes(vec![node("a", 1)]), 2);
    ep.set_nodes_same_version(vec![node("c", 3)]);
    assert_eq!(ep.version(), 2);
    assert_eq!(ep.payload(), b"2\nc|127.0.0.1|3\n");
    ep.set_config(7, vec![node("a", 1), node("b", 2)]);
    ep.set_format(Format {
        crlf_after_version: true,
        trailing_space: true,
        separator_spaces: 3,
    });
    assert_eq!(ep.payload(), b"7\r\na|127.0.0.1|1   b|127.0.0.1|2 \n");
    ep.set_engine(Engine::Legacy);
    let got = talk(&ep, b"version\r\nconfig get cluster\r\n", 22);
    assert_eq!(got, b"VERSION 1.4.5\r\nERROR\r\n");
    ep.set_engine(Engine::PlainMemcached);
    let got = talk(
        &ep,
        b"config get cluster\nget AmazonElastiCache:cluster\n",
        12,
    );
    assert_eq!(got, b"ERROR\r\nEND\r\n");
}

#[test]
fn raw_truncate_stop_and_start_again() {
    let ep = ConfigEndpoint::start(vec![node("a", 1)]).unwrap();
    ep.set_raw_reply(Some(b"HELLO\r\n".to_vec()));
    assert_eq!(talk(&ep, b"config get cluster\r\n", 7), b"HELLO\r\n");
    ep.set_raw_reply(None);
    ep.set_truncate(Some(10));
    // Truncated, then closed: reading to EOF gives exactly 10 bytes.
    assert_eq!(talk(&ep, b"config get cluster\r\n", 1000), b"CONFIG clu");
    ep.set_truncate(None);
    let port = ep.port();
    ep.stop();
    assert!(!ep.is_running());
    assert!(TcpStream::connect(ep.addr()).is_err());
    ep.start_again().unwrap();
    assert_eq!(ep.port(), port);
    assert_eq!(talk(&ep, b"version\r\n", 16), b"VERSION 1.6.12\r\n");
}

#[test]
fn stop_closes_hanging_connections() {
    let ep = ConfigEndpoint::start(vec![node("a", 1)]).unwrap();
    ep.set_hang(true);
    let mut s = TcpStream::connect(ep.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(150)))
        .unwrap();
    s.write_all(b"config get cluster\r\n").unwrap();
    let mut b = [0u8; 16];
    let e = s.read(&mut b).unwrap_err();
    assert!(matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ));
    let t = std::time::Instant::now();
    ep.stop();
    assert!(matches!(s.read(&mut b), Ok(0) | Err(_)));
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(ep.requests(Request::ConfigGet), 1);
}
