//! Properties of the placement that hold for any server list: consistent
//! hashing moves few keys when a server comes or goes, and excluding dead
//! servers equals building the ring without them.

mod ring_common;

use elasticache::hash::HashAlgorithm;
use elasticache::ring::{weighted_points, Distribution, Ring, ServerSpec};
use ring_common::keys;

fn servers(n: usize) -> Vec<ServerSpec> {
    (0..n)
        .map(|i| ServerSpec::new(format!("10.1.{}.{}", i / 200, i % 200 + 1), 11211))
        .collect()
}

/// Adding one server to N moves about 1/(N+1) of the keys, all of them to the
/// new server: no key moves between old servers.
#[test]
fn ketama_adding_a_server_moves_only_its_share_to_it() {
    let ks = keys("prop", 20_000, 1, true);
    // ketama_weighted always hashes with md5 and rendezvous with murmur3: one
    // hash each is enough there.
    for (dist, hash) in [
        (Distribution::Ketama, HashAlgorithm::OneAtATime),
        (Distribution::Ketama, HashAlgorithm::Md5),
        (Distribution::Ketama, HashAlgorithm::Murmur3),
        (Distribution::KetamaWeighted, HashAlgorithm::Md5),
        (Distribution::Rendezvous, HashAlgorithm::OneAtATime),
    ] {
        for n in [1usize, 2, 3, 5, 9, 20, 49, 50] {
            let before = Ring::new(&servers(n), dist, hash);
            let after = Ring::new(&servers(n + 1), dist, hash);
            // ketama_weighted gives each server floor(w/W * 40 * live + 1e-10) * 4
            // points in f32: for N = 25, 47, 50, 55, ... 1/N * 40 * N comes
            // out 39.99..., so every server gets 156 points instead of 160
            // (libmemcached does the same: tests/ring_oracle.rs checks it at
            // N = 25) and those points' keys move between old servers.
            let full = |m: usize| weighted_points(1, m as u64, m) == 160;
            let strict = dist != Distribution::KetamaWeighted || (full(n) && full(n + 1));
            let mut moved = 0;
            let mut between_old = 0;
            for k in &ks {
                let (a, b) = (before.owner(k).unwrap(), after.owner(k).unwrap());
                if a != b && b == n {
                    moved += 1;
                } else if a != b {
                    between_old += 1;
                }
            }
            if strict {
                assert_eq!(
                    between_old, 0,
                    "{dist:?} {hash:?} n={n}: keys moved between old servers"
                );
            } else {
                assert!(
                    between_old > 0 && between_old * 20 < ks.len(),
                    "{dist:?} n={n}: {between_old}"
                );
            }
            let share = moved as f64 / ks.len() as f64;
            let expect = 1.0 / (n + 1) as f64;
            // 100 points per server: the share wanders, but not far.
            assert!(
                share > expect * 0.5 && share < expect * 1.6,
                "{dist:?} {hash:?} n={n}: moved {share:.4}, expected about {expect:.4}"
            );
        }
    }
}

/// Removing one server moves only the keys it owned.
#[test]
fn removing_a_server_moves_only_its_keys() {
    let ks = keys("prop", 20_000, 2, true);
    for dist in [Distribution::Ketama, Distribution::Rendezvous] {
        for n in [2usize, 3, 7, 30] {
            let list = servers(n);
            let full = Ring::new(&list, dist, HashAlgorithm::OneAtATime);
            for gone in [0, n / 2, n - 1] {
                let mut rest = list.clone();
                rest.remove(gone);
                let smaller = Ring::new(&rest, dist, HashAlgorithm::OneAtATime);
                let mut moved = 0;
                for k in &ks {
                    let a = full.owner(k).unwrap();
                    let mut b = smaller.owner(k).unwrap();
                    if b >= gone {
                        b += 1; // back to the full list's numbering
                    }
                    if a != gone {
                        assert_eq!(a, b, "{dist:?} n={n}: a key of a remaining server moved");
                    } else {
                        moved += 1;
                    }
                }
                assert!(moved > 0);
            }
        }
    }
}

/// `with_live` equals a ring built over the live servers only (indexes mapped
/// back), for the consistent modes; modula never moves a key.
#[test]
fn with_live_is_the_ring_without_the_dead() {
    let ks = keys("live", 5_000, 3, true);
    let mut list = servers(8);
    for (i, s) in list.iter_mut().enumerate() {
        s.weight = 1 + (i as u32 % 3);
    }
    let live = [true, false, true, true, false, true, true, true];
    let live_idx: Vec<usize> = (0..8).filter(|&i| live[i]).collect();
    let subset: Vec<ServerSpec> = live_idx.iter().map(|&i| list[i].clone()).collect();
    for hash in HashAlgorithm::ALL {
        for dist in [
            Distribution::Ketama,
            Distribution::KetamaWeighted,
            Distribution::Rendezvous,
        ] {
            let a = Ring::with_live(&list, &live, dist, hash);
            let b = Ring::new(&subset, dist, hash);
            assert_eq!(a.live_count(), 6);
            for k in &ks {
                assert_eq!(
                    a.owner(k),
                    b.owner(k).map(|i| live_idx[i]),
                    "{dist:?} {hash:?}"
                );
            }
        }
        let m = Ring::with_live(&list, &live, Distribution::Modula, hash);
        let full = Ring::new(&list, Distribution::Modula, hash);
        assert!(ks.iter().all(|k| m.owner(k) == full.owner(k)));
    }
}

/// Weights shift load in proportion; equal weights give each server about 1/N.
#[test]
fn ketama_weighted_follows_weights() {
    let ks = keys("w", 40_000, 4, true);
    let mut list = servers(4);
    let weights = [1u32, 2, 3, 4];
    for (s, w) in list.iter_mut().zip(weights) {
        s.weight = w;
    }
    let ring = Ring::new(
        &list,
        Distribution::KetamaWeighted,
        HashAlgorithm::OneAtATime,
    );
    let mut count = [0usize; 4];
    for k in &ks {
        count[ring.owner(k).unwrap()] += 1;
    }
    for (i, w) in weights.iter().enumerate() {
        let share = count[i] as f64 / ks.len() as f64;
        let expect = *w as f64 / 10.0;
        assert!(
            (share - expect).abs() < expect * 0.3,
            "server {i}: {share:.3} vs {expect:.3}"
        );
    }
}

/// Host strings are hashed exactly as given: an IP and a host name for the
/// same node are different rings (callers choose which to pass).
#[test]
fn host_strings_are_used_as_given() {
    let ks = keys("name", 2_000, 5, false);
    let by_ip = vec![
        ServerSpec::new("10.0.0.1", 11211),
        ServerSpec::new("10.0.0.2", 11211),
    ];
    let by_name = vec![
        ServerSpec::new("node1.cache.amazonaws.com", 11211),
        ServerSpec::new("node2.cache.amazonaws.com", 11211),
    ];
    let a = Ring::new(&by_ip, Distribution::Ketama, HashAlgorithm::OneAtATime);
    let b = Ring::new(&by_name, Distribution::Ketama, HashAlgorithm::OneAtATime);
    assert!(ks.iter().any(|k| a.owner(k) != b.owner(k)));
    // Port 11211 is left out of the point names, any other port is not.
    let c = Ring::new(
        &[
            ServerSpec::new("10.0.0.1", 11212),
            ServerSpec::new("10.0.0.2", 11212),
        ],
        Distribution::Ketama,
        HashAlgorithm::OneAtATime,
    );
    assert!(ks.iter().any(|k| a.owner(k) != c.owner(k)));
}

/// Rings far beyond libmemcached's 100-server limit build and answer, and
/// every server gets keys.
#[test]
fn large_rings_work() {
    for (dist, n) in [
        (Distribution::Ketama, 1000),
        (Distribution::KetamaWeighted, 1000),
        (Distribution::Rendezvous, 300),
    ] {
        let ring = Ring::new(&servers(n), dist, HashAlgorithm::OneAtATime);
        let mut hit = vec![false; n];
        for k in keys("big", 30 * n, 6, true) {
            hit[ring.owner(&k).unwrap()] = true;
        }
        assert!(
            hit.iter().filter(|h| **h).count() > n * 95 / 100,
            "{dist:?}"
        );
    }
}
