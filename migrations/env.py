"""Alembic environment for the syncagent ledger.

Used two ways: by ``Ledger.migrate()`` (which passes its own connection through
``config.attributes["connection"]``, so logging is not reconfigured), and by the ``alembic``
command from a checkout (``alembic -x url=sqlite:///ledger.sqlite3 upgrade head``).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from syncagent.ledger.models import Base

target_metadata = Base.metadata
config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
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
    engine = create_engine(str(url))
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
