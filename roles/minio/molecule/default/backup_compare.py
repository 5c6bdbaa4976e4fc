"""Compare each bucket with its restored copy (bucket name + suffix) in one export of the server: every version in
order, delete markers, sha256, size, content type, metadata, retention mode and retain-until date, legal hold, and
the bucket's versioning and lock. One line per bucket; exit 1 on any difference or when raw was not restored.
Run on the storage host: backup_compare.py EXPORT_DIR SUFFIX."""

import json
import sys
from pathlib import Path

KEYS = ("key", "delete_marker", "sha256", "size", "content_type", "metadata", "retention_mode", "legal_hold")


def versions(bucket):
    return [[e.get(k) for k in KEYS] + [(e.get("retain_until") or "")[:19]] for e in bucket["entries"]]


def main(export_dir, suffix):
    buckets = {b["name"]: b for b in json.loads(Path(export_dir, "index.json").read_text())["buckets"]}
    originals = sorted(name for name in buckets if name + suffix in buckets)
    ok = "raw" in originals
    for name in originals:
        bucket, copy = buckets[name], buckets[name + suffix]
        same = versions(copy) == versions(bucket) and all(copy[k] == bucket[k] for k in ("versioning", "object_lock"))
        locked = sum(1 for e in bucket["entries"] if e.get("retention_mode"))
        print(
            f"{name}: {len(bucket['entries'])} entries, {locked} locked; {name}{suffix}: {'same' if same else 'DIFF'}"
        )
        ok = ok and same
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
