//! The protocol module against a real memcached: every command is encoded by
//! `protocol::encode_*`, sent over a plain TcpStream, and every reply is parsed by
//! `protocol::parse` as it arrives in whatever pieces the socket delivers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use elasticache::protocol::{self, Parse, Reply, StoreCommand};
use elasticache::testkit::Memcached;

/// An owned copy of a [`Reply`], so replies outlive the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owned {
    Value {
        key: Vec<u8>,
        flags: u32,
        cas: Option<u64>,
        data: Vec<u8>,
    },
    End,
    Stored,
    NotStored,
    Exists,
    NotFound,
    Deleted,
    Touched,
    Ok,
    Number(u64),
    Version(Vec<u8>),
    Stat(Vec<u8>, Vec<u8>),
    Error,
    ClientError(Vec<u8>),
    ServerError(Vec<u8>),
}

impl From<Reply<'_>> for Owned {
    fn from(r: Reply<'_>) -> Owned {
        match r {
            Reply::Value {
                key,
                flags,
                cas,
                data,
            } => Owned::Value {
                key: key.to_vec(),
                flags,
                cas,
                data: data.to_vec(),
            },
            Reply::End => Owned::End,
            Reply::Stored => Owned::Stored,
            Reply::NotStored => Owned::NotStored,
            Reply::Exists => Owned::Exists,
            Reply::NotFound => Owned::NotFound,
            Reply::Deleted => Owned::Deleted,
            Reply::Touched => Owned::Touched,
            Reply::Ok => Owned::Ok,
            Reply::Number(n) => Owned::Number(n),
            Reply::Version(v) => Owned::Version(v.to_vec()),
            Reply::Stat { name, value } => Owned::Stat(name.to_vec(), value.to_vec()),
            Reply::Error => Owned::Error,
            Reply::ClientError(m) => Owned::ClientError(m.to_vec()),
            Reply::ServerError(m) => Owned::ServerError(m.to_vec()),
        }
    }
}

fn value(key: &[u8], flags: u32, cas: Option<u64>, data: &[u8]) -> Owned {
    Owned::Value {
        key: key.to_vec(),
        flags,
        cas,
        data: data.to_vec(),
    }
}

/// A connection that reads the way a client would: parse what is buffered, and
/// read more only on Incomplete, growing the buffer once to the announced size.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Largest `needed` hint seen, to prove big values announce their size.
    largest_hint: usize,
    reads: usize,
}

impl Conn {
    fn open(m: &Memcached) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", m.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: vec![0; 16 * 1024],
            start: 0,
            end: 0,
            largest_hint: 0,
            reads: 0,
        }
    }

    fn send(&mut self, req: &[u8]) {
        self.stream.write_all(req).unwrap();
    }

    fn read_one(&mut self) -> Owned {
        loop {
            let needed = match protocol::parse(&self.buf[self.start..self.end]) {
                Ok(Parse::Done(reply, used)) => {
                    let owned = Owned::from(reply);
                    self.start += used;
                    return owned;
                }
                Ok(Parse::Incomplete { needed }) => needed,
                Err(e) => panic!("protocol error: {e}"),
            };
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            }
            if let Some(n) = needed {
                self.largest_hint = self.largest_hint.max(n);
                if self.buf.len() < self.start + n {
                    self.buf.resize(self.start + n, 0);
                }
            }
            if self.end == self.buf.len() {
                let grow = self.buf.len();
                self.buf.resize(self.buf.len() + grow, 0);
            }
            let n = self.stream.read(&mut self.buf[self.end..]).unwrap();
            assert!(n > 0, "server closed the connection");
            self.end += n;
            self.reads += 1;
        }
    }

    /// Read elements up to and including END (or an error line).
    fn read_until_end(&mut self) -> Vec<Owned> {
        let mut out = Vec::new();
        loop {
            let r = self.read_one();
            let last = matches!(
                r,
                Owned::End | Owned::Error | Owned::ClientError(_) | Owned::ServerError(_)
            );
            out.push(r);
            if last {
                return out;
            }
        }
    }

    fn call(&mut self, req: &[u8]) -> Owned {
        self.send(req);
        self.read_one()
    }

    fn call_multi(&mut self, req: &[u8]) -> Vec<Owned> {
        self.send(req);
        self.read_until_end()
    }

    fn store(&mut self, cmd: StoreCommand, key: &[u8], flags: u32, data: &[u8], cas: u64) -> Owned {
        let mut req = Vec::new();
        protocol::encode_store(&mut req, cmd, key, flags, 0, data, cas, false);
        self.call(&req)
    }

    fn get(&mut self, with_cas: bool, keys: &[&[u8]]) -> Vec<Owned> {
        let mut req = Vec::new();
        protocol::encode_get(&mut req, with_cas, keys.iter().copied());
        self.call_multi(&req)
    }

    fn arith(&mut self, incr: bool, key: &[u8], delta: u64) -> Owned {
        let mut req = Vec::new();
        protocol::encode_arith(&mut req, incr, key, delta, false);
        self.call(&req)
    }

    fn version(&mut self) -> Vec<u8> {
        let mut req = Vec::new();
        protocol::encode_version(&mut req);
        match self.call(&req) {
            Owned::Version(v) => v,
            other => panic!("expected VERSION, got {other:?}"),
        }
    }

    fn cas_of(&mut self, key: &[u8]) -> u64 {
        match self.get(true, &[key]).as_slice() {
            [Owned::Value { cas: Some(c), .. }, Owned::End] => *c,
            other => panic!("gets {key:?}: {other:?}"),
        }
    }
}

fn start() -> Memcached {
    // Room for a 1 MiB value plus its item header.
    Memcached::start_on("127.0.0.1", &["-I", "2m"]).unwrap()
}

#[test]
fn every_command_against_real_memcached() {
    let m = start();
    let mut c = Conn::open(&m);
    use StoreCommand::*;

    let version = c.version();
    assert!(
        version.first().is_some_and(u8::is_ascii_digit),
        "{version:?}"
    );
    assert!(version.contains(&b'.'));

    assert_eq!(c.store(Set, b"k1", 42, b"hello", 0), Owned::Stored);
    assert_eq!(
        c.get(false, &[b"k1"]),
        vec![value(b"k1", 42, None, b"hello"), Owned::End]
    );

    assert_eq!(c.store(Add, b"k1", 0, b"x", 0), Owned::NotStored);
    assert_eq!(c.store(Add, b"k2", 1, b"two", 0), Owned::Stored);
    assert_eq!(c.store(Replace, b"k3", 0, b"x", 0), Owned::NotStored);
    assert_eq!(c.store(Replace, b"k2", 2, b"TWO", 0), Owned::Stored);

    // append/prepend keep the stored flags.
    assert_eq!(c.store(Append, b"k1", 7, b" world", 0), Owned::Stored);
    assert_eq!(c.store(Prepend, b"k1", 7, b">> ", 0), Owned::Stored);
    assert_eq!(c.store(Append, b"k3", 0, b"x", 0), Owned::NotStored);
    assert_eq!(c.store(Prepend, b"k3", 0, b"x", 0), Owned::NotStored);
    assert_eq!(
        c.get(false, &[b"k1", b"missing", b"k2"]),
        vec![
            value(b"k1", 42, None, b">> hello world"),
            value(b"k2", 2, None, b"TWO"),
            Owned::End
        ]
    );

    let cas = c.cas_of(b"k1");
    assert_eq!(c.store(Cas, b"k1", 5, b"swapped", cas), Owned::Stored);
    assert_eq!(c.store(Cas, b"k1", 5, b"stale", cas), Owned::Exists);
    assert_eq!(c.store(Cas, b"k3", 5, b"gone", cas), Owned::NotFound);
    let new_cas = c.cas_of(b"k1");
    assert_ne!(new_cas, cas);
    let both = c.get(true, &[b"k1", b"k2"]);
    assert_eq!(both.len(), 3);
    assert_eq!(both[0], value(b"k1", 5, Some(new_cas), b"swapped"));
    assert!(matches!(&both[1], Owned::Value { key, cas: Some(_), .. } if key == b"k2"));

    let mut req = Vec::new();
    protocol::encode_delete(&mut req, b"k2", false);
    assert_eq!(c.call(&req), Owned::Deleted);
    assert_eq!(c.call(&req), Owned::NotFound);

    assert_eq!(c.store(Set, b"n", 0, b"10", 0), Owned::Stored);
    assert_eq!(c.arith(true, b"n", 5), Owned::Number(15));
    assert_eq!(c.arith(false, b"n", 100), Owned::Number(0));
    assert_eq!(c.arith(true, b"n", u64::MAX), Owned::Number(u64::MAX));
    assert_eq!(c.arith(true, b"n", 1), Owned::Number(0), "incr wraps");
    assert_eq!(c.arith(true, b"nope", 1), Owned::NotFound);
    match c.arith(true, b"k1", 1) {
        Owned::ClientError(msg) => assert!(msg.starts_with(b"cannot increment"), "{msg:?}"),
        other => panic!("incr on text: {other:?}"),
    }

    let mut req = Vec::new();
    protocol::encode_touch(&mut req, b"k1", 3600, false);
    assert_eq!(c.call(&req), Owned::Touched);
    let mut req = Vec::new();
    protocol::encode_touch(&mut req, b"nope", 3600, false);
    assert_eq!(c.call(&req), Owned::NotFound);

    let mut req = Vec::new();
    protocol::encode_stats(&mut req, None);
    let stats = c.call_multi(&req);
    assert_eq!(stats.last(), Some(&Owned::End));
    assert!(stats.len() > 20, "{stats:?}");
    assert!(stats[..stats.len() - 1]
        .iter()
        .all(|s| matches!(s, Owned::Stat(..))));
    assert!(stats.contains(&Owned::Stat(b"version".to_vec(), version.clone())));
    assert!(stats.contains(&Owned::Stat(b"curr_items".to_vec(), b"2".to_vec())));
    let mut req = Vec::new();
    protocol::encode_stats(&mut req, Some(b"settings"));
    let settings = c.call_multi(&req);
    assert!(settings.contains(&Owned::Stat(b"item_size_max".to_vec(), b"2097152".to_vec())));

    // Error lines: an unknown command, and a malformed storage line.
    assert_eq!(c.call(b"bogus\r\n"), Owned::Error);
    match c.call(b"set k 0 0 notanumber\r\n") {
        Owned::ClientError(msg) => assert_eq!(msg, b"bad command line format"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.version(), version, "still in sync after the errors");

    let mut req = Vec::new();
    protocol::encode_flush_all(&mut req, 0, false);
    assert_eq!(c.call(&req), Owned::Ok);
    assert_eq!(c.get(false, &[b"k1", b"n"]), vec![Owned::End]);
    // A delayed flush is accepted (and harmless on an empty cache).
    let mut req = Vec::new();
    protocol::encode_flush_all(&mut req, 1, false);
    assert_eq!(c.call(&req), Owned::Ok);
}

#[test]
fn binary_empty_and_large_values_round_trip() {
    let m = start();
    let mut c = Conn::open(&m);
    use StoreCommand::*;

    let mut binary: Vec<u8> = (0..=255u8).collect();
    binary.extend_from_slice(b"\r\nEND\r\nVALUE x 0 1\r\n\r\n\n\r");
    assert_eq!(c.store(Set, b"bin", 3, &binary, 0), Owned::Stored);
    assert_eq!(c.store(Set, b"empty", 0, b"", 0), Owned::Stored);

    // 1 MiB of xorshift bytes, so "\r\n" and "END" appear by chance too.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let big: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    assert_eq!(c.store(Set, b"big", 9, &big, 0), Owned::Stored);

    assert_eq!(
        c.get(false, &[b"bin", b"empty"]),
        vec![
            value(b"bin", 3, None, &binary),
            value(b"empty", 0, None, b""),
            Owned::End
        ]
    );
    // testkit's independent reader agrees with what was stored.
    assert_eq!(m.get_raw(b"bin").unwrap(), Some(binary.clone()));
    assert_eq!(m.get_raw(b"empty").unwrap(), Some(Vec::new()));

    let reads_before = c.reads;
    let got = c.get(true, &[b"empty", b"big", b"bin"]);
    assert_eq!(got.len(), 4);
    assert!(matches!(&got[0], Owned::Value { data, cas: Some(_), .. } if data.is_empty()));
    match &got[1] {
        Owned::Value {
            key,
            flags,
            cas,
            data,
        } => {
            assert_eq!((key.as_slice(), *flags), (&b"big"[..], 9));
            assert!(cas.is_some());
            assert!(data == &big, "1 MiB value differs");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&got[2], Owned::Value { data, .. } if data == &binary));
    assert_eq!(got[3], Owned::End);
    // The VALUE header announced the whole element, so the buffer grew once to it.
    assert!(c.largest_hint > 1 << 20, "hint {}", c.largest_hint);
    assert!(c.reads > reads_before);

    // An over-limit value is refused with SERVER_ERROR and the data block is swallowed.
    let huge = vec![b'h'; 3 << 20];
    match c.store(Set, b"huge", 0, &huge, 0) {
        Owned::ServerError(msg) => assert!(msg.starts_with(b"object too large"), "{msg:?}"),
        other => panic!("{other:?}"),
    }
    let v = c.version();
    assert!(!v.is_empty());

    // Many keys in one get: replies arrive in request order.
    let keys: Vec<Vec<u8>> = (0..200).map(|i| format!("many:{i}").into_bytes()).collect();
    for (i, k) in keys.iter().enumerate() {
        if i % 3 != 0 {
            assert_eq!(c.store(Set, k, i as u32, k, 0), Owned::Stored, "{i}");
        }
    }
    let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
    let got = c.get(false, &refs);
    let expected: Vec<Owned> = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(i, k)| value(k, i as u32, None, k))
        .chain([Owned::End])
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn noreply_forms_answer_nothing() {
    let m = start();
    let mut c = Conn::open(&m);
    use StoreCommand::*;

    assert_eq!(c.store(Set, b"c", 0, b"v0", 0), Owned::Stored);
    let cas = c.cas_of(b"c");

    // Everything in one write; only the final `version` may answer.
    let mut req = Vec::new();
    protocol::encode_store(&mut req, Set, b"a", 1, 0, b"A", 0, true);
    protocol::encode_store(&mut req, Add, b"a", 9, 0, b"not stored", 0, true);
    protocol::encode_store(&mut req, Add, b"b", 2, 0, b"B", 0, true);
    protocol::encode_store(&mut req, Replace, b"b", 3, 0, b"bb", 0, true);
    protocol::encode_store(&mut req, Append, b"b", 0, 0, b">", 0, true);
    protocol::encode_store(&mut req, Prepend, b"b", 0, 0, b"<", 0, true);
    protocol::encode_store(&mut req, Cas, b"c", 4, 0, b"swapped", cas, true);
    protocol::encode_store(&mut req, Set, b"n", 0, 0, b"100", 0, true);
    protocol::encode_arith(&mut req, true, b"n", 20, true);
    protocol::encode_arith(&mut req, false, b"n", 1, true);
    protocol::encode_store(&mut req, Set, b"d", 0, 0, b"doomed", 0, true);
    protocol::encode_delete(&mut req, b"d", true);
    protocol::encode_delete(&mut req, b"never-there", true);
    protocol::encode_touch(&mut req, b"a", 3600, true);
    protocol::encode_version(&mut req);
    c.send(&req);
    let first = c.read_one();
    assert!(matches!(first, Owned::Version(_)), "{first:?}");

    assert_eq!(
        c.get(false, &[b"a", b"b", b"c", b"n", b"d"]),
        vec![
            value(b"a", 1, None, b"A"),
            value(b"b", 3, None, b"<bb>"),
            value(b"c", 4, None, b"swapped"),
            value(b"n", 0, None, b"119"),
            Owned::End
        ]
    );

    let mut req = Vec::new();
    protocol::encode_flush_all(&mut req, 0, true);
    protocol::encode_version(&mut req);
    c.send(&req);
    assert!(matches!(c.read_one(), Owned::Version(_)));
    assert_eq!(c.get(false, &[b"a", b"b", b"c"]), vec![Owned::End]);
}
