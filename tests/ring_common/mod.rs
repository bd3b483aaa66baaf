//! Shared by the ring tests: compiling the C oracles, deterministic keys,
//! and a pool of real memcached servers on loopback addresses.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The path of `tests/oracle/<name>` (the Python oracles are run by path).
pub fn oracle_script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/oracle")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Compile `tests/oracle/<name>.c` and return the executable.
pub fn compile_oracle(name: &str, libs: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/oracle/{name}.c"));
    // One executable per call: tests run in parallel threads, and exec'ing a
    // file another thread's compiler is still writing fails (ETXTBSY).
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}-{seq}", std::process::id()));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(&cc)
        .args([
            "-O2",
            "-g",
            "-std=gnu11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-o",
        ])
        .arg(&out)
        .arg(&src)
        .args(libs)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    assert!(st.success(), "compiling {} failed", src.display());
    out
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "user",
    "session",
    "cart",
    "ключ",
    "größe",
    "日本語",
    "κλειδί",
    "ñandú",
    "😀emoji",
    "x",
];

/// `n` distinct memcached-legal keys (no whitespace or control bytes, at most
/// 250 bytes): ASCII, multi-byte UTF-8 (every length class), some exactly 250
/// bytes long, and a few lone bytes >= 0x80 that are not UTF-8. Each starts
/// with `tag` so separate runs never see each other's keys.
pub fn keys(tag: &str, n: usize, seed: u64, with_non_utf8: bool) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut k = format!("{tag}:{i}:").into_bytes();
        match i % 10 {
            0..=4 => k.extend_from_slice(format!("obj{}", rng.next() % 1_000_000).as_bytes()),
            5 | 6 => {
                for _ in 0..1 + rng.below(4) {
                    k.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
                    k.push(b'/');
                }
            }
            7 => {
                // Exactly 250 bytes of mixed UTF-8: pad with ASCII to the limit.
                while k.len() < 240 {
                    k.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
                }
                k.truncate(240);
                while std::str::from_utf8(&k).is_err() {
                    k.pop();
                }
                while k.len() < 250 {
                    k.push(b'a' + rng.below(26) as u8);
                }
            }
            8 => {
                let len = 1 + rng.below(200) as usize;
                for _ in 0..len {
                    k.push(b'!' + rng.below(94) as u8);
                }
            }
            _ => {
                if with_non_utf8 {
                    k.extend_from_slice(b"raw");
                    k.push(0x80 + rng.below(0x7f) as u8);
                    k.push(b'!' + rng.below(94) as u8);
                } else {
                    k.extend_from_slice("ключ:".as_bytes());
                    k.extend_from_slice(format!("{}", rng.next() % 1000).as_bytes());
                }
            }
        }
        assert!(k.len() <= 250);
        out.push(k);
    }
    out
}

pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use elasticache::testkit::Memcached;

/// Real memcached servers for the oracles: `default` on distinct loopback
/// addresses, all on port 11211, and `other` on 127.0.0.1 with free ports.
pub struct Pool {
    pub default: Vec<Memcached>,
    pub other: Vec<Memcached>,
}

impl Pool {
    /// Start `n` servers of each kind. `salt` keeps concurrent tests (and other
    /// projects' tests on this machine) on different 127.x.y.z addresses.
    pub fn start(n: usize, salt: u8) -> Pool {
        Pool::start_kinds(n, n, salt)
    }

    /// `n_default` servers on port 11211, `n_other` on other ports.
    pub fn start_kinds(n: usize, n_other: usize, salt: u8) -> Pool {
        let mut default = Vec::new();
        let mut rng = Rng::new(std::process::id() as u64 * 31 + salt as u64);
        // 127.0.0.2.. for the first pool (the addresses a reader expects),
        // 127.0.<salt>.2.. for the others; a random 127.x.y.0/24 when taken.
        let mut subnet = (0u8, if salt <= 1 { 0 } else { salt });
        let mut attempts = 0;
        while default.len() < n {
            let ip = format!("127.{}.{}.{}", subnet.0, subnet.1, 2 + default.len());
            // A memcached that failed to bind looks ready when the address's
            // owner answers: a distinctive maxconns tells whether it is ours.
            let mark = (1025 + rng.below(3000)).to_string();
            let started = Memcached::start_at(&ip, 11211, &["-c", &mark])
                .ok()
                .filter(|m| {
                    m.command("stats settings")
                        .map(|r| r.contains(&format!("STAT maxconns {mark}\r\n")))
                        .unwrap_or(false)
                });
            match started {
                Some(m) => default.push(m),
                None => {
                    attempts += 1;
                    assert!(attempts < 20, "no free 127.x.y.z:11211 addresses");
                    default.clear();
                    subnet = (1 + rng.below(250) as u8, rng.below(250) as u8);
                }
            }
        }
        let other = (0..n_other)
            .map(|_| Memcached::start_on("127.0.0.1", &[]).unwrap())
            .collect();
        Pool { default, other }
    }
}

/// Run an oracle command with the keys on its stdin (hex, one per line) and
/// return its stdout; panic with its stderr when it fails.
pub fn run_oracle(cmd: &mut std::process::Command, keys: &[Vec<u8>]) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut input = String::with_capacity(keys.len() * 40);
    for k in keys {
        input.push_str(&hex(k));
        input.push('\n');
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Which of `keys` the memcached server at `addr` holds: pipelined multi-gets.
pub fn present(addr: &str, keys: &[&[u8]]) -> HashSet<Vec<u8>> {
    let mut found = HashSet::new();
    if keys.is_empty() {
        return found;
    }
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    // Lines stay under 2 KB; a batch of lines is written, then its replies read,
    // so neither side's socket buffer can fill up.
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut line = b"get".to_vec();
    for k in keys {
        if line.len() + k.len() + 3 > 2000 {
            line.extend_from_slice(b"\r\n");
            lines.push(std::mem::replace(&mut line, b"get".to_vec()));
        }
        line.push(b' ');
        line.extend_from_slice(k);
    }
    line.extend_from_slice(b"\r\n");
    lines.push(line);
    for batch in lines.chunks(64) {
        let buf: Vec<u8> = batch.concat();
        w.write_all(&buf).unwrap();
        let mut ends = 0;
        let mut l = Vec::new();
        while ends < batch.len() {
            l.clear();
            r.read_until(b'\n', &mut l).unwrap();
            assert!(!l.is_empty(), "{addr} closed the connection");
            if l == b"END\r\n" {
                ends += 1;
            } else if let Some(rest) = l.strip_prefix(b"VALUE ") {
                let sp = rest.iter().position(|&b| b == b' ').unwrap();
                found.insert(rest[..sp].to_vec());
                let mut data = Vec::new();
                r.read_until(b'\n', &mut data).unwrap();
            } else {
                panic!("{addr}: unexpected reply {:?}", String::from_utf8_lossy(&l));
            }
        }
    }
    found
}

/// Check that every key sits on the server `predict` names (indexes into
/// `addrs`). Returns the number of keys checked; panics listing the first
/// disagreements, with where each key really was.
pub fn assert_placement(
    what: &str,
    addrs: &[String],
    keys: &[Vec<u8>],
    predict: impl Fn(&[u8]) -> usize,
) -> usize {
    let mut by_server: Vec<Vec<&[u8]>> = vec![Vec::new(); addrs.len()];
    for k in keys {
        by_server[predict(k)].push(k);
    }
    let mut missing: Vec<(&[u8], usize)> = Vec::new();
    for (i, ks) in by_server.iter().enumerate() {
        let got = present(&addrs[i], ks);
        missing.extend(ks.iter().filter(|k| !got.contains(**k)).map(|k| (*k, i)));
    }
    if !missing.is_empty() {
        let sample: Vec<&[u8]> = missing.iter().take(5).map(|m| m.0).collect();
        let mut report = String::new();
        for (k, predicted) in missing.iter().take(5) {
            let actual: Vec<usize> = (0..addrs.len())
                .filter(|&i| present(&addrs[i], &sample).contains(*k))
                .collect();
            report.push_str(&format!(
                "\n  key {:?} predicted server {predicted}, found on {actual:?}",
                String::from_utf8_lossy(k)
            ));
        }
        panic!(
            "{what}: {} of {} keys are not where the ring put them:{report}",
            missing.len(),
            keys.len()
        );
    }
    keys.len()
}
