"""The ledger: syncagent's memory of what it has seen and done (SQLite by default).

:class:`Ledger` opens any SQLAlchemy URL (SQLite files get WAL mode and foreign keys), brings
the schema to the newest Alembic revision (:meth:`Ledger.migrate`, run on every start and by
``syncagent db upgrade``), and hands out sessions. The migrations ship inside the package
(``syncagent/_migrations`` in a wheel; ``migrations/`` in a checkout).

Foreign database errors are translated into :class:`~syncagent.errors.LedgerError` here, and
a password in the URL never leaves this module: messages show :func:`masked_url` and have the
password itself blanked out of the driver's words.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

import syncagent
from syncagent.errors import LedgerError

__all__ = ["SCHEMA_HEAD", "Ledger", "masked_url", "migrations_dir"]

SCHEMA_HEAD = "0001"  # the newest revision in migrations/versions (a test keeps them equal)


def migrations_dir() -> Path:
    """Where the Alembic scripts are: inside the installed package, or the checkout's."""
    package = Path(syncagent.__file__).resolve().parent
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise LedgerError("the ledger migrations are missing from this installation")


def masked_url(url: str) -> str:
    """``url`` with its password shown as ``***`` (what every message and output shows); a
    URL without one unchanged (SQLAlchemy would re-quote an SQLite path)."""
    try:
        parsed = make_url(url)
        return url if parsed.password is None else parsed.render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(an invalid database URL)" if "@" in url else url


def _password(url: str) -> str | None:
    try:
        return make_url(url).password
    except (ArgumentError, ValueError):
        return None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _read_only_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _read_only_sqlite(file: str) -> Engine:
    """An SQLite ledger opened so that nothing is written and no file is created.

    Opened read-only, a WAL database creates its ``-wal`` and ``-shm`` files when they are
    missing and leaves them behind. They exist while any connection has the ledger open;
    when they do not, the ledger is read as immutable (no journal, no locks) instead.
    """
    quoted = urllib.parse.quote(file)
    shared = Path(file + "-wal").exists() and Path(file + "-shm").exists()
    uri = f"file:{quoted}?mode=ro" if shared else f"file:{quoted}?immutable=1"
    return create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False),
        poolclass=StaticPool,
    )


class Ledger:
    """An open ledger database.

    :param url: SQLAlchemy URL, e.g. ``sqlite:////var/lib/syncagent/ledger.sqlite3``.
    :param read_only: open it for reading only (a dry run): no folder or file is created,
        no journal mode set, and any write fails. The database must exist.
    """

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = masked_url(url)  # for messages; the password stays in the engine
        self._password = _password(url)
        try:
            sqlite_file = url.removeprefix("sqlite:///").split("?", 1)[0]
            if read_only and url.startswith("sqlite:///"):
                self.engine: Engine = _read_only_sqlite(sqlite_file)
                event.listen(self.engine, "connect", _read_only_pragmas)
            else:
                if url.startswith("sqlite:///") and not read_only:
                    Path(sqlite_file).parent.mkdir(parents=True, exist_ok=True)
                self.engine = create_engine(url)
                if self.engine.dialect.name == "sqlite":
                    event.listen(self.engine, "connect", _sqlite_pragmas)
        except ImportError as exc:  # e.g. postgresql+psycopg without psycopg
            name = getattr(exc, "name", None) or "its database driver"
            raise LedgerError(
                f"cannot open the ledger {self.url}: it needs the Python module {name!r}, which "
                "is not installed; for PostgreSQL: pip install 'syncagent[postgres]'"
            ) from None
        except (SQLAlchemyError, OSError) as exc:
            raise LedgerError(f"cannot open the ledger {self.url}: {self._clean(exc)}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite takes one writer at a time and makes the others sleep in its busy handler
        # (1, 2, 5... ms steps): with 8 workers that sleeping dominated a pass of small files.
        # Queueing the writers here instead costs nothing; other databases need no lock.
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if self.engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )

    def __repr__(self) -> str:
        return f"<Ledger {self.url}>"

    def _clean(self, exc: BaseException) -> str:
        """The driver's message with the password blanked out, should it quote it."""
        message = str(exc)
        if self._password:
            for form in (self._password, quote(self._password, safe="")):
                message = message.replace(form, "***")
        return message

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
            raise LedgerError(f"cannot read the ledger {self.url}: {self._clean(exc)}") from exc
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
            raise LedgerError(f"cannot upgrade the ledger {self.url}: {self._clean(exc)}") from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction on a plain connection (Core statements, no ORM)."""
        try:
            with self._write_lock, self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise LedgerError(f"ledger error: {self._clean(exc)}") from exc

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        try:
            with self._write_lock, self._sessions.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            raise LedgerError(f"ledger error: {self._clean(exc)}") from exc
