"""``syncagent db``: ledger maintenance."""

from __future__ import annotations

from pathlib import Path

import click

from syncagent.cli.common import config_option, fail, load, setup_logging, verbosity_options
from syncagent.errors import SyncAgentError

__all__ = ["db_group"]


@click.group("db")
def db_group() -> None:
    """Ledger maintenance."""


@db_group.command("upgrade")
@config_option
@verbosity_options
def db_upgrade_command(config_path: Path | None, verbosity: int) -> None:
    """Bring the ledger's schema up to date (also done on every start).

    \b
    Example:
      syncagent db upgrade --config sync.yaml
    """
    from syncagent.app import open_ledger
    from syncagent.ledger import masked_url

    config = load(config_path, roots_required=False)
    setup_logging(config, verbosity)
    try:
        open_ledger(config).close()
    except SyncAgentError as err:
        fail(err)
    click.echo(f"ledger is up to date: {masked_url(config.ledger_url)}")
