"""``syncagent sync`` (one pass) and ``syncagent run`` (the watch agent)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from pathlib import Path

import click

from syncagent.cli.common import (
    config_option,
    fail,
    load,
    mb,
    setup_logging,
    shown,
    stopped_by_signals,
)
from syncagent.errors import SyncAgentError

__all__ = ["run_command", "sync_command"]


class _TerminalProgress:
    """One line redrawn on a terminal: files, bytes, rate, ETA."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files = self._done = 0
        self._total = self._sent = 0
        self._t0 = time.monotonic()

    def start(self, files: int, total_bytes: int) -> None:
        self._files, self._total, self._t0 = files, total_bytes, time.monotonic()

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self._sent += nbytes

    def file_done(self, rel_path: str, ok: bool) -> None:
        with self._lock:
            self._done += 1
            elapsed = max(1e-6, time.monotonic() - self._t0)
            rate = self._sent / elapsed
            eta = (self._total - self._sent) / rate if rate > 0 else 0
            click.echo(
                f"\r{self._done}/{self._files} files  {mb(self._sent)}/{mb(self._total)}"
                f"  {mb(rate)}/s  ETA {int(eta) // 60}:{int(eta) % 60:02d} ",
                nl=False,
                err=True,
            )


@click.command("sync")
@config_option
@click.option("--dry-run", is_flag=True, help="Print what would be uploaded; change nothing.")
@click.option(
    "--check-remote",
    is_flag=True,
    help="Also check each root's 123pan folder and a sample of its files (remote_check.files); "
    "what was trashed or deleted there is sent again.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every request and decision.")
@click.argument("paths", nargs=-1, type=click.Path(file_okay=False, exists=True))
def sync_command(
    config_path: Path | None,
    dry_run: bool,
    check_remote: bool,
    verbose: bool,
    paths: tuple[str, ...],
) -> None:
    """Back up once, then exit: 0 all uploaded and verified, 1 some failed, 2 bad config.

    Without a sync.yaml, each PATH is backed up to /syncagent/<folder name>; with one, PATHs
    pick which of its roots to back up.

    \b
    Example:
      syncagent sync ~/Documents
      syncagent sync --config /etc/syncagent/sync.yaml --dry-run
      syncagent sync --check-remote     # also notice what was deleted on 123pan
    """
    from syncagent.ignore import IgnoreRules
    from syncagent.scanner import ScanJob, default_helpers, sqlite_file
    from syncagent.statelock import StateLock

    config = load(config_path, paths)
    setup_logging(config, verbose)
    lock = StateLock(config.state_dir)
    if not dry_run:  # a running agent uploads changes itself: never both at once
        try:
            lock.acquire()
        except SyncAgentError as err:
            fail(err)
    # Start walking before the ledger's libraries (SQLAlchemy) load: on a large tree the
    # helper processes walk while this one imports.
    scans = {
        r.local: ScanJob(
            r.local,
            IgnoreRules.for_root(r.local, r.ignore, own=config.own_paths),
            helpers=default_helpers(),
            ledger_file=sqlite_file(config.ledger_url),
        )
        for r in config.roots
    }
    from syncagent.app import open_app
    from syncagent.engine import SyncEngine

    tty = sys.stderr.isatty()
    try:
        with open_app(config, lambda m: click.echo(m, err=True)) as app:
            engine = SyncEngine(
                config,
                app.ledger,
                app.client_factory(),
                progress=_TerminalProgress() if tty else None,
                account=app.account,
            )
            with stopped_by_signals(engine.stop) as stopped:
                report = engine.run_once(dry_run=dry_run, scans=scans, check_remote=check_remote)
    except SyncAgentError as err:
        fail(err)
    finally:
        for job in scans.values():
            job.close()
        lock.release()
    if tty:
        click.echo("", err=True)
    if dry_run:
        for root, planned in report.plans:
            click.echo(f"{root.local} -> {root.remote}")
            for u in planned.uploads:
                click.echo(f"  upload ({u.why}) {u.entry.rel_path} -> {u.remote_rel}")
            for mv in planned.moves:
                click.echo(f"  move {mv.old_rel} -> {mv.entry.rel_path} (no upload)")
            for sk in planned.skips:
                click.echo(f"  skip {sk.rel_path}: {sk.reason}")
            click.echo(f"  {planned.unchanged} unchanged")
        return
    for path, reason in report.skipped:
        click.echo(f"skipped {shown(path)}: {reason}", err=True)
    for path, reason in report.failed:
        click.echo(f"FAILED {shown(path)}: {reason}", err=True)
    if report.adopted:
        click.echo(
            f"{report.adopted} files were already on 123pan with the same size and MD5: "
            "adopted, nothing sent"
        )
    if report.vanished:
        click.echo(f"{report.vanished} files were deleted before they could be uploaded", err=True)
    for message in report.refused:
        click.echo(message, err=True)
    if report.trashed:
        click.echo(f"mirror: {report.trashed} files deleted locally went to the 123pan recycle bin")
    if report.deleted_local:
        click.echo(f"move: {report.deleted_local} files deleted locally after upload")
    if stopped:
        name = signal.Signals(stopped[0]).name
        click.echo(
            f"interrupted by {name}: what was uploaded is recorded; "
            "the rest is sent by the next sync (chunked uploads resume)",
            err=True,
        )
    # the summary is always the last line of stdout (scripts and tests read it)
    click.echo(
        f"{report.uploaded} uploaded ({mb(report.bytes_sent)}), {report.moved} moved, "
        f"{report.unchanged} unchanged, {len(report.skipped)} skipped, "
        f"{len(report.failed)} failed; hashed {report.hashed} files"
    )
    if stopped:
        sys.exit(128 + stopped[0])
    if report.fatal:
        click.echo(f"syncagent: stopped: {report.fatal}", err=True)
    if report.error:
        click.echo(f"syncagent: the pass failed: {report.error}", err=True)
    sys.exit(0 if report.ok else 1)


@click.command("run")
@config_option
@click.option("-v", "--verbose", is_flag=True, help="Log every request and decision.")
@click.argument("paths", nargs=-1, type=click.Path(file_okay=False, exists=True))
def run_command(config_path: Path | None, verbose: bool, paths: tuple[str, ...]) -> None:
    """Back up, then keep watching and back up every change until stopped (SIGTERM/Ctrl-C).

    A startup pass, then a pass for a root each time its changes have been quiet for the
    stability window, and a full rescan every rescan_interval. One agent per state dir.

    \b
    Example:
      syncagent run ~/Documents
    """
    from syncagent.agent import Agent
    from syncagent.app import open_app
    from syncagent.engine import SyncEngine
    from syncagent.statelock import StateLock

    config = load(config_path, paths)
    setup_logging(config, verbose)
    lock = StateLock(config.state_dir)
    try:
        lock.acquire()
        with open_app(config, lambda m: click.echo(m, err=True)) as app:
            agent = Agent(
                config,
                app.ledger,
                lambda cfg, progress: SyncEngine(
                    cfg, app.ledger, app.client_factory(), progress=progress, account=app.account
                ),
            )
            signal.signal(signal.SIGTERM, lambda *_: agent.stop())
            signal.signal(signal.SIGINT, lambda *_: agent.stop())
            monitor = None
            if config.monitor_port is not None:
                from syncagent.monitor import MonitorServer

                monitor = MonitorServer(agent.snapshot, config.monitor_host, config.monitor_port)
                monitor.start()
                logging.getLogger("syncagent").info(
                    "health and metrics at %s/healthz and %s/metrics", monitor.url, monitor.url
                )
            try:
                agent.run()
            finally:
                if monitor is not None:
                    monitor.stop()
    except SyncAgentError as err:
        fail(err)
    finally:
        lock.release()
    if agent.fatal:
        click.echo(f"syncagent: stopped: {agent.fatal}", err=True)
        sys.exit(1)
    click.echo("syncagent stopped", err=True)
