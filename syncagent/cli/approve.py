"""``syncagent approve ROOT``: let a pass the mass-change guard held run."""

from __future__ import annotations

from pathlib import Path

import click

from syncagent.cli.common import config_option, fail, load, shown, verbosity_options
from syncagent.errors import ConfigError, SyncAgentError

__all__ = ["approve_command"]


@click.command("approve")
@config_option
@verbosity_options
@click.argument("root", type=click.Path(file_okay=False))
def approve_command(config_path: Path | None, verbosity: int, root: str) -> None:
    """Let the held pass of ROOT run: the changes and deletions the mass-change guard
    stopped are carried out by the next pass (the running agent's, within seconds, or the
    next `syncagent sync`).

    \b
    Example:
      syncagent status ~/Documents     # what is held, and why
      syncagent approve ~/Documents
    """
    from syncagent.app import open_ledger
    from syncagent.guard import Hold
    from syncagent.ledger import repo

    config = load(config_path, roots_required=False)
    local = str(Path(root).expanduser().resolve())
    try:
        ledger = open_ledger(config)
        try:
            found = repo.find_root(ledger, local)
            if found is None:
                fail(ConfigError([f"{local}: not a root this ledger knows"]))
            holds = repo.guard_state(ledger)[0]
            if found[0] not in holds:
                click.echo(f"{shown(local)}: nothing is held; nothing to approve")
                return
            repo.approve(ledger, found[0], local)
        finally:
            ledger.close()
    except SyncAgentError as err:
        fail(err)
    hold = Hold.from_json(holds[found[0]])
    click.echo(
        f"{shown(local)}: approved ({hold.reason}); the next pass replaces {hold.changed} "
        f"and deletes {hold.deleted} files"
    )
