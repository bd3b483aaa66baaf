//! Replays the fuzz corpus and every crash `make fuzz` found (fuzz/corpus,
//! fuzz/artifacts) through the same checks the fuzz targets run
//! (fuzz/targets.rs), under an allocator that measures the peak: a parser
//! allocates in proportion to its input, never to what the input claims.
//! One test in this binary, so nothing else allocates while it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "../fuzz/targets.rs"]
mod targets;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = CURRENT.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as both blocks alive for a moment, as a copy would be.
            grew(new_size);
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Bytes allocated at the peak of `f`, above what was live before it.
fn peak_of(f: impl FnOnce()) -> usize {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed).saturating_sub(base)
}

/// One fuzz target's checks.
type Check = fn(&[u8]);

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn corpus_and_crashes_replay_without_panic_and_with_bounded_allocation() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let targets: [(&str, Check); 3] = [
        ("discovery_reply", targets::discovery_reply),
        ("memcached_reply", targets::memcached_reply),
        ("multiget_match", targets::multiget_match),
    ];
    for (name, check) in targets {
        let corpus = files(&root.join("corpus").join(name));
        assert!(
            corpus.len() >= 50,
            "fuzz/corpus/{name} has {} files: the corpus is missing",
            corpus.len()
        );
        let crashes = files(&root.join("artifacts").join(name));
        for path in corpus.iter().chain(&crashes) {
            let data = std::fs::read(path).unwrap();
            let peak = peak_of(|| check(&data));
            // The checks parse every prefix, so a few copies of the input,
            // the nodes it lists and error messages are expected; a
            // claimed length or count is not.
            let bound = 8 * data.len() + (512 << 10);
            assert!(
                peak <= bound,
                "{}: {peak} bytes allocated for {} input bytes",
                path.display(),
                data.len()
            );
        }
    }

    // Issue 15: a 3.6 MB reply listing 150,000 nodes is refused after the
    // node cap, not after building 150,000 nodes.
    let entries: Vec<String> = (0..150_000u32)
        .map(|i| format!("n{i}|10.{}.{}.{}|11211", i >> 16, (i >> 8) & 255, i & 255))
        .collect();
    let payload = format!("1\n{}\n", entries.join(" "));
    let reply = format!("CONFIG cluster 0 {}\r\n{payload}\r\nEND\r\n", payload.len());
    drop(entries);
    let mut result = None;
    let peak = peak_of(|| {
        result = Some(elasticache::discovery::parse_reply(
            "cfg:11211",
            reply.as_bytes(),
        ))
    });
    assert!(
        matches!(result, Some(Err(elasticache::Error::Discovery { .. }))),
        "{:?}",
        result.map(|r| r.map(|_| "a configuration"))
    );
    assert!(
        peak < 2 << 20,
        "{peak} bytes allocated to refuse a {} byte reply",
        reply.len()
    );
}
