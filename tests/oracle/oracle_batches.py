"""What the Python placement oracles (pylibmc_write.py, pymemcache_write.py)
share: the `--read` switch and the keys written or read in batches."""
import sys

BATCH = 500


def split_read(args):
    """(reading, the other arguments) for a command line's arguments."""
    if args[:1] == ["--read"]:
        return True, args[1:]
    return False, args


def hex_keys(lines):
    """The keys, one hex-encoded key a line (blank lines skipped)."""
    return [bytes.fromhex(line.strip()) for line in lines if line.strip()]


def run(reading, keys, get_many, set_many):
    """Read every key (prints "read N hits M") or write each as b"1" (prints
    "written N"; exits 1 if any was not stored). `set_many` returns the keys
    it did not store."""
    if reading:
        hits = 0
        for i in range(0, len(keys), BATCH):
            hits += len(get_many(keys[i : i + BATCH]))
        print("read", len(keys), "hits", hits)
        return
    failed = []
    for i in range(0, len(keys), BATCH):
        failed += set_many({k: b"1" for k in keys[i : i + BATCH]})
    if failed:
        print("failed", len(failed), failed[:5], file=sys.stderr)
        sys.exit(1)
    print("written", len(keys))
