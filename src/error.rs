//! One error type for the whole crate.
//!
//! Every variant maps to exactly one [`Status`] code, which is what C sees; the
//! `Display` text is what `elasticache_last_error_message` hands out, so it
//! always names the node or endpoint and the command involved.

use std::ffi::CStr;
use std::fmt;
use std::io;

/// Status codes returned by every C function. The numbers are part of the ABI:
/// they never change and are never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// The key does not exist (a miss on `incr`, `delete`, `touch`, ...).
    NotFound = 1,
    /// `add` on an existing key, `replace`/`append`/`prepend` on a missing key.
    NotStored = 2,
    /// `cas` found that the item changed since it was read.
    Exists = 3,
    /// The key is empty, longer than 250 bytes, or holds whitespace or control bytes. Nothing was sent.
    BadKey = 4,
    /// The value is larger than the client's maximum value size. Nothing was sent.
    TooBig = 5,
    /// A connect or I/O timeout expired.
    Timeout = 6,
    /// A connection could not be made or was lost.
    Connection = 7,
    /// A server sent a reply this library cannot parse; that connection was closed.
    Protocol = 8,
    /// A server answered `SERVER_ERROR` (for example out of memory or an object too large).
    ServerError = 9,
    /// A server answered `CLIENT_ERROR` or `ERROR` to a request.
    ClientError = 10,
    /// The configuration endpoint could not be used: its reply was malformed or missing.
    Discovery = 11,
    /// There is no server to send the request to (empty cluster, or every node ejected).
    NoServers = 12,
    /// A NULL pointer, a bad length, an unknown option value, or invalid UTF-8 was passed in.
    InvalidArgument = 13,
    /// A bug inside the library was caught at the C boundary; the call did nothing useful.
    Panic = 14,
    /// A host name could not be resolved.
    HostLookup = 15,
    /// A TLS handshake or certificate verification failed.
    Tls = 16,
    /// The output buffer given by the caller is too small; the required size was reported.
    BufferTooSmall = 17,
    /// A node is ejected after repeated failures and its keys cannot move elsewhere.
    ServerDead = 18,
}

impl Status {
    /// A short, static, NUL-terminated description of a status code.
    pub fn as_cstr(self) -> &'static CStr {
        match self {
            Status::Ok => c"success",
            Status::NotFound => c"not found",
            Status::NotStored => c"not stored",
            Status::Exists => c"item exists (cas mismatch)",
            Status::BadKey => c"bad key",
            Status::TooBig => c"value too big",
            Status::Timeout => c"timeout",
            Status::Connection => c"connection error",
            Status::Protocol => c"protocol error",
            Status::ServerError => c"server error",
            Status::ClientError => c"client error",
            Status::Discovery => c"discovery error",
            Status::NoServers => c"no servers",
            Status::InvalidArgument => c"invalid argument",
            Status::Panic => c"internal panic",
            Status::HostLookup => c"host lookup failed",
            Status::Tls => c"TLS error",
            Status::BufferTooSmall => c"buffer too small",
            Status::ServerDead => c"server marked dead",
        }
    }

    /// The status of one key's result in a multi-key call: OK, or its error's.
    pub fn of<T>(result: &Result<T>) -> Status {
        result.as_ref().map_or_else(Error::status, |_| Status::Ok)
    }

    /// The status of one key's read: OK for a hit, NOT_FOUND for a miss, or
    /// the status of the error that key met.
    pub fn of_read<T>(result: &Result<Option<T>>) -> Status {
        match result {
            Ok(Some(_)) => Status::Ok,
            Ok(None) => Status::NotFound,
            Err(e) => e.status(),
        }
    }

    /// A short, static description of a status code.
    pub fn as_str(self) -> &'static str {
        self.as_cstr().to_str().unwrap_or("status")
    }

    /// The highest code. The enum above is the one list of codes: they run
    /// from 0 to this one without a gap (the ABI never skips or reuses a
    /// number), which is what makes [`Status::from_u32`] a range check.
    pub const LAST: Status = Status::ServerDead;

    /// The status for a raw code, if it is one.
    pub fn from_u32(code: u32) -> Option<Status> {
        if code <= Status::LAST as u32 {
            // SAFETY: `Status` is repr(u32) and every value in 0..=LAST is one
            // of its discriminants (contiguous, checked by the tests).
            Some(unsafe { std::mem::transmute::<u32, Status>(code) })
        } else {
            None
        }
    }
}

/// Every failure the library can report, with the context needed to act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The key was not found (`incr`, `decr`, `delete`, `touch` on a miss).
    NotFound,
    /// The item was not stored (`add` on an existing key, `replace` on a missing one).
    NotStored,
    /// `cas` conflict: the item changed since it was read.
    Exists,
    /// The key cannot be sent; `reason` says why.
    BadKey { reason: &'static str },
    /// The value exceeds the configured maximum.
    TooBig { len: usize, max: usize },
    /// A timeout while talking to `addr` during `op`.
    Timeout { addr: String, op: &'static str },
    /// A connection to `addr` failed or broke during `op`.
    Connection {
        addr: String,
        op: &'static str,
        detail: String,
    },
    /// `addr` sent something unparseable in reply to `op`.
    Protocol {
        addr: String,
        op: &'static str,
        detail: String,
    },
    /// `SERVER_ERROR` text from `addr`.
    Server {
        addr: String,
        op: &'static str,
        message: String,
    },
    /// `CLIENT_ERROR` or `ERROR` text from `addr`.
    Client {
        addr: String,
        op: &'static str,
        message: String,
    },
    /// The configuration endpoint's reply could not be used.
    Discovery { endpoint: String, detail: String },
    /// No server is available for the request.
    NoServers { detail: String },
    /// A caller passed something invalid.
    InvalidArgument(String),
    /// A panic was caught at the C boundary.
    Panic(String),
    /// Name resolution of `host` failed.
    HostLookup { host: String, detail: String },
    /// TLS failure on `addr`.
    Tls { addr: String, detail: String },
    /// The caller's output buffer is too small; `needed` bytes are required.
    BufferTooSmall { needed: usize },
    /// The node is ejected after repeated failures and its keys may not move.
    ServerDead { addr: String },
}

impl Error {
    /// The C status code for this error.
    pub fn status(&self) -> Status {
        match self {
            Error::NotFound => Status::NotFound,
            Error::NotStored => Status::NotStored,
            Error::Exists => Status::Exists,
            Error::BadKey { .. } => Status::BadKey,
            Error::TooBig { .. } => Status::TooBig,
            Error::Timeout { .. } => Status::Timeout,
            Error::Connection { .. } => Status::Connection,
            Error::Protocol { .. } => Status::Protocol,
            Error::Server { .. } => Status::ServerError,
            Error::Client { .. } => Status::ClientError,
            Error::Discovery { .. } => Status::Discovery,
            Error::NoServers { .. } => Status::NoServers,
            Error::InvalidArgument(_) => Status::InvalidArgument,
            Error::Panic(_) => Status::Panic,
            Error::HostLookup { .. } => Status::HostLookup,
            Error::Tls { .. } => Status::Tls,
            Error::BufferTooSmall { .. } => Status::BufferTooSmall,
            Error::ServerDead { .. } => Status::ServerDead,
        }
    }

    /// Classify an I/O error from `addr` during `op`: timeouts become
    /// [`Error::Timeout`], everything else [`Error::Connection`].
    pub fn io(addr: &str, op: &'static str, source: io::Error) -> Error {
        // A TLS failure after the handshake (an alert, a bad record) is still TLS.
        if let Some(tls) = source
            .get_ref()
            .and_then(|e| e.downcast_ref::<TlsFailure>())
        {
            return Error::Tls {
                addr: addr.to_string(),
                detail: format!("during {op}: {tls}"),
            };
        }
        match source.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::Timeout {
                addr: addr.to_string(),
                op,
            },
            _ => Error::Connection {
                addr: addr.to_string(),
                op,
                detail: source.to_string(),
            },
        }
    }

    /// The outcome of a multi-key write as one status: success when every key
    /// succeeded, else the first failing key's error (its message names the
    /// node and the command); each key's own status is reported beside it.
    pub fn first_of<T>(results: &[Result<T>]) -> Result<()> {
        match results.iter().find_map(|r| r.as_ref().err()) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// True for failures of the node itself (as opposed to the request): these
    /// count toward ejection and close the connection.
    pub fn is_node_failure(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. }
                | Error::Connection { .. }
                | Error::Protocol { .. }
                | Error::HostLookup { .. }
                | Error::Tls { .. }
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound => f.write_str("not found"),
            Error::NotStored => f.write_str("not stored"),
            Error::Exists => f.write_str("item exists: cas id changed"),
            Error::BadKey { reason } => write!(f, "bad key: {reason}"),
            Error::TooBig { len, max } => {
                write!(f, "value of {len} bytes exceeds the maximum of {max} bytes")
            }
            Error::Timeout { addr, op } => write!(f, "{addr}: timeout during {op}"),
            Error::Connection { addr, op, detail } => {
                write!(f, "{addr}: connection error during {op}: {detail}")
            }
            Error::Protocol { addr, op, detail } => {
                write!(f, "{addr}: protocol error in reply to {op}: {detail}")
            }
            Error::Server { addr, op, message } => {
                write!(f, "{addr}: {op}: SERVER_ERROR {message}")
            }
            Error::Client { addr, op, message } => write!(f, "{addr}: {op}: {message}"),
            Error::Discovery { endpoint, detail } => {
                write!(f, "discovery from {endpoint} failed: {detail}")
            }
            Error::NoServers { detail } => write!(f, "no servers: {detail}"),
            Error::InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
            Error::Panic(msg) => write!(f, "internal panic: {msg}"),
            Error::HostLookup { host, detail } => {
                write!(f, "cannot resolve host {host:?}: {detail}")
            }
            Error::Tls { addr, detail } => write!(f, "{addr}: TLS error: {detail}"),
            Error::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
            Error::ServerDead { addr } => {
                write!(f, "{addr}: server is marked dead after repeated failures")
            }
        }
    }
}

impl std::error::Error for Error {}

/// The payload of an I/O error that is a TLS failure (an alert, a bad
/// record): the TLS layer wraps its errors in this so that [`Error::io`]
/// reports them as [`Error::Tls`] without knowing the TLS library.
#[derive(Debug)]
pub(crate) struct TlsFailure(pub Box<dyn std::error::Error + Send + Sync>);

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TlsFailure {}

/// Crate-wide result alias.
pub type Result<T> = std::result::Result<T, Error>;

/// Quote bytes for an error message: printable ASCII as is, the rest escaped,
/// cut at `max` bytes so a huge bad reply does not become a huge message.
pub fn quote_bytes(bytes: &[u8], max: usize) -> String {
    let mut out = String::with_capacity(bytes.len().min(max) + 8);
    out.push('"');
    for &b in bytes.iter().take(max) {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    if bytes.len() > max {
        out.push_str(&format!("... ({} bytes)", bytes.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_contiguous_and_round_trip() {
        // The codes as cbindgen wrote them (read without transmuting, so a gap
        // shows here before from_u32 could ever produce an invalid value).
        let header = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/include/elasticache.h"
        ));
        let mut codes: Vec<u32> = header
            .lines()
            .filter_map(|l| l.trim().strip_prefix("ELASTICACHE_STATUS_"))
            .filter_map(|l| l.split(" = ").nth(1))
            .map(|v| v.trim_end_matches(',').parse().unwrap())
            .collect();
        codes.sort_unstable();
        assert_eq!(codes, (0..=Status::LAST as u32).collect::<Vec<_>>());
        for code in codes {
            let s = Status::from_u32(code).unwrap();
            assert_eq!(s as u32, code);
            assert_ne!(s.as_str(), "status");
        }
        assert_eq!(Status::from_u32(Status::LAST as u32 + 1), None);
        assert_eq!(Status::from_u32(u32::MAX), None);
    }

    #[test]
    fn quote_bytes_escapes_and_truncates() {
        assert_eq!(quote_bytes(b"a\r\n\x01", 10), "\"a\\r\\n\\x01\"");
        assert_eq!(quote_bytes(b"abcdef", 3), "\"abc\"... (6 bytes)");
    }
}
