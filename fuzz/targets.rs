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
