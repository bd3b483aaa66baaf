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
    /// Every storage command.
    pub const ALL: [StoreCommand; 6] = [
        StoreCommand::Set,
        StoreCommand::Add,
        StoreCommand::Replace,
        StoreCommand::Append,
        StoreCommand::Prepend,
        StoreCommand::Cas,
    ];

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
#[derive(Debug, PartialEq, Eq)]
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
