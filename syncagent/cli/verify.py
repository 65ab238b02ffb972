"""``syncagent verify``: the ledger against the files on 123pan."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from syncagent.cli.common import (
    config_option,
    exit_status,
    fail,
    load,
    setup_logging,
    verbosity_options,
)
from syncagent.errors import RemoteError, SyncAgentError

__all__ = ["verify_command"]


@click.command("verify")
@config_option
@verbosity_options
@click.option("--repair", is_flag=True, help="Re-queue missing or mismatched files.")
@click.argument("paths", nargs=-1, type=click.Path(file_okay=False))
def verify_command(
    config_path: Path | None, repair: bool, verbosity: int, paths: tuple[str, ...]
) -> None:
    """Compare the ledger with the files on 123pan; exit 1 if any is missing or differs.

    \b
    Example:
      syncagent verify --repair && syncagent sync
    """
    from syncagent.app import open_app
    from syncagent.verify import verify

    config = load(config_path, paths)
    setup_logging(config, verbosity)
    try:
        with open_app(config, lambda m: click.echo(m, err=True)) as app:
            checked, problems = verify(
                app.config, app.ledger, app.client, repair=repair, account=app.account
            )
    except RemoteError as err:  # said in words, 123pan's own in brackets (explain.py)
        from syncagent.explain import remote_failure

        click.echo(
            f"syncagent: verify stopped: {remote_failure(err, 'comparing with 123pan')}", err=True
        )
        sys.exit(exit_status(err))
    except SyncAgentError as err:
        fail(err)
    for m in problems:
        click.echo(
            f"{m.root}/{m.rel_path}: {m.problem}" if m.rel_path else f"{m.root}: {m.problem}"
        )
    note = " (re-queued for the next sync)" if repair and problems else ""
    click.echo(f"checked {checked} files: {len(problems)} missing or different{note}")
    sys.exit(1 if problems else 0)
