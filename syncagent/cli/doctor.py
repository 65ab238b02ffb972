"""``syncagent doctor``: check the setup and say, for each problem, how to fix it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from syncagent.cli.common import config_option, setup_logging, verbosity_options

__all__ = ["doctor_command"]

MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


@click.command("doctor")
@config_option
@verbosity_options
@click.option(
    "--inotify-limit-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    hidden=True,  # tests inject a low limit through it
)
@click.argument("paths", nargs=-1, type=click.Path(file_okay=False))
def doctor_command(
    config_path: Path | None,
    verbosity: int,
    inotify_limit_file: Path | None,
    paths: tuple[str, ...],
) -> None:
    """Check roots, inotify limits, the clock, the state dir, the credentials and the quota.

    Each check prints ok, WARN or FAIL, with what to do. Exit status: 0 when nothing
    failed, 1 when a check failed, 2 for a bad configuration (each problem a FAIL line,
    a missing root among them).

    \b
    Example:
      syncagent doctor
    """
    from syncagent import doctor
    from syncagent.app import account_client
    from syncagent.cli.common import discover_config
    from syncagent.config import load_config
    from syncagent.errors import ConfigError

    try:  # a configuration problem is a finding too: each one as a FAIL line, exit 2
        found = config_path or discover_config()
        config = load_config(found, cli_paths=list(paths) or None)
    except ConfigError as err:
        for problem in err.problems:
            click.echo(f"{MARK['fail']} config: {problem}")
            click.echo(f"     fix: edit {found or 'sync.yaml'}")
        sys.exit(2)
    setup_logging(config, verbosity if verbosity > 0 else -1)  # its own lines say enough
    checks = doctor.gather(
        config,
        account_client(config),
        watches_file=inotify_limit_file or doctor.INOTIFY_WATCHES,
    )
    for check in checks:
        click.echo(f"{MARK[check.status]} {check.name}: {check.detail}")
        if check.fix and check.status != "ok":
            click.echo(f"     fix: {check.fix}")
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    click.echo(f"{len(checks)} checks: {failed} failed, {warned} warnings")
    sys.exit(1 if failed else 0)
