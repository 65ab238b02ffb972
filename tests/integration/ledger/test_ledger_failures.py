"""The ledger when its database fails: migrations all or nothing, another program's lock
waited out, and every foreign database error translated into the error tree (real SQLite)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine

from syncagent.errors import LedgerCorruptError, LedgerError
from syncagent.ledger import SCHEMA_HEAD, Ledger, repo
from syncagent.ledger.models import Base


@pytest.fixture
def page_limit() -> Iterator[list[int]]:
    """Every SQLite connection opened meanwhile can grow its database to ``limit[0]`` pages
    and no further: "database or disk is full" at a chosen point, as on a small disk."""
    limit = [0]

    def cap(dbapi_connection: Any, _record: Any) -> None:
        if limit[0]:
            dbapi_connection.execute(f"PRAGMA max_page_count={limit[0]}")

    event.listen(Engine, "connect", cap)
    try:
        yield limit
    finally:
        event.remove(Engine, "connect", cap)


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_an_upgrade_that_fails_at_any_point_leaves_the_ledger_as_it_was(
    tmp_path: Path, page_limit: list[int]
) -> None:
    """The disk fills up after each statement of the migrations in turn (every migration
    there is, whatever it does): each time nothing at all is left, then a retry works."""
    failures = 0
    for pages in range(2, 200):
        path = tmp_path / f"ledger{pages}.sqlite3"
        page_limit[0] = pages
        ledger = Ledger(f"sqlite:///{path}")
        try:
            ledger.migrate()
        except LedgerError as exc:
            failures += 1
            assert "full" in str(exc) and str(path) in str(exc), exc
            assert tables(path) == set(), pages  # nothing half-made
            page_limit[0] = 0
            ledger.close()
            ledger = Ledger(f"sqlite:///{path}")
            ledger.migrate()  # room again: it works
            assert ledger.current_revision() == SCHEMA_HEAD
            ledger.close()
            continue
        assert ledger.current_revision() == SCHEMA_HEAD
        ledger.close()
        break
    else:
        pytest.fail("the migrations never fitted")
    assert failures >= 5  # the limit really cut the migrations short, at many points


def test_half_made_tables_holding_rows_are_refused_never_dropped(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE kv (key VARCHAR(64) NOT NULL PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO kv VALUES ('precious', 'data')")
    ledger = Ledger(f"sqlite:///{path}")
    with pytest.raises(LedgerError, match="no schema version"):
        ledger.migrate()
    ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM kv").fetchall() == [("data",)]


def test_empty_half_made_tables_are_cleared_and_the_upgrade_redone(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        db.execute("CREATE TABLE kv (key VARCHAR(64) NOT NULL PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("CREATE TABLE roots (id INTEGER PRIMARY KEY)")  # a table half as wide
    ledger = Ledger(f"sqlite:///{path}")
    ledger.migrate()
    assert ledger.current_revision() == SCHEMA_HEAD
    assert set(Base.metadata.tables) <= set(inspect(ledger.engine).get_table_names())
    assert repo.ensure_root(ledger, "/data", "/backup", "archive")[0] == 1
    ledger.close()


def test_tables_that_are_not_the_ledgers_are_left_alone(tmp_path: Path) -> None:
    """A database shared with something else: its tables neither block nor get dropped."""
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE other_app (x TEXT)")
        db.execute("INSERT INTO other_app VALUES ('theirs')")
    ledger = Ledger(f"sqlite:///{path}")
    ledger.migrate()
    assert ledger.current_revision() == SCHEMA_HEAD
    ledger.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT x FROM other_app").fetchall() == [("theirs",)]


def hold_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another program takes the ledger's write lock now and keeps it for ``seconds``."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    def release() -> None:
        time.sleep(seconds)
        holder.execute("COMMIT")
        holder.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_a_write_waits_for_another_programs_lock_beyond_sqlites_own_wait(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(f"sqlite:///{path}", busy_timeout=0.1, lock_wait=30)
    ledger.migrate()
    repo.ensure_root(ledger, "/data", "/backup", "archive")
    thread = hold_write_lock(path, 1.0)  # ten times SQLite's own wait
    started = time.monotonic()
    pass_id = repo.start_pass(ledger)
    waited = time.monotonic() - started
    thread.join()
    assert pass_id == 1
    assert waited >= 0.9
    ledger.close()


def test_a_lock_held_past_the_wait_is_a_ledger_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(f"sqlite:///{path}", busy_timeout=0.1, lock_wait=0.5)
    ledger.migrate()
    thread = hold_write_lock(path, 3.0)
    try:
        with pytest.raises(LedgerError) as info:
            repo.start_pass(ledger)
    finally:
        thread.join()
    assert str(path) in str(info.value) and "locked by another program" in str(info.value)
    assert "SELECT" not in str(info.value) and "sqlalche.me" not in str(info.value)
    ledger.close()


def garble(path: Path, table: str) -> None:
    """Overwrite the pages of ``table`` and of its indexes with garbage."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = [
            r[0]
            for r in db.execute("SELECT rootpage FROM sqlite_master WHERE tbl_name = ?", (table,))
        ]
        size = db.execute("PRAGMA page_size").fetchone()[0]
    with open(path, "r+b") as f:
        for page in pages:
            f.seek((page - 1) * size)
            f.write(b"\x55" * size)


def test_every_read_path_translates_a_damaged_ledger(tmp_path: Path) -> None:
    """The raw DB-API reads (``load_facts``, ``count_files``) and the Core ones alike."""
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(f"sqlite:///{path}")
    ledger.migrate()
    root_id, _ = repo.ensure_root(ledger, "/data", "/backup", "archive")
    ledger.close()
    garble(path, "files")
    ledger = Ledger(f"sqlite:///{path}")
    for read in (repo.load_facts, repo.count_files, repo.done_files):
        with pytest.raises(LedgerCorruptError) as info:
            read(ledger, root_id)
        assert str(path) in str(info.value) and "damaged" in str(info.value)
    with pytest.raises(LedgerCorruptError):
        repo.root_status(ledger)
    ledger.close()


def test_raw_reads_translate_any_database_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(f"sqlite:///{path}")
    ledger.migrate()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE files")
    for read in (repo.load_facts, repo.count_files, repo.done_files):
        with pytest.raises(LedgerError, match="no such table: files"):
            read(ledger, 1)
    ledger.close()


EXTRA = '''"""test only: rebuild roots (as a batch ALTER does on SQLite), then maybe fail"""

import os

import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("roots", recreate="always") as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
    if os.environ.get("SYNCAGENT_TEST_FAIL_9001"):
        raise RuntimeError("injected failure after the rebuild")


def downgrade() -> None:
    with op.batch_alter_table("roots", recreate="always") as batch_op:
        batch_op.drop_column("note")
'''


@pytest.fixture
def extra_migration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped migrations plus one more that rebuilds ``roots``, which ``files`` refer to
    with ON DELETE CASCADE (what a future migration adding a column to it does)."""
    import shutil

    import syncagent.ledger as ledger_module

    scripts = tmp_path / "migrations"
    shutil.copytree(ledger_module.migrations_dir(), scripts)
    (scripts / "versions" / "9001_rebuild_roots.py").write_text(
        EXTRA.replace("{head}", SCHEMA_HEAD), encoding="utf-8"
    )
    monkeypatch.setattr(ledger_module, "migrations_dir", lambda: scripts)
    return scripts


def test_a_migration_that_rebuilds_a_referenced_table_keeps_the_rows_that_refer_to_it(
    tmp_path: Path, extra_migration: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(f"sqlite:///{path}")
    ledger.migrate(SCHEMA_HEAD)
    root_id, _ = repo.ensure_root(ledger, "/data", "/backup", "archive")
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO files (root_id, rel_path, size, mtime_ns, ctime_ns, dev, inode, state, "
            "attempts, next_attempt_at, seen_pass) VALUES (?, 'a.txt', 1, 1, 1, 1, 1, 'done', "
            "0, 0, 0)",
            (root_id,),
        )
    # A failure after the rebuild: the whole upgrade is undone, rows and all.
    monkeypatch.setenv("SYNCAGENT_TEST_FAIL_9001", "1")
    with pytest.raises(RuntimeError):
        ledger.migrate("9001")
    assert ledger.current_revision() == SCHEMA_HEAD
    assert "note" not in {c["name"] for c in inspect(ledger.engine).get_columns("roots")}
    monkeypatch.delenv("SYNCAGENT_TEST_FAIL_9001")
    ledger.migrate("9001")
    assert ledger.current_revision() == "9001"
    assert repo.count_files(ledger, root_id) == 1  # not cascaded away by the rebuild
    ledger.close()
