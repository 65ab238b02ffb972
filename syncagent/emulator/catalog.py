"""The emulator's metadata: the file tree, tokens, chunked-upload sessions, in one SQLite file.

Owns ``<data_dir>/emulator.sqlite3``. Every method takes the catalog lock and runs in one
transaction, so concurrent requests see a consistent tree: two uploads that both need folder
``a/b`` get the same folder (a partial unique index on live names backs this up). Content bytes
are not here; see :mod:`syncagent.emulator.blobs`.

Knows nothing about HTTP or the API's envelope.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FILE", "FOLDER", "Catalog", "Entry", "Preupload"]

FILE = 0
FOLDER = 1
ROOT_ID = 0
FIRST_ID = 10_000_001  # real fileIDs are large; small ones would hide int-width bugs

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    type INTEGER NOT NULL,
    size INTEGER NOT NULL DEFAULT 0,
    md5 TEXT NOT NULL DEFAULT '',
    trashed INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_live_name ON entries(parent_id, name) WHERE trashed = 0;
CREATE INDEX IF NOT EXISTS entries_parent ON entries(parent_id, id);
CREATE TABLE IF NOT EXISTS tokens (
    jti TEXT PRIMARY KEY,
    issued_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    revoked TEXT
);
CREATE TABLE IF NOT EXISTS preuploads (
    id TEXT PRIMARY KEY,
    parent_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    slice_size INTEGER NOT NULL,
    duplicate INTEGER NOT NULL,
    polls INTEGER NOT NULL DEFAULT 0,
    file_id INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS preupload_slices (
    preupload_id TEXT NOT NULL,
    slice_no INTEGER NOT NULL,
    PRIMARY KEY (preupload_id, slice_no)
);
INSERT OR IGNORE INTO sqlite_sequence(name, seq)
    SELECT 'entries', {FIRST_ID - 1} WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence
                                                       WHERE name = 'entries');
"""


@dataclass(frozen=True)
class Entry:
    """One file or folder of the emulated drive."""

    id: int
    parent_id: int
    name: str
    type: int
    size: int
    md5: str
    trashed: bool
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Preupload:
    """A V2 chunked upload in progress (or completed: ``file_id`` != 0)."""

    id: str
    parent_id: int
    name: str
    size: int
    md5: str
    slice_size: int
    duplicate: int
    polls: int
    file_id: int

    @property
    def slice_count(self) -> int:
        return max(1, -(-self.size // self.slice_size))


_ENTRY_COLS = "id, parent_id, name, type, size, md5, trashed, created_at, updated_at"


def _entry(row: tuple[object, ...]) -> Entry:
    return Entry(
        id=int(row[0]),  # type: ignore[call-overload]
        parent_id=int(row[1]),  # type: ignore[call-overload]
        name=str(row[2]),
        type=int(row[3]),  # type: ignore[call-overload]
        size=int(row[4]),  # type: ignore[call-overload]
        md5=str(row[5]),
        trashed=bool(row[6]),
        created_at=float(row[7]),  # type: ignore[arg-type]
        updated_at=float(row[8]),  # type: ignore[arg-type]
    )


class Catalog:
    """SQLite-backed metadata store; thread-safe through one lock.

    :param path: the database file (created if missing).
    """

    def __init__(self, path: Path) -> None:
        # One connection shared by the server's threads; the lock serialises its use.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and one write transaction; roll back if the body raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- meta -----------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # -- tree: reads ------------------------------------------------------------------------

    def get(self, file_id: int) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_ENTRY_COLS} FROM entries WHERE id = ?", (file_id,)
            ).fetchone()
        return None if row is None else _entry(row)

    def children(self, parent_id: int, after_id: int, limit: int) -> list[Entry]:
        """Items of a folder (trashed ones included) with id > ``after_id``, ascending."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ENTRY_COLS} FROM entries WHERE parent_id = ? AND id > ? "
                "ORDER BY id LIMIT ?",
                (parent_id, after_id, limit),
            ).fetchall()
        return [_entry(r) for r in rows]

    def search(self, text: str, exact: bool, after_id: int, limit: int) -> list[Entry]:
        """Whole-drive name search (the API ignores the parent when searching)."""
        if exact:
            clause, arg = "name = ?", text
        else:
            clause, arg = "instr(name, ?) > 0", text
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ENTRY_COLS} FROM entries WHERE {clause} AND id > ? ORDER BY id LIMIT ?",
                (arg, after_id, limit),
            ).fetchall()
        return [_entry(r) for r in rows]

    def tree_size(self, folder_id: int) -> int:
        """Total bytes of the files below ``folder_id`` (trashed ones excluded)."""
        with self._lock:
            row = self._db.execute(
                "WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL SELECT e.id FROM entries e "
                "JOIN sub ON e.parent_id = sub.id WHERE e.trashed = 0) "
                "SELECT COALESCE(SUM(e.size), 0) FROM entries e JOIN sub ON e.id = sub.id "
                "WHERE e.type = 0 AND e.trashed = 0",
                (folder_id,),
            ).fetchone()
        return int(row[0])

    def space_used(self) -> int:
        """Bytes of every stored file, recycle bin included (it still takes space)."""
        with self._lock:
            row = self._db.execute(
                "SELECT COALESCE(SUM(size), 0) FROM entries WHERE type = 0"
            ).fetchone()
        return int(row[0])

    def is_under(self, folder_id: int, maybe_ancestor: int) -> bool:
        """Whether ``folder_id`` is ``maybe_ancestor`` or lies below it."""
        current = folder_id
        with self._lock:
            while current != ROOT_ID:
                if current == maybe_ancestor:
                    return True
                row = self._db.execute(
                    "SELECT parent_id FROM entries WHERE id = ?", (current,)
                ).fetchone()
                if row is None:
                    return False
                current = int(row[0])
        return maybe_ancestor == ROOT_ID

    # -- tree: writes (call inside transaction()) -------------------------------------------

    @staticmethod
    def insert(
        db: sqlite3.Connection, parent_id: int, name: str, type_: int, size: int = 0, md5: str = ""
    ) -> int:
        now = time.time()
        cur = db.execute(
            "INSERT INTO entries(parent_id, name, type, size, md5, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (parent_id, name, type_, size, md5, now, now),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    @staticmethod
    def find_live(db: sqlite3.Connection, parent_id: int, name: str) -> Entry | None:
        row = db.execute(
            f"SELECT {_ENTRY_COLS} FROM entries WHERE parent_id = ? AND name = ? AND trashed = 0",
            (parent_id, name),
        ).fetchone()
        return None if row is None else _entry(row)

    @staticmethod
    def get_in(db: sqlite3.Connection, file_id: int) -> Entry | None:
        row = db.execute(f"SELECT {_ENTRY_COLS} FROM entries WHERE id = ?", (file_id,)).fetchone()
        return None if row is None else _entry(row)

    @staticmethod
    def set_trashed(db: sqlite3.Connection, file_id: int, trashed: bool) -> None:
        db.execute(
            "UPDATE entries SET trashed = ?, updated_at = ? WHERE id = ?",
            (int(trashed), time.time(), file_id),
        )

    @staticmethod
    def destroy(db: sqlite3.Connection, file_id: int) -> None:
        """Remove an item and everything below it for good."""
        db.execute(
            "WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL SELECT e.id FROM entries e "
            "JOIN sub ON e.parent_id = sub.id) DELETE FROM entries WHERE id IN sub",
            (file_id,),
        )

    @staticmethod
    def update(
        db: sqlite3.Connection,
        file_id: int,
        *,
        parent_id: int | None = None,
        name: str | None = None,
    ) -> None:
        if parent_id is not None:
            db.execute(
                "UPDATE entries SET parent_id = ?, updated_at = ? WHERE id = ?",
                (parent_id, time.time(), file_id),
            )
        if name is not None:
            db.execute(
                "UPDATE entries SET name = ?, updated_at = ? WHERE id = ?",
                (name, time.time(), file_id),
            )

    # -- tokens ----------------------------------------------------------------------------

    def add_token(
        self, jti: str, issued_at: float, expires_at: float, max_live: int, evict: bool
    ) -> bool:
        """Record a new token; with ``max_live`` live ones already, evict the oldest or refuse.

        :returns: False when the token was refused (``evict`` false and no room).
        """
        with self.transaction() as db:
            live = db.execute(
                "SELECT jti FROM tokens WHERE revoked IS NULL AND expires_at > ? "
                "ORDER BY issued_at, rowid",
                (issued_at,),
            ).fetchall()
            excess = len(live) - max_live + 1
            if excess > 0:
                if not evict:
                    return False
                for (old,) in live[:excess]:
                    db.execute("UPDATE tokens SET revoked = 'evicted' WHERE jti = ?", (old,))
            db.execute(
                "INSERT INTO tokens(jti, issued_at, expires_at) VALUES (?, ?, ?)",
                (jti, issued_at, expires_at),
            )
        return True

    def token_state(self, jti: str, now: float) -> tuple[str, float]:
        """(``live``, ``expired``, ``evicted`` or ``unknown``; the expiry time)."""
        with self._lock:
            row = self._db.execute(
                "SELECT expires_at, revoked FROM tokens WHERE jti = ?", (jti,)
            ).fetchone()
        if row is None:
            return "unknown", 0.0
        expires_at = float(row[0])
        if row[1] is not None:
            return str(row[1]), expires_at
        return ("live" if expires_at > now else "expired"), expires_at

    def expire_tokens(self) -> int:
        with self.transaction() as db:
            return db.execute(
                "UPDATE tokens SET revoked = 'expired' WHERE revoked IS NULL"
            ).rowcount

    # -- chunked uploads --------------------------------------------------------------------

    def add_preupload(self, p: Preupload) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO preuploads(id, parent_id, name, size, md5, slice_size, duplicate, "
                "polls, file_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    p.id,
                    p.parent_id,
                    p.name,
                    p.size,
                    p.md5,
                    p.slice_size,
                    p.duplicate,
                    p.polls,
                    p.file_id,
                    time.time(),
                ),
            )

    def preupload(self, preupload_id: str) -> Preupload | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, parent_id, name, size, md5, slice_size, duplicate, polls, file_id "
                "FROM preuploads WHERE id = ?",
                (preupload_id,),
            ).fetchone()
        if row is None:
            return None
        return Preupload(
            str(row[0]),
            int(row[1]),
            str(row[2]),
            int(row[3]),
            str(row[4]),
            int(row[5]),
            int(row[6]),
            int(row[7]),
            int(row[8]),
        )

    def mark_slice(self, preupload_id: str, slice_no: int, done: bool) -> None:
        with self.transaction() as db:
            if done:
                db.execute(
                    "INSERT OR IGNORE INTO preupload_slices VALUES (?, ?)", (preupload_id, slice_no)
                )
            else:
                db.execute(
                    "DELETE FROM preupload_slices WHERE preupload_id = ? AND slice_no = ?",
                    (preupload_id, slice_no),
                )

    def done_slices(self, preupload_id: str) -> set[int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT slice_no FROM preupload_slices WHERE preupload_id = ?", (preupload_id,)
            ).fetchall()
        return {int(r[0]) for r in rows}

    def count_poll(self, preupload_id: str) -> int:
        """Count one ``upload_complete`` poll; returns how many came before it."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT polls FROM preuploads WHERE id = ?", (preupload_id,)
            ).fetchone()
            db.execute("UPDATE preuploads SET polls = polls + 1 WHERE id = ?", (preupload_id,))
        return int(row[0])

    def clear_slices(self, preupload_id: str) -> None:
        """Forget every received slice (after a failed verification: all must come again)."""
        with self.transaction() as db:
            db.execute("DELETE FROM preupload_slices WHERE preupload_id = ?", (preupload_id,))

    @staticmethod
    def finish_preupload(db: sqlite3.Connection, preupload_id: str, file_id: int) -> None:
        db.execute("UPDATE preuploads SET file_id = ? WHERE id = ?", (file_id, preupload_id))
        db.execute("DELETE FROM preupload_slices WHERE preupload_id = ?", (preupload_id,))
