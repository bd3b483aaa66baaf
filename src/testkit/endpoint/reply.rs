//! What the emulated endpoint answers: the engine it pretends to run, the
//! payload's layout, how a request line is classified, and the reply bytes
//! (quirks included) built from its current state.

use std::time::Duration;

use crate::discovery::{Node, LEGACY_KEY};

/// The engine the endpoint pretends to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// A current ElastiCache engine (`VERSION 1.6.12`): both discovery commands work.
    #[default]
    ElastiCache,
    /// An engine older than 1.4.14 (`VERSION 1.4.5`): `config get cluster` is
    /// `ERROR`, only `get AmazonElastiCache:cluster` works.
    Legacy,
    /// Open-source memcached (`VERSION 1.6.18`): `ERROR` to `config get cluster`,
    /// `END` (no item) to `get AmazonElastiCache:cluster`.
    PlainMemcached,
}

impl Engine {
    /// The version string answered to `version`.
    pub fn version_string(self) -> &'static str {
        match self {
            Engine::ElastiCache => "1.6.12",
            Engine::Legacy => "1.4.5",
            Engine::PlainMemcached => "1.6.18",
        }
    }
}

/// How the payload is laid out. The default is the documented format: LF after
/// the version, entries separated by single spaces, LF after the node line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// CRLF instead of LF after the version line.
    pub crlf_after_version: bool,
    /// A space after every node entry, the last one included.
    pub trailing_space: bool,
    /// How many spaces separate two entries (at least 1).
    pub separator_spaces: usize,
}

impl Default for Format {
    fn default() -> Self {
        Format {
            crlf_after_version: false,
            trailing_space: false,
            separator_spaces: 1,
        }
    }
}

/// The kinds of request the endpoint counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `version`.
    Version,
    /// `config get cluster`.
    ConfigGet,
    /// `get AmazonElastiCache:cluster`.
    LegacyGet,
    /// Anything else (including `get` of other keys and `quit`).
    Other,
}

impl Request {
    pub(super) fn index(self) -> usize {
        self as usize
    }

    /// Classify one request line (without its line ending).
    pub fn classify(line: &[u8]) -> Request {
        let mut words = line
            .split(|b| *b == b' ' || *b == b'\t')
            .filter(|w| !w.is_empty());
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some(b"version"), None, _, _) => Request::Version,
            (Some(b"config"), Some(b"get"), Some(b"cluster"), None) => Request::ConfigGet,
            (Some(b"get"), Some(key), None, _) if key == LEGACY_KEY.as_bytes() => {
                Request::LegacyGet
            }
            _ => Request::Other,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct State {
    pub(super) version: u64,
    pub(super) nodes: Vec<Node>,
    pub(super) engine: Engine,
    pub(super) format: Format,
    pub(super) raw_config: Option<Vec<u8>>,
    pub(super) raw_legacy: Option<Vec<u8>>,
    pub(super) truncate: Option<usize>,
    pub(super) hang: bool,
    pub(super) delay: Duration,
}

impl State {
    /// `nodes` at config version 1, answered normally.
    pub(super) fn new(nodes: Vec<Node>) -> State {
        State {
            version: 1,
            nodes,
            engine: Engine::default(),
            format: Format::default(),
            raw_config: None,
            raw_legacy: None,
            truncate: None,
            hang: false,
            delay: Duration::ZERO,
        }
    }
}

/// What to do after sending a reply.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum After {
    Continue,
    Close,
}

fn first_word(line: &[u8]) -> &[u8] {
    line.split(|b| b.is_ascii_whitespace())
        .find(|w| !w.is_empty())
        .unwrap_or(b"")
}

pub(super) fn is_quit(line: &[u8]) -> bool {
    first_word(line) == b"quit"
}

pub(super) fn render_payload(st: &State) -> Vec<u8> {
    let mut p = st.version.to_string();
    p.push_str(if st.format.crlf_after_version {
        "\r\n"
    } else {
        "\n"
    });
    let sep = " ".repeat(st.format.separator_spaces.max(1));
    let entries: Vec<String> = st
        .nodes
        .iter()
        .map(|n| format!("{}|{}|{}", n.host, n.ip, n.port))
        .collect();
    p.push_str(&entries.join(&sep));
    if st.format.trailing_space && !entries.is_empty() {
        p.push(' ');
    }
    p.push('\n');
    p.into_bytes()
}

fn data_block(header: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{header} 0 {}\r\n", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\nEND\r\n");
    out
}

pub(super) fn reply(st: &State, request: Request, line: &[u8]) -> (Vec<u8>, After) {
    let full = match request {
        Request::Version => {
            return (
                format!("VERSION {}\r\n", st.engine.version_string()).into_bytes(),
                After::Continue,
            )
        }
        // Other keys are simply missing, as on any memcached.
        Request::Other if first_word(line) == b"get" || first_word(line) == b"gets" => {
            return (b"END\r\n".to_vec(), After::Continue)
        }
        Request::Other => return (b"ERROR\r\n".to_vec(), After::Continue),
        Request::ConfigGet if st.raw_config.is_some() => st.raw_config.clone().unwrap_or_default(),
        Request::LegacyGet if st.raw_legacy.is_some() => st.raw_legacy.clone().unwrap_or_default(),
        Request::ConfigGet => match st.engine {
            Engine::ElastiCache => data_block("CONFIG cluster", &render_payload(st)),
            Engine::Legacy | Engine::PlainMemcached => b"ERROR\r\n".to_vec(),
        },
        Request::LegacyGet => match st.engine {
            Engine::ElastiCache | Engine::Legacy => {
                data_block(&format!("VALUE {LEGACY_KEY}"), &render_payload(st))
            }
            Engine::PlainMemcached => b"END\r\n".to_vec(),
        },
    };
    match st.truncate {
        Some(n) => (full[..n.min(full.len())].to_vec(), After::Close),
        None => (full, After::Continue),
    }
}
