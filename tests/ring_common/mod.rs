//! Shared by the ring tests: compiling the C oracles, deterministic keys,
//! and a pool of real memcached servers on loopback addresses.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Compile `tests/oracle/<name>.c` (once per test binary run) and return the executable.
pub fn compile_oracle(name: &str, libs: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/oracle/{name}.c"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
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
