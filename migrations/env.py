"""Alembic environment for the syncagent ledger.

Used two ways: by ``Ledger.migrate()`` (which passes its own connection through
``config.attributes["connection"]``, so logging is not reconfigured), and by the ``alembic``
command from a checkout (``alembic -x url=sqlite:///ledger.sqlite3 upgrade head``).

Either way every migration runs on a connection from ``Ledger.migration_connection()``, which is
already inside one transaction that takes DDL too (SQLite's DDL is transactional once pysqlite
stops managing transactions): all the migrations of an upgrade and the version stamp commit
together, or nothing does. A kill or a full disk halfway leaves the ledger as it was.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from syncagent.ledger import Ledger
from syncagent.ledger.models import Base

target_metadata = Base.metadata
config = context.config


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        transactional_ddl=True,  # true of the connection we are given, whatever the dialect
        transaction_per_migration=False,  # one transaction for the whole upgrade
    )
    with context.begin_transaction():  # joins the caller's transaction
        context.run_migrations()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if context.is_offline_mode():
        context.configure(
            url=url, target_metadata=target_metadata, render_as_batch=True, literal_binds=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    ledger = Ledger(str(url))
    try:
        with ledger.migration_connection() as conn:
            _migrate(conn)
    finally:
        ledger.close()


run()
