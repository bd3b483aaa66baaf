//! What every fuzz input must satisfy, shared by the libFuzzer targets
//! (fuzz/fuzz_targets) and the corpus replay of `cargo test`
//! (tests/fuzz_corpus.rs). A panic here is a finding.
//!
//! Beyond "no panic", both parsers are checked for what a streaming reader
//! relies on: a reply that parses whole also parses when it arrives in pieces
//! (every prefix says "incomplete", never an error or another answer).

#![allow(dead_code)]

use elasticache::discovery::{self, Reply, MAX_NODES};
use elasticache::protocol::{self, Parse, MAX_DATA_LEN, MAX_LINE_LEN};
use elasticache::Status;

const ENDPOINT: &str = "fuzz.cfg:11211";

/// Where to cut a buffer of `len` bytes: every place for short ones, a
/// spread plus the last few for long ones (keeps a run linear enough).
fn cuts(len: usize) -> Vec<usize> {
    if len <= 2048 {
        (0..len).collect()
    } else {
        let mut v: Vec<usize> = (0..128).map(|i| i * len / 128).collect();
        v.extend(len.saturating_sub(16)..len);
        v
    }
}

/// The discovery reply parser, then the payload parser on the same bytes.
pub fn discovery_reply(data: &[u8]) {
    let whole = discovery::parse_reply(ENDPOINT, data);
    match &whole {
        Ok(Reply::Config(c)) => {
            check_config(c);
            for cut in cuts(data.len()) {
                match discovery::parse_reply(ENDPOINT, &data[..cut]) {
                    Ok(Reply::Incomplete) => {}
                    Ok(Reply::Config(p)) => assert_eq!(&p, c, "prefix of {cut} bytes"),
                    other => panic!("prefix of {cut} bytes: {other:?}, whole: config"),
                }
            }
        }
        Ok(_) => {}
        Err(e) => {
            assert_eq!(e.status(), Status::Discovery, "{e}");
            assert!(e.to_string().contains(ENDPOINT), "{e}");
        }
    }
    match discovery::parse_payload(ENDPOINT, data) {
        Ok(c) => check_config(&c),
        Err(e) => assert_eq!(e.status(), Status::Discovery, "{e}"),
    }
}

fn check_config(c: &discovery::Config) {
    assert!(!c.nodes.is_empty() && c.nodes.len() <= MAX_NODES);
    for n in &c.nodes {
        assert!(n.port != 0);
        assert!(!n.connect_host().is_empty());
    }
}

/// The memcached reply parser over a stream of elements.
pub fn memcached_reply(data: &[u8]) {
    let mut buf = data;
    loop {
        match protocol::parse(buf) {
            Ok(Parse::Done(reply, used)) => {
                assert!(
                    used > 0 && used <= buf.len(),
                    "used {used} of {}",
                    buf.len()
                );
                // The element's own bytes give the same answer: nothing after
                // it was looked at.
                assert_eq!(protocol::parse(&buf[..used]), Ok(Parse::Done(reply, used)));
                for cut in cuts(used) {
                    match protocol::parse(&buf[..cut]) {
                        Ok(Parse::Incomplete { needed }) => {
                            if let Some(n) = needed {
                                assert_eq!(n, used, "prefix of {cut} bytes");
                            }
                        }
                        other => panic!("prefix of {cut} of {used} bytes: {other:?}"),
                    }
                }
                buf = &buf[used..];
            }
            Ok(Parse::Incomplete { needed }) => {
                if let Some(n) = needed {
                    assert!(n > buf.len(), "needed {n} of {} bytes", buf.len());
                    assert!(n <= MAX_DATA_LEN + MAX_LINE_LEN + 2, "needed {n}");
                }
                return;
            }
            Err(detail) => {
                assert!(!detail.is_empty());
                // Quoted, not copied: an error message stays small.
                assert!(detail.len() < 2048, "{} byte message", detail.len());
                return;
            }
        }
    }
}

/// The multi-get reply matcher (`elasticache::client::batch::match_get_replies`).
/// Input: the keys one node was asked for, a 0xFF byte, then the keys of its
/// `VALUE` replies in the order they came; keys are separated by spaces.
pub fn multiget_match(data: &[u8]) {
    use elasticache::client::batch::{match_get_replies, KeyOutcome};
    let (asked, answered) = match data.iter().position(|&b| b == 0xFF) {
        Some(p) => (&data[..p], &data[p + 1..]),
        None => (data, &data[..0]),
    };
    let asked: Vec<Vec<u8>> = asked
        .split(|&c| c == b' ')
        .filter(|k| !k.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let answered: Vec<Vec<u8>> = answered
        .split(|&c| c == b' ')
        .filter(|k| !k.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let requested: Vec<&[u8]> = asked.iter().map(Vec::as_slice).collect();
    let replies: Vec<&[u8]> = answered.iter().map(Vec::as_slice).collect();
    let out = match_get_replies(&requested, &replies);
    assert_eq!(out.len(), requested.len());
    let mut used = vec![false; replies.len()];
    for (i, o) in out.iter().enumerate() {
        if let KeyOutcome::Hit(r) = *o {
            assert!(r < replies.len(), "hit {r} of {} replies", replies.len());
            assert_eq!(replies[r], requested[i], "a hit's reply names its key");
            assert!(!used[r], "reply {r} used twice");
            used[r] = true;
        }
    }
    // Replies that are the requested keys in request order (a subsequence,
    // each at most once) are the normal case: never a protocol error, and
    // every reply is a hit.
    let mut j = 0;
    let in_order = replies.iter().all(|r| {
        while j < requested.len() && requested[j] != *r {
            j += 1;
        }
        let found = j < requested.len();
        j += 1;
        found
    });
    let unique_requests = {
        let mut v = requested.clone();
        v.sort();
        v.windows(2).all(|w| w[0] != w[1])
    };
    if in_order && unique_requests {
        assert!(!out.contains(&KeyOutcome::Protocol), "{out:?}");
        assert_eq!(used.iter().filter(|&&u| u).count(), replies.len());
    }
}
