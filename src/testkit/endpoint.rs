//! An emulated ElastiCache configuration endpoint on 127.0.0.1 and a free port.
//!
//! It speaks just enough of the memcached text protocol to be discovered:
//! `version`, `config get cluster`, `get AmazonElastiCache:cluster` (and `END`
//! for any other `get`), `quit`, and `ERROR` for everything else; commands may
//! be pipelined on one connection. Everything it answers can be changed while
//! it runs, from any thread, to reproduce what real endpoints do wrong: an old
//! engine, a plain memcached, formatting quirks, malformed or truncated
//! replies, a server that never answers, an endpoint that goes away and comes
//! back on the same port. It counts the requests it receives so tests can
//! prove how often a client asked.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

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
    fn index(self) -> usize {
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
struct State {
    version: u64,
    nodes: Vec<Node>,
    engine: Engine,
    format: Format,
    raw_config: Option<Vec<u8>>,
    raw_legacy: Option<Vec<u8>>,
    truncate: Option<usize>,
    hang: bool,
    delay: Duration,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    counts: [AtomicU64; 4],
    connections: AtomicU64,
    /// Open connections, so `stop` can close them (a stopped endpoint is gone, not half there).
    live: Mutex<Vec<(u64, TcpStream)>>,
    next_conn: AtomicU64,
}

#[derive(Debug)]
struct Acceptor {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

/// An emulated configuration endpoint; stopped on drop.
#[derive(Debug)]
pub struct ConfigEndpoint {
    ip: String,
    port: u16,
    shared: Arc<Shared>,
    acceptor: Mutex<Option<Acceptor>>,
}

impl ConfigEndpoint {
    /// Start an endpoint on 127.0.0.1 and a free port, listing `nodes` at config version 1.
    pub fn start(nodes: Vec<Node>) -> io::Result<ConfigEndpoint> {
        ConfigEndpoint::start_on("127.0.0.1", nodes)
    }

    /// Start an endpoint on `ip` (any loopback address) and a free port.
    pub fn start_on(ip: &str, nodes: Vec<Node>) -> io::Result<ConfigEndpoint> {
        let listener = TcpListener::bind((ip, 0))?;
        let port = listener.local_addr()?.port();
        let ep = ConfigEndpoint {
            ip: ip.to_string(),
            port,
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    version: 1,
                    nodes,
                    engine: Engine::default(),
                    format: Format::default(),
                    raw_config: None,
                    raw_legacy: None,
                    truncate: None,
                    hang: false,
                    delay: Duration::ZERO,
                }),
                counts: Default::default(),
                connections: AtomicU64::new(0),
                live: Mutex::new(Vec::new()),
                next_conn: AtomicU64::new(0),
            }),
            acceptor: Mutex::new(None),
        };
        ep.spawn_acceptor(listener)?;
        Ok(ep)
    }

    fn spawn_acceptor(&self, listener: TcpListener) -> io::Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = self.shared.clone();
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name(format!("cfg-endpoint-{}", self.port))
            .spawn(move || accept_loop(listener, shared, stop2))?;
        *self.acceptor.lock() = Some(Acceptor { stop, handle });
        Ok(())
    }

    /// The IP it listens on.
    pub fn ip(&self) -> &str {
        &self.ip
    }

    /// The port it listens on (the same after [`ConfigEndpoint::stop`] and
    /// [`ConfigEndpoint::start_again`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ip:port`, what a client is given as the configuration endpoint.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// Replace the node list and bump the config version by one; returns the new version.
    pub fn set_nodes(&self, nodes: Vec<Node>) -> u64 {
        let mut st = self.shared.state.lock();
        st.version += 1;
        st.nodes = nodes;
        st.version
    }

    /// Replace the node list under the SAME config version (the "replaced node,
    /// same version" failure mode seen in the wild).
    pub fn set_nodes_same_version(&self, nodes: Vec<Node>) {
        self.shared.state.lock().nodes = nodes;
    }

    /// Set the version and the node list exactly (for "a lower version is ignored").
    pub fn set_config(&self, version: u64, nodes: Vec<Node>) {
        let mut st = self.shared.state.lock();
        st.version = version;
        st.nodes = nodes;
    }

    /// The current config version.
    pub fn version(&self) -> u64 {
        self.shared.state.lock().version
    }

    /// The current node list.
    pub fn nodes(&self) -> Vec<Node> {
        self.shared.state.lock().nodes.clone()
    }

    /// Pretend to be another engine.
    pub fn set_engine(&self, engine: Engine) {
        self.shared.state.lock().engine = engine;
    }

    /// Change how the payload is laid out.
    pub fn set_format(&self, format: Format) {
        self.shared.state.lock().format = format;
    }

    /// Answer both discovery commands with exactly these bytes (`None`: the normal reply).
    pub fn set_raw_reply(&self, raw: Option<Vec<u8>>) {
        let mut st = self.shared.state.lock();
        st.raw_config = raw.clone();
        st.raw_legacy = raw;
    }

    /// Answer one discovery command (`ConfigGet` or `LegacyGet`) with exactly
    /// these bytes; other requests are unaffected.
    pub fn set_raw_reply_to(&self, request: Request, raw: Option<Vec<u8>>) {
        let mut st = self.shared.state.lock();
        match request {
            Request::ConfigGet => st.raw_config = raw,
            Request::LegacyGet => st.raw_legacy = raw,
            Request::Version | Request::Other => {}
        }
    }

    /// Send only the first `n` bytes of the reply to a discovery command, then
    /// close the connection (`None`: whole replies).
    pub fn set_truncate(&self, n: Option<usize>) {
        self.shared.state.lock().truncate = n;
    }

    /// Accept connections and read requests but never answer them.
    pub fn set_hang(&self, hang: bool) {
        self.shared.state.lock().hang = hang;
    }

    /// Wait this long before answering a discovery command (to make concurrent
    /// first calls really overlap).
    pub fn set_reply_delay(&self, delay: Duration) {
        self.shared.state.lock().delay = delay;
    }

    /// The payload the endpoint serves now (version line and node line).
    pub fn payload(&self) -> Vec<u8> {
        render_payload(&self.shared.state.lock())
    }

    /// The complete reply the endpoint sends now to `request`.
    pub fn reply_to(&self, request: Request) -> Vec<u8> {
        let st = self.shared.state.lock().clone();
        reply(&st, request, b"").0
    }

    /// How many requests of this kind were received since start (or the last reset).
    pub fn requests(&self, request: Request) -> u64 {
        self.shared.counts[request.index()].load(Ordering::Acquire)
    }

    /// How many connections were accepted since start (or the last reset).
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Acquire)
    }

    /// Zero the request and connection counters.
    pub fn reset_counts(&self) {
        for c in &self.shared.counts {
            c.store(0, Ordering::Release);
        }
        self.shared.connections.store(0, Ordering::Release);
    }

    /// Whether it is accepting connections.
    pub fn is_running(&self) -> bool {
        self.acceptor.lock().is_some()
    }

    /// Stop listening and close every open connection: connecting is refused
    /// until [`ConfigEndpoint::start_again`]. Settings and counters are kept.
    pub fn stop(&self) {
        let Some(acc) = self.acceptor.lock().take() else {
            return;
        };
        acc.stop.store(true, Ordering::Release);
        // The acceptor blocks in accept(): a connection of our own wakes it up.
        let woke = TcpStream::connect_timeout(
            &SocketAddr::new(
                self.ip
                    .parse()
                    .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
                self.port,
            ),
            Duration::from_secs(2),
        )
        .is_ok();
        if woke {
            let _ = acc.handle.join();
        }
        for (_, s) in self.shared.live.lock().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Listen again on the same address and port after [`ConfigEndpoint::stop`].
    pub fn start_again(&self) -> io::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let listener = TcpListener::bind((self.ip.as_str(), self.port))?;
        self.spawn_acceptor(listener)
    }
}

impl Drop for ConfigEndpoint {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Ok((stream, _)) = accepted else {
            // EMFILE and friends: back off rather than spin.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        shared.connections.fetch_add(1, Ordering::AcqRel);
        let id = shared.next_conn.fetch_add(1, Ordering::AcqRel);
        if let Ok(clone) = stream.try_clone() {
            shared.live.lock().push((id, clone));
        }
        let shared2 = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("cfg-endpoint-conn".into())
            .spawn(move || {
                serve(&shared2, stream);
                shared2.live.lock().retain(|(i, _)| *i != id);
            });
        if spawned.is_err() {
            shared.live.lock().retain(|(i, _)| *i != id);
        }
    }
}

/// What to do after sending a reply.
#[derive(Debug, PartialEq, Eq)]
enum After {
    Continue,
    Close,
}

fn serve(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(eol) = memchr::memchr(b'\n', &buf) {
            let line: Vec<u8> = buf.drain(..=eol).collect();
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let request = Request::classify(line);
            shared.counts[request.index()].fetch_add(1, Ordering::AcqRel);
            if request == Request::Other && is_quit(line) {
                return;
            }
            let st = shared.state.lock().clone();
            if st.hang {
                continue;
            }
            let discovery = matches!(request, Request::ConfigGet | Request::LegacyGet);
            if discovery && !st.delay.is_zero() {
                std::thread::sleep(st.delay);
            }
            let (bytes, after) = reply(&st, request, line);
            if stream.write_all(&bytes).is_err() || after == After::Close {
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn first_word(line: &[u8]) -> &[u8] {
    line.split(|b| b.is_ascii_whitespace())
        .find(|w| !w.is_empty())
        .unwrap_or(b"")
}

fn is_quit(line: &[u8]) -> bool {
    first_word(line) == b"quit"
}

fn render_payload(st: &State) -> Vec<u8> {
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

fn reply(st: &State, request: Request, line: &[u8]) -> (Vec<u8>, After) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn node(host: &str, port: u16) -> Node {
        Node {
            host: host.into(),
            ip: "127.0.0.1".into(),
            port,
        }
    }

    /// Send `req` in one write and read until `expect_len` bytes or EOF.
    fn talk(ep: &ConfigEndpoint, req: &[u8], expect_len: usize) -> Vec<u8> {
        let mut s = TcpStream::connect(ep.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(req).unwrap();
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        while out.len() < expect_len {
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read: {e} after {out:?}"),
            }
        }
        out
    }

    #[test]
    fn pipelined_commands_get_documented_replies() {
        let ep = ConfigEndpoint::start(vec![node("b.x", 2), node("a.x", 1)]).unwrap();
        let payload = "1\nb.x|127.0.0.1|2 a.x|127.0.0.1|1\n";
        let expected = format!(
            "VERSION 1.6.12\r\nCONFIG cluster 0 {n}\r\n{payload}\r\nEND\r\n\
             VALUE AmazonElastiCache:cluster 0 {n}\r\n{payload}\r\nEND\r\nERROR\r\nEND\r\n",
            n = payload.len()
        );
        let got = talk(
            &ep,
            b"version\r\nconfig get cluster\r\nget AmazonElastiCache:cluster\r\nbogus\r\nget k\r\n",
            expected.len(),
        );
        assert_eq!(String::from_utf8_lossy(&got), expected);
        assert_eq!(ep.requests(Request::Version), 1);
        assert_eq!(ep.requests(Request::ConfigGet), 1);
        assert_eq!(ep.requests(Request::LegacyGet), 1);
        assert_eq!(ep.requests(Request::Other), 2);
        assert_eq!(ep.connections(), 1);
    }

    #[test]
    fn engines_formats_and_versions() {
        let ep = ConfigEndpoint::start(vec![node("a", 1), node("b", 2)]).unwrap();
        assert_eq!(ep.set_nodes(vec![node("a", 1)]), 2);
        ep.set_nodes_same_version(vec![node("c", 3)]);
        assert_eq!(ep.version(), 2);
        assert_eq!(ep.payload(), b"2\nc|127.0.0.1|3\n");
        ep.set_config(7, vec![node("a", 1), node("b", 2)]);
        ep.set_format(Format {
            crlf_after_version: true,
            trailing_space: true,
            separator_spaces: 3,
        });
        assert_eq!(ep.payload(), b"7\r\na|127.0.0.1|1   b|127.0.0.1|2 \n");
        ep.set_engine(Engine::Legacy);
        let got = talk(&ep, b"version\r\nconfig get cluster\r\n", 22);
        assert_eq!(got, b"VERSION 1.4.5\r\nERROR\r\n");
        ep.set_engine(Engine::PlainMemcached);
        let got = talk(
            &ep,
            b"config get cluster\nget AmazonElastiCache:cluster\n",
            12,
        );
        assert_eq!(got, b"ERROR\r\nEND\r\n");
    }

    #[test]
    fn raw_truncate_stop_and_start_again() {
        let ep = ConfigEndpoint::start(vec![node("a", 1)]).unwrap();
        ep.set_raw_reply(Some(b"HELLO\r\n".to_vec()));
        assert_eq!(talk(&ep, b"config get cluster\r\n", 7), b"HELLO\r\n");
        ep.set_raw_reply(None);
        ep.set_truncate(Some(10));
        // Truncated, then closed: reading to EOF gives exactly 10 bytes.
        assert_eq!(talk(&ep, b"config get cluster\r\n", 1000), b"CONFIG clu");
        ep.set_truncate(None);
        let port = ep.port();
        ep.stop();
        assert!(!ep.is_running());
        assert!(TcpStream::connect(ep.addr()).is_err());
        ep.start_again().unwrap();
        assert_eq!(ep.port(), port);
        assert_eq!(talk(&ep, b"version\r\n", 16), b"VERSION 1.6.12\r\n");
    }

    #[test]
    fn stop_closes_hanging_connections() {
        let ep = ConfigEndpoint::start(vec![node("a", 1)]).unwrap();
        ep.set_hang(true);
        let mut s = TcpStream::connect(ep.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(150)))
            .unwrap();
        s.write_all(b"config get cluster\r\n").unwrap();
        let mut b = [0u8; 16];
        let e = s.read(&mut b).unwrap_err();
        assert!(matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
        let t = std::time::Instant::now();
        ep.stop();
        assert!(matches!(s.read(&mut b), Ok(0) | Err(_)));
        assert!(t.elapsed() < Duration::from_secs(1));
        assert_eq!(ep.requests(Request::ConfigGet), 1);
    }
}
