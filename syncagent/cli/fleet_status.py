"""``syncagent status --fleet``: every host of a shared ledger, as the ledger sees them.

Per host: its name and ID, when it was last seen (each command start and each pass), its
last pass, and per root the remote folder and the counts of done, pending and failed files,
and whether the mass-change guard holds it. Read from the ledger only (no request to 123pan).
"""

from __future__ import annotations

import dataclasses
import json
import time

import click

from syncagent.cli.common import fail
from syncagent.config import SyncConfig
from syncagent.errors import SyncAgentError

__all__ = ["show_fleet"]


def _ago(ts: float, now: float) -> str:
    seconds = max(0.0, now - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def show_fleet(config: SyncConfig, as_json: bool, ledger_wait: float) -> None:
    """Print the fleet view (``--json``: machine-readable); ``ledger_wait``: how long to
    wait for a ledger server that does not answer (then exit 1, as ``status`` does)."""
    from syncagent.app import human_time, open_ledger
    from syncagent.fleet import fleet_status
    from syncagent.host import read_host_id

    try:
        ledger = open_ledger(config, outage_wait=ledger_wait)
        try:
            hosts = fleet_status(ledger)
        finally:
            ledger.close()
    except SyncAgentError as err:
        fail(err)
    me = read_host_id(config.state_dir)
    if as_json:
        click.echo(
            json.dumps(
                {"hosts": [{**dataclasses.asdict(h), "this_host": h.id == me} for h in hosts]},
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    now = time.time()
    for h in hosts:
        mark = " (this host)" if h.id == me else ""
        click.echo(f"{h.name}{mark} [{h.id[:8]}]: last seen {_ago(h.last_seen, now)}")
        if h.last_pass_at is None:
            click.echo("  last pass: none yet")
        else:
            result = h.last_pass_result or "unfinished: running or interrupted"
            click.echo(
                f"  last pass: {human_time(h.last_pass_at)} ({result}, "
                f"{h.last_pass_uploaded} uploaded, {h.last_pass_failed} failed)"
            )
        for r in h.roots:
            held = "; HELD by the mass-change guard" if r.held else ""
            click.echo(
                f"  {r.local_path} -> {r.remote_path}: {r.done} done, {r.pending} pending, "
                f"{r.failed} failed{held}"
            )
        if not h.roots:
            click.echo("  no roots")
    pending = sum(r.pending for h in hosts for r in h.roots)
    failed = sum(r.failed for h in hosts for r in h.roots)
    plural = "" if len(hosts) == 1 else "s"
    click.echo(f"{len(hosts)} host{plural}; {pending} files pending, {failed} failed")
