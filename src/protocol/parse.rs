//! Reply parsing: one reply element from the front of a receive buffer,
//! borrowed from it (a hit costs no allocation); a prefix is reported as
//! incomplete, with the final size once a `VALUE` header is known.

use memchr::memchr;

use super::{MAX_DATA_LEN, MAX_KEY_LEN, MAX_LINE_LEN, QUOTE_MAX};
use crate::error::quote_bytes;

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
pub(super) fn parse_u64(digits: &[u8]) -> Option<u64> {
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

pub(super) fn quote(bytes: &[u8]) -> String {
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

/// Where the first reply line of `buf` ends: the index of its `\n`, `None`
/// while it is incomplete. Text and meta replies both end lines with `\r\n`
/// and cap them at [`MAX_LINE_LEN`]; a line that breaks either rule is an error.
pub(super) fn first_line(buf: &[u8]) -> std::result::Result<Option<usize>, String> {
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
        None => return Ok(None),
    };
    if nl == 0 || buf[nl - 1] != b'\r' {
        return Err(format!(
            "reply line not ending in \\r\\n: {}",
            quote(&buf[..=nl])
        ));
    }
    Ok(Some(nl))
}

/// [`parse`] for every element, by its first line.
pub(super) fn parse_line(buf: &[u8]) -> std::result::Result<Parse<'_>, String> {
    let Some(nl) = first_line(buf)? else {
        return Ok(Parse::Incomplete { needed: None });
    };
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
pub(super) fn parse_value<'a>(
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
pub(super) struct ValueHeader<'a> {
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
pub(super) fn value_header(buf: &[u8]) -> Option<ValueHeader<'_>> {
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
pub(super) fn digits(s: &[u8], pos: &mut usize) -> Option<u64> {
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
pub(super) fn value_body<'a>(buf: &'a [u8], h: ValueHeader<'a>) -> std::result::Result<Parse<'a>, String> {
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
