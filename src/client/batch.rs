//! Multi-key operations on the wire: one batch of keys per node, every
//! node's request written before any reply is read, and the replies matched
//! to the keys.
//!
//! Reading: when every request went out whole (the usual case), the nodes
//! are read one after another with blocking reads against one deadline: one
//! `recv` per node when all answer, no poll. If a node is still silent at the
//! deadline, the nodes not read yet are not blamed for that: whatever they
//! sent meanwhile is read at once, a node that sent nothing at all is as
//! silent as the first, and a node that was sending (its reply did not fit
//! in the socket buffer while we waited elsewhere) gets one more I/O timeout,
//! polled together with the others. When a request did not fit in the socket
//! buffer, writes and reads are interleaved with poll from the start.
//!
//! Matching (multi-get): memcached answers the keys of one request in order
//! and leaves out misses. A reply out of that order, for a key not asked for
//! or twice for one key means the node's answer cannot be trusted: every key
//! of that node that did not get exactly one value gets a protocol error
//! naming the node, never a miss. [`match_get_replies`] is that rule as a
//! pure function (for fuzzing and tests); the client runs the same
//! [`match_value`] step reply by reply.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::pool::{Conn, NodePool, PooledConn};
use crate::protocol::{self, Parse, Reply};

/// Bytes one drain of a polled connection reads before the others get their
/// turn (and the deadline is looked at again).
const DRAIN_BUDGET: usize = 1 << 20;

/// What one `VALUE` reply is, for the key list of its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    /// The value of the key at this position (misses before it were skipped).
    Hit(usize),
    /// A second value for the key at this position, which already had one.
    Duplicate(usize),
    /// Out of order, or for a key not asked for: no key gets it.
    Stray,
}

/// One step of the multi-get reply matcher. `cursor` is the position after
/// the last hit (start at 0); `disordered` becomes true at the first anomaly
/// and stays so (then every key without exactly one hit is a protocol error).
/// `n` keys were asked for, `key_at(i)` is the i-th; `is_hit(i)` says whether
/// position i already has a value.
#[doc(hidden)]
pub fn match_value<'k>(
    cursor: &mut usize,
    disordered: &mut bool,
    n: usize,
    key_at: impl Fn(usize) -> &'k [u8],
    is_hit: impl Fn(usize) -> bool,
    key: &[u8],
) -> Matched {
    let mut j = *cursor;
    while j < n && key_at(j) != key {
        j += 1;
    }
    if j < n {
        *cursor = j + 1;
        return Matched::Hit(j);
    }
    *disordered = true;
    // Only on an anomaly: which earlier key this was, if any.
    match (0..(*cursor).min(n)).rev().find(|&p| key_at(p) == key) {
        Some(p) if is_hit(p) => Matched::Duplicate(p),
        _ => Matched::Stray,
    }
}

/// The result for one requested key of [`match_get_replies`].
#[cfg(feature = "testkit")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOutcome {
    /// The reply at this index (in the replies given) is this key's value.
    Hit(usize),
    /// The node has no value for it.
    Miss,
    /// The node's answer for it cannot be trusted (a protocol error).
    Protocol,
}

/// The multi-get reply matcher as a pure function: `requested` are the keys
/// of one node's request in order, `replies` the keys of its `VALUE` replies
/// in the order they came (up to the `END`). One outcome per requested key.
/// Used by the client reply by reply (through [`match_value`]) and by the
/// fuzz target, whose invariants are: a hit's reply names its key, no reply
/// is used twice, and replies in request order never give `Protocol`.
#[cfg(feature = "testkit")]
#[doc(hidden)]
pub fn match_get_replies(requested: &[&[u8]], replies: &[&[u8]]) -> Vec<KeyOutcome> {
    let mut out = vec![KeyOutcome::Miss; requested.len()];
    let (mut cursor, mut disordered) = (0, false);
    for (r, key) in replies.iter().enumerate() {
        let is_hit = |p: usize| matches!(out[p], KeyOutcome::Hit(_));
        match match_value(
            &mut cursor,
            &mut disordered,
            requested.len(),
            |i| requested[i],
            is_hit,
            key,
        ) {
            Matched::Hit(p) => out[p] = KeyOutcome::Hit(r),
            Matched::Duplicate(p) => out[p] = KeyOutcome::Protocol,
            Matched::Stray => {}
        }
    }
    if disordered {
        for o in &mut out {
            if *o == KeyOutcome::Miss {
                *o = KeyOutcome::Protocol;
            }
        }
    }
    out
}

/// Which of a batch's keys have been answered.
#[derive(Debug)]
pub struct Cursor {
    /// Positions (in the caller's key list) of this node's keys, in request order.
    pub(crate) keys: Vec<usize>,
    /// Keys before this one are answered (or skipped as misses).
    pub(crate) cursor: usize,
    /// `END` lines still to come (a multi-get split over several request lines).
    pub(crate) ends: usize,
    /// A reply anomaly was seen (see [`match_value`]).
    pub(crate) disordered: bool,
}

/// One node's share of a multi-key call.
pub(crate) struct Batch<'a> {
    pub(crate) node: &'a NodePool,
    pub(crate) conn: Option<PooledConn>,
    pub(crate) cursor: Cursor,
    sent: usize,
    done: bool,
    error: Option<Error>,
    /// False when the error is not the node's fault (no free connection).
    blame_node: bool,
}

/// A batch per node, with a connection each: idle ones from the pools, and
/// the new ones all connected at the same time, so nodes that do not answer
/// cost one connect timeout together.
pub(crate) fn open_batches<'a>(
    groups: impl IntoIterator<Item = (&'a Arc<NodePool>, Vec<usize>)>,
    op: &'static str,
) -> Vec<Batch<'a>> {
    let mut batches = Vec::new();
    let mut to_connect = Vec::new();
    for (node, keys) in groups {
        let (conn, error, blame_node) = match node.reserve(op, false) {
            Ok(Some(c)) => (Some(c), None, true),
            Ok(None) => {
                to_connect.push(batches.len());
                (None, None, true)
            }
            Err(e) => (None, Some(e.error), e.node_failed),
        };
        batches.push(Batch {
            node,
            conn,
            cursor: Cursor {
                keys,
                cursor: 0,
                ends: 1,
                disordered: false,
            },
            sent: 0,
            done: false,
            error,
            blame_node,
        });
    }
    if !to_connect.is_empty() {
        let targets: Vec<_> = to_connect.iter().map(|&i| batches[i].node.target()).collect();
        let streams = crate::net::connect::connect_all(&targets);
        for (&i, r) in to_connect.iter().zip(streams) {
            let b = &mut batches[i];
            match b.node.connected(r) {
                Ok(c) => b.conn = Some(c),
                Err(e) => {
                    b.error = Some(e.error);
                    b.blame_node = e.node_failed;
                }
            }
        }
    }
    for b in &mut batches {
        if let Some(c) = b.conn.as_mut() {
            c.begin();
        }
    }
    batches
}

/// A reply handler: gets the results, the batch's cursor, the reply and the
/// node's label; returns true when the batch is complete.
pub(crate) trait OnReply<T>:
    FnMut(&mut [Result<T>], &mut Cursor, Reply<'_>, &str) -> Result<bool>
{
}
impl<T, F: FnMut(&mut [Result<T>], &mut Cursor, Reply<'_>, &str) -> Result<bool>> OnReply<T> for F {}

/// Write every batch's request, then read every batch's replies (see the
/// module documentation), then give each connection back or close it. A
/// batch whose node fails gives its unanswered keys that error; `blame` is
/// called for a node whose failure is its own.
pub(crate) fn run_batches<T>(
    batches: &mut [Batch<'_>],
    op: &'static str,
    results: &mut [Result<T>],
    io_timeout: Duration,
    blame: impl Fn(&NodePool, &Error),
    mut on_reply: impl OnReply<T>,
) {
    let timer = crate::metrics::Timer::start();
    let mut all_sent = true;
    for b in batches.iter_mut() {
        let Some(conn) = b.conn.as_mut() else {
            continue;
        };
        match conn.send_nonblocking(0) {
            Ok(n) => {
                b.sent = n;
                if n < conn.wbuf.len() {
                    all_sent = false;
                } else {
                    conn.wbuf.clear();
                    b.sent = 0;
                }
            }
            Err(e) => b.error = Some(Error::io(b.node.label(), op, e)),
        }
    }
    let deadline = Instant::now() + io_timeout;
    if all_sent {
        let mut starved_from = None;
        for (i, b) in batches.iter_mut().enumerate() {
            if b.error.is_some() {
                continue;
            }
            let Some(conn) = b.conn.as_mut() else {
                continue;
            };
            conn.set_deadline(deadline);
            let label = b.node.label();
            let cursor = &mut b.cursor;
            let r = conn.read_until(label, op, |reply| {
                on_reply(results, cursor, reply, label).map(|done| done.then_some(()))
            });
            match r {
                Ok(()) => b.done = true,
                Err(e) => {
                    let silent = matches!(e, Error::Timeout { .. });
                    b.error = Some(e);
                    if silent {
                        starved_from = Some(i + 1);
                        break;
                    }
                }
            }
        }
        if let Some(from) = starved_from {
            rescue(
                &mut batches[from..],
                op,
                results,
                deadline,
                io_timeout,
                &mut on_reply,
            );
        }
    } else {
        poll_batches(batches, op, results, deadline, &mut on_reply);
    }
    for b in batches.iter_mut() {
        crate::metrics::record_batch(b.node.metrics(), timer, b.error.as_ref());
        let conn = b.conn.take();
        match b.error.take() {
            None => {
                if let Some(c) = conn {
                    b.node.checkin(c);
                }
                b.node.record_success();
            }
            Some(e) => {
                let stale = conn.as_ref().is_some_and(|c| c.failed_stale());
                if let Some(c) = conn {
                    b.node.discard(c);
                }
                if stale {
                    // The node restarted since the connection was pooled.
                    b.node.drop_stale();
                } else if b.blame_node && e.is_node_failure() {
                    blame(b.node, &e);
                }
                for &i in &b.cursor.keys[b.cursor.cursor.min(b.cursor.keys.len())..] {
                    results[i] = Err(e.clone());
                }
            }
        }
    }
}

/// After a node used up the deadline: read what the batches not read yet
/// received meanwhile; those that received nothing are silent too, those that
/// were still sending go on being read for one more I/O timeout.
fn rescue<T>(
    batches: &mut [Batch<'_>],
    op: &'static str,
    results: &mut [Result<T>],
    deadline: Instant,
    io_timeout: Duration,
    on_reply: &mut impl OnReply<T>,
) {
    let extended = deadline + io_timeout;
    for b in batches.iter_mut() {
        if b.error.is_some() || b.done {
            continue;
        }
        let Some(conn) = b.conn.as_mut() else {
            continue;
        };
        let label = b.node.label();
        let r = drain(
            conn,
            label,
            op,
            results,
            &mut b.cursor,
            &mut b.done,
            extended,
            on_reply,
        );
        if let Err(e) = r {
            b.error = Some(e);
        } else if !b.done && !conn.has_received() {
            b.error = Some(Error::Timeout {
                addr: label.to_string(),
                op,
            });
        }
    }
    poll_batches(batches, op, results, extended, on_reply);
}

/// Writes and reads interleaved with poll until every batch is complete,
/// failed, or the deadline passed (then the rest time out).
fn poll_batches<T>(
    batches: &mut [Batch<'_>],
    op: &'static str,
    results: &mut [Result<T>],
    deadline: Instant,
    on_reply: &mut impl OnReply<T>,
) {
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(batches.len());
    let mut which: Vec<usize> = Vec::with_capacity(batches.len());
    loop {
        fds.clear();
        which.clear();
        // TLS may hold decrypted bytes while its socket has nothing to read:
        // those connections are read without waiting.
        let mut buffered = false;
        for (i, b) in batches.iter().enumerate() {
            if b.error.is_some() || b.done {
                continue;
            }
            let Some(conn) = b.conn.as_ref() else {
                continue;
            };
            let mut events = libc::POLLIN;
            if !conn.wbuf.is_empty() {
                events |= libc::POLLOUT;
            }
            buffered |= conn.has_buffered_input();
            fds.push(libc::pollfd {
                fd: conn.fd(),
                events,
                revents: 0,
            });
            which.push(i);
        }
        if fds.is_empty() {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            for &i in &which {
                batches[i].error = Some(Error::Timeout {
                    addr: batches[i].node.label().to_string(),
                    op,
                });
            }
            return;
        }
        let ms = if buffered {
            0
        } else {
            (deadline - now).as_millis().clamp(1, i32::MAX as u128) as i32
        };
        // SAFETY: fds is a valid array of fds.len() pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            for &i in &which {
                batches[i].error = Some(Error::io(
                    batches[i].node.label(),
                    op,
                    std::io::Error::from(e.kind()),
                ));
            }
            return;
        }
        for (slot, &i) in which.iter().enumerate() {
            let b = &mut batches[i];
            let label = b.node.label();
            let Some(conn) = b.conn.as_mut() else {
                continue;
            };
            let mut revents = fds[slot].revents;
            if conn.has_buffered_input() {
                revents |= libc::POLLIN;
            }
            if revents == 0 {
                continue;
            }
            if revents & libc::POLLOUT != 0 && !conn.wbuf.is_empty() {
                match conn.send_nonblocking(b.sent) {
                    Ok(n) if n >= conn.wbuf.len() => {
                        conn.wbuf.clear();
                        b.sent = 0;
                    }
                    Ok(n) => b.sent = n,
                    Err(e) => {
                        b.error = Some(Error::io(label, op, e));
                        continue;
                    }
                }
            }
            if revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0 {
                if let Err(e) = drain(
                    conn,
                    label,
                    op,
                    results,
                    &mut b.cursor,
                    &mut b.done,
                    deadline,
                    on_reply,
                ) {
                    b.error = Some(e);
                }
            }
        }
    }
}

/// Parse what a polled connection received so far, reading without waiting:
/// at most [`DRAIN_BUDGET`] bytes per call and never past `deadline`, so a
/// node that babbles cannot keep the call (or the others) waiting; an element
/// longer than the connection's cap is refused before it is buffered.
#[allow(clippy::too_many_arguments)]
fn drain<T>(
    conn: &mut Conn,
    label: &str,
    op: &'static str,
    results: &mut [Result<T>],
    cursor: &mut Cursor,
    done: &mut bool,
    deadline: Instant,
    on_reply: &mut impl OnReply<T>,
) -> Result<()> {
    let mut needed = None;
    let mut budget = DRAIN_BUDGET;
    loop {
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                addr: label.to_string(),
                op,
            });
        }
        if let Some(n) = needed {
            conn.check_element(label, op, n)?;
        }
        let before = conn.pending().len();
        if !conn
            .fill_nonblocking(needed)
            .map_err(|e| Error::io(label, op, e))?
        {
            return Ok(());
        }
        budget = budget.saturating_sub(conn.pending().len().saturating_sub(before));
        loop {
            match protocol::parse(conn.pending()) {
                Ok(Parse::Done(reply, used)) => {
                    let finished = on_reply(results, cursor, reply, label)?;
                    conn.consume(used);
                    if finished {
                        *done = true;
                        return Ok(());
                    }
                }
                Ok(Parse::Incomplete { needed: n }) => {
                    needed = n;
                    break;
                }
                Err(detail) => {
                    return Err(Error::Protocol {
                        addr: label.to_string(),
                        op,
                        detail,
                    })
                }
            }
        }
        if budget == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KeyOutcome::*;

    #[test]
    fn in_order_replies_with_misses_match_exactly() {
        let req: [&[u8]; 4] = [b"a", b"b", b"c", b"d"];
        assert_eq!(
            match_get_replies(&req, &[b"a", b"c"]),
            vec![Hit(0), Miss, Hit(1), Miss]
        );
        assert_eq!(match_get_replies(&req, &[]), vec![Miss; 4]);
        // A key asked for twice is answered twice.
        let twice: [&[u8]; 2] = [b"a", b"a"];
        assert_eq!(
            match_get_replies(&twice, &[b"a", b"a"]),
            vec![Hit(0), Hit(1)]
        );
    }

    #[test]
    fn anomalies_are_protocol_errors_not_misses() {
        let req: [&[u8]; 3] = [b"a", b"b", b"c"];
        // Out of order: c came first, so a's and b's silence means nothing.
        assert_eq!(
            match_get_replies(&req, &[b"c", b"a"]),
            vec![Protocol, Protocol, Hit(0)]
        );
        // A key not asked for: the misses cannot be trusted.
        assert_eq!(
            match_get_replies(&req, &[b"a", b"zz"]),
            vec![Hit(0), Protocol, Protocol]
        );
        // Twice for one key: that key's value is in doubt too.
        assert_eq!(
            match_get_replies(&req, &[b"a", b"a", b"b"]),
            vec![Protocol, Hit(2), Protocol]
        );
    }
}
