"""The no-op ``sync`` decided without the ledger's libraries (:mod:`syncagent.noop`), run as
a user runs it: the installed CLI in a subprocess, against an emulator.

It must be taken when nothing changed, leave the same record as the full way, and never be
taken when the full way has something to do: each case below is one the full way acts on.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_sync_cli import Cli, make_cli, summary, upload_calls

from syncagent.emulator import Emulator
from syncagent.ledger import SCHEMA_HEAD
from syncagent.noop import SCHEMA_HEAD as NOOP_SCHEMA_HEAD

QUICK = "pass recorded without loading the ledger"

pytestmark = pytest.mark.timeout(300)


def _setup(tmp_path: Path, emulator: Emulator) -> tuple[Cli, Path]:
    root = tmp_path / "docs"
    for folder in ("a", "b/c"):
        (root / folder).mkdir(parents=True)
    for n, rel in enumerate(["top.txt", "a/one.txt", "a/two.txt", "b/c/three.txt"]):
        (root / rel).write_text(f"file {n}")
    (root / "empty.txt").write_bytes(b"")  # recorded skipped: still a no-op
    cli = make_cli(tmp_path, emulator, [(root, "/backup/docs")])
    first = cli.sync()
    assert first.returncode == 0, first.stderr[-3000:]
    assert summary(first).startswith("4 uploaded"), summary(first)
    return cli, root


def _sync(cli: Cli, *args: str) -> tuple[str, bool]:
    result = cli.sync("-v", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return summary(result), QUICK in result.stderr


def _ledger(cli: Cli) -> sqlite3.Connection:
    return sqlite3.connect(cli.cwd / "state" / "ledger.sqlite3")


def test_the_schema_heads_agree() -> None:
    assert NOOP_SCHEMA_HEAD == SCHEMA_HEAD


def test_an_unchanged_tree_is_passed_quickly_and_recorded(
    tmp_path: Path, emulator: Emulator
) -> None:
    cli, _ = _setup(tmp_path, emulator)
    passes = _ledger(cli).execute("SELECT count(*) FROM passes").fetchone()[0]
    before = upload_calls(emulator)
    line, quick = _sync(cli)
    assert quick
    full, quick = _sync(cli, "--check-remote")  # the full way, on the same unchanged tree
    assert not quick
    assert (
        line
        == full
        == ("0 uploaded (0.0 MB), 0 moved, 5 unchanged, 0 skipped, 0 failed; hashed 0 files")
    )  # 4 files and the empty one's row, as the full way counts them
    assert upload_calls(emulator) == before
    db = _ledger(cli)
    assert db.execute("SELECT count(*) FROM passes").fetchone()[0] == passes + 2
    last = cli.status()["last_pass"]
    assert (last["uploaded"], last["failed"]) == (0, 0)
    assert db.execute("SELECT result FROM passes ORDER BY id DESC").fetchone()[0] == "ok"


def test_changes_take_the_full_way(tmp_path: Path, emulator: Emulator) -> None:
    cli, root = _setup(tmp_path, emulator)
    (root / "a" / "one.txt").write_text("edited, longer")
    line, quick = _sync(cli)
    assert not quick and line.startswith("1 uploaded"), line
    (root / "new.txt").write_text("new")
    line, quick = _sync(cli)
    assert not quick and line.startswith("1 uploaded"), line
    (root / "b" / "c" / "three.txt").unlink()  # archive mode: its row is kept, as gone
    line, quick = _sync(cli)
    assert not quick and line.startswith("0 uploaded"), line
    line, quick = _sync(cli)
    assert quick and " 5 unchanged" in line, line  # the gone row does not count against it


def test_what_the_full_way_acts_on_takes_it(tmp_path: Path, emulator: Emulator) -> None:
    cli, _ = _setup(tmp_path, emulator)
    _, quick = _sync(cli, "--check-remote")
    assert not quick
    dry = cli.sync("--dry-run", "-v")
    assert dry.returncode == 0 and QUICK not in dry.stderr, dry.stderr[-3000:]

    db = _ledger(cli)
    with db:
        db.execute("UPDATE kv SET value = 'stale' WHERE key LIKE 'catalog.%'")
    _, quick = _sync(cli)
    assert not quick  # the full way publishes the catalog again
    assert db.execute("SELECT value FROM kv WHERE key LIKE 'catalog.%'").fetchone()[0] != "stale"
    _, quick = _sync(cli)
    assert quick

    with db:
        db.execute("UPDATE files SET state = 'uploaded' WHERE rel_path = 'top.txt'")
    _, quick = _sync(cli)
    assert not quick  # the full way verifies it
    assert db.execute("SELECT state FROM files WHERE rel_path = 'top.txt'").fetchone()[0] == "done"

    with db:
        db.execute("UPDATE roots SET client_id = 'another-account'")
    _, quick = _sync(cli)
    assert not quick  # rows bound to another account are checked against the remote
    _, quick = _sync(cli)
    assert quick

    for key in ("root_not_read", "guard_hold"):  # remembered, and cleared the full way
        with db:
            db.execute("INSERT INTO kv (key, value) VALUES (?, '{}')", (f"{key}:1",))
        _, quick = _sync(cli)
        assert not quick, key
        assert not db.execute("SELECT count(*) FROM kv WHERE key = ?", (f"{key}:1",)).fetchone()[0]
        _, quick = _sync(cli)
        assert quick, key
    db.close()
