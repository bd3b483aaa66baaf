//! The memcached classic text protocol: request encoding and reply parsing, no I/O.
//!
//! Encoders append to a connection-owned buffer so a batch of requests becomes one
//! `write`. The parser reads one reply element from the front of a receive buffer and
//! borrows from it, so a hit costs no allocation here; when the buffer holds only a
//! prefix it says so (with the final size once a `VALUE` header is known) instead of
//! reading by itself. Grammar: memcached `doc/protocol.txt`.

//!
//! [`encode`] writes requests, [`parse`] reads replies, [`meta`] is the meta
//! protocol (`mg`/`ms`/`md`) used for binary keys and leases.

pub mod encode;
pub mod meta;
pub mod parse;

pub use encode::*;
pub use parse::{parse, Parse, Reply};

use crate::error::{Error, Result};

/// The longest key memcached accepts.
pub const MAX_KEY_LEN: usize = 250;

/// The longest reply line (including its `"\r\n"`) the parser waits for. Real
/// lines are a few hundred bytes at most (a `VALUE` header with a 250-byte key),
/// so a longer run without a newline means the stream is out of sync.
pub const MAX_LINE_LEN: usize = 8192;

/// The largest data block a `VALUE` header may announce. memcached's item size
/// limit (`-I`) cannot exceed 1 GiB, so anything larger is a corrupt stream and
/// must not make the reader grow its buffer to match.
pub const MAX_DATA_LEN: usize = 1 << 30;

/// How much of an offending reply goes into an error message.
const QUOTE_MAX: usize = 100;

/// Check that `key` can be sent in the text protocol: 1 to 250 bytes, none of them
/// whitespace, a control character or DEL (they would split or end the command line).
pub fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::BadKey {
            reason: "the key is empty",
        });
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::BadKey {
            reason: "the key is longer than 250 bytes",
        });
    }
    if key.iter().any(|&b| b <= 0x20 || b == 0x7f) {
        return Err(Error::BadKey {
            reason: "the key contains whitespace, a control character or DEL",
        });
    }
    Ok(())
}

/// The storage commands, which send a data block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCommand {
    /// Store unconditionally.
    Set,
    /// Store only if the key is absent.
    Add,
    /// Store only if the key is present.
    Replace,
    /// Add the data after the existing value (flags and exptime are ignored).
    Append,
    /// Add the data before the existing value (flags and exptime are ignored).
    Prepend,
    /// Store only if the item's cas id is still the one given.
    Cas,
}

impl StoreCommand {
    /// The command's name on the wire: `"set"`, `"add"`, ...
    pub fn name(self) -> &'static str {
        match self {
            StoreCommand::Set => "set",
            StoreCommand::Add => "add",
            StoreCommand::Replace => "replace",
            StoreCommand::Append => "append",
            StoreCommand::Prepend => "prepend",
            StoreCommand::Cas => "cas",
        }
    }

    /// The multi-key store's command: `add` (store only absent keys) or `set`.
    pub fn set_or_add(add: bool) -> StoreCommand {
        if add {
            StoreCommand::Add
        } else {
            StoreCommand::Set
        }
    }
}


#[cfg(test)]
mod tests;
