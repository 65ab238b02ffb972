"""The no-op pass: a second pass over an unchanged tree does nothing, on SQLite and on
PostgreSQL, and PostgreSQL's one-query check (ledger/unchanged.py) tells a changed tree."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_support import ledger_and_client
from pg_support import PgServer

from syncagent.config import validate
from syncagent.emulator import Emulator
from syncagent.engine import SyncEngine
from syncagent.ignore import IgnoreRules
from syncagent.ledger import Ledger, repo, unchanged
from syncagent.scanner import scan


def _tree(root: Path) -> None:
    for i in range(30):
        (root / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 3}" / f"f{i}.txt").write_text(f"file {i}")
    (root / "é 名前.txt").write_text("a name beyond ASCII")
    (root / "empty.txt").write_bytes(b"")  # recorded skipped (0 bytes)
    os.symlink(root / "d0", root / "link")  # a walk skip (not followed)


@pytest.fixture
def synced(emulator: Emulator, tmp_path: Path, ledger_url: str) -> Iterator[Any]:
    root = tmp_path / "root"
    root.mkdir()
    _tree(root)
    config = validate(
        {
            "roots": [{"local": str(root), "remote": "/backup"}],
            "state_dir": str(tmp_path / "state"),
            "stability": {"quiet": "0s"},
            "limits": {"qps": "off"},
            "ledger": {"url": ledger_url},
        },
        {},
    )
    with ledger_and_client(emulator, tmp_path / "state", ledger_url) as (ledger, client):
        first = SyncEngine(config, ledger, client).run_once()
        assert first.uploaded == 31
        yield config, ledger, client, root


def test_a_second_pass_over_an_unchanged_tree_does_nothing(synced: Any) -> None:
    config, ledger, client, root = synced
    again = SyncEngine(config, ledger, client).run_once()
    assert (again.ok, again.uploaded, again.unchanged) == (True, 0, 33)
    (root / "d1" / "f1.txt").write_text("changed!")
    third = SyncEngine(config, ledger, client).run_once()
    assert (third.uploaded, third.unchanged) == (1, 32)


def _check(ledger: Any, root_id: int, root: Path) -> int | None:
    found = scan(root, IgnoreRules())
    return unchanged.unchanged_rows(ledger, root_id, found.files, found.raw_skips)


def test_postgresql_one_query_check(
    emulator: Emulator, tmp_path: Path, pg_server: PgServer, pg_database: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    _tree(root)
    url = pg_server.url(pg_database)
    config = validate(
        {
            "roots": [{"local": str(root), "remote": "/backup"}],
            "state_dir": str(tmp_path / "state"),
            "stability": {"quiet": "0s"},
            "limits": {"qps": "off"},
            "ledger": {"url": url},
        },
        {},
    )
    with ledger_and_client(emulator, tmp_path / "state", url) as (ledger, client):
        assert unchanged.applies(ledger)
        SyncEngine(config, ledger, client).run_once()
        found_root = repo.find_root(ledger, str(root))
        assert found_root is not None
        root_id = found_root[0]
        assert _check(ledger, root_id, root) == 33
        assert _check(ledger, 0, root) is None  # a root the ledger does not know
        target = root / "d2" / "f2.txt"
        st = target.stat()
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
        assert _check(ledger, root_id, root) is None  # touched
        SyncEngine(config, ledger, client).run_once()
        assert _check(ledger, root_id, root) == 33
        (root / "new.txt").write_text("new")
        assert _check(ledger, root_id, root) is None  # added
        (root / "new.txt").unlink()
        (root / "d0" / "f0.txt").unlink()
        assert _check(ledger, root_id, root) is None  # deleted
        (root / "d0" / "f0.txt").write_text("file 0")
        SyncEngine(config, ledger, client).run_once()
        assert _check(ledger, root_id, root) == 33
        (root / "empty.txt").unlink()
        (root / "empty.txt").write_bytes(b"")  # a new inode: the skip is looked at again
        assert _check(ledger, root_id, root) is None
        (root / "link").unlink()
        (root / "link").write_text("now a file")
        assert _check(ledger, root_id, root) is None  # a skip became a file
    sqlite = Ledger(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    assert not unchanged.applies(sqlite)  # the scan compares SQLite chunks itself
    sqlite.close()
