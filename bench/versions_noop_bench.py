"""A no-op pass with 100,000 version records in the ledger costs what it costs without them.

One seeded tree (``sync_bench``'s seeding), one ledger recorded for it, copied: the copy also
holds ``--versions`` version records (``version.<root id>.<fileID>`` in ``kv``, as
``syncagent.versions`` writes them). ``syncagent sync`` then passes over the unchanged tree
with each ledger, alternately (``--runs`` each), so load drifts hit both alike. Also timed:
the one ``kv`` read a no-op pass makes (``repo.get_values(ledger, "catalog.")``), as a key
range, and as the whole-table read it replaced.

Usage: ``.venv/bin/python bench/versions_noop_bench.py [--files 5000] [--versions 100000]
[--runs 7]``. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from benchlib import cli_env, start_emulator
from sync_bench import BIN, make_tree, seed_ledger, timed, write_config


def _add_versions(ledger_file: Path, count: int) -> None:
    with sqlite3.connect(ledger_file) as db:
        (root_id,) = db.execute("SELECT id FROM roots").fetchone()
        rows = []
        for n in range(count):
            value = {
                "path": f"d{n % 100:02d}/file{n:06d}.dat",
                "remote_rel": f"d{n % 100:02d}/file{n:06d}.dat",
                "name": f"20261201T000000.{n % 1000000:06d}Z~file{n:06d}.dat",
                "size": 16,
                "md5": f"{n:032x}",
                "mtime_ns": 1_700_000_000_000_000_000 + n,
                "at": 1_790_000_000.0 + n,
                "done": True,
                "why": "changed",
            }
            rows.append((f"version.{root_id}.{10_000_000 + n}", json.dumps(value)))
        db.executemany("INSERT INTO kv (key, value) VALUES (?, ?)", rows)


def _kv_reads(ledger_file: Path, runs: int) -> tuple[float, float]:
    """Median seconds of the no-op pass's kv read: as a key range, and as a full read."""
    from syncagent.ledger import Ledger, repo

    ledger = Ledger(f"sqlite:///{ledger_file}")
    ranged: list[float] = []
    whole: list[float] = []
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            repo.get_values(ledger, "catalog.")
            ranged.append(time.perf_counter() - t0)
            raw = ledger.engine.raw_connection()
            try:
                t0 = time.perf_counter()
                cursor = raw.cursor()
                cursor.execute("SELECT key, value FROM kv")
                _ = {k: v for k, v in cursor.fetchall() if str(k).startswith("catalog.")}
                whole.append(time.perf_counter() - t0)
            finally:
                raw.close()
    finally:
        ledger.close()
    return statistics.median(ranged), statistics.median(whole)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=5_000)
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="versions-noop-") as tmp:
        work = Path(tmp)
        proc, info = start_emulator(work / "emu", drain_output=True)
        env = cli_env(info, work)
        try:
            tree = work / "tree"
            make_tree(tree, args.files, max(1, args.files // 100), 16)
            plain = work / "plain.yaml"
            write_config(plain, tree, work / "state", workers=4)
            seed_ledger(plain, env)
            timed([str(BIN), "sync", "--config", str(plain)], env)  # binds, publishes
            ledger = work / "state" / "ledger.sqlite3"
            copy = work / "state" / "ledger-versions.sqlite3"
            shutil.copy(ledger, copy)
            _add_versions(copy, args.versions)
            many = work / "versions.yaml"
            config = json.loads(plain.read_text())
            config["ledger"] = {"url": f"sqlite:///{copy}"}
            many.write_text(json.dumps(config))
            commands = {
                "no version records": [str(BIN), "sync", "--config", str(plain)],
                f"{args.versions} version records": [str(BIN), "sync", "--config", str(many)],
            }
            for command in commands.values():
                timed(command, env)  # warm the caches
            times: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.runs):
                for name, command in commands.items():
                    times[name].append(timed(command, env)[0])
            ranged, whole = _kv_reads(copy, args.runs)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(
            f"no-op pass over {args.files} files, {name}: "
            f"median {medians[name]:.3f} s, min {min(t):.3f} s"
        )
    a, b = medians.values()
    print(f"ratio (with / without): {b / a:.3f}")
    print(
        f"the pass's kv read with {args.versions} records: key range {ranged * 1e3:.2f} ms, "
        f"whole table (before) {whole * 1e3:.2f} ms"
    )


if __name__ == "__main__":
    main()
