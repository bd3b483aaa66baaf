//! The parser fed every cut of serialized streams, fixed and randomized.

use super::super::parse::*;
use super::super::MAX_KEY_LEN;

/// Cut `segments` (one serialized element each) at every position: a cut never
/// errors, completes exactly the elements that end before it, and a `needed` hint
/// names the end of the pending element.
fn check_every_cut(segments: &[&[u8]], expected: &[Reply]) {
    let stream: Vec<u8> = segments.concat();
    let ends: Vec<usize> = segments
        .iter()
        .scan(0, |end, s| {
            *end += s.len();
            Some(*end)
        })
        .collect();
    for cut in 0..=stream.len() {
        let part = &stream[..cut];
        let mut pos = 0;
        let mut n = 0;
        loop {
            match parse(&part[pos..]) {
                Ok(Parse::Done(reply, used)) => {
                    assert_eq!(reply, expected[n], "cut {cut}");
                    pos += used;
                    assert_eq!(pos, ends[n], "cut {cut}");
                    n += 1;
                }
                Ok(Parse::Incomplete { needed }) => {
                    if let Some(needed) = needed {
                        assert_eq!(pos + needed, ends[n], "cut {cut}");
                        assert!(pos + needed > cut);
                    }
                    break;
                }
                Err(e) => panic!("cut {cut} of {stream:?}: {e}"),
            }
        }
        assert_eq!(n, ends.iter().filter(|&&e| e <= cut).count(), "cut {cut}");
        assert_eq!(pos, if n == 0 { 0 } else { ends[n - 1] });
    }
}

#[test]
fn every_proper_prefix_is_incomplete() {
    let segments: Vec<&[u8]> = vec![
        b"VALUE a 0 5\r\nhello\r\n",
        b"VALUE b\xff 65535 8 77\r\nEND\r\n\r\nV\r\n",
        b"VALUE c 1 0\r\n\r\n",
        b"SERVER_ERROR out of memory\r\n",
        b"END\r\n",
        b"STORED\r\n",
        b"NOT_STORED\r\n",
        b"EXISTS\r\n",
        b"NOT_FOUND\r\n",
        b"DELETED\r\n",
        b"TOUCHED\r\n",
        b"OK\r\n",
        b"1234567890\r\n",
        b"VERSION 1.6.21\r\n",
        b"STAT curr_items 3\r\n",
        b"END\r\n",
        b"ERROR\r\n",
        b"CLIENT_ERROR bad data chunk\r\n",
    ];
    let expected = vec![
        Reply::Value {
            key: b"a",
            flags: 0,
            cas: None,
            data: b"hello",
        },
        Reply::Value {
            key: b"b\xff",
            flags: 65535,
            cas: Some(77),
            data: b"END\r\n\r\nV",
        },
        Reply::Value {
            key: b"c",
            flags: 1,
            cas: None,
            data: b"",
        },
        Reply::ServerError(b"out of memory"),
        Reply::End,
        Reply::Stored,
        Reply::NotStored,
        Reply::Exists,
        Reply::NotFound,
        Reply::Deleted,
        Reply::Touched,
        Reply::Ok,
        Reply::Number(1234567890),
        Reply::Version(b"1.6.21"),
        Reply::Stat {
            name: b"curr_items",
            value: b"3",
        },
        Reply::End,
        Reply::Error,
        Reply::ClientError(b"bad data chunk"),
    ];
    check_every_cut(&segments, &expected);
}

/// xorshift64*: enough randomness for test data without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A number whose magnitude is itself random, so short and long digit strings both occur.
    fn wide(&mut self) -> u64 {
        let bits = self.below(65) as u32;
        self.next().checked_shr(64 - bits).unwrap_or(0)
    }
    fn bytes(&mut self, len: usize, pick: impl Fn(u8) -> u8) -> Vec<u8> {
        (0..len).map(|_| pick(self.next() as u8)).collect()
    }
}

/// The owned twin of [`Reply`], so generated elements outlive the parse buffer.
#[derive(Debug, Clone)]
enum Gen {
    Value(Vec<u8>, u32, Option<u64>, Vec<u8>),
    Simple(Reply<'static>, &'static [u8]),
    Number(u64, usize),
    Version(Vec<u8>),
    Stat(Vec<u8>, Vec<u8>),
    ClientError(Vec<u8>),
    ServerError(Vec<u8>),
}

impl Gen {
    fn reply(&self) -> Reply<'_> {
        match self {
            Gen::Value(key, flags, cas, data) => Reply::Value {
                key,
                flags: *flags,
                cas: *cas,
                data,
            },
            Gen::Simple(reply, _) => *reply,
            Gen::Number(n, _) => Reply::Number(*n),
            Gen::Version(v) => Reply::Version(v),
            Gen::Stat(name, value) => Reply::Stat { name, value },
            Gen::ClientError(m) => Reply::ClientError(m),
            Gen::ServerError(m) => Reply::ServerError(m),
        }
    }

    /// The bytes a server sends for this element, written independently of the encoders.
    fn serialize(&self, out: &mut Vec<u8>) {
        match self {
            Gen::Value(key, flags, cas, data) => {
                out.extend_from_slice(b"VALUE ");
                out.extend_from_slice(key);
                out.extend_from_slice(format!(" {flags} {}", data.len()).as_bytes());
                if let Some(cas) = cas {
                    out.extend_from_slice(format!(" {cas}").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(data);
            }
            Gen::Simple(_, word) => out.extend_from_slice(word),
            Gen::Number(n, pad) => {
                out.extend_from_slice(n.to_string().as_bytes());
                out.resize(out.len() + pad, b' ');
            }
            Gen::Version(v) => {
                out.extend_from_slice(b"VERSION ");
                out.extend_from_slice(v);
            }
            Gen::Stat(name, value) => {
                out.extend_from_slice(b"STAT ");
                out.extend_from_slice(name);
                out.push(b' ');
                out.extend_from_slice(value);
            }
            Gen::ClientError(m) => {
                out.extend_from_slice(b"CLIENT_ERROR ");
                out.extend_from_slice(m);
            }
            Gen::ServerError(m) => {
                out.extend_from_slice(b"SERVER_ERROR ");
                out.extend_from_slice(m);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

fn gen_element(rng: &mut Rng) -> Gen {
    // Key bytes: printable ASCII without space, or high bytes.
    let key_byte = |b: u8| if b < 0x80 { 0x21 + b % 0x5e } else { b };
    let text_byte = |b: u8| 0x20 + b % 0x5f;
    match rng.below(16) {
        0..=6 => {
            let key_len = 1 + rng.below(MAX_KEY_LEN as u64) as usize;
            let key = rng.bytes(key_len, key_byte);
            let data_len = match rng.below(10) {
                0 => 0,
                1 => rng.below(70_000) as usize,
                _ => rng.below(64) as usize,
            };
            let mut data = rng.bytes(data_len, |b| b);
            // Plant reply-looking text inside the data block.
            for _ in 0..rng.below(4) {
                let junk: &[u8] = match rng.below(4) {
                    0 => b"\r\n",
                    1 => b"END\r\n",
                    2 => b"\r\nVALUE x 0 1\r\n",
                    _ => b"\n",
                };
                let at = rng.below(data.len() as u64 + 1) as usize;
                data.splice(at..at, junk.iter().copied());
            }
            let flags = rng.wide() as u32;
            let cas = if rng.below(2) == 0 {
                None
            } else {
                Some(rng.wide())
            };
            Gen::Value(key, flags, cas, data)
        }
        7 => {
            const SIMPLE: [(Reply<'static>, &[u8]); 9] = [
                (Reply::End, b"END"),
                (Reply::Stored, b"STORED"),
                (Reply::NotStored, b"NOT_STORED"),
                (Reply::Exists, b"EXISTS"),
                (Reply::NotFound, b"NOT_FOUND"),
                (Reply::Deleted, b"DELETED"),
                (Reply::Touched, b"TOUCHED"),
                (Reply::Ok, b"OK"),
                (Reply::Error, b"ERROR"),
            ];
            let (reply, word) = &SIMPLE[rng.below(SIMPLE.len() as u64) as usize];
            Gen::Simple(*reply, word)
        }
        8 => Gen::Simple(Reply::End, b"END"),
        9 => Gen::Number(rng.wide(), rng.below(3) as usize),
        10 => {
            let len = rng.below(20) as usize;
            Gen::Version(rng.bytes(len, |b| b"0123456789."[b as usize % 11]))
        }
        11 | 12 => {
            let name_len = 1 + rng.below(30) as usize;
            let value_len = rng.below(40) as usize;
            Gen::Stat(
                rng.bytes(name_len, |b| 0x21 + b % 0x5e),
                rng.bytes(value_len, text_byte),
            )
        }
        13 => {
            let len = rng.below(60) as usize;
            Gen::ClientError(rng.bytes(len, text_byte))
        }
        _ => {
            let len = rng.below(60) as usize;
            Gen::ServerError(rng.bytes(len, text_byte))
        }
    }
}

#[test]
fn randomized_round_trip_fed_in_random_pieces() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for round in 0..40 {
        let elements: Vec<Gen> = (0..1 + rng.below(120))
            .map(|_| gen_element(&mut rng))
            .collect();
        let mut stream = Vec::new();
        for e in &elements {
            e.serialize(&mut stream);
        }
        let mut buf: Vec<u8> = Vec::new();
        let mut fed = 0;
        let mut next = 0;
        while fed < stream.len() {
            let piece = match rng.below(4) {
                0 => 1,
                1 => 1 + rng.below(16),
                2 => 1 + rng.below(1024),
                _ => 1 + rng.below(65536),
            } as usize;
            let end = (fed + piece).min(stream.len());
            buf.extend_from_slice(&stream[fed..end]);
            fed = end;
            let mut consumed = 0;
            loop {
                match parse(&buf[consumed..]) {
                    Ok(Parse::Done(reply, used)) => {
                        assert_eq!(
                            reply,
                            elements[next].reply(),
                            "round {round}, element {next}"
                        );
                        consumed += used;
                        next += 1;
                    }
                    Ok(Parse::Incomplete { needed }) => {
                        if let Some(needed) = needed {
                            assert!(needed > buf.len() - consumed);
                            assert!(matches!(elements[next], Gen::Value(..)));
                        }
                        break;
                    }
                    Err(e) => panic!("round {round}, element {next}: {e}"),
                }
            }
            buf.drain(..consumed);
        }
        assert_eq!(next, elements.len(), "round {round}");
        assert!(buf.is_empty());
    }
}

#[test]
fn randomized_streams_survive_every_cut() {
    let mut rng = Rng(0xfeed_f00d_dead_beef);
    for _ in 0..20 {
        // Small elements keep the quadratic every-cut check cheap.
        let elements: Vec<Gen> = (0..1 + rng.below(8))
            .map(|_| gen_element(&mut rng))
            .filter(|e| !matches!(e, Gen::Value(_, _, _, d) if d.len() > 200))
            .collect();
        let segments: Vec<Vec<u8>> = elements
            .iter()
            .map(|e| {
                let mut s = Vec::new();
                e.serialize(&mut s);
                s
            })
            .collect();
        let seg_refs: Vec<&[u8]> = segments.iter().map(|s| s.as_slice()).collect();
        let expected: Vec<Reply> = elements.iter().map(|e| e.reply()).collect();
        check_every_cut(&seg_refs, &expected);
    }
}
