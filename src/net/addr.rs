//! Where a server is: `host:port` parsing and printing, and name resolution.

use std::net::{SocketAddr, ToSocketAddrs};

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

#[cfg(feature = "testkit")]
mod test_override {
    use std::net::IpAddr;
    use std::sync::atomic::{AtomicBool, Ordering};

    use parking_lot::Mutex;

    static HAS_OVERRIDES: AtomicBool = AtomicBool::new(false);
    static OVERRIDES: Mutex<Vec<(String, IpAddr)>> = Mutex::new(Vec::new());

    /// Make `name` resolve to `ip` in this process (tests: TLS node names such as
    /// `0001.cluster.test` that must reach loopback without editing /etc/hosts).
    /// `None` removes the override.
    #[doc(hidden)]
    pub fn set_test_resolver_override(name: &str, ip: Option<IpAddr>) {
        let mut map = OVERRIDES.lock();
        map.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if let Some(ip) = ip {
            map.push((name.to_ascii_lowercase(), ip));
        }
        HAS_OVERRIDES.store(!map.is_empty(), Ordering::Release);
    }

    pub(super) fn overridden(host: &str) -> Option<IpAddr> {
        if !HAS_OVERRIDES.load(Ordering::Acquire) {
            return None;
        }
        OVERRIDES
            .lock()
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(host))
            .map(|(_, ip)| *ip)
    }

}
#[cfg(feature = "testkit")]
pub use test_override::set_test_resolver_override;

#[cfg(not(feature = "testkit"))]
#[inline(always)]
fn overridden(_host: &str) -> Option<std::net::IpAddr> {
    None
}
#[cfg(feature = "testkit")]
use test_override::overridden;

/// Resolve `host` (an IP literal or a name; resolved afresh on every call).
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>> {
    if let Some(ip) = overridden(host) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
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
