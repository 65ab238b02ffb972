"""The ledger: syncagent's memory of what it has seen and done (SQLite by default).

:class:`Ledger` opens any SQLAlchemy URL (SQLite files get WAL mode and foreign keys), brings
the schema to the newest Alembic revision (:meth:`Ledger.migrate`, run on every start and by
``syncagent db upgrade``), and hands out sessions. The migrations ship inside the package
(``syncagent/_migrations`` in a wheel; ``migrations/`` in a checkout).

Foreign database errors are translated into :class:`~syncagent.errors.LedgerError` here.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

import syncagent
from syncagent.errors import LedgerError

__all__ = ["SCHEMA_HEAD", "Ledger", "migrations_dir"]

SCHEMA_HEAD = "0001"  # the newest revision in migrations/versions (a test keeps them equal)


def migrations_dir() -> Path:
    """Where the Alembic scripts are: inside the installed package, or the checkout's."""
    package = Path(syncagent.__file__).resolve().parent
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise LedgerError("the ledger migrations are missing from this installation")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Ledger:
    """An open ledger database.

    :param url: SQLAlchemy URL, e.g. ``sqlite:////var/lib/syncagent/ledger.sqlite3``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
        except ModuleNotFoundError as exc:  # e.g. postgresql+psycopg without psycopg
            raise LedgerError(
                f"the ledger URL needs the Python module {exc.name!r}, which is not installed; "
                "for PostgreSQL: pip install 'syncagent[postgres]'"
            ) from exc
        except (SQLAlchemyError, OSError) as exc:
            raise LedgerError(f"cannot open the ledger {url}: {exc}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite takes one writer at a time and makes the others sleep in its busy handler
        # (1, 2, 5... ms steps): with 8 workers that sleeping dominated a pass of small files.
        # Queueing the writers here instead costs nothing; other databases need no lock.
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if self.engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )

    def close(self) -> None:
        self.engine.dispose()

    def current_revision(self) -> str | None:
        """The schema revision the database is at (None: not created yet)."""
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("alembic_version"):
                    return None
                value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except SQLAlchemyError as exc:
            raise LedgerError(f"cannot read the ledger {self.url}: {exc}") from exc
        return None if value is None else str(value)

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision`` (idempotent).

        When the database is already at :data:`SCHEMA_HEAD`, Alembic is not even imported:
        every command start runs this, and a no-op pass should cost a stat walk, not a
        migration framework.
        """
        if revision == "head" and self.current_revision() == SCHEMA_HEAD:
            return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(migrations_dir()))
        try:
            with self.engine.begin() as connection:
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, revision)
        except SQLAlchemyError as exc:
            raise LedgerError(f"cannot upgrade the ledger {self.url}: {exc}") from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction on a plain connection (Core statements, no ORM)."""
        try:
            with self._write_lock, self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise LedgerError(f"ledger error: {exc}") from exc

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        try:
            with self._write_lock, self._sessions.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            raise LedgerError(f"ledger error: {exc}") from exc
