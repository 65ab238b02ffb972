"""Five agents starting at once on one empty PostgreSQL ledger all migrate it, once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from pg_support import PgServer
from sqlalchemy import create_engine, text

from syncagent.ledger import SCHEMA_HEAD

# Each process imports everything, says it is ready, then waits for the go file: the five
# upgrades start within milliseconds of each other.
_AGENT = """
import pathlib, sys, time
from syncagent.ledger import Ledger
ledger = Ledger(sys.argv[1])
pathlib.Path(sys.argv[2]).touch()
go = pathlib.Path(sys.argv[3])
deadline = time.monotonic() + 120
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.001)
ledger.migrate()
print(ledger.current_revision())
ledger.close()
"""


def test_five_agents_migrate_an_empty_database_at_once(
    pg_server: PgServer, pg_database: str, tmp_path: Path
) -> None:
    url = pg_server.url(pg_database)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _AGENT, url, str(tmp_path / f"ready{i}"), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(5)
    ]
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"ready{i}").exists() for i in range(5)):
            assert time.monotonic() < deadline, "the agents never got ready"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.05)
        go.touch()
        results = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == SCHEMA_HEAD
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
                (SCHEMA_HEAD,)
            ]
    finally:
        engine.dispose()
