//! Parsing the configuration endpoint's reply: a pure function of bytes,
//! lenient where real clusters vary (LF or CRLF, runs of spaces, empty IPs,
//! IPv6, host names starting with a digit), strict where a mistake would
//! route keys wrongly (the byte count, the version number, the `host|ip|port`
//! shape). The wire format is described in docs/.

use super::config::{Config, Node, LEGACY_KEY, MAX_NODES, MAX_REPLY};
use crate::error::{quote_bytes, Error, Result};


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
