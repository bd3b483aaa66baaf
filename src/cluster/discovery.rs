//! The conversation with an ElastiCache configuration endpoint.
//!
//! One connection, one request: `config get cluster` (engines >= 1.4.14); on
//! `ERROR` the legacy `get AmazonElastiCache:cluster` follows on the same
//! connection, and the registry remembers which form worked. The reply parser
//! is a pure function of bytes ([`parse_reply`], [`parse_payload`]): lenient
//! where real clusters vary (LF or CRLF, runs of spaces, empty IPs, IPv6,
//! host names starting with a digit), strict where a mistake would route keys
//! wrongly (the byte count, the version number, the `host|ip|port` shape).

use std::io::Read;
use std::time::Instant;

use super::reply::{parse_reply, Reply};
use crate::net::addr;
use crate::net::connect::{self, ConnectOptions};
use crate::net::stream::Stream;
use crate::error::{quote_bytes, Error, Result};

pub use super::config::{Config, Node, LEGACY_KEY, MAX_NODES, MAX_REPLY};

/// Which discovery command an endpoint understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `config get cluster` (engine >= 1.4.14).
    ConfigGet,
    /// `get AmazonElastiCache:cluster` (older engines).
    LegacyGet,
}

impl Command {
    /// The request line, CRLF included.
    pub fn request(self) -> &'static [u8] {
        match self {
            Command::ConfigGet => b"config get cluster\r\n",
            Command::LegacyGet => b"get AmazonElastiCache:cluster\r\n",
        }
    }

    /// The command's name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Command::ConfigGet => "config get cluster",
            Command::LegacyGet => "get AmazonElastiCache:cluster",
        }
    }
}

/// How to talk to a configuration endpoint.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryOptions {
    /// Connect timeout, read/write timeout (the latter bounds the whole
    /// conversation), TLS.
    pub connect: ConnectOptions,
    /// When the endpoint is not a configuration endpoint at all (it answers `ERROR`
    /// to `config get cluster` and has no legacy item: plain memcached, local
    /// development), use the endpoint itself as the only node instead of failing.
    pub ignore_cluster_errors: bool,
    /// The endpoint is an ElastiCache Serverless cache: no discovery command
    /// is sent (the TLS handshake still proves it reachable).
    pub serverless: bool,
    /// What distinguishes these TLS settings (trust roots, client certificate,
    /// server name, verification) in the node cache: a list discovered under
    /// one set is never handed to a client with another. Empty for plain text.
    pub tls_identity: String,
}

/// What one discovery produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// The configuration.
    pub config: Config,
    /// The command that worked (`None` when the endpoint was used as the only node).
    pub command: Option<Command>,
    /// The address that answered: tells a cluster re-created behind the same
    /// DNS name from a lagging answer of the old one.
    pub peer: Option<std::net::SocketAddr>,
}

/// Discover the nodes behind `endpoint` (`host:port`; port 11211 when omitted).
///
/// `command` is the form to try first (remembered from an earlier discovery);
/// `None` starts with `config get cluster`.
pub fn discover(
    endpoint: &str,
    opts: &DiscoveryOptions,
    command: Option<Command>,
) -> Result<Discovered> {
    let (host, port) = addr::split_host_port(endpoint)?;
    let label = addr::join_host_port(&host, port);
    let tls = opts.connect.tls.is_some() || opts.serverless;
    let single_node = |serverless: bool| Discovered {
        config: Config {
            version: 0,
            nodes: vec![Node {
                host: host.clone(),
                ip: String::new(),
                port,
            }],
            payload: Vec::new(),
            serverless,
        },
        command: None,
        peer: None,
    };
    if opts.serverless {
        let mut conn_opts = opts.connect.clone();
        if conn_opts.tls.is_none() {
            conn_opts.tls = Some(crate::net::tls::TlsOptions::default().connector());
        }
        connect::connect(&host, port, &conn_opts, &label)?;
        return Ok(single_node(true));
    }
    let mut stream = connect::connect(&host, port, &opts.connect, &label)?;
    let peer = stream.socket().peer_addr().ok();
    let deadline = Instant::now() + opts.connect.io_timeout;
    let mut conv = Conversation {
        stream: &mut stream,
        label: &label,
        deadline,
        buf: Vec::with_capacity(4096),
    };
    let first = command.unwrap_or(Command::ConfigGet);
    let first_reply = match conv.ask(first)? {
        Reply::Config(config) => {
            return Ok(Discovered {
                config,
                command: Some(first),
                peer,
            })
        }
        other => other,
    };
    let second = match first {
        Command::ConfigGet => Command::LegacyGet,
        Command::LegacyGet => Command::ConfigGet,
    };
    let first_answer = conv.last_answer();
    let second_reply = conv.ask(second)?;
    let config_get_unknown = match first {
        Command::ConfigGet => first_reply == Reply::UnknownCommand,
        Command::LegacyGet => second_reply == Reply::UnknownCommand,
    };
    match second_reply {
        Reply::Config(config) => Ok(Discovered {
            config,
            command: Some(second),
            peer,
        }),
        // ElastiCache Serverless speaks only TLS and has no discovery command.
        _ if tls && config_get_unknown => Ok(Discovered {
            peer,
            ..single_node(true)
        }),
        _ if opts.ignore_cluster_errors => Ok(Discovered {
            peer,
            ..single_node(false)
        }),
        _ => Err(Error::Discovery {
            endpoint: label.clone(),
            detail: format!(
                "not an ElastiCache configuration endpoint: it answered {} to `{}` and {} to `{}` \
                 (use ignore_cluster_errors to treat it as a single node)",
                first_answer,
                first.name(),
                conv.last_answer(),
                second.name()
            ),
        }),
    }
}

struct Conversation<'a> {
    stream: &'a mut Stream,
    label: &'a str,
    deadline: Instant,
    buf: Vec<u8>,
}

impl Conversation<'_> {
    /// Send one discovery command and read until its reply is complete.
    fn ask(&mut self, cmd: Command) -> Result<Reply> {
        self.buf.clear();
        self.stream
            .write_all(cmd.request())
            .map_err(|e| Error::io(self.label, cmd.name(), e))?;
        let mut chunk = [0u8; 16384];
        loop {
            match parse_reply(self.label, &self.buf)? {
                Reply::Incomplete => {}
                done => return Ok(done),
            }
            let now = Instant::now();
            if now >= self.deadline {
                return Err(self.timed_out(cmd));
            }
            self.stream
                .set_read_timeout(self.deadline - now)
                .map_err(|e| Error::io(self.label, cmd.name(), e))?;
            // Through `Read`: the end of the stream is Ok(0) here, reported below.
            match Read::read(self.stream, &mut chunk) {
                Ok(0) => {
                    return Err(Error::Discovery {
                        endpoint: self.label.to_string(),
                        detail: format!(
                            "connection closed in the middle of the reply to `{}` after {}",
                            cmd.name(),
                            quote_bytes(&self.buf, 200)
                        ),
                    })
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(self.timed_out(cmd))
                }
                Err(e) => return Err(Error::io(self.label, cmd.name(), e)),
            }
        }
    }

    /// A timeout: plain when nothing came, else a discovery error quoting what
    /// did come, since a partial reply says more than "timeout".
    fn timed_out(&self, cmd: Command) -> Error {
        if self.buf.is_empty() {
            Error::Timeout {
                addr: self.label.to_string(),
                op: cmd.name(),
            }
        } else {
            Error::Discovery {
                endpoint: self.label.to_string(),
                detail: format!(
                    "incomplete reply to `{}` within the timeout: {}",
                    cmd.name(),
                    quote_bytes(&self.buf, 200)
                ),
            }
        }
    }

    /// The last reply's first line, quoted, for messages.
    fn last_answer(&self) -> String {
        let end = memchr::memchr(b'\n', &self.buf).map_or(self.buf.len(), |i| i + 1);
        quote_bytes(&self.buf[..end], 100)
    }
}

/// Discovery timeouts from plain numbers (used by the C and Python layers).
/// Values near `u64::MAX` saturate (as the options' millisecond settings do).
pub fn options(connect_ms: u64, io_ms: u64, ignore_cluster_errors: bool) -> DiscoveryOptions {
    DiscoveryOptions {
        connect: ConnectOptions {
            connect_timeout: crate::net::socket::saturating_millis(connect_ms),
            io_timeout: crate::net::socket::saturating_millis(io_ms),
            tcp_nodelay: true,
            tls: None,
        },
        ignore_cluster_errors,
        serverless: false,
        tls_identity: String::new(),
    }
}
