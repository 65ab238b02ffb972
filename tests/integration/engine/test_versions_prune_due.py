"""``versions.keep_days`` prunes when a version's time comes, even in a pass that changes
nothing (before, only a pass that changed the root pruned), and the catalog follows; a
no-op pass before that time reads no version record and trashes nothing."""

from __future__ import annotations

import time
from pathlib import Path

from engine_support import ledger_and_client

from syncagent.catalog.remote import fetch, find_folder
from syncagent.config import validate
from syncagent.emulator import Emulator
from syncagent.engine import SyncEngine
from syncagent.ledger import repo
from syncagent.versions import DUE_PREFIX, load

KEEP_SECONDS = 3.0


def test_keep_days_prunes_in_a_no_op_pass_once_due(emulator: Emulator, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.txt").write_text("first")
    config = validate(
        {
            "roots": [
                {
                    "local": str(root),
                    "remote": "/backup/docs",
                    "versions": {"keep_days": KEEP_SECONDS / 86400},
                }
            ],
            "state_dir": str(tmp_path / "state"),
            "stability": {"quiet": "0s"},
            "limits": {"qps": "off"},
        },
        {},
    )
    with ledger_and_client(emulator, tmp_path / "state", config.ledger_url) as (ledger, client):
        engine = SyncEngine(config, ledger, client)
        engine.run_once()
        (root / "a.txt").write_text("second!")
        report = engine.run_once()
        assert report.uploaded == 1
        root_id = repo.find_root(ledger, str(root))
        assert root_id is not None
        [kept] = load(ledger, root_id[0])  # superseded just now: not yet due
        due = float(repo.get_values(ledger, DUE_PREFIX)[f"{DUE_PREFIX}{root_id[0]}"])
        assert due == kept.at + KEEP_SECONDS
        docs = find_folder(client, "/backup/docs")
        assert docs is not None
        catalog = fetch(client, docs)
        assert catalog is not None
        assert [e.md5 for e in catalog.versions] == [kept.md5]

        emulator.reset_activity()
        if time.time() < due - 0.5:  # a no-op pass before its time: nothing trashed
            report = engine.run_once()
            assert report.uploaded == 0 and len(load(ledger, root_id[0])) == 1
            assert "api/v1/file/trash" not in emulator.activity()["endpoints"]

        deadline = time.monotonic() + 60
        while time.time() <= due:  # the condition is the clock itself
            assert time.monotonic() < deadline
            time.sleep(0.05)
        report = engine.run_once()  # changes nothing, but the version's time has come
        assert report.uploaded == 0
        assert load(ledger, root_id[0]) == []
        assert f"{DUE_PREFIX}{root_id[0]}" not in repo.get_values(ledger, DUE_PREFIX)
        assert emulator.activity()["endpoints"]["api/v1/file/trash"]["calls"] >= 1
        catalog = fetch(client, docs)
        assert catalog is not None
        assert catalog.versions == []
