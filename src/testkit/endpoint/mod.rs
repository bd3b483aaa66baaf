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
//!
//! This file is the listener, its connections and the runtime controls;
//! what is answered to which request is in `reply.rs`.

mod reply;
#[cfg(test)]
mod tests;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use crate::discovery::Node;
use crate::testkit::port::bind_unique;

use reply::{is_quit, render_payload, reply, After, State};
pub use reply::{Engine, Format, Request};

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

    /// Start an endpoint on `ip` (any loopback address) and a free port no
    /// earlier testkit server in this process had (see [`crate::testkit::port`]).
    pub fn start_on(ip: &str, nodes: Vec<Node>) -> io::Result<ConfigEndpoint> {
        let listener = bind_unique(ip)?;
        let port = listener.local_addr()?.port();
        let ep = ConfigEndpoint {
            ip: ip.to_string(),
            port,
            shared: Arc::new(Shared {
                state: Mutex::new(State::new(nodes)),
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
