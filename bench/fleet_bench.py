"""Fleet benchmark: what sharing a ledger costs a host, and what the fleet view costs.

A ledger holding ``--hosts`` hosts, each with one root of ``--files`` done files (rows written
directly, as passes would leave them), on SQLite and, with ``--pg``, on a throw-away
PostgreSQL server (``tests/pg_support.py``). Measured, median of ``--repeat`` runs:

- ``load_facts``: one host reading its root's rows (a pass's main read): does the number of
  other hosts' rows in the same table cost it anything;
- ``root_status``: one host's ``status`` read;
- ``fleet_status``: ``status --fleet``, every host (four queries whatever the number of hosts).

Usage: ``python bench/fleet_bench.py [--hosts 1,20] [--files 5000] [--repeat 5] [--pg]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from sqlalchemy import text

from syncagent import fleet
from syncagent.host import Host
from syncagent.ledger import Ledger, repo


def seed(ledger: Ledger, hosts: int, files: int) -> int:
    """``hosts`` hosts with one root of ``files`` done rows each; the first host's root id."""
    first = 0
    for h in range(hosts):
        fleet.register(ledger, Host(f"{h:032x}", f"host-{h}"))
        root_id, _ = repo.ensure_root(ledger, "/data", f"/b/host-{h}/data", "archive")
        first = first or root_id
        with ledger.write() as conn:
            conn.execute(
                text(
                    "INSERT INTO files (root_id, rel_path, size, mtime_ns, ctime_ns, dev, inode, "
                    "md5, remote_id, remote_name, state, attempts, next_attempt_at, seen_pass) "
                    "VALUES (:r, :p, 10, 1, 1, 1, :n, :m, :n, :p, 'done', 0, 0, 1)"
                ),
                [
                    {"r": root_id, "p": f"d{n % 50}/f{n}.txt", "n": n, "m": "0" * 32}
                    for n in range(files)
                ],
            )
    fleet.register(ledger, Host(f"{0:032x}", "host-0"))  # measured as the first host
    return first


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def measure(url: str, hosts: int, files: int, repeat: int) -> dict[str, float]:
    ledger = Ledger(url)
    try:
        ledger.migrate()
        root_id = seed(ledger, hosts, files)
        return {
            "load_facts": median_ms(lambda: repo.load_facts(ledger, root_id), repeat),
            "root_status": median_ms(lambda: repo.root_status(ledger), repeat),
            "fleet_status": median_ms(lambda: fleet.fleet_status(ledger), repeat),
        }
    finally:
        ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1,20")
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pg", action="store_true", help="also on a throw-away PostgreSQL")
    args = parser.parse_args()
    server = None
    if args.pg:
        from pg_support import PgServer, find_pg_bin

        bin_dir = find_pg_bin()
        if bin_dir is None:
            sys.exit("no PostgreSQL binaries (pg_ctl) found")
        server = PgServer(bin_dir)
        server.start()
    print(
        f"{'backend':<10} {'hosts':>5} {'rows':>7} {'load_facts':>11} {'root_status':>12} "
        f"{'fleet_status':>13}  (ms, median of {args.repeat})"
    )
    try:
        for hosts in (int(h) for h in args.hosts.split(",")):
            backends = [("sqlite", "")] + ([("postgresql", "pg")] if server else [])
            for name, _ in backends:
                with tempfile.TemporaryDirectory() as tmp:
                    if server is not None and name == "postgresql":
                        db = f"bench_{hosts}_{int(time.time())}"
                        server.create_database(db)
                        url = server.url(db)
                    else:
                        url = f"sqlite:///{Path(tmp) / 'ledger.sqlite3'}"
                    r = measure(url, hosts, args.files, args.repeat)
                print(
                    f"{name:<10} {hosts:>5} {hosts * args.files:>7} {r['load_facts']:>11.1f} "
                    f"{r['root_status']:>12.1f} {r['fleet_status']:>13.1f}"
                )
    finally:
        if server is not None:
            server.close()


if __name__ == "__main__":
    main()
