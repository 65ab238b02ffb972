"""A PostgreSQL ledger rides out a server restart: stale connections are replaced, work
waits for the server to return, and a server that stays away ends in LedgerUnavailableError."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from pg_support import PgServer
from sqlalchemy import Connection, text

from syncagent.errors import LedgerError, LedgerUnavailableError
from syncagent.ledger import Ledger, repo, trust


@pytest.fixture
def server(pg_server: PgServer) -> Iterator[PgServer]:
    """The session's server, running again after the test whatever it did."""
    yield pg_server
    pg_server.start()


def _until(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.mark.parametrize("driver", ["psycopg", "pg8000"])
def test_pooled_connections_survive_a_restart(
    server: PgServer, pg_database: str, driver: str
) -> None:
    ledger = Ledger(server.url(pg_database, driver=driver))
    try:
        ledger.migrate()
        repo.set_value(ledger, "before", "1")  # its connection goes back to the pool
        server.restart()
        repo.set_value(ledger, "after", "2")  # the stale one is replaced, not used
        assert repo.get_values(ledger, "") == {"before": "1", "after": "2"}
        assert ledger.outage.since is None
    finally:
        ledger.close()


def test_work_waits_for_the_server_to_come_back(server: PgServer, pg_database: str) -> None:
    ledger = Ledger(server.url(pg_database))
    errors: list[BaseException] = []
    try:
        ledger.migrate()
        server.stop()

        def write() -> None:
            try:
                repo.ensure_root(ledger, "/during", "/remote", "upload")
                repo.set_value(ledger, "during", "yes")
            except BaseException as exc:
                errors.append(exc)

        writer = threading.Thread(target=write)
        writer.start()
        _until(lambda: ledger.outage.since is not None, 30)  # waiting, and says so
        assert not errors and writer.is_alive()
        server.start()
        writer.join(timeout=60)
        assert not writer.is_alive() and not errors, errors
        assert ledger.outage.since is None
        assert repo.get_value(ledger, "during") == "yes"
        assert repo.find_root(ledger, "/during") is not None
    finally:
        ledger.close()


@pytest.mark.parametrize("driver", ["psycopg", "pg8000"])
def test_a_server_that_stays_away_is_reported_without_the_password(
    server: PgServer, pg_database: str, driver: str
) -> None:
    url = server.url(pg_database, driver=driver).replace("postgres@", "postgres:pw-Secret-9@")
    ledger = Ledger(url, outage_wait=1.0)
    try:
        ledger.migrate()
        server.stop()
        started = time.monotonic()
        with pytest.raises(LedgerUnavailableError) as caught:
            repo.set_value(ledger, "k", "v")
        assert 0.9 <= time.monotonic() - started < 30
        assert isinstance(caught.value, LedgerError)
        assert "unreachable" in str(caught.value)
        assert "pw-Secret-9" not in str(caught.value)
        with pytest.raises(LedgerUnavailableError):
            repo.load_facts(ledger, 1)  # the raw reads too
        with pytest.raises(LedgerUnavailableError):
            trust.root_binding(ledger, 1)  # and the Core reads (every pass makes this one)
        assert ledger.outage.since is not None
        server.start()
        repo.set_value(ledger, "k", "v")
        assert ledger.outage.since is None
    finally:
        ledger.close()


def test_a_transaction_cut_short_is_run_again_whole(server: PgServer, pg_database: str) -> None:
    """write_retried: the server ends the connection inside the transaction (as a restart
    does); the transaction, rolled back there, runs again once a connection is had."""
    ledger = Ledger(server.url(pg_database))
    calls: list[int] = []

    def work(conn: Connection) -> None:
        calls.append(1)
        conn.execute(text("INSERT INTO kv (key, value) VALUES ('cut', :n)"), {"n": len(calls)})
        if len(calls) == 1:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            server.admin(f"SELECT pg_terminate_backend({int(pid or 0)})")
            conn.execute(text("SELECT 1"))  # the connection is gone

    try:
        ledger.migrate()
        # a plain write is not run again: it says so
        with pytest.raises(LedgerUnavailableError) as once, ledger.write() as conn:
            work(conn)
        assert not once.value.waited
        calls.clear()
        ledger.write_retried(work)
        assert len(calls) == 2
        assert repo.get_value(ledger, "cut") == "2"
    finally:
        ledger.close()
