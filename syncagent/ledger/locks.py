"""Database-wide named locks on a shared ledger (PostgreSQL advisory locks).

Several agents may share one PostgreSQL ledger; what only one of them may do at a time (the
schema upgrade on a first start, a token refresh) is serialised on an advisory lock named
here. A name maps to PostgreSQL's 64-bit lock key through a hash, so unrelated names do not
collide in practice. SQLite needs none of this: its writers already queue on the file
(``BEGIN IMMEDIATE``), so on SQLite these functions do nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection

__all__ = ["MIGRATION_LOCK", "held", "hold_for_transaction", "lock_key"]

MIGRATION_LOCK = "syncagent:migrate"


def lock_key(name: str) -> int:
    """The signed 64-bit advisory lock key of ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _advisory(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def hold_for_transaction(conn: Connection, name: str) -> None:
    """Wait for the lock ``name`` and hold it until ``conn``'s transaction ends (commit or
    rollback: a process that dies mid-way frees it with its connection)."""
    if _advisory(conn):
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})


@contextmanager
def held(conn: Connection, name: str) -> Iterator[None]:
    """Hold the lock ``name`` on ``conn`` for the block, across its transactions."""
    if not _advisory(conn):
        yield
        return
    key = lock_key(name)
    conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
    try:
        yield
    finally:
        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
