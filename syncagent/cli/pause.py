"""``syncagent pause [--for DURATION]`` and ``syncagent resume``: hold the watch agent's
uploads for a while (a metered connection, a video call), then go on."""

from __future__ import annotations

import time
from pathlib import Path

import click

from syncagent.cli.common import config_option, fail, load, verbosity_options
from syncagent.errors import ConfigError, StateError

__all__ = ["pause_command", "resume_command"]


@click.command("pause")
@config_option
@click.option(
    "--for",
    "duration",
    metavar="DURATION",
    help="Resume by itself after this long (30m, 2h, 1d) [default: until `syncagent resume`].",
)
@verbosity_options
def pause_command(config_path: Path | None, duration: str | None, verbosity: int) -> None:
    """Hold the agent's uploads: uploads in flight finish, no other starts, and changes are
    noted meanwhile; `syncagent resume` (or the end of --for) lets a full pass catch up.
    A pause set while no agent runs holds when one starts. `sync` does not look at it.

    \b
    Example:
      syncagent pause --for 2h
      syncagent resume
    """
    from syncagent.activity import read_activity
    from syncagent.config import parse_duration
    from syncagent.pause import write_pause

    config = load(config_path, roots_required=False)
    until = None
    if duration is not None:
        seconds = parse_duration(duration)
        if seconds is None or seconds <= 0:
            fail(ConfigError([f"--for: {duration!r} is not a duration (e.g. 30m, 2h, 1d)"]))
        until = time.time() + seconds
    try:
        pause = write_pause(config.state_dir, until)
    except OSError as exc:
        fail(StateError(f"cannot pause: {config.state_dir}: {exc.strerror or exc}"))
    running = read_activity(config.state_dir) is not None
    click.echo(
        f"{pause.describe()}: "
        + (
            "the agent lets the uploads in flight finish and starts no other"
            if running
            else "no agent runs now; one that starts waits"
        )
    )


@click.command("resume")
@config_option
@verbosity_options
def resume_command(config_path: Path | None, verbosity: int) -> None:
    """End a pause: the agent runs a full pass within seconds.

    \b
    Example:
      syncagent resume
    """
    from syncagent.pause import clear_pause

    config = load(config_path, roots_required=False)
    try:
        held = clear_pause(config.state_dir)
    except OSError as exc:
        fail(StateError(f"cannot resume: {config.state_dir}: {exc.strerror or exc}"))
    click.echo("resumed: the agent catches up within seconds" if held else "not paused")
