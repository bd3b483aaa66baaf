//! libhashkit's key hash functions, bit-for-bit as x86-64 libmemcached computes
//! them, plus the MurmurHash3 that pymemcache's rendezvous hashing uses.
//!
//! **Signed `char`.** libhashkit reads key bytes through `const char *`, which
//! is signed on x86-64: in `one_at_a_time`, `fnv1_64`, `fnv1a_64`, `fnv1_32`,
//! `fnv1a_32` and the three-byte tail of `hsieh`, a byte >= 0x80 enters
//! sign-extended (`0xD0` as `0xFFFFFFD0`). This module always follows x86-64.
//! A libmemcached built where `char` is unsigned (ARM Linux, for example)
//! places keys holding such bytes differently; ASCII keys are unaffected.
//! `md5`, `crc`, `murmur`, `murmur3` and `jenkins` read unsigned bytes.

use md5::{Digest, Md5};

use crate::error::{Error, Result};

/// A libmemcached hash function (pylibmc's `hash` behavior names).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HashAlgorithm {
    /// Bob Jenkins' one-at-a-time: libmemcached's default (`MEMCACHED_HASH_DEFAULT`).
    #[default]
    OneAtATime,
    /// The first 4 bytes of the MD5 digest, little-endian.
    Md5,
    /// `(crc32(key) >> 16) & 0x7fff` (zlib's CRC-32).
    Crc,
    /// FNV-1, 64-bit arithmetic, low 32 bits.
    Fnv1_64,
    /// libhashkit's "FNV-1a 64": 32-bit arithmetic with the 64-bit constants truncated.
    Fnv1a_64,
    /// FNV-1, 32-bit.
    Fnv1_32,
    /// FNV-1a, 32-bit.
    Fnv1a_32,
    /// Paul Hsieh's SuperFastHash (not built into Debian's or pylibmc's libmemcached).
    Hsieh,
    /// libhashkit's MurmurHash2 variant (seed `0xdeadbeef * len`).
    Murmur,
    /// MurmurHash3 x86_32 with seed `0xdeadbeef * len`.
    Murmur3,
    /// Bob Jenkins' lookup3 `hashlittle` with initval 13.
    Jenkins,
}

impl HashAlgorithm {
    /// Every algorithm, in libmemcached's `memcached_hash_t` order.
    pub const ALL: [HashAlgorithm; 11] = [
        HashAlgorithm::OneAtATime,
        HashAlgorithm::Md5,
        HashAlgorithm::Crc,
        HashAlgorithm::Fnv1_64,
        HashAlgorithm::Fnv1a_64,
        HashAlgorithm::Fnv1_32,
        HashAlgorithm::Fnv1a_32,
        HashAlgorithm::Hsieh,
        HashAlgorithm::Murmur,
        HashAlgorithm::Jenkins,
        HashAlgorithm::Murmur3,
    ];

    /// Parse pylibmc's name for a hash (`"default"`, `"md5"`, `"crc"`, `"fnv1_64"`, ...).
    pub fn from_name(name: &str) -> Result<HashAlgorithm> {
        Ok(match name {
            "default" | "one_at_a_time" => HashAlgorithm::OneAtATime,
            "md5" => HashAlgorithm::Md5,
            "crc" => HashAlgorithm::Crc,
            "fnv1_64" => HashAlgorithm::Fnv1_64,
            "fnv1a_64" => HashAlgorithm::Fnv1a_64,
            "fnv1_32" => HashAlgorithm::Fnv1_32,
            "fnv1a_32" => HashAlgorithm::Fnv1a_32,
            "hsieh" => HashAlgorithm::Hsieh,
            "murmur" => HashAlgorithm::Murmur,
            "murmur3" => HashAlgorithm::Murmur3,
            "jenkins" => HashAlgorithm::Jenkins,
            other => return Err(Error::InvalidArgument(format!("unknown hash {other:?}"))),
        })
    }

    /// The canonical name (`from_name` accepts it).
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::OneAtATime => "one_at_a_time",
            HashAlgorithm::Md5 => "md5",
            HashAlgorithm::Crc => "crc",
            HashAlgorithm::Fnv1_64 => "fnv1_64",
            HashAlgorithm::Fnv1a_64 => "fnv1a_64",
            HashAlgorithm::Fnv1_32 => "fnv1_32",
            HashAlgorithm::Fnv1a_32 => "fnv1a_32",
            HashAlgorithm::Hsieh => "hsieh",
            HashAlgorithm::Murmur => "murmur",
            HashAlgorithm::Murmur3 => "murmur3",
            HashAlgorithm::Jenkins => "jenkins",
        }
    }

    /// libmemcached's `memcached_hash_t` number for this algorithm.
    pub fn libmemcached_id(self) -> u32 {
        match self {
            HashAlgorithm::OneAtATime => 0,
            HashAlgorithm::Md5 => 1,
            HashAlgorithm::Crc => 2,
            HashAlgorithm::Fnv1_64 => 3,
            HashAlgorithm::Fnv1a_64 => 4,
            HashAlgorithm::Fnv1_32 => 5,
            HashAlgorithm::Fnv1a_32 => 6,
            HashAlgorithm::Hsieh => 7,
            HashAlgorithm::Murmur => 8,
            HashAlgorithm::Jenkins => 9,
            HashAlgorithm::Murmur3 => 10,
        }
    }

    /// Hash `key` to a u32 exactly as libhashkit does on x86-64.
    #[inline]
    pub fn hash(self, key: &[u8]) -> u32 {
        match self {
            HashAlgorithm::OneAtATime => one_at_a_time(key),
            HashAlgorithm::Md5 => md5_u32(key),
            HashAlgorithm::Crc => crc(key),
            HashAlgorithm::Fnv1_64 => fnv1_64(key),
            HashAlgorithm::Fnv1a_64 => fnv1a_64(key),
            HashAlgorithm::Fnv1_32 => fnv1_32(key),
            HashAlgorithm::Fnv1a_32 => fnv1a_32(key),
            HashAlgorithm::Hsieh => hsieh(key),
            HashAlgorithm::Murmur => murmur(key),
            HashAlgorithm::Murmur3 => {
                murmur3_32(key, 0xdeadbeef_u32.wrapping_mul(key.len() as u32))
            }
            HashAlgorithm::Jenkins => jenkins(key),
        }
    }
}

/// A key byte as libhashkit's `(uint32_t) key[x]` sees it through a signed `char`.
#[inline(always)]
fn signed(b: u8) -> u32 {
    b as i8 as i32 as u32
}

/// `signed(b) * 1025` for every byte: one_at_a_time's per-byte term.
static OAAT_BYTE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8 as i8 as i32 as u32).wrapping_mul(1025);
        i += 1;
    }
    t
};

#[inline]
fn one_at_a_time(key: &[u8]) -> u32 {
    // Per byte, libhashkit computes t = h + b; t += t << 10; h = t ^ (t >> 6).
    // Since t + (t << 10) = h * 1025 + b * 1025, the byte's share can be
    // computed off the dependency chain, which leaves (h << 10) + (h + b * 1025)
    // on it: one step shorter per byte than the textbook order.
    // (A table, because the compiler folds a plain `b * 1025` back into the
    // textbook order.)
    let mut h: u32 = 0;
    for &b in key {
        let t = (h << 10).wrapping_add(h.wrapping_add(OAAT_BYTE[b as usize]));
        h = t ^ (t >> 6);
    }
    h = h.wrapping_add(h << 3);
    h ^= h >> 11;
    h.wrapping_add(h << 15)
}

/// The full MD5 digest (RustCrypto `md-5`).
#[inline]
pub fn md5_digest(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

#[inline]
fn md5_u32(key: &[u8]) -> u32 {
    let d = md5_digest(key);
    u32::from_le_bytes([d[0], d[1], d[2], d[3]])
}

const fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC32_TABLE: [u32; 256] = crc32_table();

#[inline]
fn crc(key: &[u8]) -> u32 {
    // The table index is masked to 8 bits, so char signedness cannot matter here.
    let mut c: u32 = u32::MAX;
    for &b in key {
        c = (c >> 8) ^ CRC32_TABLE[((c ^ b as u32) & 0xff) as usize];
    }
    ((!c) >> 16) & 0x7fff
}

#[inline]
fn fnv1_64(key: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        h ^= b as i8 as i64 as u64;
    }
    h as u32
}

#[inline]
fn fnv1a_64(key: &[u8]) -> u32 {
    // libhashkit truncates both 64-bit constants to 32 bits and works in u32.
    let mut h: u32 = 0x8422_2325;
    for &b in key {
        h ^= signed(b);
        h = h.wrapping_mul(0x1b3);
    }
    h
}

#[inline]
fn fnv1_32(key: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in key {
        h = h.wrapping_mul(0x0100_0193);
        h ^= signed(b);
    }
    h
}

#[inline]
fn fnv1a_32(key: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in key {
        h ^= signed(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[inline(always)]
fn get16(d: &[u8]) -> u32 {
    (d[0] as u32) | ((d[1] as u32) << 8)
}

fn hsieh(key: &[u8]) -> u32 {
    if key.is_empty() {
        return 0;
    }
    let mut h: u32 = 0;
    let mut chunks = key.chunks_exact(4);
    for c in &mut chunks {
        h = h.wrapping_add(get16(c));
        let tmp = (get16(&c[2..]) << 11) ^ h;
        h = (h << 16) ^ tmp;
        h = h.wrapping_add(h >> 11);
    }
    let rem = chunks.remainder();
    match rem.len() {
        3 => {
            h = h.wrapping_add(get16(rem));
            h ^= h << 16;
            // libhashkit reads this byte as a signed char.
            h ^= signed(rem[2]) << 18;
            h = h.wrapping_add(h >> 11);
        }
        2 => {
            h = h.wrapping_add(get16(rem));
            h ^= h << 11;
            h = h.wrapping_add(h >> 17);
        }
        1 => {
            h = h.wrapping_add(rem[0] as u32);
            h ^= h << 10;
            h = h.wrapping_add(h >> 1);
        }
        _ => {}
    }
    h ^= h << 3;
    h = h.wrapping_add(h >> 5);
    h ^= h << 4;
    h = h.wrapping_add(h >> 17);
    h ^= h << 25;
    h.wrapping_add(h >> 6)
}

fn murmur(key: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let len = key.len() as u32;
    let mut h: u32 = 0xdeadbeef_u32.wrapping_mul(len) ^ len;
    let mut chunks = key.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rem = chunks.remainder();
    if !rem.is_empty() {
        let mut t = [0u8; 4];
        t[..rem.len()].copy_from_slice(rem);
        h ^= u32::from_le_bytes(t);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

#[inline(always)]
fn murmur3_mix_k(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

#[inline(always)]
fn murmur3_mix_h(h: u32, k: u32) -> u32 {
    (h ^ murmur3_mix_k(k))
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

#[inline(always)]
fn murmur3_fmix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// MurmurHash3 x86_32 of `data` with `seed`.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    let mut s = Murmur3::new(seed);
    s.update(data);
    s.finish()
}

/// MurmurHash3 x86_32 fed in pieces: rendezvous hashing keeps the state after
/// each server's `"name-"` prefix and continues it with the key, so a lookup
/// never builds the joined string.
#[derive(Debug, Clone, Copy)]
pub struct Murmur3 {
    h: u32,
    tail: u32,
    tail_len: u32,
    len: u32,
}

impl Murmur3 {
    /// A fresh state with `seed`.
    pub fn new(seed: u32) -> Murmur3 {
        Murmur3 {
            h: seed,
            tail: 0,
            tail_len: 0,
            len: 0,
        }
    }

    /// Append one byte.
    #[inline(always)]
    pub fn push(&mut self, b: u8) {
        self.tail |= (b as u32) << (8 * self.tail_len);
        self.tail_len += 1;
        self.len = self.len.wrapping_add(1);
        if self.tail_len == 4 {
            self.h = murmur3_mix_h(self.h, self.tail);
            self.tail = 0;
            self.tail_len = 0;
        }
    }

    /// Append bytes.
    #[inline]
    pub fn update(&mut self, mut data: &[u8]) {
        while self.tail_len != 0 && !data.is_empty() {
            self.push(data[0]);
            data = &data[1..];
        }
        let mut chunks = data.chunks_exact(4);
        for c in &mut chunks {
            self.h = murmur3_mix_h(self.h, u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        }
        self.len = self
            .len
            .wrapping_add((data.len() - chunks.remainder().len()) as u32);
        for &b in chunks.remainder() {
            self.push(b);
        }
    }

    /// The hash of everything appended.
    #[inline]
    pub fn finish(&self) -> u32 {
        let mut h = self.h;
        if self.tail_len != 0 {
            h ^= murmur3_mix_k(self.tail);
        }
        murmur3_fmix(h ^ self.len)
    }
}

#[inline(always)]
fn jenkins_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

#[inline(always)]
fn jenkins_final(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

fn jenkins(key: &[u8]) -> u32 {
    let init = 0xdeadbeef_u32
        .wrapping_add(key.len() as u32)
        .wrapping_add(13);
    let (mut a, mut b, mut c) = (init, init, init);
    let word = |s: &[u8]| {
        let mut t = [0u8; 4];
        t[..s.len()].copy_from_slice(s);
        u32::from_le_bytes(t)
    };
    let mut rest = key;
    while rest.len() > 12 {
        a = a.wrapping_add(word(&rest[0..4]));
        b = b.wrapping_add(word(&rest[4..8]));
        c = c.wrapping_add(word(&rest[8..12]));
        jenkins_mix(&mut a, &mut b, &mut c);
        rest = &rest[12..];
    }
    if rest.is_empty() {
        return c;
    }
    a = a.wrapping_add(word(&rest[..rest.len().min(4)]));
    if rest.len() > 4 {
        b = b.wrapping_add(word(&rest[4..rest.len().min(8)]));
    }
    if rest.len() > 8 {
        c = c.wrapping_add(word(&rest[8..]));
    }
    jenkins_final(&mut a, &mut b, &mut c);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for h in HashAlgorithm::ALL {
            assert_eq!(HashAlgorithm::from_name(h.name()).unwrap(), h);
        }
        assert_eq!(
            HashAlgorithm::from_name("default").unwrap(),
            HashAlgorithm::OneAtATime
        );
        assert!(HashAlgorithm::from_name("sha1").is_err());
    }

    #[test]
    fn murmur3_streaming_equals_one_shot() {
        let data: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37)).collect();
        for split in 0..data.len() {
            for seed in [0, 7] {
                let mut s = Murmur3::new(seed);
                s.update(&data[..split]);
                for &b in &data[split..] {
                    s.push(b);
                }
                assert_eq!(s.finish(), murmur3_32(&data, seed), "split {split}");
            }
        }
        // The reference vectors of MurmurHash3_x86_32 (SMHasher).
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"hello", 0), 0x248b_fa47);
    }

    #[test]
    fn crc_matches_zlib() {
        // zlib's crc32("123456789") = 0xcbf43926.
        assert_eq!(crc(b"123456789"), (0xcbf4_3926u32 >> 16) & 0x7fff);
    }
}
