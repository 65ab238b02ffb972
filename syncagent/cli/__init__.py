"""The ``syncagent`` command line: the only code that talks to the terminal.

One module per command group, so no command's code hides another's:

- ``common``: exit statuses, signals, config discovery, logging, formatting;
- ``emulator``: ``syncagent emulator``;
- ``backup``: ``sync`` and ``run``;
- ``status``, ``verify``, ``db``: one command (group) each;
- ``restore``: ``ls`` and ``restore`` (getting files back, from any machine);
- ``approve``: letting a pass the mass-change guard held run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

import click

from syncagent import __version__
from syncagent.cli.approve import approve_command
from syncagent.cli.backup import run_command, sync_command
from syncagent.cli.db import db_group
from syncagent.cli.doctor import doctor_command
from syncagent.cli.emulator import emulator_command
from syncagent.cli.pause import pause_command, resume_command
from syncagent.cli.restore import ls_command, restore_command
from syncagent.cli.status import status_command
from syncagent.cli.verify import verify_command

__all__ = ["emulator_command", "entry", "main"]


def entry() -> None:
    """The ``syncagent`` command: :func:`main`, then a quick exit.

    Every command closes what it opened before it returns, so the interpreter's teardown
    (unloading SQLAlchemy's module graph, ~0.15 s: a quarter of a no-op pass over 100,000
    files) buys nothing; logs and output are flushed and the process exits with main's
    status. An unexpected exception still propagates the normal way.
    """
    try:
        main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if code is not None and not isinstance(code, int):
        click.echo(code, err=True)
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code or 0)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syncagent")
def main() -> None:
    """Back up local folders to 123pan (123云盘).

    \b
    Example:
      syncagent emulator            # a local 123pan to try things against
      syncagent sync ~/Documents    # back up once
      syncagent restore --root Documents --to ~/Documents-back   # get it back
    """
    os.umask(0o077)  # state, ledger, token, logs, the emulator's store: the user's alone


for _command in (
    emulator_command,
    sync_command,
    run_command,
    status_command,
    verify_command,
    db_group,
    doctor_command,
    ls_command,
    restore_command,
    approve_command,
    pause_command,
    resume_command,
):
    main.add_command(_command)
