//! Options for discovery, placement and the client, settable by name so that C,
//! Python (pylibmc's behaviors) and `ecctl` flags all use one vocabulary.

use std::time::Duration;

use crate::cluster::discovery::DiscoveryOptions;
use crate::error::{Error, Result};
use crate::hash::HashAlgorithm;
use crate::net::connect::ConnectOptions;
use crate::net::socket::{saturating_millis, saturating_secs, MAX_DURATION};
use crate::net::tls::TlsOptions;
use crate::ring::Distribution;

/// Which name of an ElastiCache node is hashed onto the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NodeNaming {
    /// The node's IP (the host name when no IP is listed), as django-elasticache hands pylibmc.
    #[default]
    Ip,
    /// The node's host name, as Amazon's PHP client does: keys stay put when a
    /// replaced node returns with a new IP.
    Host,
}

/// Every tunable, with the defaults documented on each field.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// `connect_timeout` (ms) (default 1000).
    pub connect_timeout: Duration,
    /// `io_timeout` (ms) (default 1000): bounds every read and write.
    pub io_timeout: Duration,
    /// `ignore_cluster_errors` (default false): use a non-cluster endpoint as the only node.
    pub ignore_cluster_errors: bool,
    /// `distribution` (default ketama).
    pub distribution: Distribution,
    /// `hash` (default one_at_a_time).
    pub hash: HashAlgorithm,
    /// `node_naming` (`ip` or `host`) (default ip).
    pub node_naming: NodeNaming,
    /// `max_connections_per_node` (default 8): the pool grows on demand up to this.
    pub max_connections_per_node: usize,
    /// `failure_limit` (default 2): consecutive failures before a node is ejected.
    pub failure_limit: u32,
    /// `retry_timeout` (s) (default 2): how long an ejected node stays out.
    pub retry_timeout: Duration,
    /// `remove_failed` (default true): an ejected node's keys move to the next node on the ring.
    pub remove_failed: bool,
    /// `refresh_interval` (s) (default 60); 0 = never.
    pub refresh_interval: Duration,
    /// `max_value_size` (bytes) [1 MiB].
    pub max_value_size: usize,
    /// `tcp_nodelay` (default true).
    pub tcp_nodelay: bool,
    /// `tls`, `tls_ca_file`, `tls_cert_file`, `tls_key_file`, `tls_server_name`,
    /// `tls_insecure_skip_verify`: in-transit encryption (see `TlsOptions`).
    pub tls: TlsOptions,
    /// `serverless` (default false): the endpoint is an ElastiCache Serverless cache:
    /// one TLS node (implies `tls`), no discovery, no ring, no refresh.
    pub serverless: bool,
    /// `binary_keys` (default false): keys with whitespace or control bytes (1 to 186
    /// bytes) go as base64 in meta commands to nodes that speak them (memcached
    /// 1.6.10+), as pylibmc's binary protocol carries them; BAD_KEY elsewhere.
    pub binary_keys: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_millis(1000),
            io_timeout: Duration::from_millis(1000),
            ignore_cluster_errors: false,
            distribution: Distribution::Ketama,
            hash: HashAlgorithm::OneAtATime,
            node_naming: NodeNaming::Ip,
            max_connections_per_node: 8,
            failure_limit: 2,
            retry_timeout: Duration::from_secs(2),
            remove_failed: true,
            refresh_interval: Duration::from_secs(60),
            max_value_size: 1 << 20,
            tcp_nodelay: true,
            tls: TlsOptions::default(),
            serverless: false,
            binary_keys: false,
        }
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::InvalidArgument(format!(
            "option {name}: {value:?} is not a boolean"
        ))),
    }
}

/// A non-negative integer; a run of digits beyond `u64::MAX` saturates
/// (every caller caps it further), anything else is refused.
fn parse_u64(name: &str, value: &str) -> Result<u64> {
    let v = value.trim();
    match v.parse::<u64>() {
        Ok(n) => Ok(n),
        Err(_) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => Ok(u64::MAX),
        Err(_) => Err(Error::InvalidArgument(format!(
            "option {name}: {value:?} is not a non-negative integer"
        ))),
    }
}

/// An empty value unsets an optional text setting.
fn optional_text(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_string())
}

impl Options {
    /// Set one option by name from its text form. Unknown names and bad values
    /// are rejected with `InvalidArgument` naming the option.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        match name {
            "connect_timeout" | "connect_timeout_ms" => {
                self.connect_timeout = saturating_millis(parse_u64(name, value)?)
            }
            "io_timeout" | "io_timeout_ms" => {
                self.io_timeout = saturating_millis(parse_u64(name, value)?)
            }
            "ignore_cluster_errors" => self.ignore_cluster_errors = parse_bool(name, value)?,
            "distribution" => self.distribution = Distribution::from_name(value)?,
            "hash" => self.hash = HashAlgorithm::from_name(value)?,
            "node_naming" => {
                self.node_naming = match value {
                    "ip" => NodeNaming::Ip,
                    "host" | "hostname" => NodeNaming::Host,
                    _ => {
                        return Err(Error::InvalidArgument(format!(
                            "option node_naming: {value:?} is not \"ip\" or \"host\""
                        )))
                    }
                }
            }
            "max_connections_per_node" => {
                let n = parse_u64(name, value)?;
                if n == 0 || n > 1024 {
                    return Err(Error::InvalidArgument(format!(
                        "option {name}: {value} is not between 1 and 1024"
                    )));
                }
                self.max_connections_per_node = n as usize;
            }
            "failure_limit" => {
                self.failure_limit = u32::try_from(parse_u64(name, value)?).unwrap_or(u32::MAX)
            }
            "retry_timeout" => self.retry_timeout = saturating_secs(parse_u64(name, value)?),
            "remove_failed" => self.remove_failed = parse_bool(name, value)?,
            "refresh_interval" => self.refresh_interval = saturating_secs(parse_u64(name, value)?),
            "refresh_interval_ms" => {
                self.refresh_interval = saturating_millis(parse_u64(name, value)?)
            }
            "max_value_size" => {
                self.max_value_size = usize::try_from(parse_u64(name, value)?).unwrap_or(usize::MAX)
            }
            "tcp_nodelay" => self.tcp_nodelay = parse_bool(name, value)?,
            "serverless" => self.serverless = parse_bool(name, value)?,
            "binary_keys" => self.binary_keys = parse_bool(name, value)?,
            "tls" => self.tls.set_enabled(parse_bool(name, value)?),
            "tls_insecure_skip_verify" => {
                self.tls.set_insecure_skip_verify(parse_bool(name, value)?)
            }
            "tls_ca_file" | "tls_cert_file" | "tls_key_file" => {
                self.tls.set_file(name, optional_text(value))?
            }
            "tls_server_name" => self.tls.set_server_name(name, optional_text(value))?,
            _ => return Err(Error::InvalidArgument(format!("unknown option {name:?}"))),
        }
        Ok(())
    }

    /// These options with every duration saturated at `MAX_DURATION` (for
    /// options built as a struct rather than through [`Options::set`]).
    pub fn saturated(mut self) -> Options {
        for d in [
            &mut self.connect_timeout,
            &mut self.io_timeout,
            &mut self.retry_timeout,
            &mut self.refresh_interval,
        ] {
            *d = (*d).min(MAX_DURATION);
        }
        self
    }

    /// Whether connections use TLS (`tls`, or `serverless`, which needs it).
    pub fn tls_enabled(&self) -> bool {
        self.tls.enabled || self.serverless
    }

    /// Check what can only be checked once all options are set (the TLS files
    /// together): a client fails to build rather than every connect failing.
    pub fn check(&self) -> Result<()> {
        if self.tls_enabled() {
            let mut tls = self.tls.clone();
            tls.enabled = true;
            tls.check()?;
        }
        Ok(())
    }

    /// The socket options these settings imply (the TLS configuration is
    /// built once and shared by every connection made with these options).
    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            connect_timeout: self.connect_timeout,
            io_timeout: self.io_timeout,
            tcp_nodelay: self.tcp_nodelay,
            tls: self.tls_enabled().then(|| self.tls.connector()),
        }
    }

    /// The discovery options these settings imply.
    pub fn discovery_options(&self) -> DiscoveryOptions {
        let tls = self.tls_enabled();
        DiscoveryOptions {
            connect: self.connect_options(),
            ignore_cluster_errors: self.ignore_cluster_errors,
            serverless: self.serverless,
            // The Debug form lists every setting that changes what a TLS
            // discovery trusts or reaches (never key material, only paths).
            tls_identity: if tls {
                format!("{:?}", self.tls)
            } else {
                String::new()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_by_name() {
        let mut o = Options::default();
        o.set("connect_timeout", "250").unwrap();
        o.set("ignore_cluster_errors", "true").unwrap();
        o.set("distribution", "modula").unwrap();
        o.set("hash", "md5").unwrap();
        o.set("node_naming", "host").unwrap();
        assert_eq!(o.connect_timeout, Duration::from_millis(250));
        assert!(o.ignore_cluster_errors);
        assert_eq!(o.distribution, Distribution::Modula);
        assert_eq!(o.hash, HashAlgorithm::Md5);
        assert_eq!(o.node_naming, NodeNaming::Host);
    }

    #[test]
    fn rejects_unknown_and_bad_values() {
        let mut o = Options::default();
        for (n, v) in [
            ("no_such_option", "1"),
            ("connect_timeout", "-1"),
            ("tcp_nodelay", "maybe"),
            ("hash", "sha1"),
            ("max_connections_per_node", "0"),
        ] {
            let e = o.set(n, v).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{n}={v}: {e}");
            assert!(e.to_string().contains(n), "{e}");
        }
        assert_eq!(o, Options::default(), "a rejected value changes nothing");
    }
}
