"""The quick no-op check reads a root's few kv keys, and steps aside when they ask the full
pass to act (syncagent.noop._kv_says_act)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from syncagent import noop, versions
from syncagent.config import RootConfig

NOW = 1_800_000_000.0


def _db(rows: dict[str, str]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT)")
    db.executemany("INSERT INTO kv VALUES (?, ?)", rows.items())
    return db


def test_the_due_prefix_agrees_with_versions() -> None:
    assert noop.DUE_PREFIX == versions.DUE_PREFIX


def test_nothing_in_kv_is_quick() -> None:
    root = RootConfig(Path("/r"), "/b", versions_keep_days=30.0)
    many = {f"version.7.{n}": "x" for n in range(1000)}  # version records do not matter
    assert not noop._kv_says_act(_db({**many, "catalog.7": "ok"}), root, 7, NOW)


@pytest.mark.parametrize(
    "rows",
    [
        {"root_not_read:7": "x"},
        {"guard_hold:7": "x"},
        {"guard_approved:7": "x"},
        {"catalog.7": "stale"},
    ],
)
def test_a_remembered_problem_takes_the_full_way(rows: dict[str, str]) -> None:
    assert noop._kv_says_act(_db(rows), RootConfig(Path("/r"), "/b"), 7, NOW)


def test_other_roots_keys_do_not_count() -> None:
    db = _db({"guard_hold:8": "x", "catalog.8": "stale", "version_due.8": "1"})
    assert not noop._kv_says_act(db, RootConfig(Path("/r"), "/b", versions_keep_days=1.0), 7, NOW)


def test_a_version_due_under_keep_days_takes_the_full_way() -> None:
    due = {f"{noop.DUE_PREFIX}7": repr(NOW - 1)}
    later = {f"{noop.DUE_PREFIX}7": repr(NOW + 3600)}
    aging = RootConfig(Path("/r"), "/b", versions_keep_days=30.0)
    assert noop._kv_says_act(_db(due), aging, 7, NOW)
    assert not noop._kv_says_act(_db(later), aging, 7, NOW)
    assert not noop._kv_says_act(_db(due), RootConfig(Path("/r"), "/b"), 7, NOW)
