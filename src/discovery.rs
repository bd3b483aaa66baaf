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

use crate::error::{quote_bytes, Error, Result};
use crate::transport::{self, ConnectOptions, Stream};

/// The item key of the legacy discovery command.
pub const LEGACY_KEY: &str = "AmazonElastiCache:cluster";

/// Replies larger than this are refused (a 300-node cluster is about 25 KB).
pub const MAX_REPLY: usize = 4 << 20;

/// More nodes than this in one configuration is a corrupt or hostile reply:
/// an ElastiCache memcached cluster has at most a few hundred nodes. Without a
/// cap a 4 MB reply would list 150,000 nodes, each with its own pool.
pub const MAX_NODES: usize = 4096;

/// One cache node as the configuration endpoint lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    /// The node's DNS name (may be empty on odd endpoints; may start with a digit).
    pub host: String,
    /// The node's IP address as listed (IPv4 or unbracketed IPv6); empty means "resolve `host`".
    pub ip: String,
    /// The node's port.
    pub port: u16,
}

impl Node {
    /// The address to connect to: the IP when listed, else the host name.
    pub fn connect_host(&self) -> &str {
        if self.ip.is_empty() {
            &self.host
        } else {
            &self.ip
        }
    }

    /// `host:port` label used in messages (connect address, IPv6 bracketed).
    pub fn label(&self) -> String {
        transport::join_host_port(self.connect_host(), self.port)
    }
}

/// A cluster configuration: its version and its nodes in the endpoint's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The configuration version (grows by one on every node change). 0 when the
    /// endpoint was used as the only node under `ignore_cluster_errors`.
    pub version: u64,
    /// The nodes, in the order listed (alphabetical by host name on ElastiCache).
    pub nodes: Vec<Node>,
    /// The raw payload, compared as a whole to detect a change (a node replaced
    /// under the same version number is still a change).
    pub payload: Vec<u8>,
    /// An ElastiCache Serverless cache: the endpoint itself is the only node
    /// (TLS, no ring, no refresh). Set by the `serverless` option, or detected
    /// under TLS when the endpoint knows neither discovery command.
    pub serverless: bool,
}

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

/// The outcome of parsing a (possibly partial) reply buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// More bytes are needed.
    Incomplete,
    /// A configuration.
    Config(Config),
    /// `ERROR`: the command is unknown to this server.
    UnknownCommand,
    /// `END` with no item (legacy form on a server without the item).
    Missing,
}

/// Parse a complete or partial reply to either discovery command from `endpoint`.
pub fn parse_reply(endpoint: &str, buf: &[u8]) -> Result<Reply> {
    let bad = |detail: String| Error::Discovery {
        endpoint: endpoint.to_string(),
        detail,
    };
    let Some(eol) = memchr::memchr(b'\n', buf) else {
        if buf.len() > 1024 {
            return Err(bad(format!(
                "reply line too long: {}",
                quote_bytes(buf, 200)
            )));
        }
        // Fail at once on bytes that cannot start any reply, rather than
        // waiting for a line feed that a confused server may never send.
        if !could_start_reply(buf) {
            return Err(bad(format!("unexpected reply {}", quote_bytes(buf, 200))));
        }
        return Ok(Reply::Incomplete);
    };
    if eol == 0 || buf[eol - 1] != b'\r' {
        return Err(bad(format!(
            "reply line not terminated by CRLF: {}",
            quote_bytes(&buf[..=eol], 200)
        )));
    }
    let line = &buf[..eol - 1];
    let after_header = eol + 1;
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    match words.next() {
        Some(b"ERROR") => return Ok(Reply::UnknownCommand),
        Some(b"END") => return Ok(Reply::Missing),
        Some(b"CONFIG") | Some(b"VALUE") => {}
        Some(b"SERVER_ERROR") | Some(b"CLIENT_ERROR") => {
            return Err(bad(format!("endpoint answered {}", quote_bytes(line, 200))));
        }
        _ => {
            return Err(bad(format!(
                "unexpected reply {}",
                quote_bytes(&buf[..=eol], 200)
            )))
        }
    }
    let (key, flags, count) = (words.next(), words.next(), words.next());
    let expected_key: &[u8] = if line.starts_with(b"VALUE") {
        LEGACY_KEY.as_bytes()
    } else {
        b"cluster"
    };
    if key.is_some_and(|k| k != expected_key) {
        return Err(bad(format!(
            "reply is for another key: {}",
            quote_bytes(line, 200)
        )));
    }
    let count = match (flags, count) {
        (Some(_), Some(c)) => std::str::from_utf8(c)
            .ok()
            .and_then(|c| c.parse::<usize>().ok())
            .ok_or_else(|| {
                bad(format!(
                    "bad byte count in header {}",
                    quote_bytes(line, 200)
                ))
            })?,
        _ => return Err(bad(format!("short header {}", quote_bytes(line, 200)))),
    };
    if count > MAX_REPLY {
        return Err(bad(format!(
            "payload of {count} bytes is larger than {MAX_REPLY}"
        )));
    }
    let rest = &buf[after_header..];
    const TRAILER: &[u8] = b"\r\nEND\r\n";
    if rest.len() < count + TRAILER.len() {
        // A byte count larger than the payload would otherwise make us wait for
        // bytes that never come: a reply that already ends in the trailer is done.
        if rest.ends_with(TRAILER) && rest.len() < count + TRAILER.len() {
            return Err(bad(format!(
                "byte count {count} does not match the {} payload bytes received: {}",
                rest.len() - TRAILER.len(),
                quote_bytes(rest, 200)
            )));
        }
        return Ok(Reply::Incomplete);
    }
    let payload = &rest[..count];
    if &rest[count..count + TRAILER.len()] != TRAILER {
        return Err(bad(format!(
            "byte count {count} does not match the payload (no \"\\r\\nEND\\r\\n\" after {count} bytes): {}",
            quote_bytes(rest, 200)
        )));
    }
    parse_payload(endpoint, payload).map(Reply::Config)
}

/// Whether `partial` (no line feed yet) can be the beginning of a reply line.
fn could_start_reply(partial: &[u8]) -> bool {
    const STARTS: [&[u8]; 6] = [
        b"CONFIG ",
        b"VALUE ",
        b"ERROR",
        b"END",
        b"SERVER_ERROR",
        b"CLIENT_ERROR",
    ];
    STARTS.iter().any(|s| {
        let n = partial.len().min(s.len());
        partial[..n] == s[..n]
    })
}

/// Parse the payload: a version line, then the node line of `host|ip|port`
/// entries separated by spaces.
pub fn parse_payload(endpoint: &str, payload: &[u8]) -> Result<Config> {
    let bad = |detail: String| Error::Discovery {
        endpoint: endpoint.to_string(),
        detail,
    };
    let text = std::str::from_utf8(payload).map_err(|_| {
        bad(format!(
            "payload is not UTF-8: {}",
            quote_bytes(payload, 200)
        ))
    })?;
    let (version_line, rest) = text.split_once('\n').ok_or_else(|| {
        bad(format!(
            "payload has no version line: {}",
            quote_bytes(payload, 200)
        ))
    })?;
    let version_str = version_line.trim_matches(|c: char| c == '\r' || c == ' ' || c == '\t');
    let version = version_str.parse::<u64>().map_err(|_| {
        bad(format!(
            "config version is not an integer: {}",
            quote_bytes(version_line.as_bytes(), 200)
        ))
    })?;
    // The node line ends at the next LF; anything past it may only be blank.
    let (node_line, tail) = rest.split_once('\n').unwrap_or((rest, ""));
    if !tail.trim().is_empty() {
        return Err(bad(format!(
            "unexpected text after the node line: {}",
            quote_bytes(tail.as_bytes(), 200)
        )));
    }
    let mut nodes = Vec::new();
    for entry in node_line.split([' ', '\t', '\r']).filter(|e| !e.is_empty()) {
        // Stop before building the node that breaks the cap: no allocation follows the claim.
        if nodes.len() == MAX_NODES {
            return Err(bad(format!(
                "more than {MAX_NODES} nodes listed (no cluster is that large): {}",
                quote_bytes(payload, 200)
            )));
        }
        nodes.push(parse_entry(entry).map_err(|why| {
            bad(format!(
                "bad node entry {}: {why}",
                quote_bytes(entry.as_bytes(), 200)
            ))
        })?);
    }
    // No cluster has zero nodes; taking such a list would drop every key.
    if nodes.is_empty() {
        return Err(bad(format!(
            "the node list is empty: {}",
            quote_bytes(payload, 200)
        )));
    }
    Ok(Config {
        version,
        nodes,
        payload: payload.to_vec(),
        serverless: false,
    })
}

fn parse_entry(entry: &str) -> std::result::Result<Node, &'static str> {
    let mut parts = entry.split('|');
    let (Some(host), Some(ip), Some(port), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("expected host|ip|port");
    };
    if host.is_empty() && ip.is_empty() {
        return Err("both host and ip are empty");
    }
    let port = match port.parse::<u16>() {
        Ok(0) | Err(_) => return Err("port is not a number from 1 to 65535"),
        Ok(p) => p,
    };
    // ElastiCache lists IPv6 unbracketed; accept brackets too.
    let ip = ip
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .unwrap_or(ip);
    Ok(Node {
        host: host.to_string(),
        ip: ip.to_string(),
        port,
    })
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
    let (host, port) = transport::split_host_port(endpoint)?;
    let label = transport::join_host_port(&host, port);
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
        let mut connect = opts.connect.clone();
        if connect.tls.is_none() {
            connect.tls = Some(crate::tls::TlsOptions::default().connector());
        }
        transport::connect(&host, port, &connect, &label)?;
        return Ok(single_node(true));
    }
    let mut stream = transport::connect(&host, port, &opts.connect, &label)?;
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
/// Values near `u64::MAX` saturate (see [`crate::options::saturating_millis`]).
pub fn options(connect_ms: u64, io_ms: u64, ignore_cluster_errors: bool) -> DiscoveryOptions {
    DiscoveryOptions {
        connect: ConnectOptions {
            connect_timeout: crate::options::saturating_millis(connect_ms),
            io_timeout: crate::options::saturating_millis(io_ms),
            tcp_nodelay: true,
            tls: None,
        },
        ignore_cluster_errors,
        serverless: false,
        tls_identity: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(payload: &str) -> Vec<u8> {
        format!(
            "CONFIG cluster 0 {}\r\n{}\r\nEND\r\n",
            payload.len(),
            payload
        )
        .into_bytes()
    }

    fn parse(buf: &[u8]) -> Result<Reply> {
        parse_reply("cfg:11211", buf)
    }

    fn nodes(r: Reply) -> Config {
        match r {
            Reply::Config(c) => c,
            other => panic!("expected a config, got {other:?}"),
        }
    }

    #[test]
    fn documented_format() {
        let c = nodes(parse(&reply("12\nmyCluster.pc4ldq.0001.use1.cache.amazonaws.com|10.82.235.120|11211 myCluster.pc4ldq.0002.use1.cache.amazonaws.com|10.80.249.27|11211\n")).unwrap());
        assert_eq!(c.version, 12);
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(
            c.nodes[0].host,
            "myCluster.pc4ldq.0001.use1.cache.amazonaws.com"
        );
        assert_eq!(c.nodes[0].ip, "10.82.235.120");
        assert_eq!(c.nodes[1].port, 11211);
    }

    #[test]
    fn legacy_value_header() {
        let p = "1\nh|127.0.0.1|11211\n";
        let buf = format!(
            "VALUE AmazonElastiCache:cluster 0 {}\r\n{p}\r\nEND\r\n",
            p.len()
        );
        assert_eq!(nodes(parse(buf.as_bytes()).unwrap()).nodes.len(), 1);
    }

    #[test]
    fn lenient_variants() {
        // CRLF after the version, trailing and repeated spaces.
        let c = nodes(parse(&reply("3\r\nh1|1.2.3.4|11211  h2|1.2.3.5|11212 \n")).unwrap());
        assert_eq!(c.version, 3);
        assert_eq!(c.nodes.len(), 2);
        // Empty IP, IPv6, host name starting with a digit.
        let c = nodes(
            parse(&reply(
                "4\n0001.c.x.use1.cache.amazonaws.com||11211 h|2600:1f18::1|11211\n",
            ))
            .unwrap(),
        );
        assert_eq!(c.nodes[0].host, "0001.c.x.use1.cache.amazonaws.com");
        assert_eq!(c.nodes[0].ip, "");
        assert_eq!(
            c.nodes[0].connect_host(),
            "0001.c.x.use1.cache.amazonaws.com"
        );
        assert_eq!(c.nodes[1].ip, "2600:1f18::1");
        assert_eq!(c.nodes[1].label(), "[2600:1f18::1]:11211");
        // Header with repeated spaces.
        let p = "5\nh|1.1.1.1|1\n";
        let buf = format!("CONFIG  cluster 0  {} \r\n{p}\r\nEND\r\n", p.len());
        assert_eq!(nodes(parse(buf.as_bytes()).unwrap()).version, 5);
    }

    #[test]
    fn large_payload_has_no_small_cap() {
        let entries: Vec<String> = (0..3000)
            .map(|i| {
                format!(
                    "node{i:04}.cluster.xxxxxx.use1.cache.amazonaws.com|10.0.{}.{}|11211",
                    i / 250,
                    i % 250
                )
            })
            .collect();
        let payload = format!("7\n{}\n", entries.join(" "));
        assert!(payload.len() > 100_000);
        assert_eq!(nodes(parse(&reply(&payload)).unwrap()).nodes.len(), 3000);
    }

    #[test]
    fn incomplete_until_whole() {
        let full = reply("1\nh|1.2.3.4|11211\n");
        for cut in 0..full.len() {
            assert_eq!(
                parse(&full[..cut]).unwrap(),
                Reply::Incomplete,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn error_and_missing() {
        assert_eq!(parse(b"ERROR\r\n").unwrap(), Reply::UnknownCommand);
        assert_eq!(parse(b"END\r\n").unwrap(), Reply::Missing);
    }

    fn err_text(buf: &[u8]) -> String {
        match parse(buf) {
            Err(e @ Error::Discovery { .. }) => e.to_string(),
            other => panic!("expected a discovery error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_replies_are_named_and_quoted() {
        // Byte count too small, too large.
        let p = "1\nh|1.2.3.4|11211\n";
        let m = err_text(format!("CONFIG cluster 0 {}\r\n{p}\r\nEND\r\n", p.len() - 2).as_bytes());
        assert!(m.contains("byte count") && m.contains("cfg:11211"), "{m}");
        let m = err_text(format!("CONFIG cluster 0 {}\r\n{p}\r\nEND\r\n", p.len() + 5).as_bytes());
        assert!(m.contains("byte count"), "{m}");
        // Non-integer version.
        let m = err_text(&reply("1.5\nh|1.2.3.4|11211\n"));
        assert!(m.contains("not an integer") && m.contains("1.5"), "{m}");
        // Missing '|'.
        let m = err_text(&reply("1\nh|1.2.3.4\n"));
        assert!(m.contains("host|ip|port") && m.contains("h|1.2.3.4"), "{m}");
        // Bad port.
        for port in ["0", "70000", "x", ""] {
            let m = err_text(&reply(&format!("1\nh|1.2.3.4|{port}\n")));
            assert!(m.contains("port"), "{m}");
        }
        // Garbage, server errors.
        assert!(err_text(b"HELLO\r\n").contains("HELLO"));
        assert!(err_text(b"SERVER_ERROR out of memory\r\n").contains("out of memory"));
        assert!(err_text(b"CONFIG cluster 0 x\r\n").contains("byte count"));
        // An empty node list, a reply for another key, bytes that start no reply.
        assert!(err_text(&reply("1\n\n")).contains("node list is empty"));
        let p = "1\nh|1.2.3.4|11211\n";
        let other = format!("VALUE otherkey 0 {}\r\n{p}\r\nEND\r\n", p.len());
        assert!(err_text(other.as_bytes()).contains("another key"));
        assert!(err_text(b"garbage").contains("garbage"));
        assert_eq!(parse(b"CONF").unwrap(), Reply::Incomplete);
        // No version line at all.
        assert!(err_text(&reply("12")).contains("version line"));
    }
}
