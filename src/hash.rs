//! libhashkit's key hash functions, bit-for-bit (x86-64 libmemcached: key bytes
//! enter some hashes as signed `char`). See `shared/reference/ketama.md`.

use crate::error::{Error, Result};

/// A libmemcached hash function (pylibmc's `hash` behavior names).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HashAlgorithm {
    /// libmemcached's default (`MEMCACHED_HASH_DEFAULT`).
    #[default]
    OneAtATime,
    Md5,
    Crc,
    Fnv1_64,
    Fnv1a_64,
    Fnv1_32,
    Fnv1a_32,
    Hsieh,
    Murmur,
    Murmur3,
    Jenkins,
}

impl HashAlgorithm {
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

    /// Hash `key` to a u32 exactly as libhashkit does.
    pub fn hash(self, key: &[u8]) -> u32 {
        // Placeholder until the ring issue lands: only the default is implemented.
        let mut h: u32 = 0;
        for &b in key {
            h = h.wrapping_add(b as i8 as i32 as u32);
            h = h.wrapping_add(h << 10);
            h ^= h >> 6;
        }
        h = h.wrapping_add(h << 3);
        h ^= h >> 11;
        h.wrapping_add(h << 15)
    }
}
