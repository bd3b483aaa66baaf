//! A scripted fake cache node for the faults real memcached never shows: a
//! node that accepts and stays silent, answers and hangs up, sends half a
//! value, dribbles, claims a gigantic value, answers a multi-get out of order,
//! with keys nobody asked for or twice, or babbles without end.
//!
//! Each accepted connection runs [`Script`] on its own thread. Requests are
//! read as lines; for `get`/`gets` the keys are parsed so the scripted reply
//! can be built from them (a value's bytes are its key's bytes). Anything else
//! is answered like memcached would for `set`/`delete`/`touch` only where the
//! script says so. Dropping the [`FakeNode`] stops accepting and ends every
//! connection thread within about 50 ms.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::port::bind_unique;

/// What the fake node does on every connection.
#[derive(Debug, Clone)]
pub enum Script {
    /// Read requests and never answer.
    Silent,
    /// Answer the first request with these bytes, then close.
    ReplyThenClose(Vec<u8>),
    /// To a get: the header and half the data of the first key's value, then close.
    PartialValueThenClose,
    /// Answer every request with these bytes, one byte every `gap`.
    Dribble {
        /// The reply.
        reply: Vec<u8>,
        /// The pause between two bytes.
        gap: Duration,
    },
    /// To a get: `VALUE <first key> 0 <len>` with no data, then silence.
    HugeHeader(u64),
    /// To a get: the hits in reverse request order, then `END`.
    Reversed,
    /// To a get: every other key's value (the rest are misses), then one for
    /// a key that was not asked for, then `END`.
    UnknownKey,
    /// To a get: every key's value twice in a row, then `END`.
    Duplicated,
    /// To a get: values for its first key without end; to anything else an
    /// endless stream of `STAT` lines.
    Babble,
    /// Answer like a tiny memcached that holds every key (value = key) and
    /// stores everything: the healthy node of a test built only of fakes.
    Echo,
}

/// A fake node listening on 127.0.0.1 and a random free port.
pub struct FakeNode {
    port: u16,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl FakeNode {
    /// Listen and run `script` on every connection.
    pub fn start(script: Script) -> io::Result<FakeNode> {
        let listener = bind_unique("127.0.0.1")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (s, a) = (stop.clone(), accepted.clone());
        let thread = std::thread::spawn(move || accept_loop(listener, script, s, a));
        Ok(FakeNode {
            port,
            stop,
            accepted,
            thread: Some(thread),
        })
    }

    /// The port it listens on (the address is 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// How many connections it has accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Acquire)
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(l: TcpListener, script: Script, stop: Arc<AtomicBool>, n: Arc<AtomicUsize>) {
    let mut conns = Vec::new();
    while !stop.load(Ordering::Acquire) {
        match l.accept() {
            Ok((s, _)) => {
                n.fetch_add(1, Ordering::AcqRel);
                let (script, stop) = (script.clone(), stop.clone());
                conns.push(std::thread::spawn(move || {
                    let _ = serve(s, &script, &stop);
                }));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    for c in conns {
        let _ = c.join();
    }
}

/// One request line: its command word and the rest of its tokens; the data
/// block of a storage command is skipped.
struct Request {
    cmd: String,
    args: Vec<Vec<u8>>,
}

struct Reader {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    /// The next request, `None` at EOF or when told to stop.
    fn next(&mut self, stop: &AtomicBool) -> io::Result<Option<Request>> {
        loop {
            if let Some(eol) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..eol + 2).take(eol).collect();
                let mut tokens = line
                    .split(|&b| b == b' ')
                    .filter(|t| !t.is_empty())
                    .map(<[u8]>::to_vec);
                let cmd = String::from_utf8_lossy(&tokens.next().unwrap_or_default()).into_owned();
                let args: Vec<Vec<u8>> = tokens.collect();
                if matches!(
                    cmd.as_str(),
                    "set" | "add" | "replace" | "append" | "prepend" | "cas"
                ) {
                    let len = args
                        .get(3)
                        .and_then(|t| std::str::from_utf8(t).ok())
                        .and_then(|t| t.parse::<usize>().ok())
                        .unwrap_or(0);
                    while self.buf.len() < len + 2 {
                        if !self.fill(stop)? {
                            return Ok(None);
                        }
                    }
                    self.buf.drain(..len + 2);
                }
                return Ok(Some(Request { cmd, args }));
            }
            if !self.fill(stop)? {
                return Ok(None);
            }
        }
    }

    fn fill(&mut self, stop: &AtomicBool) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if stop.load(Ordering::Acquire) {
                return Ok(false);
            }
            match self.s.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn value(out: &mut Vec<u8>, key: &[u8]) {
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.extend_from_slice(format!(" 0 {}\r\n", key.len()).as_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(b"\r\n");
}

fn is_get(r: &Request) -> bool {
    r.cmd == "get" || r.cmd == "gets"
}

/// Sleep in short steps so a drop is noticed.
fn idle(stop: &AtomicBool, d: Duration) {
    let step = Duration::from_millis(20);
    let mut left = d;
    while !left.is_zero() && !stop.load(Ordering::Acquire) {
        let t = left.min(step);
        std::thread::sleep(t);
        left -= t;
    }
}

fn serve(s: TcpStream, script: &Script, stop: &AtomicBool) -> io::Result<()> {
    s.set_read_timeout(Some(Duration::from_millis(50)))?;
    s.set_nodelay(true)?;
    let mut w = s.try_clone()?;
    let mut r = Reader { s, buf: Vec::new() };
    while let Some(req) = r.next(stop)? {
        let mut out = Vec::new();
        match script {
            Script::Silent => continue,
            Script::ReplyThenClose(bytes) => {
                w.write_all(bytes)?;
                let _ = w.shutdown(Shutdown::Both);
                return Ok(());
            }
            Script::PartialValueThenClose => {
                let key = req.args.first().cloned().unwrap_or_else(|| b"k".to_vec());
                out.extend_from_slice(b"VALUE ");
                out.extend_from_slice(&key);
                out.extend_from_slice(b" 0 100\r\n");
                out.extend_from_slice(&[b'x'; 50]);
                w.write_all(&out)?;
                let _ = w.shutdown(Shutdown::Both);
                return Ok(());
            }
            Script::Dribble { reply, gap } => {
                for b in reply {
                    if stop.load(Ordering::Acquire) {
                        return Ok(());
                    }
                    w.write_all(std::slice::from_ref(b))?;
                    idle(stop, *gap);
                }
                continue;
            }
            Script::HugeHeader(len) => {
                let key = req.args.first().cloned().unwrap_or_else(|| b"k".to_vec());
                out.extend_from_slice(b"VALUE ");
                out.extend_from_slice(&key);
                out.extend_from_slice(format!(" 0 {len}\r\n").as_bytes());
                w.write_all(&out)?;
                continue;
            }
            Script::Babble if is_get(&req) => {
                // Values for the first key, without end (a duplicate each time).
                let key = req.args.first().cloned().unwrap_or_else(|| b"k".to_vec());
                let mut v = Vec::new();
                for _ in 0..64 {
                    value(&mut v, &key);
                }
                while !stop.load(Ordering::Acquire) {
                    if w.write_all(&v).is_err() {
                        return Ok(());
                    }
                }
                return Ok(());
            }
            Script::Babble => {
                let line = b"STAT babble 0123456789abcdef0123456789abcdef\r\n".repeat(64);
                while !stop.load(Ordering::Acquire) {
                    if w.write_all(&line).is_err() {
                        return Ok(());
                    }
                }
                return Ok(());
            }
            Script::Reversed if is_get(&req) => {
                req.args.iter().rev().for_each(|k| value(&mut out, k));
                out.extend_from_slice(b"END\r\n");
            }
            Script::UnknownKey if is_get(&req) => {
                req.args.iter().step_by(2).for_each(|k| value(&mut out, k));
                value(&mut out, b"nobody-asked-for-this");
                out.extend_from_slice(b"END\r\n");
            }
            Script::Duplicated if is_get(&req) => {
                for k in &req.args {
                    value(&mut out, k);
                    value(&mut out, k);
                }
                out.extend_from_slice(b"END\r\n");
            }
            Script::Echo if is_get(&req) => {
                req.args.iter().for_each(|k| value(&mut out, k));
                out.extend_from_slice(b"END\r\n");
            }
            _ => out.extend_from_slice(match req.cmd.as_str() {
                "set" | "add" | "replace" | "append" | "prepend" | "cas" => b"STORED\r\n",
                "delete" => b"DELETED\r\n",
                "touch" => b"TOUCHED\r\n",
                "version" => b"VERSION fake\r\n",
                "get" | "gets" => b"END\r\n",
                _ => b"ERROR\r\n",
            }),
        }
        w.write_all(&out)?;
    }
    Ok(())
}
