"""The ledger: syncagent's memory of what it has seen and done (SQLite by default).

:class:`Ledger` opens any SQLAlchemy URL (SQLite files get WAL mode and foreign keys), brings
the schema to the newest Alembic revision (:meth:`Ledger.migrate`, run on every start and by
``syncagent db upgrade``), and hands out sessions. The migrations ship inside the package
(``syncagent/_migrations`` in a wheel; ``migrations/`` in a checkout).

Failing parts:

- **Migrations are one transaction.** pysqlite does not put DDL in a transaction of its own
  accord, so a kill or a full disk in the middle of the first upgrade used to leave half a
  schema that no later start could get past. The migration connection has pysqlite's
  transaction handling switched off and opens ``BEGIN IMMEDIATE`` itself; every migration and
  the version stamp then commit together or not at all (and two first starts at once run it
  one after the other). A ledger left half-made by an older syncagent (tables, all empty, and
  no version) is cleared and migrated again.
- **Agents sharing a PostgreSQL ledger upgrade it once**: the upgrade holds an advisory
  lock (:mod:`syncagent.ledger.locks`) for its transaction; the others wait, then find the
  schema at head.
- **Another program's lock is waited out.** Each write transaction starts with
  ``BEGIN IMMEDIATE`` and, while the database is locked by someone else, retries for up to
  ``lock_wait`` seconds before giving up with a message naming the file.
- **Foreign database errors stop here**: they become :class:`~syncagent.errors.LedgerError`
  (or :class:`~syncagent.errors.LedgerCorruptError`) naming the ledger and saying what is wrong,
  without SQL or a traceback.
- **A password in the URL never leaves this module**: messages show :func:`masked_url` and
  have the password itself blanked out of the driver's words.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool, StaticPool

import syncagent
from syncagent.errors import LedgerCorruptError, LedgerError
from syncagent.ledger.outage import WAIT, Outage, is_connection_loss

__all__ = ["LOCK_WAIT", "SCHEMA_HEAD", "Ledger", "masked_url", "migrations_dir"]

log = logging.getLogger("syncagent")

T = TypeVar("T")

SCHEMA_HEAD = "0002"  # the newest revision in migrations/versions (a test keeps them equal)
LOCK_WAIT = 300.0  # seconds a write waits, in all, for another program's lock on the ledger
BUSY_TIMEOUT = 10.0  # seconds SQLite itself waits for a lock before answering "locked"

_LOCKED = ("database is locked", "database table is locked", "database schema is locked")
_CORRUPT = ("malformed", "not a database", "file is encrypted", "corrupt")


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


def _pragmas(*, busy_timeout: float, foreign_keys: bool, autocommit: bool) -> Callable[..., None]:
    def connect(dbapi_connection: Any, _record: Any) -> None:
        if autocommit:  # transactions are begun explicitly (see Ledger.migration_connection)
            dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.close()

    return connect


def _cause(exc: BaseException) -> str:
    """The database's own words, without SQLAlchemy's SQL echo and links."""
    orig = getattr(exc, "orig", None)
    return (str(orig) if orig is not None else str(exc)).strip().splitlines()[0] or type(
        exc
    ).__name__


def _locked(exc: BaseException) -> bool:
    return any(s in _cause(exc) for s in _LOCKED)


_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=128)
def _in_paramstyle(sql: str, paramstyle: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with its ``:name`` parameters written in a DB-API ``paramstyle``, and the
    names in the order a positional style takes them."""
    names: list[str] = []
    if paramstyle in ("format", "pyformat"):
        sql = sql.replace("%", "%%")

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        names.append(name)
        if paramstyle == "qmark":
            return "?"
        if paramstyle == "numeric":
            return f":{len(names)}"
        if paramstyle == "named":
            return f":{name}"
        if paramstyle == "format":
            return "%s"
        if paramstyle == "pyformat":
            return f"%({name})s"
        raise LedgerError(f"the database driver's parameter style {paramstyle!r} is not known")

    return _PARAM.sub(one, sql), tuple(names)


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
    :param lock_wait: how long, in all, a write waits for another program's lock.
    :param busy_timeout: how long SQLite waits before each "locked" answer.
    :param outage_wait: how long an operation waits for a database server that does not
        answer (restarting, connection lost) before :class:`LedgerUnavailableError`.
    """

    def __init__(
        self,
        url: str,
        *,
        read_only: bool = False,
        lock_wait: float = LOCK_WAIT,
        busy_timeout: float = BUSY_TIMEOUT,
        outage_wait: float = WAIT,
    ) -> None:
        self.url = masked_url(url)  # for messages; the password stays in the engine
        self._password = _password(url)
        self._raw_url = url
        self.read_only = read_only
        self.lock_wait = lock_wait
        self._busy_timeout = busy_timeout
        self.where = self.url  # what messages call it: the file, or the masked URL
        try:
            parsed = make_url(url)
            self._sqlite = parsed.get_backend_name() == "sqlite"
            sqlite_file = parsed.database if self._sqlite else None
            self._file = bool(sqlite_file and sqlite_file != ":memory:")
            if sqlite_file and self._file:
                self.where = sqlite_file
            if read_only and sqlite_file:
                self.engine: Engine = _read_only_sqlite(sqlite_file)
                event.listen(self.engine, "connect", _read_only_pragmas)
            else:
                if sqlite_file and self._file:
                    Path(sqlite_file).parent.mkdir(parents=True, exist_ok=True)
                # A server database: each pooled connection is pinged when handed out, so
                # one the server closed (a restart) is replaced instead of failing a write.
                self.engine = create_engine(url, pool_pre_ping=not self._sqlite)
                if self._sqlite:
                    event.listen(
                        self.engine,
                        "connect",
                        _pragmas(busy_timeout=busy_timeout, foreign_keys=True, autocommit=False),
                    )
        except ImportError as exc:  # e.g. postgresql+psycopg without psycopg
            name = getattr(exc, "name", None) or "its database driver"
            raise LedgerError(
                f"cannot open the ledger {self.url}: it needs the Python module {name!r}, which "
                "is not installed; for PostgreSQL: pip install 'syncagent[postgres]'"
            ) from None
        except (SQLAlchemyError, OSError, ValueError) as exc:
            raise LedgerError(
                f"cannot open the ledger {self.where}: {self._clean(_cause(exc))}"
            ) from exc
        self.outage = Outage(self.url, wait=outage_wait, enabled=not self._sqlite)
        # SQLite takes one writer at a time and makes the others sleep in its busy handler
        # (1, 2, 5... ms steps): with 8 workers that sleeping dominated a pass of small files.
        # Queueing the writers here instead costs nothing; other databases need no lock.
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if self._sqlite else contextlib.nullcontext()
        )

    def __repr__(self) -> str:
        return f"<Ledger {self.url}>"

    def _clean(self, message: str) -> str:
        """The driver's message with the password blanked out, should it quote it."""
        if self._password:
            for form in (self._password, quote(self._password, safe="")):
                message = message.replace(form, "***")
        return message

    def close(self) -> None:
        self.engine.dispose()

    # -- errors ---------------------------------------------------------------------------

    def error(self, exc: BaseException, doing: str = "use") -> LedgerError:
        """The error tree's version of a foreign database error."""
        cause = self._clean(_cause(exc))
        if any(s in cause.lower() for s in _CORRUPT):
            return LedgerCorruptError(
                f"the ledger {self.where} is damaged ({cause}); move it aside and run again "
                "(a new ledger is started, and every file is uploaded again)"
            )
        if _locked(exc):
            return LedgerError(
                f"the ledger {self.where} is locked by another program ({cause}; a write "
                f"waits up to {self.lock_wait:.0f} s): stop whatever holds it"
            )
        return LedgerError(f"cannot {doing} the ledger {self.where}: {cause}")

    @contextmanager
    def translated(self, doing: str = "use") -> Iterator[None]:
        """Turn foreign database errors (SQLAlchemy's and the DB-API's own) into LedgerError."""
        dbapi = getattr(self.engine.dialect, "loaded_dbapi", None)
        foreign: tuple[type[BaseException], ...] = (SQLAlchemyError,)
        if dbapi is not None:
            foreign += (dbapi.Error,)
        try:
            yield
        except foreign as exc:
            if self.outage.enabled and is_connection_loss(exc):
                raise self.outage.unavailable(self._clean(_cause(exc))) from exc
            raise self.error(exc, doing) from exc

    def _connect(self, engine: Engine | None = None) -> Connection:
        """A connection, waiting out a database server that does not answer (see
        :mod:`syncagent.ledger.outage`)."""
        return self.outage.retry((engine or self.engine).connect, self._cause)

    def _cause(self, exc: BaseException) -> str:
        return self._clean(_cause(exc))

    def raw_rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every row of one query, read through the DB-API cursor (no per-row processing by
        SQLAlchemy: several times cheaper for the big reads of every pass).

        ``sql`` takes ``:name`` parameters, written here in the driver's own paramstyle
        (``?`` for SQLite, ``%(name)s`` for psycopg, ``%s`` for pg8000...).
        """
        style = str(self.engine.dialect.paramstyle)
        statement, names = _in_paramstyle(sql, style)
        values = params or {}
        args: Any = (
            dict(values) if style in ("named", "pyformat") else tuple(values[n] for n in names)
        )

        def read() -> list[Any]:
            raw = self.engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute(statement, args)
                return list(cursor.fetchall())  # (the pool rolls the read back on close)
            finally:
                raw.close()

        with self.translated("read"):  # the DB-API's own errors come through here raw
            return self.outage.retry(read, self._cause)  # a read can be tried again whole

    # -- transactions ---------------------------------------------------------------------

    def _begin_write(self, conn: Connection) -> None:
        """Take SQLite's write lock now (``BEGIN IMMEDIATE``), waiting out another program's
        lock for up to ``lock_wait``; nothing in the transaction can then find it locked.

        Other databases: ``BEGIN`` now, on the connection. A :class:`Session` bound to a
        connection that is not in a transaction begins its own and rolls it back when it
        closes, whatever the connection commits after: on PostgreSQL every ORM write was
        silently lost that way."""
        if not self._sqlite:
            if not conn.in_transaction():
                conn.begin()
            return
        deadline = time.monotonic() + self.lock_wait
        warned = False
        while True:
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except SQLAlchemyError as exc:
                conn.rollback()
                if not _locked(exc) or time.monotonic() >= deadline:
                    raise
                if not warned:
                    log.warning(
                        "the ledger %s is locked by another program; waiting up to %.0f s",
                        self.where,
                        self.lock_wait,
                    )
                    warned = True
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def current_revision(self) -> str | None:
        """The schema revision the database is at (None: not created yet)."""
        with self.translated("read"), self._connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return None if value is None else str(value)

    @contextmanager
    def migration_connection(self) -> Iterator[Connection]:
        """One transaction for a whole upgrade, DDL included, committed at the end.

        SQLite: a connection of its own with pysqlite's transaction handling off (else each
        ``CREATE TABLE`` commits by itself), foreign keys off while tables are rebuilt (the
        SQLite way to alter a table; checked before the commit), ``BEGIN IMMEDIATE``.
        """
        engine = self.engine
        if self._sqlite and self._file:  # (an in-memory database exists in its engine only)
            engine = create_engine(self._raw_url, poolclass=NullPool)
            event.listen(
                engine,
                "connect",
                _pragmas(busy_timeout=self._busy_timeout, foreign_keys=False, autocommit=True),
            )
        try:
            with self.translated("upgrade"), self._connect(engine) as conn:
                self._begin_write(conn)
                yield conn
                if self._sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise LedgerError(
                            f"cannot upgrade the ledger {self.where}: the migration broke "
                            f"{len(broken)} references (first: {tuple(broken[0])})"
                        )
                conn.commit()
        finally:
            if engine is not self.engine:
                engine.dispose()

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision`` (idempotent), all of it or nothing.

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
        from syncagent.ledger.locks import MIGRATION_LOCK, hold_for_transaction

        with self.migration_connection() as connection:
            # Several agents starting at once on one PostgreSQL ledger: one upgrades, the
            # others wait here, then find the schema at head and do nothing.
            hold_for_transaction(connection, MIGRATION_LOCK)
            self._clear_interrupted_start(connection)
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)

    def _clear_interrupted_start(self, conn: Connection) -> None:
        """A first upgrade that an older syncagent left half-done (its DDL was not in a
        transaction): some of the ledger's tables, all empty, and no version. Drop them, so
        the upgrade starts over. Tables that are not the ledger's are left alone."""
        from syncagent.ledger.models import Base

        found = inspect(conn)
        ours = [t for t in found.get_table_names() if t in Base.metadata.tables]
        if not ours:
            return
        if (
            found.has_table("alembic_version")
            and conn.execute(text("SELECT count(*) FROM alembic_version")).scalar()
        ):
            return
        if any(conn.execute(text(f'SELECT 1 FROM "{t}" LIMIT 1')).first() for t in ours):
            raise LedgerError(
                f"the ledger {self.where} has tables ({', '.join(sorted(ours))}) holding rows "
                "but no schema version: it is damaged or was made by something else; move it "
                "aside"
            )
        log.warning("the ledger %s was left half-made by an interrupted start: redone", self.where)
        for table in ours:
            conn.exec_driver_sql(f'DROP TABLE "{table}"')

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads (Core statements): errors translated, a server that does
        not answer waited for (see :mod:`syncagent.ledger.outage`)."""
        with self.translated("read"), self._connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction on a plain connection (Core statements, no ORM)."""
        with self._write_lock, self.translated("write"), self._connect() as conn:
            self._begin_write(conn)
            yield conn
            conn.commit()

    def write_retried(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` in one write transaction; when the server goes away meanwhile (the
        transaction is lost), the whole transaction again once it is back (see
        :mod:`syncagent.ledger.outage`). ``work`` must be idempotent: an upsert, a delete."""

        def once() -> T:
            with self.write() as conn:
                return work(conn)

        return self.outage.retry(once, self._cause)

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises.

        :param write: take the write lock first (SQLite); a read-only session does not
            wait for writers.
        """
        if not write or self.read_only:  # read only: any write fails (query_only)
            with (
                self.translated("read"),
                self._connect() as conn,
                Session(bind=conn, expire_on_commit=False) as session,
            ):
                yield session
            return
        with self._write_lock, self.translated("write"), self._connect() as conn:
            self._begin_write(conn)
            with Session(bind=conn, expire_on_commit=False) as session:
                yield session
                session.flush()
            conn.commit()
