//! `ecctl route` (examples/c/ecctl_route.c, built here against the library the
//! tests use) and the ring's C API agree with the Rust ring, for keys given as
//! arguments and streamed on stdin.

mod ring_common;

use std::ffi::{c_char, CStr, CString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::ptr;

use elasticache::ffi::options::*;
use elasticache::ffi::ring::*;
use elasticache::hash::HashAlgorithm;
use elasticache::ring::{Distribution, Ring, ServerSpec};
use elasticache::Status;

/// Whether `artifact` exists and is newer than every file under `src`.
fn fresh(artifact: &Path, src: &Path) -> bool {
    fn newest(dir: &Path) -> std::time::SystemTime {
        let mut t = std::time::SystemTime::UNIX_EPOCH;
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let m = if p.is_dir() {
                newest(&p)
            } else {
                e.metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
            };
            t = t.max(m);
        }
        t
    }
    std::fs::metadata(artifact)
        .and_then(|m| m.modified())
        .is_ok_and(|built| built > newest(src))
}

fn build_ecctl() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // target/<profile>/deps/<this test> -> target/<profile>, where cargo puts
    // the .so. `cargo test` builds only the rlib, so build the shared library
    // of this very profile now (a no-op when it is fresh). Once per process.
    static BUILT: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let exe = std::env::current_exe().unwrap();
    let lib_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    {
        let mut built = BUILT.lock().unwrap();
        // A nested cargo run inside `cargo test` sees a different environment
        // and rebuilds ring/rustls for minutes (then the outer cargo rebuilds
        // them back): only build when no library newer than the sources is
        // there (`make all` ran first in scripts/test.sh).
        if !*built && !fresh(&lib_dir.join("libelasticache.so"), &root.join("src")) {
            let profile = lib_dir.file_name().unwrap().to_str().unwrap();
            let profile = if profile == "debug" { "dev" } else { profile };
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let st = Command::new(cargo)
                .args(["build", "--lib", "--profile", profile])
                .current_dir(root)
                .status()
                .unwrap();
            assert!(st.success(), "cargo build --lib failed");
            *built = true;
        }
    }
    assert!(
        lib_dir.join("libelasticache.so").exists(),
        "{}",
        lib_dir.display()
    );
    // One executable per call: exec'ing a file another test thread's compiler
    // is still writing fails (ETXTBSY).
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ecctl-{}-{seq}", std::process::id()));
    let mut cmd = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cmd.args([
        "-O2",
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Wpedantic",
        "-Werror",
        "-I",
    ])
    .arg(root.join("include"))
    .arg("-o")
    .arg(&out);
    // Every ecctl*.c, as the Makefile's wildcard takes them.
    let mut sources: Vec<PathBuf> = std::fs::read_dir(root.join("examples/c"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("ecctl") && name.ends_with(".c")
        })
        .collect();
    sources.sort();
    cmd.args(&sources);
    cmd.arg("-L")
        .arg(&lib_dir)
        .arg("-lelasticache")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()));
    assert!(cmd.status().unwrap().success(), "building ecctl failed");
    out
}

fn servers() -> (Vec<&'static str>, Vec<ServerSpec>) {
    let given = vec![
        "127.0.0.2:11211",
        "127.0.0.3",
        "cache-1.example:11212",
        "[::1]:11213",
    ];
    let specs = vec![
        ServerSpec::new("127.0.0.2", 11211),
        ServerSpec::new("127.0.0.3", 11211),
        ServerSpec::new("cache-1.example", 11212),
        ServerSpec::new("::1", 11213),
    ];
    (given, specs)
}

const SHOWN: [&str; 4] = [
    "127.0.0.2:11211",
    "127.0.0.3:11211",
    "cache-1.example:11212",
    "[::1]:11213",
];

#[test]
fn ecctl_route_matches_the_ring() {
    let ecctl = build_ecctl();
    let (given, mut specs) = servers();
    let weights = [1u32, 3, 2, 5];
    for (s, w) in specs.iter_mut().zip(weights) {
        s.weight = w;
    }
    let ks = ring_common::keys("ecctl", 20_000, 9, false);
    for (dist, hash) in [
        (Distribution::Ketama, HashAlgorithm::OneAtATime),
        (Distribution::Ketama, HashAlgorithm::Fnv1a_32),
        (Distribution::Modula, HashAlgorithm::Crc),
        (Distribution::KetamaWeighted, HashAlgorithm::OneAtATime),
        (Distribution::Rendezvous, HashAlgorithm::OneAtATime),
    ] {
        let ring = Ring::new(&specs, dist, hash);
        let mut args = vec![
            "route".to_string(),
            "--distribution".into(),
            dist.name().into(),
            "--hash".into(),
            hash.name().into(),
            "--weights".into(),
            "1,3,2,5".into(),
            "--servers".into(),
            given.join(","),
        ];
        // Keys as arguments.
        let few: Vec<String> = ks[..50]
            .iter()
            .map(|k| String::from_utf8(k.clone()).unwrap())
            .collect();
        args.extend(few.iter().cloned());
        let out = Command::new(&ecctl).args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), few.len());
        for (k, line) in few.iter().zip(&lines) {
            let want = SHOWN[ring.owner(k.as_bytes()).unwrap()];
            assert_eq!(*line, format!("{k} {want}"), "{dist:?} {hash:?}");
        }
        // Keys on stdin, some with CRLF line ends.
        args.truncate(9);
        let mut child = Command::new(&ecctl)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = Vec::new();
        for (i, k) in ks.iter().enumerate() {
            input.extend_from_slice(k);
            input.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n" });
        }
        let mut stdin = child.stdin.take().unwrap();
        let w = std::thread::spawn(move || stdin.write_all(&input).unwrap());
        let out = child.wait_with_output().unwrap();
        w.join().unwrap();
        assert!(out.status.success());
        let mut n = 0;
        for (k, line) in ks.iter().zip(out.stdout.split(|&b| b == b'\n')) {
            let mut want = k.clone();
            want.push(b' ');
            want.extend_from_slice(SHOWN[ring.owner(k).unwrap()].as_bytes());
            assert_eq!(line, &want[..]);
            n += 1;
        }
        assert_eq!(n, ks.len());
        assert_eq!(out.stdout.iter().filter(|&&b| b == b'\n').count(), ks.len());
    }
}

#[test]
fn ecctl_route_rejects_bad_arguments() {
    let ecctl = build_ecctl();
    for args in [
        vec!["route", "k"],
        vec!["route", "--servers", "a,b", "--weights", "1", "k"],
        vec!["route", "--servers", "a,b", "--weights", "1,0", "k"],
        vec!["route", "--servers", "a", "--hash", "sha1", "k"],
        vec!["route", "--servers", "a", "--distribution", "random", "k"],
        vec!["route", "--servers", "a:0", "k"],
        vec!["route", "--bogus", "--servers", "a", "k"],
    ] {
        let out = Command::new(&ecctl).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn c_api_lookup_and_server() {
    let (given, specs) = servers();
    let cs: Vec<CString> = given.iter().map(|s| CString::new(*s).unwrap()).collect();
    let ptrs: Vec<*const c_char> = cs.iter().map(|c| c.as_ptr()).collect();
    unsafe {
        let mut opts = ptr::null_mut();
        assert_eq!(elasticache_options_new(&mut opts), Status::Ok);
        let set = |n: &str, v: &str| {
            let (n, v) = (CString::new(n).unwrap(), CString::new(v).unwrap());
            assert_eq!(
                elasticache_options_set(opts, n.as_ptr(), v.as_ptr()),
                Status::Ok
            );
        };
        set("distribution", "ketama");
        set("hash", "md5");
        let mut ring = ptr::null_mut();
        assert_eq!(
            elasticache_ring_new(ptrs.as_ptr(), ptrs.len(), ptr::null(), opts, &mut ring),
            Status::Ok
        );
        elasticache_options_free(opts);
        assert_eq!(elasticache_ring_server_count(ring), 4);
        let rust = Ring::new(&specs, Distribution::Ketama, HashAlgorithm::Md5);
        for k in ring_common::keys("capi", 2000, 10, true) {
            let mut idx = usize::MAX;
            assert_eq!(
                elasticache_ring_lookup(ring, k.as_ptr(), k.len(), &mut idx),
                Status::Ok
            );
            assert_eq!(Some(idx), rust.owner(&k));
            let mut hp: *const c_char = ptr::null();
            assert_eq!(elasticache_ring_server(ring, idx, &mut hp), Status::Ok);
            assert_eq!(CStr::from_ptr(hp).to_str().unwrap(), SHOWN[idx]);
        }
        // The empty key is a key like any other.
        let mut idx = usize::MAX;
        assert_eq!(
            elasticache_ring_lookup(ring, ptr::null(), 0, &mut idx),
            Status::Ok
        );
        assert_eq!(Some(idx), rust.owner(b""));
        // Bad arguments: INVALID_ARGUMENT, outputs untouched.
        let mut hp: *const c_char = ptr::null();
        assert_eq!(
            elasticache_ring_server(ring, 4, &mut hp),
            Status::InvalidArgument
        );
        assert!(hp.is_null());
        let mut idx = 77usize;
        assert_eq!(
            elasticache_ring_lookup(ring, ptr::null(), 3, &mut idx),
            Status::InvalidArgument
        );
        assert_eq!(
            elasticache_ring_lookup(ptr::null(), b"k".as_ptr(), 1, &mut idx),
            Status::InvalidArgument
        );
        assert_eq!(idx, 77);
        elasticache_ring_free(ring);
        elasticache_ring_free(ptr::null_mut());

        // Zero servers: built, but no lookup can succeed.
        let mut empty = ptr::null_mut();
        assert_eq!(
            elasticache_ring_new(ptr::null(), 0, ptr::null(), ptr::null(), &mut empty),
            Status::Ok
        );
        assert_eq!(
            elasticache_ring_lookup(empty, b"k".as_ptr(), 1, &mut idx),
            Status::NoServers
        );
        elasticache_ring_free(empty);

        // Bad server strings and weights fail, and write nothing.
        let mut out = ptr::null_mut();
        let bad = CString::new("host:notaport").unwrap();
        let one = [bad.as_ptr()];
        assert_eq!(
            elasticache_ring_new(one.as_ptr(), 1, ptr::null(), ptr::null(), &mut out),
            Status::InvalidArgument
        );
        let zero = [1u32, 0, 1, 1];
        assert_eq!(
            elasticache_ring_new(ptrs.as_ptr(), 4, zero.as_ptr(), ptr::null(), &mut out),
            Status::InvalidArgument
        );
        assert_eq!(
            elasticache_ring_new(ptr::null(), 2, ptr::null(), ptr::null(), &mut out),
            Status::InvalidArgument
        );
        assert!(out.is_null());
    }
}
