"""A throw-away PostgreSQL server for the tests: a private cluster in a temp dir.

:class:`PgServer` runs Debian's PostgreSQL binaries (``initdb`` + ``pg_ctl``, found under
``/usr/lib/postgresql/<version>/bin``, or ``$SYNCAGENT_PG_BIN``) on a Unix socket in its own
dir and on a free 127.0.0.1 port, with ``fsync`` off (nothing here must survive a power cut).
As root the server runs as the ``postgres`` user (PostgreSQL refuses to run as root).

The session-scoped fixtures in ``tests/conftest.py`` (``pg_server``, ``pg_database``,
``ledger_url``) are built on it. Its API, which other tests rely on:

- ``url(db, driver="psycopg"|"pg8000", socket=False)``: an SQLAlchemy URL of a database;
- ``create_database(name)`` / ``drop_database(name)`` (the drop ends open connections);
- ``stop()`` / ``start()`` / ``restart()``: the same data, port and socket after a start;
- ``running``, ``port``, ``socket_dir``, ``log_file``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PgServer", "find_pg_bin"]

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
USER = "postgres"


def find_pg_bin() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: ``$SYNCAGENT_PG_BIN``, Debian's newest
    ``/usr/lib/postgresql/<version>/bin``, or the one on PATH."""
    env = os.environ.get("SYNCAGENT_PG_BIN")
    if env:
        return Path(env)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """A private PostgreSQL cluster; :meth:`start` it, :meth:`close` it at the end.

    :param bin_dir: where ``initdb`` and ``pg_ctl`` are.
    :param base: an empty directory to hold the data, socket and log (made when None).
    """

    def __init__(self, bin_dir: Path, base: Path | None = None) -> None:
        self.bin_dir = bin_dir
        self.base = Path(base or tempfile.mkdtemp(prefix="syncagent-pg-"))
        self.data = self.base / "data"
        self.socket_dir = self.base / "sock"
        self.log_file = self.base / "server.log"
        self.port = _free_port()
        self.running = False
        self._as_root = os.geteuid() == 0
        self._initialised = False
        atexit.register(self.close)

    def __repr__(self) -> str:
        return f"<PgServer 127.0.0.1:{self.port} {self.base}>"

    # -- running the binaries ---------------------------------------------------------------

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", USER, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({done.returncode}): "
                f"{done.stdout}{done.stderr}\n--- server log ---\n{log[-3000:]}"
            )
        return done

    def _initdb(self) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            pw = pwd.getpwnam(USER)
            for path in (self.base, self.socket_dir):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            USER,
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        self._initialised = True

    def start(self) -> None:
        """Start the server (making the cluster the first time); returns when it answers."""
        if self.running:
            return
        if not self._initialised:
            self._initdb()
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.socket_dir}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
                "-c shared_buffers=32MB",
            ]
        )
        data, log = str(self.data), str(self.log_file)
        self._run("pg_ctl", "-D", data, "-l", log, "-w", "-t", "120", "-o", options, "start")
        self.running = True
        self._wait_ready()

    def _wait_ready(self, deadline: float = 60.0) -> None:
        end = time.monotonic() + deadline
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                    return
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server now (``-m fast``: open connections are cut, as in a real outage)."""
        if not self.running:
            return
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "120", "-m", "fast", "stop")
        self.running = False

    def restart(self) -> None:
        """Stop then start: every open connection is cut; the data stays."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and delete its files (safe to call twice)."""
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    # -- databases ----------------------------------------------------------------------------

    def url(self, db: str, driver: str = "psycopg", *, socket: bool = False) -> str:
        """An SQLAlchemy URL of database ``db`` (user ``postgres``, no password: trust)."""
        if driver not in ("psycopg", "pg8000"):
            raise ValueError(f"unknown PostgreSQL driver {driver!r}")
        if not socket:
            return f"postgresql+{driver}://{USER}@127.0.0.1:{self.port}/{db}"
        if driver == "psycopg":
            return f"postgresql+{driver}://{USER}@/{db}?host={self.socket_dir}&port={self.port}"
        unix = self.socket_dir / f".s.PGSQL.{self.port}"
        return f"postgresql+{driver}://{USER}@/{db}?unix_sock={unix}"

    def admin(self, sql: str) -> None:
        """Run one statement on the ``postgres`` database, outside a transaction."""
        import psycopg

        with psycopg.connect(
            host=str(self.socket_dir), port=self.port, user=USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql.encode())

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its (psycopg, TCP) URL."""
        if not _NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        self.admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending the connections still open to it."""
        if not _NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
