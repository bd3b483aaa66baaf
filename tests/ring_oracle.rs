//! The placement oracle: real clients write keys to real memcached servers,
//! the servers say where each key landed, and our ring must agree on every key.
//!
//! * libmemcached 1.1.4 (Debian's C API, `tests/oracle/lmc_write.c`): modula,
//!   ketama and ketama_weighted with every hash it is built with (all but
//!   hsieh), 1 to 10 servers, port 11211 on distinct loopback addresses and
//!   other ports, unequal weights, 10,000 keys per case (ASCII, UTF-8,
//!   250-byte, non-UTF-8 bytes), and dead servers under `remove_failed`.
//! * pylibmc 1.6.3 with its bundled libmemcached 1.0.16: the same modes with
//!   every hash pylibmc names.
//! * pymemcache 4's HashClient: rendezvous, 1 to 10 servers.

mod ring_common;

use std::process::Command;
use std::time::Instant;

use elasticache::hash::HashAlgorithm;
use elasticache::ring::{Distribution, Ring, ServerSpec};
use elasticache::testkit::Memcached;
use ring_common::{assert_placement, compile_oracle, keys, oracle_script, run_oracle, Pool};

const KEYS: usize = 10_000;

/// The servers of one case: `n` from the pool, on port 11211 or not, or mixed.
fn pick(pool: &Pool, n: usize, style: usize) -> Vec<&Memcached> {
    (0..n)
        .map(|i| match style {
            0 => &pool.default[i],
            1 => &pool.other[i],
            _ if i % 2 == 0 => &pool.default[i],
            _ => &pool.other[i],
        })
        .collect()
}

fn specs(servers: &[&Memcached], weights: &[u32]) -> Vec<ServerSpec> {
    servers
        .iter()
        .zip(weights)
        .map(|(m, &w)| ServerSpec {
            host: m.ip().to_string(),
            port: m.port(),
            weight: w,
        })
        .collect()
}

fn addrs(servers: &[&Memcached]) -> Vec<String> {
    servers.iter().map(|m| m.addr()).collect()
}

const LMC_DISTS: [(&str, Distribution); 3] = [
    ("modula", Distribution::Modula),
    ("ketama", Distribution::Ketama),
    ("ketama_weighted", Distribution::KetamaWeighted),
];

fn lmc_hashes() -> Vec<HashAlgorithm> {
    HashAlgorithm::ALL
        .into_iter()
        .filter(|h| *h != HashAlgorithm::Hsieh)
        .collect()
}

#[test]
fn libmemcached_places_every_key_where_the_ring_does() {
    let t0 = Instant::now();
    let pool = Pool::start(10, 1);
    let oracle = compile_oracle("lmc_write", &["-lmemcached"]);
    let mut cases = 0;
    let mut checked = 0;
    let mut counts_seen = [[false; 11]; 3];
    for (di, (dname, dist)) in LMC_DISTS.iter().enumerate() {
        for (hi, hash) in lmc_hashes().into_iter().enumerate() {
            // Every distribution meets every server count 1..=10 and both port
            // styles.
            let n = 1 + (hi + 7 * di) % 10;
            let style = (hi + di) % 2;
            counts_seen[di][n] = true;
            let servers = pick(&pool, n, style);
            // Unequal weights for ketama_weighted, for half the ketama cases
            // (which then builds weighted points but keeps its hash), and for
            // modula (which ignores them).
            let weighted = *dist != Distribution::Ketama || hi % 2 == 0;
            let weights: Vec<u32> = (0..n)
                .map(|j| {
                    if weighted {
                        1 + ((j * 5 + hi) % 4) as u32
                    } else {
                        1
                    }
                })
                .collect();
            let ring = Ring::new(&specs(&servers, &weights), *dist, hash);
            let tag = format!("lmc{di}.{hi}");
            let ks = keys(&tag, KEYS, (di * 100 + hi) as u64, true);
            let mut cmd = Command::new(&oracle);
            cmd.arg(dname).arg(hash.libmemcached_id().to_string());
            for (m, w) in servers.iter().zip(&weights) {
                cmd.arg(format!("{}:{}:{w}", m.ip(), m.port()));
            }
            let out = run_oracle(&mut cmd, &ks);
            assert_eq!(out.trim(), format!("written {}", ks.len()));
            checked += assert_placement(
                &format!("libmemcached {dname} {} n={n} style={style}", hash.name()),
                &addrs(&servers),
                &ks,
                |k| ring.owner(k).unwrap(),
            );
            cases += 1;
        }
    }
    // One ring mixing port 11211 and other ports.
    let servers = pick(&pool, 7, 2);
    let ring = Ring::new(
        &specs(&servers, &[1; 7]),
        Distribution::Ketama,
        HashAlgorithm::OneAtATime,
    );
    let ks = keys("lmcmix", KEYS, 999, true);
    let mut cmd = Command::new(&oracle);
    cmd.args(["ketama", "0"]);
    for m in &servers {
        cmd.arg(format!("{}:{}:1", m.ip(), m.port()));
    }
    run_oracle(&mut cmd, &ks);
    checked += assert_placement(
        "libmemcached ketama mixed ports",
        &addrs(&servers),
        &ks,
        |k| ring.owner(k).unwrap(),
    );
    cases += 1;

    for (di, seen) in counts_seen.iter().enumerate() {
        assert!(
            seen[1..].iter().all(|&s| s),
            "dist {di} covers 1..=10 servers"
        );
    }
    assert_eq!(cases, 31);
    assert_eq!(checked, 31 * KEYS);
    eprintln!(
        "libmemcached oracle: {cases} cases, {checked} keys, {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}

/// How many keys land on a continuum value that several servers share.
fn keys_on_tied_points(ring: &Ring, hash: HashAlgorithm, ks: &[Vec<u8>]) -> usize {
    let pts = ring.points();
    let tied = |i: usize| {
        let v = pts[i].0;
        pts.iter().filter(|p| p.0 == v).map(|p| p.1).min()
            != pts.iter().filter(|p| p.0 == v).map(|p| p.1).max()
    };
    ks.iter()
        .filter(|k| {
            let h = hash.hash(k);
            let p = pts.partition_point(|&(v, _)| v < h);
            tied(if p == pts.len() { 0 } else { p })
        })
        .count()
}

/// Ways to write an IPv4 address that the resolver (inet_aton) reads as the
/// same address: each part in decimal, octal or hex, and the merged forms.
fn spellings(ip: &str) -> Vec<String> {
    let p: Vec<u32> = ip.split('.').map(|x| x.parse().unwrap()).collect();
    let forms = |x: u32| [format!("{x}"), format!("0{x:o}"), format!("0x{x:x}")];
    let mut out = Vec::new();
    for a in forms(p[0]) {
        for b in forms(p[1]) {
            for c in forms(p[2]) {
                for d in forms(p[3]) {
                    out.push(format!("{a}.{b}.{c}.{d}"));
                }
            }
        }
    }
    let all = (p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
    out.push(format!("{}.{}.{}", p[0], p[1], (p[2] << 8) | p[3]));
    out.push(format!("{}.{}", p[0], all & 0xff_ffff));
    out.push(format!("{all}"));
    out.push(format!("0x{all:08x}"));
    out
}

/// Points of different servers with equal values are rare (crc's 15 bits over
/// similar names collide less than chance would), so this case picks, among
/// equivalent spellings of each server's address, names whose crc points tie
/// often, then checks that libmemcached sends every key on a tie where we do:
/// to the lowest server index, its comparator's order.
#[test]
fn libmemcached_continuum_ties_go_to_the_lower_index() {
    let pool = Pool::start_kinds(10, 0, 5);
    let oracle = compile_oracle("lmc_write", &["-lmemcached"]);
    let hash = HashAlgorithm::Crc;
    let options: Vec<Vec<String>> = pool.default.iter().map(|m| spellings(m.ip())).collect();
    let mut rng = ring_common::Rng::new(11);
    let mut best: Option<(usize, Vec<ServerSpec>)> = None;
    for _ in 0..300 {
        let list: Vec<ServerSpec> = options
            .iter()
            .zip(&pool.default)
            .map(|(o, m)| ServerSpec::new(o[rng.below(o.len() as u64) as usize].clone(), m.port()))
            .collect();
        let pts = Ring::new(&list, Distribution::Ketama, hash).points();
        let ties = pts
            .windows(2)
            .filter(|w| w[0].0 == w[1].0 && w[0].1 != w[1].1)
            .count();
        if best.as_ref().map_or(true, |b| ties > b.0) {
            best = Some((ties, list));
        }
    }
    let (ties, list) = best.unwrap();
    assert!(ties >= 50, "only {ties} tied points");
    let ring = Ring::new(&list, Distribution::Ketama, hash);
    let ks = keys("tie", KEYS, 77, true);
    let tied = keys_on_tied_points(&ring, hash, &ks);
    assert!(tied >= 100, "only {tied} keys land on tied points");
    let mut cmd = Command::new(&oracle);
    cmd.arg("ketama").arg(hash.libmemcached_id().to_string());
    for s in &list {
        cmd.arg(format!("{}:{}:1", s.host, s.port));
    }
    run_oracle(&mut cmd, &ks);
    let servers: Vec<&Memcached> = pool.default.iter().collect();
    assert_placement("libmemcached ketama crc ties", &addrs(&servers), &ks, |k| {
        ring.owner(k).unwrap()
    });
}

/// ketama_weighted's per-server points come from single-precision arithmetic:
/// with 25 servers of equal weight, `1/25 * 40 * 25 + 1e-10` is 39.99... in
/// f32, so each server gets 156 points, not 160 (double precision would give
/// 160). 25 names over 10 real servers (different spellings of their
/// addresses), checked through both libmemcached 1.1.4 and pylibmc's 1.0.16.
#[test]
fn ketama_weighted_point_counts_use_single_precision() {
    let pool = Pool::start_kinds(10, 0, 6);
    let oracle = compile_oracle("lmc_write", &["-lmemcached"]);
    assert_eq!(elasticache::ring::weighted_points(1, 25, 25), 156);
    let options: Vec<Vec<String>> = pool.default.iter().map(|m| spellings(m.ip())).collect();
    let list: Vec<ServerSpec> = (0..25)
        .map(|j| ServerSpec::new(options[j % 10][j / 10 * 7].clone(), 11211))
        .collect();
    let physical: Vec<String> = (0..25).map(|j| pool.default[j % 10].addr()).collect();
    let ring = Ring::new(&list, Distribution::KetamaWeighted, HashAlgorithm::Md5);
    assert_eq!(ring.points().len(), 25 * 156);
    for (who, tag) in [("libmemcached", "w25c"), ("pylibmc", "w25p")] {
        let ks = keys(tag, KEYS, 25, true);
        let mut cmd = if who == "libmemcached" {
            let mut c = Command::new(&oracle);
            c.args(["ketama_weighted", "1"]);
            c
        } else {
            let mut c = Command::new("python3");
            c.arg(oracle_script("pylibmc_write.py"))
                .arg(r#"{"ketama_weighted": true}"#);
            c
        };
        for s in &list {
            cmd.arg(format!("{}:{}:1", s.host, s.port));
        }
        run_oracle(&mut cmd, &ks);
        assert_placement(
            &format!("{who} ketama_weighted 25 servers"),
            &physical,
            &ks,
            |k| ring.owner(k).unwrap(),
        );
    }
}

#[test]
fn libmemcached_remove_failed_rebuilds_without_dead_servers() {
    let pool = Pool::start(6, 2);
    let oracle = compile_oracle("lmc_write", &["-lmemcached"]);
    // Dead servers: free ports on 127.0.0.1 where nothing listens.
    let dead_ports: Vec<u16> = (0..2)
        .map(|_| elasticache::testkit::memcached::free_port("127.0.0.1").unwrap())
        .collect();
    struct Case {
        dist: Distribution,
        hash: HashAlgorithm,
        n: usize,
        style: usize,
        dead: &'static [usize],
        weights: &'static [u32],
    }
    let (k, kw) = (Distribution::Ketama, Distribution::KetamaWeighted);
    let cases = [
        Case {
            dist: k,
            hash: HashAlgorithm::OneAtATime,
            n: 5,
            style: 0,
            dead: &[2],
            weights: &[1; 5],
        },
        Case {
            dist: k,
            hash: HashAlgorithm::Md5,
            n: 6,
            style: 1,
            dead: &[0, 4],
            weights: &[1; 6],
        },
        Case {
            dist: kw,
            hash: HashAlgorithm::Md5,
            n: 6,
            style: 0,
            dead: &[1, 3],
            weights: &[3, 1, 2, 4, 1, 2],
        },
        Case {
            dist: kw,
            hash: HashAlgorithm::Md5,
            n: 4,
            style: 1,
            dead: &[3],
            weights: &[1, 2, 3, 4],
        },
    ];
    for (ci, c) in cases.iter().enumerate() {
        let (dist, hash, n, style, dead, weights) =
            (c.dist, c.hash, c.n, c.style, c.dead, c.weights);
        let live_servers = pick(&pool, n, style);
        // Server list: the pool's servers with the dead ones swapped in.
        let mut list: Vec<ServerSpec> = specs(&live_servers, weights);
        let mut addr_list = addrs(&live_servers);
        let mut live = vec![true; n];
        for (j, &d) in dead.iter().enumerate() {
            list[d].host = "127.0.0.1".into();
            list[d].port = dead_ports[j];
            addr_list[d] = format!("127.0.0.1:{}", dead_ports[j]);
            live[d] = false;
        }
        let ring = Ring::with_live(&list, &live, dist, hash);
        let full = Ring::new(&list, dist, hash);
        let ks = keys(&format!("dead{ci}"), KEYS, 500 + ci as u64, true);
        let mut cmd = Command::new(&oracle);
        cmd.arg(dist.name())
            .arg(hash.libmemcached_id().to_string())
            .arg("--remove-failed");
        for s in &list {
            cmd.arg(format!("{}:{}:{}", s.host, s.port, s.weight));
        }
        let out = run_oracle(&mut cmd, &ks);
        assert_eq!(out.trim(), format!("written {}", ks.len()), "no set failed");
        // Some keys must have moved, or the case proves nothing.
        let moved = ks.iter().filter(|k| ring.owner(k) != full.owner(k)).count();
        assert!(moved > KEYS / 20, "case {ci}: only {moved} keys moved");
        let live_addrs: Vec<String> = addr_list.clone();
        assert_placement(
            &format!("libmemcached remove_failed case {ci}"),
            &live_addrs,
            &ks,
            |k| {
                let o = ring.owner(k).unwrap();
                assert!(live[o]);
                o
            },
        );
    }
}

const PYLIBMC_HASHES: [&str; 9] = [
    "default", "md5", "crc", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32", "murmur", "jenkins",
];

#[test]
fn pylibmc_places_every_key_where_the_ring_does() {
    let t0 = Instant::now();
    let pool = Pool::start(10, 3);
    let script = oracle_script("pylibmc_write.py");
    let mut checked = 0;
    for (di, (_, dist)) in LMC_DISTS.iter().enumerate() {
        for (hi, hname) in PYLIBMC_HASHES.iter().enumerate() {
            let n = 1 + (hi * 3 + di * 5) % 10;
            let style = (hi + di + 1) % 2;
            let servers = pick(&pool, n, style);
            // Unequal weights in every mode: pylibmc adds the servers before
            // it sets behaviors, so modula and ketama ignore them (our ring too).
            let weights: Vec<u32> = (0..n).map(|j| 1 + ((j + hi) % 3) as u32).collect();
            let behaviors = match dist {
                Distribution::Modula => format!(r#"{{"hash": "{hname}"}}"#),
                Distribution::Ketama => format!(r#"{{"ketama": true, "hash": "{hname}"}}"#),
                _ => format!(r#"{{"ketama_weighted": true, "hash": "{hname}"}}"#),
            };
            let hash = HashAlgorithm::from_name(hname).unwrap();
            let ring = Ring::new(&specs(&servers, &weights), *dist, hash);
            let ks = keys(&format!("py{di}.{hi}"), 2_000, 7000 + hi as u64, true);
            let mut cmd = Command::new("python3");
            cmd.arg(&script).arg(&behaviors);
            for (m, w) in servers.iter().zip(&weights) {
                cmd.arg(format!("{}:{}:{w}", m.ip(), m.port()));
            }
            run_oracle(&mut cmd, &ks);
            checked += assert_placement(
                &format!("pylibmc {behaviors} n={n} style={style}"),
                &addrs(&servers),
                &ks,
                |k| ring.owner(k).unwrap(),
            );
        }
    }
    assert_eq!(checked, 27 * 2_000);
    eprintln!(
        "pylibmc oracle: {checked} keys, {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn pymemcache_rendezvous_places_every_key_where_the_ring_does() {
    let t0 = Instant::now();
    let pool = Pool::start(10, 4);
    let script = oracle_script("pymemcache_write.py");
    let mut checked = 0;
    for n in 1..=10 {
        let servers = pick(&pool, n, n % 2);
        // Whatever hash is passed, rendezvous uses pymemcache's murmur3.
        let hash = HashAlgorithm::ALL[n % 11];
        let ring = Ring::new(
            &specs(&servers, &vec![1; n]),
            Distribution::Rendezvous,
            hash,
        );
        let count = if n <= 4 { KEYS } else { 4_000 };
        let ks = keys(&format!("rv{n}"), count, 300 + n as u64, true);
        let mut cmd = Command::new("python3");
        cmd.arg(&script);
        for m in &servers {
            cmd.arg(m.addr());
        }
        run_oracle(&mut cmd, &ks);
        checked += assert_placement(
            &format!("pymemcache rendezvous n={n}"),
            &addrs(&servers),
            &ks,
            |k| ring.owner(k).unwrap(),
        );
    }
    assert!(checked >= 4 * KEYS);
    eprintln!(
        "pymemcache oracle: {checked} keys, {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}
