"""The ledger opened for a dry run: read as it is, nothing written, no file created."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncagent.app import open_ledger
from syncagent.config import validate
from syncagent.errors import LedgerError
from syncagent.ledger import repo


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_a_closed_ledger_is_read_without_creating_or_changing_a_file(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    config = validate(
        {
            "roots": [{"local": str(tmp_path / "docs"), "remote": "/d"}],
            "state_dir": str(tmp_path / "state"),
        },
        {},
    )
    ledger = open_ledger(config)
    root_id, _ = repo.ensure_root(ledger, "/somewhere", "/d", "archive")
    ledger.close()
    before = _listing(tmp_path / "state")
    assert sorted(before) == ["host_id", "ledger.sqlite3"]  # closed cleanly: no -wal, no -shm

    view = open_ledger(config, read_only=True)
    try:
        assert repo.find_root(view, "/somewhere") == (root_id, None)
        assert repo.find_root(view, "/elsewhere") is None
        with pytest.raises(LedgerError):  # a write fails rather than changing the file
            repo.ensure_root(view, "/elsewhere", "/e", "archive")
    finally:
        view.close()
    assert _listing(tmp_path / "state") == before


def test_a_missing_ledger_reads_as_an_empty_one_and_nothing_is_created(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    config = validate(
        {
            "roots": [{"local": str(tmp_path / "docs"), "remote": "/d"}],
            "state_dir": str(tmp_path / "state"),
        },
        {},
    )
    view = open_ledger(config, read_only=True)
    try:
        assert repo.find_root(view, str(tmp_path / "docs")) is None
        assert repo.count_files(view, 0) == 0
    finally:
        view.close()
    assert sorted(os.listdir(tmp_path)) == ["docs"]
