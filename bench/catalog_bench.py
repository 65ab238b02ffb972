"""Catalog format benchmark: the per-root catalog as gzip'd JSON lines (what syncagent
writes) against the same rows in an SQLite file, for N files (default 100,000).

Prints each format's size per entry and the time to encode, decode and digest. No network.

Usage: ``python bench/catalog_bench.py [--files 100000]``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import random
import sqlite3
import tempfile
import time

from syncagent.catalog.format import Entry, Header, decode, digest, encode


def entries(n: int) -> list[Entry]:
    rng = random.Random(1)
    out = []
    for i in range(n):
        path = f"dir{i // 500:03d}/sub{(i // 50) % 10}/file_{i:06d}.txt"
        out.append(
            Entry(
                path,
                "file",
                rng.randint(1, 10**7),
                hashlib.md5(str(i).encode()).hexdigest(),
                1_700_000_000_000_000_000 + rng.randint(0, 10**16),
                0o644,
                10_000_000 + i,
                path,
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100_000)
    n = parser.parse_args().files
    rows = entries(n)
    t = time.perf_counter()
    blob = encode(Header("host", "/root", "/syncagent/root", 0.0), rows)
    encode_s = time.perf_counter() - t
    t = time.perf_counter()
    decode(blob)
    decode_s = time.perf_counter() - t
    t = time.perf_counter()
    digest(rows)
    digest_s = time.perf_counter() - t
    print(f"catalog of {n:,} files")
    print(
        f"  jsonl.gz: {len(blob):>10,} bytes = {len(blob) / n:5.1f} B/entry;"
        f" encode {encode_s:.2f} s, decode {decode_s:.2f} s, digest {digest_s:.2f} s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "catalog.sqlite3")
        t = time.perf_counter()
        db = sqlite3.connect(path)
        db.execute(
            "CREATE TABLE e (p TEXT PRIMARY KEY, k TEXT, s INT, h TEXT, t INT, m INT, i INT)"
        )
        db.executemany(
            "INSERT INTO e VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(e.path, e.kind, e.size, e.md5, e.mtime_ns, e.mode, e.file_id) for e in rows],
        )
        db.commit()
        db.execute("VACUUM")
        db.close()
        write_s = time.perf_counter() - t
        with open(path, "rb") as f:
            raw = f.read()
    packed = gzip.compress(raw, 6)
    print(
        f"  sqlite:   {len(raw):>10,} bytes = {len(raw) / n:5.1f} B/entry"
        f" ({len(packed) / n:.1f} gzip'd); write {write_s:.2f} s"
    )


if __name__ == "__main__":
    main()
