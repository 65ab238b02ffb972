"""PostgreSQL restarted in the middle of a pass: the pass rides it out (its per-file writes
run again once the server is back), or stops with LedgerUnavailableError (a write that
cannot be run again was cut), and the next pass finishes the job: every file recorded done,
each on 123pan once (real emulator, real server)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from engine_support import ledger_and_client
from pg_support import PgServer

from syncagent.config import validate
from syncagent.emulator import Emulator
from syncagent.engine import SyncEngine
from syncagent.errors import LedgerUnavailableError
from syncagent.ledger import repo

FILES = 200


def _uploads(emulator: Emulator) -> int:
    return int(emulator.activity()["counts"].get("single_uploads", 0))


def test_a_restart_mid_pass_loses_nothing(
    emulator: Emulator,
    tmp_path: Path,
    pg_server: PgServer,
    pg_database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = tmp_path / "root"
    for i in range(FILES):
        (root / f"d{i % 5}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 5}" / f"f{i}.txt").write_text(f"file number {i}")
    url = pg_server.url(pg_database)
    config = validate(
        {
            "roots": [{"local": str(root), "remote": "/backup"}],
            "state_dir": str(tmp_path / "state"),
            "stability": {"quiet": "0s"},
            "limits": {"qps": "off"},
            "upload": {"workers": 4},
            "ledger": {"url": url},
        },
        {},
    )
    restarted = threading.Event()

    def restart_when_under_way() -> None:
        deadline = time.monotonic() + 120
        while _uploads(emulator) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        pg_server.restart()
        restarted.set()

    restarter = threading.Thread(target=restart_when_under_way)
    with ledger_and_client(emulator, tmp_path / "state", url) as (ledger, client):
        restarter.start()
        try:
            try:
                first = SyncEngine(config, ledger, client).run_once()
                first_uploaded = first.uploaded
            except LedgerUnavailableError:  # a write that cannot be run again was cut
                first_uploaded = -1  # the agent runs the pass again, as below
            during = restarted.is_set()
        finally:
            restarter.join(timeout=180)
            pg_server.start()  # (a no-op when it is running)
        assert during, "the pass ended before the restart did: nothing was tested"
        assert "is unreachable" in caplog.text  # the pass met the outage
        assert first_uploaded in (-1, FILES)  # rode it out whole, or stopped
        second = SyncEngine(config, ledger, client).run_once()
        assert second.ok, second
        facts = repo.load_facts(ledger, repo.find_root(ledger, str(root))[0])  # type: ignore[index]
        assert len(facts) == FILES
        assert {f.state for f in facts.values()} == {"done"}
        assert len({f.remote_id for f in facts.values()}) == FILES
    # each file went up once, but for the few in flight when the server went away (at most
    # one per worker), plus a catalog per pass that changed something (1 or 2)
    assert FILES < _uploads(emulator) <= FILES + 4 + 2
