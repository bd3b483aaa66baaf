//! A real memcached process on a loopback address and a free port (plain, or
//! TLS with a plain listener beside), killed on drop.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::port::free_port;

/// The memcached binary: `$MEMCACHED_BIN`, else `memcached` on the PATH.
pub fn memcached_bin() -> String {
    std::env::var("MEMCACHED_BIN").unwrap_or_else(|_| "memcached".to_string())
}

/// A running memcached process.
#[derive(Debug)]
pub struct Memcached {
    process: Process,
    ip: String,
    port: u16,
    /// With TLS (`-Z`): the plain-text listener beside the TLS one, on the
    /// same cache, where readiness is checked and test commands go.
    plain_port: Option<u16>,
}

impl Memcached {
    /// Start memcached on 127.0.0.1 and a free port.
    pub fn start() -> io::Result<Memcached> {
        Memcached::start_on("127.0.0.1", &[])
    }

    /// Start memcached on `ip` (any 127.x.y.z works on Linux) with extra arguments.
    pub fn start_on(ip: &str, extra: &[&str]) -> io::Result<Memcached> {
        first_started(|| Memcached::start_at(ip, free_port(ip)?, extra))
    }

    /// Start memcached on `ip:port` exactly (used to bring a node back on its old port).
    pub fn start_at(ip: &str, port: u16, extra: &[&str]) -> io::Result<Memcached> {
        let listen = ["-l", ip, "-p", &port.to_string()].map(String::from);
        Memcached::launch(ip, port, None, listen.into(), extra)
    }

    /// Start memcached serving TLS on `ip` with the certificate chain and key
    /// (PEM files) and plain text on [`Memcached::plain_port`], plus `extra`
    /// arguments (e.g. `-o ssl_verify_mode=2,ssl_ca_cert=ca.pem`).
    pub fn start_tls(ip: &str, chain: &Path, key: &Path, extra: &[&str]) -> io::Result<Memcached> {
        first_started(|| {
            let (port, plain_port) = (free_port(ip)?, free_port(ip)?);
            let listen = vec![
                "-Z".into(),
                "-o".into(),
                format!(
                    "ssl_chain_cert={},ssl_key={}",
                    chain.display(),
                    key.display()
                ),
                "-l".into(),
                format!("{ip}:{port}"),
                "-l".into(),
                format!("notls:{ip}:{plain_port}"),
            ];
            Memcached::launch(ip, port, Some(plain_port), listen, extra)
        })
    }

    fn launch(
        ip: &str,
        port: u16,
        plain_port: Option<u16>,
        listen: Vec<String>,
        extra: &[&str],
    ) -> io::Result<Memcached> {
        let mut m = Memcached {
            process: Process::new(listen, extra),
            ip: ip.to_string(),
            port,
            plain_port,
        };
        m.run()?;
        Ok(m)
    }

    fn run(&mut self) -> io::Result<()> {
        let what = if self.is_tls() {
            format!(
                "TLS memcached on {} (does this memcached support -Z?)",
                self.addr()
            )
        } else {
            format!("memcached on {}", self.addr())
        };
        let plain = self.plain_port();
        self.process.start(&what, &self.ip, plain)
    }

    /// Whether it serves TLS on [`Memcached::port`].
    pub fn is_tls(&self) -> bool {
        self.plain_port.is_some()
    }

    /// The port that speaks plain text: the plain listener beside a TLS one,
    /// else [`Memcached::port`].
    pub fn plain_port(&self) -> u16 {
        self.plain_port.unwrap_or(self.port)
    }

    /// `ip:port` of the plain-text listener.
    pub fn plain_addr(&self) -> String {
        format!("{}:{}", self.ip, self.plain_port())
    }

    /// The IP it listens on.
    pub fn ip(&self) -> &str {
        &self.ip
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ip:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// Send one text command (over the plain listener) and return the reply up
    /// to and including the line that ends it (`END`, `STORED`, `VERSION ...`,
    /// ...). For test assertions.
    pub fn command(&self, line: &str) -> io::Result<String> {
        text_command(&self.ip, self.plain_port(), line)
    }

    /// The raw value stored under `key` on this server (a plain `get`), for
    /// finding where a client placed a key.
    pub fn get_raw(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let mut s = TcpStream::connect((self.ip.as_str(), self.plain_port()))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut req = b"get ".to_vec();
        req.extend_from_slice(key);
        req.extend_from_slice(b"\r\n");
        s.write_all(&req)?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf == b"END\r\n" {
                return Ok(None);
            }
            if buf.ends_with(b"\r\nEND\r\n") {
                let eol = buf.iter().position(|&b| b == b'\n').unwrap_or(0);
                let header = String::from_utf8_lossy(&buf[..eol]).to_string();
                let len: usize = header
                    .trim_end()
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| io::Error::other(format!("bad header {header:?}")))?;
                if buf.len() >= eol + 1 + len + 7 {
                    return Ok(Some(buf[eol + 1..eol + 1 + len].to_vec()));
                }
            }
        }
    }

    /// Kill the process now (the port stays remembered for [`Memcached::restart`]).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }

    /// Start it again on the same address and port (after [`Memcached::kill`]).
    pub fn restart(&mut self) -> io::Result<()> {
        self.run()
    }
}

/// The first memcached that `start` brings up in a few tries: a free port can
/// be taken by someone else between probe and bind.
fn first_started(mut start: impl FnMut() -> io::Result<Memcached>) -> io::Result<Memcached> {
    let mut last = None;
    for _ in 0..5 {
        match start() {
            Ok(m) => return Ok(m),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("memcached did not start")))
}

/// One memcached process and the arguments it runs with, to run it again
/// the same way; killed on drop.
#[derive(Debug)]
struct Process {
    child: Option<Child>,
    args: Vec<String>,
}

impl Process {
    /// Not started yet: the `listen` arguments (`-l`, `-p`, `-Z`, ...), the
    /// settings every test server gets, then `extra`.
    fn new(listen: Vec<String>, extra: &[&str]) -> Process {
        let mut args = listen;
        // No UDP, a small cache, few threads: many servers run side by side.
        args.extend(["-U", "0", "-m", "64", "-t", "2", "-c", "1024"].map(String::from));
        args.extend(extra.iter().map(|s| s.to_string()));
        // memcached refuses to run as root without -u.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            args.extend(["-u", "root"].map(String::from));
        }
        Process { child: None, args }
    }

    /// (Re)start it and wait until it answers in plain text on `ip:port`;
    /// `what` names it in errors.
    fn start(&mut self, what: &str, ip: &str, port: u16) -> io::Result<()> {
        self.kill();
        let child = Command::new(memcached_bin())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot run {}: {e}", memcached_bin()))
            })?;
        self.child = Some(child);
        self.wait_serving(what, ip, port, Duration::from_secs(5))
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Wait until this process itself answers on `ip:port` (its `stats` name
    /// its pid), failing when it exits or stays silent past `limit` (then it
    /// is killed).
    fn wait_serving(&mut self, what: &str, ip: &str, port: u16, limit: Duration) -> io::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(io::Error::other(format!("{what} exited: {status}")));
            }
            // The answer must come from this process, not from whoever else may
            // hold the address (a port taken between probe and bind).
            let Some(pid) = self.child.as_ref().map(Child::id) else {
                return Err(io::Error::other(format!("{what} is not running")));
            };
            let stats = text_command(ip, port, "stats");
            if stats.is_ok_and(|r| r.contains(&format!("STAT pid {pid}\r\n"))) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{what} did not answer"),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Send one text command to `ip:port` and return the reply up to and including
/// the line that ends it.
fn text_command(ip: &str, port: u16, line: &str) -> io::Result<String> {
    let mut s = TcpStream::connect((ip, port))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(line.as_bytes())?;
    s.write_all(b"\r\n")?;
    let mut r = BufReader::new(s);
    let multi_line = ["get ", "gets ", "stats", "config "]
        .iter()
        .any(|p| line.starts_with(p));
    let mut out = String::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l)? == 0 {
            break;
        }
        out.push_str(&l);
        let t = l.trim_end();
        let last = !multi_line
            || t == "END"
            || t == "ERROR"
            || t.starts_with("CLIENT_ERROR")
            || t.starts_with("SERVER_ERROR");
        if last {
            break;
        }
    }
    Ok(out)
}
