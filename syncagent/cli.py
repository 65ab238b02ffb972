"""The ``syncagent`` command line: the only module that talks to the terminal.

Maps the error tree to exit statuses in one place: a usage or configuration error exits 2, any
other :class:`~syncagent.errors.SyncAgentError` exits 1 with its message, never a traceback.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from syncagent import __version__
from syncagent.errors import ConfigError, SyncAgentError

__all__ = ["emulator_command", "main"]

DEFAULT_EMULATOR_PORT = 8123


def _fail(err: SyncAgentError) -> None:
    click.echo(f"syncagent: {err.message}", err=True)
    sys.exit(2 if isinstance(err, ConfigError) else 1)


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stop.wait(0.5):
        pass


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syncagent")
def main() -> None:
    """Back up local folders to 123pan (123云盘).

    \b
    Example:
      syncagent emulator            # a local 123pan to try things against
    """


@click.command("emulator")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (keep it on loopback).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_EMULATOR_PORT,
    show_default=True,
    help="Port of the API host; 0 picks a free one.",
)
@click.option(
    "--upload-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port of the upload host; 0 picks a free one.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where files and metadata are kept [default: the user's data directory].",
)
@click.option("--client-id", default=None, help="Client ID to accept [default: generated once].")
@click.option(
    "--client-secret", default=None, help="Client secret to accept [default: generated once]."
)
@click.option(
    "--rate-limits",
    type=click.Choice(["free", "vip", "off"]),
    default="free",
    show_default=True,
    help="Per-endpoint QPS limits to enforce.",
)
@click.option(
    "--complete-polls",
    type=click.IntRange(0, 1000),
    default=1,
    show_default=True,
    help="How many upload_complete calls answer 20103 before completing.",
)
def emulator_command(
    host: str,
    port: int,
    upload_port: int,
    data_dir: Path | None,
    client_id: str | None,
    client_secret: str | None,
    rate_limits: str,
    complete_polls: int,
) -> None:
    """Run a local emulator of the 123pan Open Platform API until stopped.

    It prints the API base URL and the client ID and secret to use. Files and metadata are
    kept in the data dir, so they survive a restart.

    \b
    Example:
      syncagent emulator --port 8123 --data-dir /tmp/pan
    """
    from syncagent.emulator import Emulator, EmulatorSettings
    from syncagent.emulator.core import data_dir_default

    settings = EmulatorSettings(
        data_dir=data_dir or data_dir_default(),
        host=host,
        api_port=port,
        upload_port=upload_port,
        client_id=client_id,
        client_secret=client_secret,
        rate_limits=rate_limits,  # type: ignore[arg-type]
        complete_pending_polls=complete_polls,
    )
    try:
        emu = Emulator(settings).start()
    except SyncAgentError as err:
        _fail(err)
        return
    try:
        api = emu.api_url
        click.echo("syncagent emulator: a local 123pan Open Platform API (not the real service)")
        click.echo(f"  API base URL:   {api}")
        click.echo(f"  upload host:    {emu.upload_url}")
        click.echo(f"  client ID:      {emu.client_id}")
        click.echo(f"  client secret:  {emu.client_secret}")
        click.echo(f"  data dir:       {settings.data_dir}")
        click.echo(f"  rate limits:    {rate_limits}")
        click.echo(f"  admin:          {api}/__emulator/state")
        click.echo("Try it:")
        click.echo(
            f"  curl -s -X POST {api}/api/v1/access_token -H 'Platform: open_platform' "
            f"-H 'Content-Type: application/json' "
            f'-d \'{{"clientID":"{emu.client_id}","clientSecret":"{emu.client_secret}"}}\''
        )
        click.echo("Stop it with Ctrl-C.", nl=True)
        sys.stdout.flush()
        _wait_for_signal()
    finally:
        emu.stop()
        click.echo("emulator stopped")


main.add_command(emulator_command)
