//! The memcached classic text protocol: request encoding and reply parsing, no I/O.
//!
//! Encoders append to a connection-owned buffer so a batch of requests becomes one
//! `write`. The parser reads one reply element from the front of a receive buffer and
//! borrows from it, so a hit costs no allocation here; when the buffer holds only a
//! prefix it says so (with the final size once a `VALUE` header is known) instead of
//! reading by itself. Grammar: memcached `doc/protocol.txt`.

use memchr::memchr;

use crate::error::{quote_bytes, Error, Result};

/// The longest key memcached accepts.
pub const MAX_KEY_LEN: usize = 250;

/// The longest reply line (including its `"\r\n"`) the parser waits for. Real
/// lines are a few hundred bytes at most (a `VALUE` header with a 250-byte key),
/// so a longer run without a newline means the stream is out of sync.
pub const MAX_LINE_LEN: usize = 8192;

/// The largest data block a `VALUE` header may announce. memcached's item size
/// limit (`-I`) cannot exceed 1 GiB, so anything larger is a corrupt stream and
/// must not make the reader grow its buffer to match.
pub const MAX_DATA_LEN: usize = 1 << 30;

/// How much of an offending reply goes into an error message.
const QUOTE_MAX: usize = 100;

/// Check that `key` can be sent in the text protocol: 1 to 250 bytes, none of them
/// whitespace, a control character or DEL (they would split or end the command line).
pub fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::BadKey {
            reason: "the key is empty",
        });
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::BadKey {
            reason: "the key is longer than 250 bytes",
        });
    }
    if key.iter().any(|&b| b <= 0x20 || b == 0x7f) {
        return Err(Error::BadKey {
            reason: "the key contains whitespace, a control character or DEL",
        });
    }
    Ok(())
}

/// The storage commands, which send a data block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCommand {
    /// Store unconditionally.
    Set,
    /// Store only if the key is absent.
    Add,
    /// Store only if the key is present.
    Replace,
    /// Add the data after the existing value (flags and exptime are ignored).
    Append,
    /// Add the data before the existing value (flags and exptime are ignored).
    Prepend,
    /// Store only if the item's cas id is still the one given.
    Cas,
}

impl StoreCommand {
    /// The command's name on the wire: `"set"`, `"add"`, ...
    pub fn name(self) -> &'static str {
        match self {
            StoreCommand::Set => "set",
            StoreCommand::Add => "add",
            StoreCommand::Replace => "replace",
            StoreCommand::Append => "append",
            StoreCommand::Prepend => "prepend",
            StoreCommand::Cas => "cas",
        }
    }
}

/// Append the decimal digits of `v` without allocating.
fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Append `v` in decimal with a leading `-` when negative (`i64::MIN` included).
fn push_i64(buf: &mut Vec<u8>, v: i64) {
    if v < 0 {
        buf.push(b'-');
    }
    push_u64(buf, v.unsigned_abs());
}

fn push_noreply_crlf(buf: &mut Vec<u8>, noreply: bool) {
    if noreply {
        buf.extend_from_slice(b" noreply");
    }
    buf.extend_from_slice(b"\r\n");
}

/// Append a storage command and its data block:
/// `<cmd> <key> <flags> <exptime> <bytes> [<cas>] [noreply]\r\n<data>\r\n`.
/// `cas` is written only for [`StoreCommand::Cas`]. The key must already be checked.
#[allow(clippy::too_many_arguments)]
pub fn encode_store(
    buf: &mut Vec<u8>,
    cmd: StoreCommand,
    key: &[u8],
    flags: u32,
    exptime: i64,
    value: &[u8],
    cas: u64,
    noreply: bool,
) {
    // Numbers take at most 10 + 20 + 20 + 20 bytes plus separators.
    buf.reserve(cmd.name().len() + key.len() + value.len() + 100);
    buf.extend_from_slice(cmd.name().as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(key);
    buf.push(b' ');
    push_u64(buf, u64::from(flags));
    buf.push(b' ');
    push_i64(buf, exptime);
    buf.push(b' ');
    push_u64(buf, value.len() as u64);
    if cmd == StoreCommand::Cas {
        buf.push(b' ');
        push_u64(buf, cas);
    }
    push_noreply_crlf(buf, noreply);
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\r\n");
}

/// Append `get k1 k2 ...\r\n` (or `gets` when `with_cas`). The caller passes at least
/// one checked key; memcached answers a bare `get` with `ERROR`.
pub fn encode_get<'k>(buf: &mut Vec<u8>, with_cas: bool, keys: impl IntoIterator<Item = &'k [u8]>) {
    buf.extend_from_slice(if with_cas { b"gets" } else { b"get" });
    for key in keys {
        buf.push(b' ');
        buf.extend_from_slice(key);
    }
    buf.extend_from_slice(b"\r\n");
}

/// Append `delete <key> [noreply]\r\n`.
pub fn encode_delete(buf: &mut Vec<u8>, key: &[u8], noreply: bool) {
    buf.extend_from_slice(b"delete ");
    buf.extend_from_slice(key);
    push_noreply_crlf(buf, noreply);
}

/// Append `incr <key> <delta> [noreply]\r\n` (or `decr` when `incr` is false).
pub fn encode_arith(buf: &mut Vec<u8>, incr: bool, key: &[u8], delta: u64, noreply: bool) {
    buf.extend_from_slice(if incr { b"incr " } else { b"decr " });
    buf.extend_from_slice(key);
    buf.push(b' ');
    push_u64(buf, delta);
    push_noreply_crlf(buf, noreply);
}

/// Append `touch <key> <exptime> [noreply]\r\n`.
pub fn encode_touch(buf: &mut Vec<u8>, key: &[u8], exptime: i64, noreply: bool) {
    buf.extend_from_slice(b"touch ");
    buf.extend_from_slice(key);
    buf.push(b' ');
    push_i64(buf, exptime);
    push_noreply_crlf(buf, noreply);
}

/// Append `flush_all [<delay>] [noreply]\r\n`; a zero delay is left out.
pub fn encode_flush_all(buf: &mut Vec<u8>, delay: u32, noreply: bool) {
    buf.extend_from_slice(b"flush_all");
    if delay != 0 {
        buf.push(b' ');
        push_u64(buf, u64::from(delay));
    }
    push_noreply_crlf(buf, noreply);
}

/// Append `version\r\n`.
pub fn encode_version(buf: &mut Vec<u8>) {
    buf.extend_from_slice(b"version\r\n");
}

/// Append `stats [<arg>]\r\n` (for example `stats settings`).
pub fn encode_stats(buf: &mut Vec<u8>, arg: Option<&[u8]>) {
    buf.extend_from_slice(b"stats");
    if let Some(arg) = arg {
        buf.push(b' ');
        buf.extend_from_slice(arg);
    }
    buf.extend_from_slice(b"\r\n");
}

/// One reply element parsed from the start of a buffer, borrowing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// A `VALUE` item of a `get`/`gets`; `cas` is present for `gets`.
    Value {
        /// The item's key.
        key: &'a [u8],
        /// The flags stored with the item.
        flags: u32,
        /// The cas id (`gets` only).
        cas: Option<u64>,
        /// The data block, without its trailing `"\r\n"`.
        data: &'a [u8],
    },
    /// `END`: the end of a `get`/`gets`/`stats` reply.
    End,
    /// `STORED`.
    Stored,
    /// `NOT_STORED`.
    NotStored,
    /// `EXISTS` (cas mismatch).
    Exists,
    /// `NOT_FOUND`.
    NotFound,
    /// `DELETED`.
    Deleted,
    /// `TOUCHED`.
    Touched,
    /// `OK` (`flush_all`).
    Ok,
    /// The new value after `incr`/`decr`.
    Number(u64),
    /// `VERSION <text>`: the text after the space.
    Version(&'a [u8]),
    /// `STAT <name> <value>`; the value is the rest of the line.
    Stat {
        /// The statistic's name.
        name: &'a [u8],
        /// Its value, as text.
        value: &'a [u8],
    },
    /// `ERROR`: the server did not know the command.
    Error,
    /// `CLIENT_ERROR <message>`: the message.
    ClientError(&'a [u8]),
    /// `SERVER_ERROR <message>`: the message.
    ServerError(&'a [u8]),
}

/// The outcome of [`parse`] on a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse<'a> {
    /// Not enough bytes yet. `needed` is the total buffer length that will complete this
    /// element when known (a VALUE header was read, so header + data + 2), so the reader
    /// can grow its buffer once for a 1 MiB value.
    Incomplete {
        /// The buffer length that completes the element, when known.
        needed: Option<usize>,
    },
    /// A complete element and how many bytes of the buffer it used.
    Done(Reply<'a>, usize),
}

/// A decimal number of ASCII digits only (no sign, no spaces), or None on anything
/// else or on overflow of u64.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

fn quote(bytes: &[u8]) -> String {
    quote_bytes(bytes, QUOTE_MAX)
}

/// Parse one element from the start of `buf`. Err(detail) for anything that is not valid
/// memcached text protocol: unknown first word, malformed VALUE header (non-numeric
/// flags/length/cas, missing fields), data block not followed by "\r\n", a line not
/// ending in "\r\n" (bare "\n"), a line longer than 8 KB without a newline, a number
/// reply that overflows u64. The detail quotes the offending bytes. The caller wraps it
/// in Error::Protocol with the node address and command.
pub fn parse(buf: &[u8]) -> std::result::Result<Parse<'_>, String> {
    match value_header(buf) {
        Some(header) => value_body(buf, header),
        None => parse_line(buf),
    }
}

/// [`parse`] for every element, by its first line.
fn parse_line(buf: &[u8]) -> std::result::Result<Parse<'_>, String> {
    // Only the first line is searched: a data block may hold any bytes, "\n" included.
    let window = &buf[..buf.len().min(MAX_LINE_LEN)];
    let nl = match memchr(b'\n', window) {
        Some(i) => i,
        None if buf.len() >= MAX_LINE_LEN => {
            return Err(format!(
                "reply line longer than {MAX_LINE_LEN} bytes without a newline: {}",
                quote(window)
            ))
        }
        None => return Ok(Parse::Incomplete { needed: None }),
    };
    if nl == 0 || buf[nl - 1] != b'\r' {
        return Err(format!(
            "reply line not ending in \\r\\n: {}",
            quote(&buf[..=nl])
        ));
    }
    let line = &buf[..nl - 1];
    let used = nl + 1;
    let (word, rest) = match memchr(b' ', line) {
        Some(sp) => (&line[..sp], Some(&line[sp + 1..])),
        None => (line, None),
    };
    let simple = |reply: Reply<'static>| match rest {
        None => Ok(Parse::Done(reply, used)),
        Some(_) => Err(format!(
            "unexpected text in reply line {}",
            quote(&buf[..used])
        )),
    };
    match word {
        b"VALUE" => parse_value(buf, rest.unwrap_or(b""), used),
        b"END" => simple(Reply::End),
        b"STORED" => simple(Reply::Stored),
        b"NOT_STORED" => simple(Reply::NotStored),
        b"EXISTS" => simple(Reply::Exists),
        b"NOT_FOUND" => simple(Reply::NotFound),
        b"DELETED" => simple(Reply::Deleted),
        b"TOUCHED" => simple(Reply::Touched),
        b"OK" => simple(Reply::Ok),
        // Some servers add a reason after ERROR; it carries nothing the caller can act on.
        b"ERROR" => Ok(Parse::Done(Reply::Error, used)),
        b"CLIENT_ERROR" => Ok(Parse::Done(Reply::ClientError(rest.unwrap_or(b"")), used)),
        b"SERVER_ERROR" => Ok(Parse::Done(Reply::ServerError(rest.unwrap_or(b"")), used)),
        b"VERSION" => Ok(Parse::Done(Reply::Version(rest.unwrap_or(b"")), used)),
        b"STAT" => {
            let rest = rest.unwrap_or(b"");
            let (name, value) = match memchr(b' ', rest) {
                Some(sp) => (&rest[..sp], &rest[sp + 1..]),
                None => (rest, &b""[..]),
            };
            if name.is_empty() {
                return Err(format!("STAT line without a name: {}", quote(&buf[..used])));
            }
            Ok(Parse::Done(Reply::Stat { name, value }, used))
        }
        [b'0'..=b'9', ..] => {
            // protocol.txt allows the incr/decr result to be padded with spaces.
            let end = line.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
            match parse_u64(&line[..end]) {
                Some(n) => Ok(Parse::Done(Reply::Number(n), used)),
                None => Err(format!(
                    "bad number reply (not digits or over 2^64-1): {}",
                    quote(&buf[..used])
                )),
            }
        }
        _ => Err(format!("unknown reply {}", quote(&buf[..used]))),
    }
}

/// The rest of a `VALUE <key> <flags> <bytes> [<cas>]` line whose header ends at
/// `header_end`, then its data block.
fn parse_value<'a>(
    buf: &'a [u8],
    fields: &'a [u8],
    header_end: usize,
) -> std::result::Result<Parse<'a>, String> {
    let bad = |what: &str| format!("{what} in VALUE header {}", quote(&buf[..header_end]));
    let mut tokens = fields.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let key = tokens.next().ok_or_else(|| bad("missing key"))?;
    let flags = tokens
        .next()
        .ok_or_else(|| bad("missing flags"))
        .and_then(|t| {
            parse_u64(t)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad("bad flags"))
        })?;
    let len = tokens
        .next()
        .ok_or_else(|| bad("missing length"))
        .and_then(|t| {
            parse_u64(t)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n <= MAX_DATA_LEN)
                .ok_or_else(|| bad("bad length"))
        })?;
    let cas = match tokens.next() {
        None => None,
        Some(t) => Some(parse_u64(t).ok_or_else(|| bad("bad cas"))?),
    };
    if tokens.next().is_some() {
        return Err(bad("extra fields"));
    }
    value_body(
        buf,
        ValueHeader {
            key,
            flags,
            len,
            cas,
            header_end,
        },
    )
}

/// A VALUE header line, parsed.
struct ValueHeader<'a> {
    key: &'a [u8],
    flags: u32,
    len: usize,
    cas: Option<u64>,
    /// Where the data block starts (just past the header's `\r\n`).
    header_end: usize,
}

/// The fast path for the VALUE lines a multi-get is made of: only the exact
/// form `VALUE <key> <flags> <bytes>[ <cas>]\r\n` (single spaces, a key of at
/// most 250 bytes, numbers in range) in one pass over the bytes. `None` for
/// anything else, which [`parse`]'s general path then accepts or reports.
#[inline]
fn value_header(buf: &[u8]) -> Option<ValueHeader<'_>> {
    let rest = buf.strip_prefix(b"VALUE ")?;
    let limit = rest.len().min(MAX_KEY_LEN + 1);
    // One comparison per key byte: space, CR and LF all stop the scan, and so
    // do control bytes, which leave such a key to the general path.
    let key_len = rest[..limit].iter().position(|&b| b <= b' ')?;
    if key_len == 0 || rest[key_len] != b' ' {
        return None;
    }
    let key = &rest[..key_len];
    let mut pos = key_len + 1;
    let flags = u32::try_from(digits(rest, &mut pos)?).ok()?;
    if rest.get(pos) != Some(&b' ') {
        return None;
    }
    pos += 1;
    let len = usize::try_from(digits(rest, &mut pos)?)
        .ok()
        .filter(|&n| n <= MAX_DATA_LEN)?;
    let cas = match rest.get(pos) {
        Some(b' ') => {
            pos += 1;
            Some(digits(rest, &mut pos)?)
        }
        _ => None,
    };
    if rest.get(pos..pos + 2) != Some(b"\r\n") {
        return None;
    }
    Some(ValueHeader {
        key,
        flags,
        len,
        cas,
        header_end: 6 + pos + 2,
    })
}

/// A run of at least one digit at `*pos` (moved past it) as a number; `None`
/// when there is none or it overflows.
#[inline]
fn digits(s: &[u8], pos: &mut usize) -> Option<u64> {
    let start = *pos;
    let mut n: u64 = 0;
    while let Some(&b) = s.get(*pos) {
        if !b.is_ascii_digit() {
            break;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        *pos += 1;
    }
    (*pos > start).then_some(n)
}

/// The data block after a VALUE header.
fn value_body<'a>(buf: &'a [u8], h: ValueHeader<'a>) -> std::result::Result<Parse<'a>, String> {
    let ValueHeader {
        key,
        flags,
        len,
        cas,
        header_end,
    } = h;
    let data_end = header_end + len;
    let total = data_end + 2;
    if buf.len() < total {
        // Fail early on a wrong first trailer byte; otherwise wait for the rest.
        if buf.len() > data_end && buf[data_end] != b'\r' {
            return Err(format!(
                "data block of {len} bytes after {} not followed by \\r\\n: {}",
                quote(&buf[..header_end]),
                quote(&buf[data_end..])
            ));
        }
        return Ok(Parse::Incomplete {
            needed: Some(total),
        });
    }
    if &buf[data_end..total] != b"\r\n" {
        return Err(format!(
            "data block of {len} bytes after {} not followed by \\r\\n: {}",
            quote(&buf[..header_end]),
            quote(&buf[data_end..total])
        ));
    }
    Ok(Parse::Done(
        Reply::Value {
            key,
            flags,
            cas,
            data: &buf[header_end..data_end],
        },
        total,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
