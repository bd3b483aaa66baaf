//! Reaching a server: address parsing, name resolution and connecting with a
//! timeout. Every connection the library opens (discovery and data) starts here,
//! so timeouts and socket options are decided in one place.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// memcached's (and ElastiCache's) default port.
pub const DEFAULT_PORT: u16 = 11211;

/// Split `"host:port"`, `"[v6]:port"`, `"host"` (port 11211) or a bare IPv6
/// address into host and port. The host comes back without brackets.
pub fn split_host_port(s: &str) -> Result<(String, u16)> {
    let s = s.trim();
    if s.is_empty() {
        return Err(Error::InvalidArgument("empty server address".into()));
    }
    let bad_port = |p: &str| Error::InvalidArgument(format!("bad port {p:?} in address {s:?}"));
    let parse_port = |p: &str| -> Result<u16> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad_port(p)),
            Ok(n) => Ok(n),
        }
    };
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| Error::InvalidArgument(format!("unclosed '[' in address {s:?}")))?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => parse_port(p)?,
            None if after.is_empty() => DEFAULT_PORT,
            None => return Err(Error::InvalidArgument(format!("bad address {s:?}"))),
        };
        return Ok((host.to_string(), port));
    }
    match s.matches(':').count() {
        0 => Ok((s.to_string(), DEFAULT_PORT)),
        1 => {
            let (h, p) = s.split_once(':').unwrap_or((s, ""));
            if h.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "empty host in address {s:?}"
                )));
            }
            Ok((h.to_string(), parse_port(p)?))
        }
        // More than one colon without brackets: a bare IPv6 address.
        _ => Ok((s.to_string(), DEFAULT_PORT)),
    }
}

/// `host:port` for messages and connecting; IPv6 literals get brackets.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Resolve `host` (an IP literal or a name; resolved afresh on every call).
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>> {
    match (host, port).to_socket_addrs() {
        Ok(it) => {
            let addrs: Vec<SocketAddr> = it.collect();
            if addrs.is_empty() {
                Err(Error::HostLookup {
                    host: host.to_string(),
                    detail: "no addresses".into(),
                })
            } else {
                Ok(addrs)
            }
        }
        Err(e) => Err(Error::HostLookup {
            host: host.to_string(),
            detail: e.to_string(),
        }),
    }
}

/// Socket options applied to every connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions {
    /// Time allowed to establish the TCP connection (per address tried, capped by the total).
    pub connect_timeout: Duration,
    /// Read and write timeout on the connected socket.
    pub io_timeout: Duration,
    /// Disable Nagle's algorithm (requests are written whole, so delaying them only adds latency).
    pub tcp_nodelay: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_millis(1000),
            io_timeout: Duration::from_millis(1000),
            tcp_nodelay: true,
        }
    }
}

/// Resolve and connect to `host:port`, trying each address until one answers
/// within the connect timeout (which bounds the whole attempt). `label` names
/// the server in errors.
pub fn connect(host: &str, port: u16, opts: &ConnectOptions, label: &str) -> Result<TcpStream> {
    let addrs = resolve(host, port)?;
    let deadline = Instant::now() + opts.connect_timeout;
    let mut last: Option<io::Error> = None;
    for addr in addrs {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match TcpStream::connect_timeout(&addr, deadline - now) {
            Ok(stream) => {
                let setup = || -> io::Result<()> {
                    stream.set_read_timeout(Some(nonzero(opts.io_timeout)))?;
                    stream.set_write_timeout(Some(nonzero(opts.io_timeout)))?;
                    stream.set_nodelay(opts.tcp_nodelay)
                };
                setup().map_err(|e| Error::io(label, "connect", e))?;
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => Error::io(label, "connect", e),
        None => Error::Timeout {
            addr: label.to_string(),
            op: "connect",
        },
    })
}

/// Socket timeouts of zero mean "block forever" to the OS; we never want that.
pub fn nonzero(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_addresses() {
        assert_eq!(split_host_port("a.b:11212").unwrap(), ("a.b".into(), 11212));
        assert_eq!(split_host_port("a.b").unwrap(), ("a.b".into(), 11211));
        assert_eq!(split_host_port("[::1]:5").unwrap(), ("::1".into(), 5));
        assert_eq!(split_host_port("[::1]").unwrap(), ("::1".into(), 11211));
        assert_eq!(
            split_host_port("2600:1f18::1").unwrap(),
            ("2600:1f18::1".into(), 11211)
        );
        assert!(split_host_port("a:0").is_err());
        assert!(split_host_port("a:99999").is_err());
        assert!(split_host_port(":5").is_err());
        assert!(split_host_port("").is_err());
        assert!(split_host_port("[::1").is_err());
    }

    #[test]
    fn joins_addresses() {
        assert_eq!(join_host_port("::1", 7), "[::1]:7");
        assert_eq!(join_host_port("h", 7), "h:7");
    }
}
