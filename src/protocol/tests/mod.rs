//! The text protocol's encoders and parser, against exact bytes.

use super::encode::*;
use super::parse::*;
use super::*;

mod cuts;


#[test]
fn value_fast_path_agrees_with_the_general_parser() {
    let cases: Vec<&[u8]> = vec![
        b"VALUE k 0 3\r\nabc\r\n",
        b"VALUE key:1 4294967295 0 18446744073709551615\r\n\r\nEND\r\n",
        b"VALUE k 4294967296 1\r\nx\r\n",
        b"VALUE k 1 1 18446744073709551616\r\nx\r\n",
        b"VALUE k 0 1073741825\r\n",
        b"VALUE k  0 1\r\nx\r\n",
        b"VALUE k 0 1 \r\nx\r\n",
        b"VALUE k 0 1 5 6\r\nx\r\n",
        b"VALUE k 0 x1\r\nx\r\n",
        b"VALUE k 0\r\n",
        b"VALUE k\r\n",
        b"VALUE \r\n",
        b"VALUE k 0 1\nx\r\n",
        b"VALUE k 0 2\r\nx\n\r\n",
        b"VALUE k 0 1\r\nxy\r\n",
        b"VALUE a\rb 0 1\r\nx\r\n",
        b"VALUE k\x01\xff 7 2 99\r\n\r\n\r\n",
    ];
    let long_key = [b"VALUE ".as_slice(), &[b'k'; 251], b" 0 1\r\nx\r\n"].concat();
    let max_key = [b"VALUE ".as_slice(), &[b'k'; 250], b" 0 1\r\nx\r\n"].concat();
    let mut fast = 0;
    for case in cases.iter().copied().chain([&long_key[..], &max_key[..]]) {
        for cut in 0..=case.len() {
            let buf = &case[..cut];
            let got = format!("{:?}", parse(buf));
            let want = format!("{:?}", parse_line(buf));
            assert_eq!(got, want, "for {:?}", quote(buf));
            fast += usize::from(value_header(buf).is_some());
        }
    }
    // The canonical forms really took the fast path.
    assert!(fast >= 10, "{fast}");
    assert!(value_header(b"VALUE k 0 3\r\nabc\r\n").is_some());
    assert!(value_header(&max_key).is_some());
    assert!(value_header(&long_key).is_none());
}

/// Parse every complete element at the front of `buf`; the rest must be a prefix.
fn parse_all(buf: &[u8]) -> (Vec<Reply<'_>>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        match parse(&buf[pos..]) {
            Ok(Parse::Done(r, used)) => {
                assert!(used > 0);
                out.push(r);
                pos += used;
            }
            Ok(Parse::Incomplete { .. }) => return (out, pos),
            Err(e) => panic!("parse error at {pos}: {e}"),
        }
    }
}

fn done(buf: &[u8]) -> (Reply<'_>, usize) {
    match parse(buf) {
        Ok(Parse::Done(r, used)) => (r, used),
        other => panic!("expected a complete element from {buf:?}, got {other:?}"),
    }
}

fn err(buf: &[u8]) -> String {
    match parse(buf) {
        Err(e) => e,
        Ok(other) => panic!("expected an error for {buf:?}, got {other:?}"),
    }
}

#[test]
fn check_key_accepts_printable_and_high_bytes() {
    check_key(b"a").unwrap();
    check_key(b"user:42/profile~!#$%^&*()[]{}").unwrap();
    check_key(&[b'x'; MAX_KEY_LEN]).unwrap();
    check_key("clé-ünïcødé".as_bytes()).unwrap();
    check_key(&[0x21, 0x7e, 0x80, 0xff]).unwrap();
}

#[test]
fn check_key_rejects_empty_long_space_control_and_del() {
    let bad: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        vec![b'x'; MAX_KEY_LEN + 1],
        b"a b".to_vec(),
        b" ".to_vec(),
        b"a\tb".to_vec(),
        b"a\r".to_vec(),
        b"a\n".to_vec(),
        b"\0".to_vec(),
        b"a\x1f".to_vec(),
        b"a\x7f".to_vec(),
    ];
    for key in bad {
        match check_key(&key) {
            Err(Error::BadKey { reason }) => assert!(!reason.is_empty()),
            other => panic!("{key:?} should be a bad key, got {other:?}"),
        }
    }
    assert_eq!(
        check_key(b""),
        Err(Error::BadKey {
            reason: "the key is empty"
        })
    );
}

#[test]
fn integers_are_written_like_display() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut samples = vec![0, 1, 9, 10, 99, 100, u64::MAX, u64::MAX - 1, 1 << 63];
    for _ in 0..1000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        samples.push(x >> (x % 64));
    }
    for v in samples {
        let mut buf = b"pre".to_vec();
        push_u64(&mut buf, v);
        assert_eq!(buf, format!("pre{v}").into_bytes());
        let s = v as i64;
        let mut buf = Vec::new();
        push_i64(&mut buf, s);
        assert_eq!(buf, s.to_string().into_bytes());
    }
    for s in [i64::MIN, i64::MAX, -1, 0] {
        let mut buf = Vec::new();
        push_i64(&mut buf, s);
        assert_eq!(buf, s.to_string().into_bytes());
    }
}

#[test]
fn store_commands_encode_exactly_and_append() {
    let mut buf = b"previous\r\n".to_vec();
    encode_store(
        &mut buf,
        StoreCommand::Set,
        b"k",
        5,
        60,
        b"hello",
        99,
        false,
    );
    assert_eq!(buf, b"previous\r\nset k 5 60 5\r\nhello\r\n");

    let names = ["set", "add", "replace", "append", "prepend", "cas"];
    let all = [
        StoreCommand::Set,
        StoreCommand::Add,
        StoreCommand::Replace,
        StoreCommand::Append,
        StoreCommand::Prepend,
        StoreCommand::Cas,
    ];
    for (cmd, name) in all.iter().zip(names) {
        assert_eq!(cmd.name(), name);
        let mut buf = Vec::new();
        encode_store(&mut buf, *cmd, b"key", 0, 0, b"", 12345, true);
        let expected = if *cmd == StoreCommand::Cas {
            format!("{name} key 0 0 0 12345 noreply\r\n\r\n")
        } else {
            format!("{name} key 0 0 0 noreply\r\n\r\n")
        };
        assert_eq!(String::from_utf8(buf).unwrap(), expected);
    }

    let mut buf = Vec::new();
    encode_store(
        &mut buf,
        StoreCommand::Cas,
        b"k",
        u32::MAX,
        -1,
        b"a\r\nEND\r\n",
        u64::MAX,
        false,
    );
    assert_eq!(
        buf,
        b"cas k 4294967295 -1 8 18446744073709551615\r\na\r\nEND\r\n\r\n".to_vec()
    );
}

#[test]
fn other_commands_encode_exactly() {
    let mut buf = Vec::new();
    encode_get(&mut buf, false, [&b"a"[..], b"bb", b"ccc"]);
    encode_get(&mut buf, true, [&b"k"[..]]);
    let keys: Vec<Vec<u8>> = vec![b"x".to_vec(), b"y".to_vec()];
    encode_get(&mut buf, true, keys.iter().map(|k| k.as_slice()));
    encode_delete(&mut buf, b"k", false);
    encode_delete(&mut buf, b"k", true);
    encode_arith(&mut buf, true, b"n", 1, false);
    encode_arith(&mut buf, false, b"n", u64::MAX, true);
    encode_touch(&mut buf, b"t", 3600, false);
    encode_touch(&mut buf, b"t", -1, true);
    encode_flush_all(&mut buf, 0, false);
    encode_flush_all(&mut buf, 0, true);
    encode_flush_all(&mut buf, 30, false);
    encode_flush_all(&mut buf, 30, true);
    encode_version(&mut buf);
    encode_stats(&mut buf, None);
    encode_stats(&mut buf, Some(b"settings"));
    let expected = "get a bb ccc\r\n\
                    gets k\r\n\
                    gets x y\r\n\
                    delete k\r\n\
                    delete k noreply\r\n\
                    incr n 1\r\n\
                    decr n 18446744073709551615 noreply\r\n\
                    touch t 3600\r\n\
                    touch t -1 noreply\r\n\
                    flush_all\r\n\
                    flush_all noreply\r\n\
                    flush_all 30\r\n\
                    flush_all 30 noreply\r\n\
                    version\r\n\
                    stats\r\n\
                    stats settings\r\n";
    assert_eq!(String::from_utf8(buf).unwrap(), expected);
}

#[test]
fn parses_every_single_line_reply() {
    let cases: Vec<(&[u8], Reply)> = vec![
        (b"END\r\n", Reply::End),
        (b"STORED\r\n", Reply::Stored),
        (b"NOT_STORED\r\n", Reply::NotStored),
        (b"EXISTS\r\n", Reply::Exists),
        (b"NOT_FOUND\r\n", Reply::NotFound),
        (b"DELETED\r\n", Reply::Deleted),
        (b"TOUCHED\r\n", Reply::Touched),
        (b"OK\r\n", Reply::Ok),
        (b"0\r\n", Reply::Number(0)),
        (b"42\r\n", Reply::Number(42)),
        (b"7   \r\n", Reply::Number(7)),
        (b"18446744073709551615\r\n", Reply::Number(u64::MAX)),
        (b"VERSION 1.6.21\r\n", Reply::Version(b"1.6.21")),
        (
            b"STAT pid 1234\r\n",
            Reply::Stat {
                name: b"pid",
                value: b"1234",
            },
        ),
        (
            b"STAT rusage_user 0.123 more words\r\n",
            Reply::Stat {
                name: b"rusage_user",
                value: b"0.123 more words",
            },
        ),
        (
            b"STAT empty\r\n",
            Reply::Stat {
                name: b"empty",
                value: b"",
            },
        ),
        (b"ERROR\r\n", Reply::Error),
        (
            b"CLIENT_ERROR bad command line format\r\n",
            Reply::ClientError(b"bad command line format"),
        ),
        (
            b"SERVER_ERROR out of memory storing object\r\n",
            Reply::ServerError(b"out of memory storing object"),
        ),
        (b"SERVER_ERROR\r\n", Reply::ServerError(b"")),
    ];
    for (bytes, expected) in cases {
        let mut stream = bytes.to_vec();
        stream.extend_from_slice(b"END\r\n");
        let (reply, used) = done(&stream);
        assert_eq!(reply, expected, "{bytes:?}");
        assert_eq!(used, bytes.len(), "{bytes:?}");
    }
}

#[test]
fn parses_values_by_length_not_by_content() {
    let stream = b"VALUE a 0 5\r\nhello\r\n\
                   VALUE bin 4294967295 11 18446744073709551615\r\nx\r\nEND\r\n\r\ny\r\n\
                   VALUE empty 3 0 7\r\n\r\n\
                   END\r\n";
    let (replies, used) = parse_all(stream);
    assert_eq!(used, stream.len());
    assert_eq!(
        replies,
        vec![
            Reply::Value {
                key: b"a",
                flags: 0,
                cas: None,
                data: b"hello"
            },
            Reply::Value {
                key: b"bin",
                flags: u32::MAX,
                cas: Some(u64::MAX),
                data: b"x\r\nEND\r\n\r\ny"
            },
            Reply::Value {
                key: b"empty",
                flags: 3,
                cas: Some(7),
                data: b""
            },
            Reply::End,
        ]
    );
    let (gets, _) = done(b"VALUE k 0 5 123\r\nabcde\r\n");
    assert_eq!(
        gets,
        Reply::Value {
            key: b"k",
            flags: 0,
            cas: Some(123),
            data: b"abcde"
        }
    );
}

#[test]
fn server_error_in_the_middle_of_a_multi_get() {
    let stream = b"VALUE a 1 1\r\nA\r\nSERVER_ERROR out of memory writing get response\r\n";
    let (replies, used) = parse_all(stream);
    assert_eq!(used, stream.len());
    assert_eq!(
        replies,
        vec![
            Reply::Value {
                key: b"a",
                flags: 1,
                cas: None,
                data: b"A"
            },
            Reply::ServerError(b"out of memory writing get response"),
        ]
    );
}

#[test]
fn one_mebibyte_value_reports_its_total_length_once_the_header_is_read() {
    let len = 1 << 20;
    let header = format!("VALUE big 7 {len}\r\n").into_bytes();
    let mut stream = header.clone();
    let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    stream.extend_from_slice(&data);
    stream.extend_from_slice(b"\r\nEND\r\n");
    let total = header.len() + len + 2;
    for cut in [header.len() - 1, header.len(), header.len() + 1, total - 1] {
        let expected = if cut < header.len() {
            None
        } else {
            Some(total)
        };
        assert_eq!(
            parse(&stream[..cut]),
            Ok(Parse::Incomplete { needed: expected }),
            "cut at {cut}"
        );
    }
    let (reply, used) = done(&stream);
    assert_eq!(used, total);
    assert_eq!(
        reply,
        Reply::Value {
            key: b"big",
            flags: 7,
            cas: None,
            data: &data
        }
    );
    assert_eq!(done(&stream[used..]), (Reply::End, 5));
}

#[test]
fn rejects_what_is_not_the_text_protocol() {
    let cases: Vec<(&[u8], &str)> = vec![
        (b"FOO\r\n", "FOO"),
        (b"stored\r\n", "stored"),
        (b"\r\n", "\\r\\n"),
        (b"END extra\r\n", "END extra"),
        (b"STORED\n", "STORED\\n"),
        (b"\n", "\\n"),
        (b"VALUE\r\n", "VALUE"),
        (b"VALUE k\r\n", "VALUE k"),
        (b"VALUE k 0\r\n", "VALUE k 0"),
        (b"VALUE k x 5\r\nabcde\r\n", "VALUE k x 5"),
        (b"VALUE k -1 5\r\nabcde\r\n", "VALUE k -1 5"),
        (b"VALUE k 4294967296 1\r\nx\r\n", "4294967296"),
        (b"VALUE k 0 -1\r\n", "VALUE k 0 -1"),
        (b"VALUE k 0 5x\r\n", "VALUE k 0 5x"),
        (b"VALUE k 0 99999999999\r\n", "99999999999"),
        (b"VALUE k 0 5 abc\r\nabcde\r\n", "abc"),
        (b"VALUE k 0 5 18446744073709551616\r\nabcde\r\n", "616"),
        (b"VALUE k 0 1 2 3\r\nx\r\n", "VALUE k 0 1 2 3"),
        (b"VALUE k 0 3\r\nabcXY", "XY"),
        (b"VALUE k 0 3\r\nabcX", "X"),
        (b"VALUE k 0 3\r\nabc\rX", "\\rX"),
        (b"VALUE k 0 3\r\nabcd\r\n", "d\\r"),
        (b"18446744073709551616\r\n", "18446744073709551616"),
        (b"12a\r\n", "12a"),
        (b"1 2\r\n", "1 2"),
        (b"STAT\r\n", "STAT"),
        (b"STAT  x\r\n", "STAT  x"),
    ];
    for (bytes, quoted) in cases {
        let e = err(bytes);
        assert!(
            e.contains(quoted),
            "error for {bytes:?} should quote {quoted:?}: {e}"
        );
    }
}

#[test]
fn long_lines_wait_up_to_the_limit_then_fail() {
    let long = vec![b'A'; MAX_LINE_LEN];
    assert_eq!(
        parse(&long[..MAX_LINE_LEN - 1]),
        Ok(Parse::Incomplete { needed: None })
    );
    let e = err(&long);
    assert!(e.contains("8192") && e.contains("AAAA"), "{e}");
    // A newline just past the limit does not save the line.
    let mut over = long.clone();
    over.extend_from_slice(b"\r\n");
    err(&over);
    // A long line that ends within the limit is still judged by its content.
    let mut stat = b"STAT big ".to_vec();
    stat.resize(MAX_LINE_LEN - 2, b'v');
    stat.extend_from_slice(b"\r\n");
    let (reply, used) = done(&stat);
    assert_eq!(used, MAX_LINE_LEN);
    assert!(
        matches!(reply, Reply::Stat { name: b"big", value } if value.len() == MAX_LINE_LEN - 11)
    );
}

#[test]
fn empty_buffer_is_incomplete() {
    assert_eq!(parse(b""), Ok(Parse::Incomplete { needed: None }));
}

