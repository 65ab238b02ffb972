"""``syncagent emulator``: run the local 123pan Open Platform emulator in the foreground."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from pathlib import Path

import click

from syncagent.cli.common import fail, stop_signals, verbosity_options, wait_for_signal
from syncagent.errors import ConfigError, SyncAgentError

__all__ = ["emulator_command"]

DEFAULT_EMULATOR_PORT = 8123


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("emulator")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on: loopback only, unless --allow-remote.",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a --host other than loopback (anyone who can reach it sees the files).",
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
@click.option(
    "--tls",
    is_flag=True,
    help="Serve HTTPS with a certificate of the emulator's own CA (made in the data dir).",
)
@click.option(
    "--rtt-ms",
    type=click.FloatRange(0, 10_000),
    default=0,
    show_default=True,
    help="Network shaping: round-trip time per connection and per answer, in milliseconds.",
)
@click.option(
    "--rtt-jitter-ms",
    type=click.FloatRange(0, 10_000),
    default=0,
    show_default=True,
    help="Network shaping: up to this much more on each round trip, at random.",
)
@click.option(
    "--conn-bps",
    default="0",
    show_default=True,
    help="Network shaping: bytes/s per connection, e.g. 20M (0: no cap).",
)
@click.option(
    "--server-bps",
    default="0",
    show_default=True,
    help="Network shaping: bytes/s for all connections together, e.g. 100M (0: no cap).",
)
@verbosity_options
def emulator_command(
    host: str,
    allow_remote: bool,
    port: int,
    upload_port: int,
    data_dir: Path | None,
    client_id: str | None,
    client_secret: str | None,
    rate_limits: str,
    complete_polls: int,
    tls: bool,
    rtt_ms: float,
    rtt_jitter_ms: float,
    conn_bps: str,
    server_bps: str,
    verbosity: int,
) -> None:
    """Run a local emulator of the 123pan Open Platform API until stopped.

    It prints the API base URL and the client ID and secret to use. Files and metadata are
    kept in the data dir, so they survive a restart. With --tls it serves HTTPS and prints
    the CA certificate to trust.

    \b
    Example:
      syncagent emulator --port 8123 --data-dir /tmp/pan
      syncagent emulator --tls       # then REQUESTS_CA_BUNDLE=<the printed CA>
    """
    from syncagent.emulator import Emulator, EmulatorSettings
    from syncagent.emulator.admin import TOKEN_HEADER
    from syncagent.emulator.core import data_dir_default

    os.umask(0o077)  # its store holds the client secret and copies of the user's files
    # on stderr: -q warnings only; -v each request it serves (method, path, status)
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity else logging.INFO
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s", force=True
    )
    if not _is_loopback(host):
        if not allow_remote:
            fail(
                ConfigError(
                    [
                        f"--host: {host} is not a loopback address: the emulator has no real "
                        "security and its store holds copies of your files; use 127.0.0.1, "
                        "or add --allow-remote if you really mean it"
                    ]
                )
            )
        click.echo(
            f"syncagent emulator: WARNING: listening on {host}, not loopback: anyone who can "
            "reach it can read what is uploaded to it",
            err=True,
        )

    from syncagent.emulator.shaping import parse_rate

    try:
        conn_rate, server_rate = parse_rate(conn_bps), parse_rate(server_bps)
    except ValueError:
        fail(ConfigError(["--conn-bps/--server-bps: give bytes per second, e.g. 20M or 500k"]))
    settings = EmulatorSettings(
        data_dir=data_dir or data_dir_default(),
        host=host,
        api_port=port,
        upload_port=upload_port,
        client_id=client_id,
        client_secret=client_secret,
        rate_limits=rate_limits,  # type: ignore[arg-type]
        complete_pending_polls=complete_polls,
        tls=tls,
        rtt=rtt_ms / 1000,
        rtt_jitter=rtt_jitter_ms / 1000,
        conn_bps=conn_rate,
        server_bps=server_rate,
    )
    try:
        stop = stop_signals()  # armed before anything tells the user to press Ctrl-C
        emu = Emulator(settings).start()
    except SyncAgentError as err:
        fail(err)
    try:
        api = emu.api_url
        click.echo("syncagent emulator: a local 123pan Open Platform API (not the real service)")
        click.echo(f"  API base URL:   {api}")
        click.echo(f"  upload host:    {emu.upload_url}")
        click.echo(f"  client ID:      {emu.client_id}")
        click.echo(f"  client secret:  {emu.client_secret}")
        click.echo(f"  data dir:       {settings.data_dir}")
        click.echo(f"  rate limits:    {rate_limits}")
        if emu.core.shaper.active():
            click.echo(
                f"  shaping:        rtt {rtt_ms:g} ms (+ up to {rtt_jitter_ms:g}), "
                f"{conn_rate} B/s per connection, {server_rate or 'no cap'} B/s in all"
            )
        if emu.ca_path is not None:
            click.echo(f"  TLS CA:         {emu.ca_path}  (trust it: REQUESTS_CA_BUNDLE=<this>)")
        click.echo(f"  admin:          {api}/__emulator/state")
        click.echo(f"  admin token:    {emu.admin_token}  (header {TOKEN_HEADER}; new each run)")
        click.echo("Try it:")
        click.echo(
            f"  curl -s{f' --cacert {emu.ca_path}' if emu.ca_path else ''} -X POST "
            f"{api}/api/v1/access_token -H 'Platform: open_platform' "
            f"-H 'Content-Type: application/json' "
            f'-d \'{{"clientID":"{emu.client_id}","clientSecret":"{emu.client_secret}"}}\''
        )
        click.echo("Stop it with Ctrl-C.", nl=True)
        sys.stdout.flush()
        wait_for_signal(stop)
    finally:
        emu.stop()
        click.echo("emulator stopped")
