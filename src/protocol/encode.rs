//! Request encoding: every encoder appends to a connection-owned buffer, so a
//! batch of requests becomes one `write`.

use super::StoreCommand;

pub(crate) fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Append `v` in decimal with a leading `-` when negative (`i64::MIN` included).
pub(super) fn push_i64(buf: &mut Vec<u8>, v: i64) {
    if v < 0 {
        buf.push(b'-');
    }
    push_u64(buf, v.unsigned_abs());
}

pub(super) fn push_noreply_crlf(buf: &mut Vec<u8>, noreply: bool) {
    if noreply {
        buf.extend_from_slice(b" noreply");
    }
    buf.extend_from_slice(b"\r\n");
}

/// Append a storage command and its data block:
/// `<cmd> <key> <flags> <exptime> <bytes> [<cas>] [noreply]\r\n<data>\r\n`.
/// `cas` is written only for [`StoreCommand::Cas`]. The key must already be checked.
#[allow(clippy::too_many_arguments)]
pub fn encode_store(
    buf: &mut Vec<u8>,
    cmd: StoreCommand,
    key: &[u8],
    flags: u32,
    exptime: i64,
    value: &[u8],
    cas: u64,
    noreply: bool,
) {
    // Numbers take at most 10 + 20 + 20 + 20 bytes plus separators.
    buf.reserve(cmd.name().len() + key.len() + value.len() + 100);
    buf.extend_from_slice(cmd.name().as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(key);
    buf.push(b' ');
    push_u64(buf, u64::from(flags));
    buf.push(b' ');
    push_i64(buf, exptime);
    buf.push(b' ');
    push_u64(buf, value.len() as u64);
    if cmd == StoreCommand::Cas {
        buf.push(b' ');
        push_u64(buf, cas);
    }
    push_noreply_crlf(buf, noreply);
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\r\n");
}

/// Append `get k1 k2 ...\r\n` (or `gets` when `with_cas`). The caller passes at least
/// one checked key; memcached answers a bare `get` with `ERROR`.
pub fn encode_get<'k>(buf: &mut Vec<u8>, with_cas: bool, keys: impl IntoIterator<Item = &'k [u8]>) {
    buf.extend_from_slice(if with_cas { b"gets" } else { b"get" });
    for key in keys {
        buf.push(b' ');
        buf.extend_from_slice(key);
    }
    buf.extend_from_slice(b"\r\n");
}

/// Append `delete <key> [noreply]\r\n`.
pub fn encode_delete(buf: &mut Vec<u8>, key: &[u8], noreply: bool) {
    buf.extend_from_slice(b"delete ");
    buf.extend_from_slice(key);
    push_noreply_crlf(buf, noreply);
}

/// Append `incr <key> <delta> [noreply]\r\n` (or `decr` when `incr` is false).
pub fn encode_arith(buf: &mut Vec<u8>, incr: bool, key: &[u8], delta: u64, noreply: bool) {
    buf.extend_from_slice(if incr { b"incr " } else { b"decr " });
    buf.extend_from_slice(key);
    buf.push(b' ');
    push_u64(buf, delta);
    push_noreply_crlf(buf, noreply);
}

/// Append `touch <key> <exptime> [noreply]\r\n`.
pub fn encode_touch(buf: &mut Vec<u8>, key: &[u8], exptime: i64, noreply: bool) {
    buf.extend_from_slice(b"touch ");
    buf.extend_from_slice(key);
    buf.push(b' ');
    push_i64(buf, exptime);
    push_noreply_crlf(buf, noreply);
}

/// Append `flush_all [<delay>] [noreply]\r\n`; a zero delay is left out.
pub fn encode_flush_all(buf: &mut Vec<u8>, delay: u32, noreply: bool) {
    buf.extend_from_slice(b"flush_all");
    if delay != 0 {
        buf.push(b' ');
        push_u64(buf, u64::from(delay));
    }
    push_noreply_crlf(buf, noreply);
}

/// Append `version\r\n`.
pub fn encode_version(buf: &mut Vec<u8>) {
    buf.extend_from_slice(b"version\r\n");
}

/// Append `stats [<arg>]\r\n` (for example `stats settings`).
pub fn encode_stats(buf: &mut Vec<u8>, arg: Option<&[u8]>) {
    buf.extend_from_slice(b"stats");
    if let Some(arg) = arg {
        buf.push(b' ');
        buf.extend_from_slice(arg);
    }
    buf.extend_from_slice(b"\r\n");
}

