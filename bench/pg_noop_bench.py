"""No-op pass on a PostgreSQL ledger beside the SQLite one and ``find``.

The same tree (``sync_bench``'s seeding: ``--files`` files in ``--files / 100`` folders) is
recorded as uploaded in two ledgers, an SQLite file and a database on a throw-away PostgreSQL
server (``tests/pg_support.py``: a private cluster on a loopback port, fsync off), and passed
over by ``syncagent sync`` with each, alternately with ``find ROOT -type f -printf ...``, so
load drifts hit all three alike. Every pass must report every file unchanged. Prints the
medians and the ratios to ``find``.

Usage: ``python bench/pg_noop_bench.py [--files 20000] [--runs 5]``. Needs PostgreSQL's
server binaries (Debian's ``postgresql``). All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

from benchlib import cli_env, start_emulator
from sync_bench import BIN, make_tree, seed_ledger, timed, write_config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from pg_support import PgServer, find_pg_bin


def _with_ledger(config: Path, url: str) -> None:
    data = json.loads(config.read_text())
    data["ledger"] = {"url": url}
    config.write_text(json.dumps(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
    server = PgServer(bin_dir)
    results: dict[str, list[float]] = {"find": [], "SQLite ledger": [], "PostgreSQL ledger": []}
    with tempfile.TemporaryDirectory(prefix="pg-noop-") as tmp:
        work = Path(tmp)
        proc, info = start_emulator(work / "emu", drain_output=True)
        env = cli_env(info, work)
        try:
            server.start()
            tree = work / "tree"
            make_tree(tree, args.files, max(1, args.files // 100), 16)
            configs = {"SQLite ledger": work / "sqlite.yaml", "PostgreSQL ledger": work / "pg.yaml"}
            write_config(configs["SQLite ledger"], tree, work / "state-sqlite", workers=4)
            write_config(configs["PostgreSQL ledger"], tree, work / "state-pg", workers=4)
            _with_ledger(configs["PostgreSQL ledger"], server.create_database("bench"))
            commands = {"find": ["find", str(tree), "-type", "f", "-printf", r"%s %T@ %p\n"]}
            for name, cfg in configs.items():
                seed_ledger(cfg, env)
                commands[name] = [str(BIN), "sync", "--config", str(cfg)]
            for command in commands.values():
                timed(command, env)  # warm the caches (and the schema check)
            for _ in range(args.runs):
                for name, command in commands.items():
                    elapsed, output = timed(command, env)
                    if name != "find" and not re.search(rf"\b{args.files} unchanged", output):
                        raise SystemExit(f"{name}: not a no-op pass:\n{output[-2000:]}")
                    results[name].append(elapsed)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            server.close()
    base = statistics.median(results["find"])
    print(f"no-op pass over {args.files} unchanged files, median of {args.runs}:")
    for name, times in results.items():
        median = statistics.median(times)
        print(f"  {name:18} {median:6.3f} s  (min {min(times):.3f} s, {median / base:4.1f}x find)")
    sqlite, pg = (statistics.median(results[k]) for k in ("SQLite ledger", "PostgreSQL ledger"))
    print(f"  PostgreSQL / SQLite: {pg / sqlite:.2f}x")


if __name__ == "__main__":
    main()
