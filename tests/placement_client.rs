//! Placement checked at the client, in reverse: a `Client` built from a
//! discovered (emulated) configuration endpoint writes 10,000 keys over 4 to 10
//! real memcached nodes in every placement mode the library has; each node is
//! asked directly which keys it holds (every key on the node the client names,
//! none anywhere else), and libmemcached and pylibmc (pymemcache for
//! rendezvous, which they lack) must find every key.

mod ring_common;

use std::collections::HashSet;
use std::process::Command;

use elasticache::client::Client;
use elasticache::hash::HashAlgorithm;
use elasticache::options::Options;
use elasticache::protocol::StoreCommand;
use elasticache::ring::Distribution;
use elasticache::testkit::LocalCluster;
use ring_common::{compile_oracle, keys, oracle_script, present, run_oracle};

const KEYS: usize = 10_000;

/// (mode, nodes, hash, libmemcached distribution name, pylibmc behaviors).
const MODES: [(Distribution, usize, HashAlgorithm, &str, &str); 4] = [
    (
        Distribution::Modula,
        4,
        HashAlgorithm::OneAtATime,
        "modula",
        r#"{"hash": "default"}"#,
    ),
    (
        Distribution::Ketama,
        7,
        HashAlgorithm::Md5,
        "ketama",
        r#"{"ketama": true, "hash": "md5"}"#,
    ),
    (
        Distribution::KetamaWeighted,
        10,
        HashAlgorithm::Md5,
        "ketama_weighted",
        r#"{"ketama_weighted": true, "hash": "md5"}"#,
    ),
    (
        Distribution::Rendezvous,
        5,
        HashAlgorithm::OneAtATime,
        "",
        "",
    ),
];

fn hits(out: &str, n: usize) {
    assert_eq!(
        out.lines().last().unwrap_or(""),
        format!("read {n} hits {n}"),
        "misses: {}",
        out.lines().take(5).collect::<Vec<_>>().join(", ")
    );
}

#[test]
fn a_discovered_client_puts_every_key_on_its_node_only() {
    let lmc = compile_oracle("lmc_write", &["-lmemcached"]);
    let mut seen = HashSet::new();
    for (dist, n, hash, lmc_name, behaviors) in MODES {
        seen.insert(dist.name());
        let cluster = LocalCluster::start(n).unwrap();
        let opts = Options {
            distribution: dist,
            hash,
            ..Options::default()
        };
        let c = Client::from_endpoint(&cluster.endpoint_addr(), opts).unwrap();
        let servers = c.servers().unwrap();
        assert_eq!(servers.len(), n);
        let tag = format!("pc-{}", dist.name());
        let ks = keys(&tag, KEYS, 4242 + n as u64, true);
        let items: Vec<(&[u8], &[u8], u32, i64)> =
            ks.iter().map(|k| (k.as_slice(), &b"1"[..], 0, 0)).collect();
        for (k, r) in ks.iter().zip(c.store_multi(StoreCommand::Set, &items)) {
            assert_eq!(
                r,
                Ok(()),
                "{}: {:?}",
                dist.name(),
                String::from_utf8_lossy(k)
            );
        }

        // Ask every node for every key: each key is on exactly the node the
        // client names.
        let all: Vec<&[u8]> = ks.iter().map(|k| k.as_slice()).collect();
        let held: Vec<HashSet<Vec<u8>>> = servers.iter().map(|s| present(s, &all)).collect();
        let mut per_node = vec![0usize; n];
        for k in &ks {
            let owner = c.server_for(k).unwrap();
            let on: Vec<&String> = servers
                .iter()
                .zip(&held)
                .filter(|(_, h)| h.contains(k))
                .map(|(s, _)| s)
                .collect();
            assert_eq!(
                on,
                vec![&owner],
                "{}: {:?} is on {on:?}, the client names {owner}",
                dist.name(),
                String::from_utf8_lossy(k)
            );
            per_node[servers.iter().position(|s| *s == owner).unwrap()] += 1;
        }
        assert!(
            per_node.iter().all(|&c| c > KEYS / n / 3),
            "{}: keys per node {per_node:?}",
            dist.name()
        );

        // The other clients, configured alike, find every key.
        if dist == Distribution::Rendezvous {
            let mut cmd = Command::new("python3");
            cmd.arg(oracle_script("pymemcache_write.py")).arg("--read");
            cmd.args(&servers);
            hits(&run_oracle(&mut cmd, &ks), KEYS);
            continue;
        }
        let mut cmd = Command::new(&lmc);
        cmd.arg(lmc_name)
            .arg(hash.libmemcached_id().to_string())
            .arg("--read");
        cmd.args(servers.iter().map(|s| format!("{s}:1")));
        hits(&run_oracle(&mut cmd, &ks), KEYS);
        let mut cmd = Command::new("python3");
        cmd.arg(oracle_script("pylibmc_write.py"))
            .arg("--read")
            .arg(behaviors);
        cmd.args(&servers);
        hits(&run_oracle(&mut cmd, &ks), KEYS);
    }
    let every: HashSet<&str> = [
        Distribution::Modula,
        Distribution::Ketama,
        Distribution::KetamaWeighted,
        Distribution::Rendezvous,
    ]
    .iter()
    .map(|d| d.name())
    .collect();
    assert_eq!(seen, every, "every placement mode is covered");
}
