"""What writing a pass's work before its uploads costs (``syncagent.leftover``).

A first pass over N new files writes N ``pending`` rows in one transaction
(``record_work``), and ``status`` then counts them (``unsent``). Both timed on a fresh SQLite
ledger in a temporary folder, best of 3. No network.

Usage: ``python bench/leftover_bench.py [--files 100000]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from syncagent.ledger import Ledger, repo
from syncagent.leftover import record_work, unsent
from syncagent.model import LocalEntry, Upload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100_000)
    args = parser.parse_args()
    uploads = [
        Upload(
            LocalEntry(f"d{i % 300}/f{i}.txt", 1000 + i, i, i, 1, i), f"d{i % 300}/f{i}.txt", "new"
        )
        for i in range(args.files)
    ]
    writes, reads = [], []
    for _ in range(3):
        with tempfile.TemporaryDirectory(prefix="leftover-bench-") as tmp:
            ledger = Ledger(f"sqlite:///{Path(tmp) / 'ledger.sqlite3'}")
            ledger.migrate()
            root_id, _ = repo.ensure_root(ledger, "/data", "/backup", "archive")
            pass_id = repo.start_pass(ledger)
            t0 = time.perf_counter()
            record_work(ledger, root_id, pass_id, uploads, {})
            writes.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            left = unsent(ledger)["/data"]
            reads.append(time.perf_counter() - t0)
            assert left.files == args.files
            ledger.close()
    print(
        f"{args.files} new files: record_work {min(writes):.3f} s "
        f"({min(writes) / args.files * 1e6:.1f} µs/file), status count {min(reads):.3f} s"
    )


if __name__ == "__main__":
    main()
