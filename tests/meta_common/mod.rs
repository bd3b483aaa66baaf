//! Helpers shared by the meta-protocol tests: a client over real memcached
//! processes, a raw meta request to one server, and a scripted fake node that
//! plays an engine without the final meta dialect.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use elasticache::client::Client;
use elasticache::options::Options;
use elasticache::ring::ServerSpec;
use elasticache::testkit::Memcached;

/// A client over `servers` with test timeouts; `tweak` adjusts the options.
pub fn client(addrs: &[(String, u16)], tweak: impl FnOnce(&mut Options)) -> Client {
    let mut opts = Options {
        connect_timeout: Duration::from_millis(2000),
        io_timeout: Duration::from_millis(3000),
        ..Options::default()
    };
    tweak(&mut opts);
    let specs = addrs
        .iter()
        .map(|(h, p)| ServerSpec {
            host: h.clone(),
            port: *p,
            weight: 1,
        })
        .collect();
    Client::from_servers(specs, opts).expect("client builds")
}

/// `(ip, port)` of each server.
pub fn addrs(servers: &[Memcached]) -> Vec<(String, u16)> {
    servers
        .iter()
        .map(|m| (m.ip().to_string(), m.port()))
        .collect()
}

/// Send `request` (which must end with `mn\r\n`) to `ip:port` and return
/// everything up to and including the `MN\r\n` that answers it.
pub fn raw_meta(ip: &str, port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect((ip, port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    while !buf.ends_with(b"MN\r\n") {
        let n = s.read(&mut chunk).expect("read");
        assert!(
            n > 0,
            "server closed; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
    buf
}

/// The standard padded base64 of `b`, written independently of the library's.
pub fn b64(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let v = c.iter().fold(0u32, |acc, &x| acc << 8 | u32::from(x)) << (8 * (3 - c.len()));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

type Store = Mutex<HashMap<Vec<u8>, (u32, Vec<u8>)>>;

/// A fake memcached node: answers `version` with `VERSION <version>`,
/// plain `get`/`set`/`delete` from a map, and `ERROR` to anything else (meta
/// commands included). Records every command line.
pub struct FakeNode {
    pub port: u16,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl FakeNode {
    pub fn start(version: &'static str) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let store: Arc<Store> = Arc::default();
        let seen = lines.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (seen, store) = (seen.clone(), store.clone());
                thread::spawn(move || serve(conn, version, &seen, &store));
            }
        });
        FakeNode { port, lines }
    }

    /// The command words received so far (`version`, `get`, `mg`, ...).
    pub fn commands(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| l.split(' ').next().unwrap_or("").to_string())
            .collect()
    }
}

fn serve(conn: TcpStream, version: &str, seen: &Mutex<Vec<String>>, store: &Store) {
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let l = line.trim_end().to_string();
        seen.lock().unwrap().push(l.clone());
        let t: Vec<&str> = l.split(' ').collect();
        let reply: Vec<u8> = match t[0] {
            "version" => format!("VERSION {version}\r\n").into_bytes(),
            "get" => {
                let mut out = Vec::new();
                for k in &t[1..] {
                    if let Some((f, v)) = store.lock().unwrap().get(k.as_bytes()) {
                        out.extend_from_slice(format!("VALUE {k} {f} {}\r\n", v.len()).as_bytes());
                        out.extend_from_slice(v);
                        out.extend_from_slice(b"\r\n");
                    }
                }
                out.extend_from_slice(b"END\r\n");
                out
            }
            "set" if t.len() >= 5 => {
                let n: usize = t[4].parse().unwrap_or(0);
                let mut data = vec![0u8; n + 2];
                if r.read_exact(&mut data).is_err() {
                    return;
                }
                data.truncate(n);
                let f = t[2].parse().unwrap_or(0);
                store
                    .lock()
                    .unwrap()
                    .insert(t[1].as_bytes().to_vec(), (f, data));
                b"STORED\r\n".to_vec()
            }
            "delete" if t.len() >= 2 => match store.lock().unwrap().remove(t[1].as_bytes()) {
                Some(_) => b"DELETED\r\n".to_vec(),
                None => b"NOT_FOUND\r\n".to_vec(),
            },
            _ => b"ERROR\r\n".to_vec(),
        };
        if w.write_all(&reply).is_err() {
            return;
        }
    }
}
