"""The throw-away PostgreSQL server of the tests (tests/pg_support.py) does what it says."""

from __future__ import annotations

import pytest
from pg_support import PgServer
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError


@pytest.mark.parametrize("driver", ["psycopg", "pg8000"])
@pytest.mark.parametrize("via_socket", [False, True])
def test_urls_reach_the_database(
    pg_server: PgServer, pg_database: str, driver: str, via_socket: bool
) -> None:
    engine = create_engine(pg_server.url(pg_database, driver=driver, socket=via_socket))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_database()")).scalar() == pg_database
    finally:
        engine.dispose()


def test_create_and_drop_database(pg_server: PgServer) -> None:
    url = pg_server.create_database("support_check")
    engine = create_engine(url)
    try:
        conn = engine.connect()  # held open: the drop must end it
        conn.execute(text("SELECT 1"))
        pg_server.drop_database("support_check")
        with pytest.raises(OperationalError):
            conn.execute(text("SELECT 1"))
        conn.invalidate()
        with pytest.raises(OperationalError), engine.connect():
            pass
    finally:
        engine.dispose()


def test_restart_keeps_data_and_port(pg_server: PgServer, pg_database: str) -> None:
    engine = create_engine(pg_server.url(pg_database))
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE kept (n int)"))
            conn.execute(text("INSERT INTO kept VALUES (7)"))
        port = pg_server.port
        pg_server.stop()
        assert not pg_server.running
        with pytest.raises(OperationalError), create_engine(pg_server.url(pg_database)).connect():
            pass
        pg_server.start()
        assert pg_server.port == port
        engine.dispose()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT n FROM kept")).scalar() == 7
    finally:
        engine.dispose()
