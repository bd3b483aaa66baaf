//! memcached's meta protocol (`mg`, `ms`, `md`, `ma`, `mn`): request encoding,
//! reply parsing and the version gate, no I/O.
//!
//! Two things need it: keys the text protocol cannot carry (spaces, control
//! bytes), which meta commands take base64-encoded with the `b` flag and store
//! as the decoded bytes; and leases (`N`/`R` on `mg`, answered with `W`/`X`/`Z`).
//! What the code relies on is written down in `docs/meta-protocol.md`.

use memchr::memchr;

use crate::error::quote_bytes;
use crate::protocol::{push_u64, MAX_DATA_LEN, MAX_KEY_LEN};

/// The longest binary key: memcached checks the length of the key token as
/// sent (at most 250 bytes) before decoding it, and base64 turns 186 bytes
/// into 248 characters, 187 into 252.
pub const MAX_BINARY_KEY_LEN: usize = 186;

/// Which meta protocol a node speaks, from its `version` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// memcached 1.6.10 and later: `HD` replies and base64 keys (`b`).
    Final,
    /// 1.5.19 to 1.6.9: meta commands with `OK` for `HD` and no `b` flag. Not spoken.
    Experimental,
    /// No meta commands (1.4, early 1.5), or a version string we cannot read.
    None,
}

/// The dialect of a node whose `version` reply was `VERSION <v>` (`v` given).
/// Only `major.minor.patch` at the start is read; suffixes (`-rc1`, a
/// distribution tag) are ignored. Anything unreadable is [`Dialect::None`]:
/// falling back to the text protocol is always safe.
pub fn dialect_of(version: &str) -> Dialect {
    let mut parts = version.trim().splitn(3, '.').map(|p| {
        let digits = p.bytes().take_while(u8::is_ascii_digit).count();
        p[..digits].parse::<u32>().ok()
    });
    let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) else {
        return Dialect::None;
    };
    let patch = parts.next().flatten().unwrap_or(0);
    match (major, minor, patch) {
        (0, _, _) => Dialect::None,
        (1, m, _) if m < 5 => Dialect::None,
        (1, 5, p) if p < 19 => Dialect::None,
        (1, 5, _) => Dialect::Experimental,
        (1, 6, p) if p < 10 => Dialect::Experimental,
        _ => Dialect::Final,
    }
}

/// True when the text protocol can carry `key` as is.
#[inline]
pub fn is_text_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && !key.iter().any(|&b| b <= 0x20 || b == 0x7f)
}

/// True for a key that only the meta protocol can carry: 1 to 250 bytes with
/// whitespace or control bytes. (Empty and over-long keys are refused by the
/// text checks with their own reasons.)
#[inline]
pub fn needs_binary(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.iter().any(|&b| b <= 0x20 || b == 0x7f)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Append the standard, padded base64 encoding of `bytes` (memcached's decoder).
pub fn push_base64(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.reserve(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        buf.push(B64[(n >> 18) as usize & 63]);
        buf.push(B64[(n >> 12) as usize & 63]);
        buf.push(if chunk.len() > 1 {
            B64[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        buf.push(if chunk.len() > 2 {
            B64[n as usize & 63]
        } else {
            b'='
        });
    }
}

/// One meta request line being written into a connection's buffer.
pub struct Request<'b> {
    buf: &'b mut Vec<u8>,
}

impl<'b> Request<'b> {
    /// Start `<cmd> <key> [<datalen>]`: a text key as is, any other key in
    /// base64 followed by the `b` flag. The caller has checked the key
    /// ([`is_text_key`], or 1..=[`MAX_BINARY_KEY_LEN`] bytes).
    pub fn new(buf: &'b mut Vec<u8>, cmd: &[u8; 2], key: &[u8], datalen: Option<usize>) -> Self {
        buf.reserve(key.len() * 2 + 64);
        buf.extend_from_slice(cmd);
        buf.push(b' ');
        let binary = !is_text_key(key);
        if binary {
            push_base64(buf, key);
        } else {
            buf.extend_from_slice(key);
        }
        if let Some(n) = datalen {
            buf.push(b' ');
            push_u64(buf, n as u64);
        }
        let r = Request { buf };
        if binary {
            r.flag(b'b')
        } else {
            r
        }
    }

    /// A flag without a token (`v`, `f`, `q`, ...).
    pub fn flag(self, f: u8) -> Self {
        self.buf.push(b' ');
        self.buf.push(f);
        self
    }

    /// A flag with a token (`MS`, `Oabc`).
    pub fn arg(self, f: u8, arg: &[u8]) -> Self {
        self.buf.push(b' ');
        self.buf.push(f);
        self.buf.extend_from_slice(arg);
        self
    }

    /// A flag with an unsigned number (`N30`, `D1`, `C123`).
    pub fn num(self, f: u8, n: u64) -> Self {
        self.buf.push(b' ');
        self.buf.push(f);
        push_u64(self.buf, n);
        self
    }

    /// A flag with a signed number (`T-1`: an exptime as the text protocol takes it).
    pub fn signed(self, f: u8, n: i64) -> Self {
        self.buf.push(b' ');
        self.buf.push(f);
        if n < 0 {
            self.buf.push(b'-');
        }
        push_u64(self.buf, n.unsigned_abs());
        self
    }

    /// End the line.
    pub fn end(self) {
        self.buf.extend_from_slice(b"\r\n");
    }

    /// End the line and append `data` as the data block (for `ms`).
    pub fn end_with(self, data: &[u8]) {
        self.buf.extend_from_slice(b"\r\n");
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }
}

/// Append `mn\r\n`, which the server answers `MN` after everything before it.
pub fn encode_noop(buf: &mut Vec<u8>) {
    buf.extend_from_slice(b"mn\r\n");
}

/// The return code of a meta reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code<'a> {
    /// `VA <size>`: a value follows.
    Value,
    /// `HD`: success without a value.
    Done,
    /// `EN`: a miss (`mg`).
    Miss,
    /// `NF`: not found (`md`, `ma`, `ms` with a cas).
    NotFound,
    /// `NS`: not stored (`ms` in add/replace/append mode).
    NotStored,
    /// `EX`: the cas did not match.
    Exists,
    /// `MN`: the no-op's answer.
    Noop,
    /// `ERROR`: the command is unknown (a node without meta commands).
    Error,
    /// `CLIENT_ERROR <text>`.
    ClientError(&'a [u8]),
    /// `SERVER_ERROR <text>`.
    ServerError(&'a [u8]),
}

/// The flags of a meta reply this library asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags<'a> {
    /// `f`: the client flags.
    pub client_flags: Option<u32>,
    /// `c`: the cas id.
    pub cas: Option<u64>,
    /// `t`: the remaining TTL in seconds (-1 for none).
    pub ttl: Option<i64>,
    /// `W`: this caller won the right to recompute the item.
    pub won: bool,
    /// `X`: the item is stale (invalidated).
    pub stale: bool,
    /// `Z`: another caller already won.
    pub win_sent: bool,
    /// `O`: the opaque token sent with the request.
    pub opaque: Option<&'a [u8]>,
}

/// One parsed meta reply, borrowing from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply<'a> {
    /// The return code.
    pub code: Code<'a>,
    /// The returned flags.
    pub flags: Flags<'a>,
    /// The data block of a `VA` reply.
    pub data: Option<&'a [u8]>,
}

/// The outcome of [`parse`].
#[derive(Debug, PartialEq, Eq)]
pub enum Parse<'a> {
    /// More bytes are needed; `needed` is the total length that completes the
    /// reply when known (a `VA` header was read).
    Incomplete {
        /// The buffer length that completes the reply, when known.
        needed: Option<usize>,
    },
    /// A complete reply and the bytes it used.
    Done(Reply<'a>, usize),
}

fn num<T: std::str::FromStr>(tok: &[u8]) -> Option<T> {
    // FromStr accepts a leading '+'; the protocol never sends one.
    if tok.first() == Some(&b'+') {
        return None;
    }
    std::str::from_utf8(tok).ok()?.parse().ok()
}

fn parse_flags<'a>(rest: &'a [u8], line: &[u8]) -> Result<Flags<'a>, String> {
    let mut f = Flags::default();
    for tok in rest.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
        let (c, arg) = (tok[0], &tok[1..]);
        let bad = || {
            format!(
                "bad flag token {} in {}",
                quote_bytes(tok, 40),
                quote_bytes(line, 100)
            )
        };
        match c {
            b'f' => f.client_flags = Some(num(arg).ok_or_else(bad)?),
            b'c' => f.cas = Some(num(arg).ok_or_else(bad)?),
            b't' => f.ttl = Some(num(arg).ok_or_else(bad)?),
            b'W' => f.won = true,
            b'X' => f.stale = true,
            b'Z' => f.win_sent = true,
            b'O' => f.opaque = Some(arg),
            // Flags echoed or asked for elsewhere (k, b, s, h, l) carry nothing we use.
            _ => {}
        }
    }
    Ok(f)
}

/// Parse one meta reply from the front of `buf`. Errors describe what was
/// wrong; the caller closes the connection on one.
pub fn parse(buf: &[u8]) -> Result<Parse<'_>, String> {
    let Some(nl) = super::parse::first_line(buf)? else {
        return Ok(Parse::Incomplete { needed: None });
    };
    let line = &buf[..nl - 1];
    let used = nl + 1;
    let (word, rest) = match memchr(b' ', line) {
        Some(sp) => (&line[..sp], &line[sp + 1..]),
        None => (line, &b""[..]),
    };
    let done = |code| {
        Ok(Parse::Done(
            Reply {
                code,
                flags: Flags::default(),
                data: None,
            },
            used,
        ))
    };
    let code = match word {
        b"ERROR" => return done(Code::Error),
        b"CLIENT_ERROR" => return done(Code::ClientError(rest)),
        b"SERVER_ERROR" => return done(Code::ServerError(rest)),
        b"VA" => Code::Value,
        b"HD" => Code::Done,
        b"EN" => Code::Miss,
        b"NF" => Code::NotFound,
        b"NS" => Code::NotStored,
        b"EX" => Code::Exists,
        b"MN" => Code::Noop,
        _ => return Err(format!("unexpected meta reply {}", quote_bytes(line, 100))),
    };
    if code != Code::Value {
        let flags = parse_flags(rest, line)?;
        return Ok(Parse::Done(
            Reply {
                code,
                flags,
                data: None,
            },
            used,
        ));
    }
    let (size_tok, flag_toks) = match memchr(b' ', rest) {
        Some(sp) => (&rest[..sp], &rest[sp + 1..]),
        None => (rest, &b""[..]),
    };
    let size: usize = num(size_tok)
        .filter(|&n| n <= MAX_DATA_LEN)
        .ok_or_else(|| format!("bad VA size in {}", quote_bytes(line, 100)))?;
    let flags = parse_flags(flag_toks, line)?;
    let total = used + size + 2;
    if buf.len() < total {
        return Ok(Parse::Incomplete {
            needed: Some(total),
        });
    }
    if &buf[used + size..total] != b"\r\n" {
        return Err(format!(
            "data block of {size} bytes not followed by \\r\\n after {}",
            quote_bytes(line, 100)
        ));
    }
    Ok(Parse::Done(
        Reply {
            code,
            flags,
            data: Some(&buf[used..used + size]),
        },
        total,
    ))
}

/// What one `get_or_lease` answer tells its caller to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// A value to use; nothing to do (another caller may be refreshing it early).
    Hit,
    /// A value to use, and this caller won the right to recompute and store
    /// it: the value is close to expiry (`R`) or stale (invalidated).
    Refresh,
    /// A stale value while another caller recomputes it: use it or wait.
    Stale,
    /// No value; this caller holds the lease: compute and store it.
    Miss,
    /// No value; another caller holds the lease: wait and read again (or
    /// compute without storing).
    Wait,
}

/// Classify an `mg ... v f N R` reply. A miss under `N` creates an empty
/// placeholder item with flags 0 and answers `W` to its creator and `Z` to
/// everyone after: an empty value with flags 0 under `W` or `Z` is that
/// placeholder, so a real empty value stored with flags 0 reads as a miss
/// while a lease is out on it. An `EN` (the placeholder could not be made,
/// memory full) leaves nobody holding a lease: the caller computes.
pub fn lease_state(code: Code<'_>, flags: &Flags<'_>, data: Option<&[u8]>) -> LeaseState {
    let Some(data) = data.filter(|_| code == Code::Value) else {
        return LeaseState::Miss;
    };
    let placeholder =
        data.is_empty() && flags.client_flags.unwrap_or(0) == 0 && (flags.won || flags.win_sent);
    match (placeholder, flags.won, flags.stale) {
        (true, true, _) => LeaseState::Miss,
        (true, false, _) => LeaseState::Wait,
        (false, true, _) => LeaseState::Refresh,
        (false, false, true) => LeaseState::Stale,
        (false, false, false) => LeaseState::Hit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(b: &[u8]) -> String {
        let mut v = Vec::new();
        push_base64(&mut v, b);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(b64(plain.as_bytes()), enc);
        }
        assert_eq!(b64(&[0, 1]), "AAE=");
        assert_eq!(b64(&[0xff, 0xfe, 0xfd]), "//79");
        assert_eq!(b64(&[0u8; MAX_BINARY_KEY_LEN]).len(), 248);
        assert_eq!(b64(&[0u8; MAX_BINARY_KEY_LEN + 1]).len(), 252);
    }

    #[test]
    fn versions_map_to_dialects() {
        for (v, d) in [
            ("1.6.18", Dialect::Final),
            ("1.6.10", Dialect::Final),
            ("1.6.9", Dialect::Experimental),
            ("1.6.6", Dialect::Experimental),
            ("1.5.19", Dialect::Experimental),
            ("1.5.18", Dialect::None),
            ("1.5.22", Dialect::Experimental),
            ("1.4.34", Dialect::None),
            ("1.6.21-rc1", Dialect::Final),
            ("1.7.0", Dialect::Final),
            ("2.0", Dialect::Final),
            ("1.6", Dialect::Experimental),
            ("garbage", Dialect::None),
            ("", Dialect::None),
        ] {
            assert_eq!(dialect_of(v), d, "{v}");
        }
    }

    #[test]
    fn keys_are_text_or_binary() {
        assert!(is_text_key(b"a:b"));
        assert!(!needs_binary(b"a:b"));
        assert!(needs_binary(b"\x00\x01"));
        assert!(needs_binary("\u{b5} bad".as_bytes()));
        assert!(!needs_binary(b""));
        assert!(!needs_binary(&[b' '; 251]));
    }

    #[test]
    fn requests_encode_text_and_binary_keys() {
        let mut buf = Vec::new();
        Request::new(&mut buf, b"mg", b"k1", None)
            .flag(b'v')
            .num(b'N', 30)
            .end();
        Request::new(&mut buf, b"ms", b"a b", Some(3))
            .num(b'F', 16)
            .signed(b'T', -1)
            .end_with(b"xyz");
        encode_noop(&mut buf);
        assert_eq!(buf, b"mg k1 v N30\r\nms YSBi 3 b F16 T-1\r\nxyz\r\nmn\r\n");
    }

    #[test]
    fn lease_states_from_flags() {
        let f = |won, stale, win_sent, cf| Flags {
            won,
            stale,
            win_sent,
            client_flags: Some(cf),
            ..Flags::default()
        };
        let v = Some(&b"old"[..]);
        let e = Some(&b""[..]);
        assert_eq!(
            lease_state(Code::Value, &f(false, false, false, 0), v),
            LeaseState::Hit
        );
        assert_eq!(
            lease_state(Code::Value, &f(false, false, true, 0), v),
            LeaseState::Hit
        );
        assert_eq!(
            lease_state(Code::Value, &f(true, false, false, 0), v),
            LeaseState::Refresh
        );
        assert_eq!(
            lease_state(Code::Value, &f(true, true, false, 0), v),
            LeaseState::Refresh
        );
        assert_eq!(
            lease_state(Code::Value, &f(false, true, true, 0), v),
            LeaseState::Stale
        );
        assert_eq!(
            lease_state(Code::Value, &f(true, false, false, 0), e),
            LeaseState::Miss
        );
        assert_eq!(
            lease_state(Code::Value, &f(false, false, true, 0), e),
            LeaseState::Wait
        );
        // An empty str (pylibmc's text flag) is a value, not the placeholder.
        assert_eq!(
            lease_state(Code::Value, &f(false, false, true, 16), e),
            LeaseState::Hit
        );
        assert_eq!(
            lease_state(Code::Value, &f(false, false, false, 0), e),
            LeaseState::Hit
        );
        assert_eq!(
            lease_state(Code::Miss, &Flags::default(), None),
            LeaseState::Miss
        );
    }

    #[test]
    fn parses_replies() {
        let r = b"VA 3 f16 c42 t-1 W\r\nabc\r\nEN\r\n";
        let Ok(Parse::Done(v, used)) = parse(r) else {
            panic!("VA parses")
        };
        assert_eq!(v.code, Code::Value);
        assert_eq!(v.data, Some(&b"abc"[..]));
        assert_eq!(v.flags.client_flags, Some(16));
        assert_eq!(v.flags.cas, Some(42));
        assert_eq!(v.flags.ttl, Some(-1));
        assert!(v.flags.won && !v.flags.stale && !v.flags.win_sent);
        assert_eq!(
            parse(&r[used..]),
            Ok(Parse::Done(
                Reply {
                    code: Code::Miss,
                    flags: Flags::default(),
                    data: None
                },
                4
            ))
        );
        let Ok(Parse::Done(h, _)) = parse(b"HD c7 Z X\r\n") else {
            panic!("HD parses")
        };
        assert!(h.flags.stale && h.flags.win_sent && !h.flags.won);
        assert_eq!(
            parse(b"VA 10 f0\r\nabc"),
            Ok(Parse::Incomplete { needed: Some(22) })
        );
        assert_eq!(parse(b"HD"), Ok(Parse::Incomplete { needed: None }));
        let Ok(Parse::Done(e, _)) = parse(b"CLIENT_ERROR bad data chunk\r\n") else {
            panic!("errors parse")
        };
        assert_eq!(e.code, Code::ClientError(b"bad data chunk"));
        assert!(
            parse(b"OK\r\n").is_err(),
            "the experimental dialect's OK is not ours"
        );
        assert!(parse(b"VA x\r\n").is_err());
        assert!(parse(b"VA 1\r\nab\r\n").is_err());
        assert!(parse(b"HD f-1\r\n").is_err());
        assert!(parse(&[b'H'; crate::protocol::MAX_LINE_LEN]).is_err());
    }
}
