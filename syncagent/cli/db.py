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


@db_group.command("rebuild")
@config_option
@verbosity_options
def db_rebuild_command(config_path: Path | None, verbosity: int) -> None:
    """Make a new ledger from what 123pan holds (for a corrupt or lost ledger).

    The old ledger file is kept aside (ledger.sqlite3.corrupt-<time>). Each local file that
    123pan holds at its path with the same size and MD5 is recorded as backed up; nothing is
    uploaded: the next sync sends the rest.

    \b
    Example:
      syncagent db rebuild --config sync.yaml && syncagent sync --config sync.yaml
    """
    from syncagent.app import open_app
    from syncagent.rebuild import clear_rows, rebuild_ledger, set_aside
    from syncagent.statelock import StateLock

    config = load(config_path)  # the roots to rebuild are needed
    setup_logging(config, verbosity)
    lock = StateLock(config.state_dir)
    try:
        lock.acquire()  # never under a running agent
        kept = set_aside(config.ledger_url)
        with open_app(config, lambda m: click.echo(m, err=True)) as app:
            if kept is None:
                clear_rows(app.ledger)
            rebuilt = rebuild_ledger(app.config, app.ledger, app.client_factory(), app.account)
    except SyncAgentError as err:
        fail(err)
    finally:
        lock.release()
    if kept is not None:
        click.echo(f"the old ledger is kept as {kept}")
    for r in rebuilt:
        click.echo(
            f"{r.root.local} -> {r.root.remote}: {r.adopted} files adopted (same size and MD5 "
            f"on 123pan), {r.to_upload} to upload by the next sync; hashed {r.hashed} files"
            + (f"; {r.versions} previous versions from the cloud catalog" if r.versions else "")
        )
