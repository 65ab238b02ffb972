"""``syncagent status``: where every file stands, from the ledger and the agent's activity."""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from syncagent.cli.common import config_option, fail, load, mb, shown, verbosity_options
from syncagent.errors import ConfigError, LedgerUnavailableError, SyncAgentError

if TYPE_CHECKING:
    from syncagent.bwlimit import Timetable
    from syncagent.config import SyncConfig
    from syncagent.ledger import Ledger

__all__ = ["status_command"]

LEDGER_WAIT = 5.0  # seconds status waits for a ledger server that does not answer


@click.command("status")
@config_option
@verbosity_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--fleet", is_flag=True, help="Every host of a shared ledger (see docs/fleet.md).")
@click.argument("paths", nargs=-1, type=click.Path(file_okay=False))
def status_command(
    config_path: Path | None, as_json: bool, fleet: bool, verbosity: int, paths: tuple[str, ...]
) -> None:
    """Show where every file stands, from the ledger (no request to the cloud).

    \b
    Example:
      syncagent status --json
      syncagent status --fleet     # every host sharing the ledger
    """
    from syncagent.activity import read_activity
    from syncagent.app import human_time, open_ledger, token_expiry
    from syncagent.guard import Hold
    from syncagent.ledger import repo
    from syncagent.leftover import Unsent, pass_state, unsent
    from syncagent.pause import read_pause

    # Every root the ledger knows (the agent's own record of what it backs up), so a bare
    # `status` works after `run PATH` or `sync PATH` with no sync.yaml; PATHs filter.
    config = load(config_path, roots_required=False)
    if fleet:
        from syncagent.cli.fleet_status import show_fleet

        show_fleet(config, as_json, LEDGER_WAIT)
        return
    try:
        ledger = open_ledger(config, outage_wait=LEDGER_WAIT)
        try:
            roots = repo.root_status(ledger)
            last = repo.last_pass(ledger)
            fleet_token = _fleet_token_expiry(config, ledger)
            left = unsent(ledger)  # pending rows and what a pass listed before it sent
        finally:
            ledger.close()
    except LedgerUnavailableError as err:  # the agent may be waiting it out: say so, exit 1
        agent = read_activity(config.state_dir)
        if as_json:
            click.echo(json.dumps({"ledger": "unreachable", "error": str(err), "agent": agent}))
        else:
            click.echo(f"ledger: UNREACHABLE: {err}")
            click.echo(f"agent: {_describe(agent)}")
        raise SystemExit(1) from None
    except SyncAgentError as err:
        fail(err)
    if paths:
        wanted = {str(Path(p).expanduser().resolve()) for p in paths}
        unknown = wanted - {r.local_path for r in roots}
        if unknown:
            fail(ConfigError([f"{p}: not a root this ledger knows" for p in sorted(unknown)]))
        roots = [r for r in roots if r.local_path in wanted]
    # what is not sent yet, counted the same way whether the pass ended, stopped or died
    roots = [
        dataclasses.replace(r, bytes_pending=left[r.local_path].bytes)
        if r.local_path in left
        else r
        for r in roots
    ]
    expiry = fleet_token or token_expiry(config)
    agent = read_activity(config.state_dir)
    paused = read_pause(config.state_dir)
    state = (
        None
        if last is None
        else pass_state(last.finished_at, last.result, config.state_dir, agent is not None)
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "roots": [
                        {
                            **dataclasses.asdict(r),
                            "files_pending": left.get(r.local_path, Unsent()).files,
                            "held": None if r.held is None else json.loads(r.held),
                            "problems": [
                                {"state": state, "path": rel, "reason": reason}
                                for state, rel, reason in r.problems
                            ],
                        }
                        for r in roots
                    ],
                    "last_pass": None
                    if last is None
                    else {
                        "started_at": last.started_at,
                        "finished_at": last.finished_at,
                        "uploaded": last.uploaded,
                        "failed": last.failed,
                        "result": last.result,
                        "state": state,
                    },
                    "token_expires_at": expiry,
                    "agent": agent,
                    "paused": None
                    if paused is None
                    else {"since": paused.since, "until": paused.until},
                    "bandwidth": {
                        "upload": _limit(config.upload_bandwidth),
                        "download": _limit(config.download_bandwidth),
                    },
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    for r in roots:
        counts = ", ".join(f"{n} {k}" for k, n in sorted(r.counts.items())) or "no files yet"
        pending = left.get(r.local_path, Unsent())
        click.echo(
            f"{r.local_path} -> {r.remote_path}: {counts}; "
            f"{pending.files} files ({mb(r.bytes_pending)}) pending"
        )
        if r.not_read:
            click.echo(f"  NOT BACKED UP by the last pass: {r.not_read}")
        if r.held:
            hold = Hold.from_json(r.held)
            click.echo(
                f"  HELD by the mass-change guard: {hold.reason} ({hold.changed} changed, "
                f"{hold.deleted} deleted of {hold.known} known; e.g. "
                f"{', '.join(shown(e) for e in hold.examples)}); nothing is replaced, moved or "
                f"trashed until `syncagent approve {shown(r.local_path)}`"
            )
        for state, rel, reason in r.problems:
            click.echo(f"  {state}: {shown(rel)}: {reason}")
    if last is not None:
        if state == "interrupted":
            waiting = sum(u.files for u in left.values())
            size = sum(u.bytes for u in left.values())
            click.echo(
                f"last pass: {human_time(last.started_at)} (INTERRUPTED pass: "
                f"{'stopped' if last.finished_at else 'the process ended before it finished'}"
                f"; {waiting} files ({mb(size)}) not sent yet, sent by the next sync or run)"
            )
        elif state == "running":
            click.echo(f"last pass: {human_time(last.started_at)} (running now)")
        else:
            click.echo(
                f"last pass: {human_time(last.started_at)} ({state}, "
                f"{last.uploaded} uploaded, {last.failed} failed)"
            )
    click.echo(f"access token expires: {human_time(expiry)}")
    for what, limit in (
        ("upload", config.upload_bandwidth),
        ("download", config.download_bandwidth),
    ):
        if limit.limited:
            click.echo(
                f"{what} bandwidth: {limit.describe(datetime.datetime.now())} "
                f"(limits.{what}_bandwidth: {limit.text})"
            )
    click.echo(f"agent: {_describe(agent)}")
    if paused is not None:
        click.echo(f"PAUSED: {paused.describe()} (`syncagent resume` goes on now)")


def _fleet_token_expiry(config: SyncConfig, ledger: Ledger) -> float | None:
    """On a shared ledger the fleet's token is kept there: when it expires."""
    from syncagent.fleet import is_shared
    from syncagent.ledger.token_store import stored_expiry

    if config.credentials is None or not is_shared(config, config.ledger_url):
        return None
    return stored_expiry(ledger, config.credentials.client_id)


def _limit(limit: Timetable) -> dict[str, Any] | None:
    """A bandwidth limit for ``status --json``: as written, and the rate now (bytes/s)."""
    if not limit.limited:
        return None
    return {"limit": limit.text, "rate_now": limit.rate()}


def _describe(agent: dict[str, Any] | None) -> str:
    """One line on what the running agent is doing now."""
    if agent is None:
        return "not running"
    phase = agent.get("phase", "?")
    text = f"pid {agent.get('pid')}, {phase}"
    if phase == "uploading":
        text += (
            f" {agent.get('files_done', 0)}/{agent.get('files', 0)} files, "
            f"{mb(agent.get('bytes_done', 0))}/{mb(agent.get('bytes', 0))}, "
            f"{mb(agent.get('rate', 0))}/s"
        )
        if agent.get("last_file"):
            text += f", last {shown(str(agent['last_file']))}"
        for rel, (done, total) in dict(agent.get("in_flight") or {}).items():
            text += f"; sending {shown(rel)} {100 * done // max(1, total)}% ({mb(done)})"
    elif phase == "scanning":
        text += " " + ", ".join(agent.get("roots", []))
    return text
