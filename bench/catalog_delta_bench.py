"""Catalog delta benchmark: bytes a pass publishes when one file of N (default 100,000)
changed, as a full catalog (before deltas) and as a delta against the last full one (now);
plus the writer's diff time and the reader's merge-and-check time. No network: the objects
measured are the exact bytes ``CatalogKeeper`` uploads.

Usage: ``python bench/catalog_delta_bench.py [--files 100000] [--passes 1]``; ``--passes K``
also prints the cumulative delta after K one-file passes (each delta holds every change
since its base).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from catalog_bench import entries

from syncagent.catalog.delta import (
    COMPACT_FRACTION,
    decode_delta,
    diff,
    encode_delta,
    merge_checked,
)
from syncagent.catalog.format import Header, decode_all, encode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=1)
    args = parser.parse_args()
    header = Header("host", "/root", "/syncagent/root", 0.0)
    rows = entries(args.files)
    base_blob = encode(header, rows)
    _, base, _ = decode_all(base_blob)
    current = list(rows)
    for k in range(args.passes):
        i = (k * 7919) % len(current)
        current[i] = replace(current[i], size=current[i].size + 1, md5="0" * 32, file_id=k)
    after = encode(header, current)
    t = time.perf_counter()
    changes = diff(base, current)
    blob = encode_delta(
        header, "catalog-x.jsonl.gz", changes.digest, changes.changed, changes.removed
    )
    diff_s = time.perf_counter() - t
    t = time.perf_counter()
    merge_checked(base, decode_delta(blob))
    merge_s = time.perf_counter() - t
    print(f"catalog of {args.files:,} files, {args.passes} one-file pass(es) since the base")
    print(f"  before (full catalog each pass): {len(after):>10,} bytes published")
    print(f"  now (delta against the base):    {len(blob):>10,} bytes published")
    print(f"  compaction once a delta passes {COMPACT_FRACTION:.0%} of the base")
    print(f"  writer diff+encode {diff_s:.2f} s; reader merge+check {merge_s:.2f} s")


if __name__ == "__main__":
    main()
