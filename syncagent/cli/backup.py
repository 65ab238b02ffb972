"""``syncagent sync`` (one pass) and ``syncagent run`` (the watch agent)."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from syncagent.cli.common import (
    bwlimit_option,
    config_option,
    exit_status,
    fail,
    guard_state,
    load,
    mb,
    setup_logging,
    shown,
    stopped_by_signals,
    verbosity_options,
    with_bwlimit,
)
from syncagent.errors import ConfigError, SyncAgentError

if TYPE_CHECKING:
    from syncagent.agent import Agent
    from syncagent.config import SyncConfig
    from syncagent.ignore import IgnoreRules
    from syncagent.reload import Reloader

__all__ = ["run_command", "sync_command"]


def _ignore_rules(config: SyncConfig) -> dict[Path, IgnoreRules]:
    """Every root's ignore rules, or exit 2 listing every bad ``.syncignore`` line of every
    root: a root whose rules cannot be read is never backed up with too few of them."""
    from syncagent.ignore import IgnoreRules
    from syncagent.scanner import root_problem

    rules: dict[Path, IgnoreRules] = {}
    problems: list[str] = []
    for r in config.roots:
        if root_problem(r.local) is not None:  # nothing in it can be read: its pass says so
            rules[r.local] = IgnoreRules(r.ignore)
            continue
        try:
            rules[r.local] = IgnoreRules.for_root(r.local, r.ignore, own=config.own_paths)
        except ConfigError as err:
            problems += err.problems
    if problems:
        fail(ConfigError(problems))
    return rules


@click.command("sync")
@config_option
@click.option("--dry-run", is_flag=True, help="Print what would be uploaded; change nothing.")
@click.option(
    "--check-remote",
    is_flag=True,
    help="Also check each root's 123pan folder and a sample of its files (remote_check.files); "
    "what was trashed or deleted there is sent again.",
)
@bwlimit_option("upload")
@verbosity_options
@click.argument("paths", nargs=-1, type=click.Path(file_okay=False, exists=True))
def sync_command(
    config_path: Path | None,
    dry_run: bool,
    check_remote: bool,
    bwlimit: str | None,
    verbosity: int,
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
      syncagent sync --bwlimit '08:00,1M 23:00,off' ~/Documents
    """
    from syncagent.scanner import ScanJob, default_helpers, sqlite_file
    from syncagent.statelock import StateLock

    config = load(config_path, paths)
    tty = sys.stderr.isatty() and verbosity >= 0
    live: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if tty:  # one live block, log lines printed above it (rich loads only here)
        from syncagent.cli.progress import LiveProgress, console_handler, stderr_console

        console = stderr_console()
        setup_logging(config, verbosity, console_handler(console))
        live = LiveProgress(console)
    else:
        setup_logging(config, verbosity)
    config = with_bwlimit(config, "upload", bwlimit)
    rules = _ignore_rules(config)
    if not dry_run:  # a dry run changes nothing, not even modes
        guard_state(config)
    lock = StateLock(config.state_dir)
    if not dry_run:  # a running agent uploads changes itself: never both at once
        try:
            lock.acquire()
        except SyncAgentError as err:
            fail(err)
    # Start walking before the ledger's libraries (SQLAlchemy) load: on a large tree the
    # helper processes walk while this one imports. A dry run walks without comparing with
    # the ledger as it goes: reading an SQLite ledger that way leaves journal files behind.
    scans = {
        r.local: ScanJob(
            r.local,
            rules[r.local],
            helpers=default_helpers(),
            ledger_file=None if dry_run else sqlite_file(config.ledger_url),
        )
        for r in config.roots
    }
    if not (dry_run or check_remote):  # nothing changed: done before SQLAlchemy loads
        from syncagent.noop import quick_pass

        unchanged = quick_pass(config, scans)
        if unchanged is not None:
            for job in scans.values():
                job.close()
            lock.release()
            click.echo(
                f"0 uploaded ({mb(0)}), 0 moved, {unchanged} unchanged, 0 skipped, 0 failed; "
                "hashed 0 files"
            )
            sys.exit(0)
    from syncagent.activity import ActivityFile
    from syncagent.app import open_app
    from syncagent.engine import SyncEngine
    from syncagent.progress import Both

    # what `status` in another process shows while this pass runs (a dry run writes nothing)
    activity = None if dry_run else ActivityFile(config.state_dir)
    watched = contextlib.nullcontext() if activity is None else activity.running()
    try:
        with (
            open_app(config, lambda m: click.echo(m, err=True), dry_run=dry_run) as app,
            live as progress,
            watched,
        ):
            if activity is not None:
                activity.phase("scanning", roots=[str(r.local) for r in config.roots])
                progress = activity if progress is None else Both(progress, activity)
            engine = SyncEngine(  # app.config: the remote folders as this host's (fleet)
                app.config, app.ledger, app.client_factory(), progress=progress, account=app.account
            )
            with stopped_by_signals(engine.stop) as stopped:
                report = engine.run_once(dry_run=dry_run, scans=scans, check_remote=check_remote)
    except SyncAgentError as err:
        fail(err)
    finally:
        for job in scans.values():
            job.close()
        lock.release()
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
        for problem in report.not_read:  # no plan for a root that could not be read
            click.echo(f"syncagent: {problem}", err=True)
        if report.not_read:
            sys.exit(1)
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
    if report.kept_deleted:
        click.echo(f"mirror: {report.kept_deleted} files deleted locally were kept as versions")
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
        sys.exit(exit_status(report.fatal_error))
    if report.error:
        click.echo(f"syncagent: the pass failed: {report.error}", err=True)
    for problem in report.not_read:
        click.echo(f"syncagent: {problem}", err=True)
    held = {where: hold for where, hold in report.held.items() if hold is not None}
    for where, hold in held.items():
        click.echo(
            f"syncagent: {where}: HELD by the mass-change guard: {hold.reason}; nothing was "
            f"replaced, moved or trashed (check, then `syncagent approve {where}`)",
            err=True,
        )
    sys.exit(0 if report.ok and not held else 1)


@click.command("run")
@config_option
@bwlimit_option("upload")
@verbosity_options
@click.argument("paths", nargs=-1, type=click.Path(file_okay=False, exists=True))
def run_command(
    config_path: Path | None, bwlimit: str | None, verbosity: int, paths: tuple[str, ...]
) -> None:
    """Back up, then keep watching and back up every change until stopped (SIGTERM/Ctrl-C).

    A startup pass, then a pass for a root each time its changes have been quiet for the
    stability window, and a full rescan every rescan_interval. One agent per state dir.

    \b
    Example:
      syncagent run ~/Documents
      syncagent run --bwlimit 2M     # at most 2 MB/s up, whatever sync.yaml says
    """
    # loaded before the lock is taken, as ever: the lock's holder is soon at work
    import syncagent.agent
    import syncagent.app
    import syncagent.engine  # noqa: F401
    from syncagent.cli.common import discover_config
    from syncagent.reload import Reloader
    from syncagent.statelock import StateLock

    config = load(config_path, paths)
    setup_logging(config, verbosity)
    config = with_bwlimit(config, "upload", bwlimit)
    _ignore_rules(config)  # a bad .syncignore at start exits 2; later, only its root's pass fails
    guard_state(config)
    lock = StateLock(config.state_dir)
    # SIGHUP (systemctl reload): finish what is in flight, re-read the file, go on with it
    reloader = Reloader(config_path or discover_config())
    stopping: list[int] = []
    try:
        lock.acquire()
        reloader.install()
        while True:
            agent = _run_agent(config, reloader, stopping)
            # a fatal stop is final, unless /healthz held it and a SIGHUP asked to try again
            if stopping or not reloader.requested:
                break
            config = reloader.reread(config, paths)
            config = with_bwlimit(config, "upload", bwlimit)  # --bwlimit outlives a reload
    except SyncAgentError as err:
        fail(err)
    finally:
        lock.release()
    if agent.fatal:
        click.echo(f"syncagent: stopped: {agent.fatal}", err=True)
        sys.exit(exit_status(agent.fatal_error))
    click.echo("syncagent stopped", err=True)


def _run_agent(config: SyncConfig, reloader: Reloader, stopping: list[int]) -> Agent:
    """Run the watch agent with ``config`` until it is stopped (SIGTERM or SIGINT, listed
    in ``stopping``), stops by itself, or a SIGHUP asks for a reload; returns it."""
    from syncagent.agent import Agent
    from syncagent.app import open_app
    from syncagent.engine import SyncEngine

    with open_app(config, lambda m: click.echo(m, err=True)) as app:
        agent = Agent(
            app.config,  # the remote folders as this host's (fleet)
            app.ledger,
            lambda cfg, progress: SyncEngine(
                cfg, app.ledger, app.client_factory(), progress=progress, account=app.account
            ),
        )

        def on_stop(signum: int, frame: object) -> None:
            stopping.append(signum)
            agent.stop()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        reloader.arm(agent.stop)
        monitor = None
        if config.monitor_port is not None:
            from syncagent.monitor import MonitorServer
            from syncagent.monitor_facts import collect

            def facts() -> dict[str, Any]:
                return collect(app.ledger, agent.activity.snapshot())

            monitor = MonitorServer(
                agent.snapshot, config.monitor_host, config.monitor_port, facts=facts
            )
            monitor.start()
            logging.getLogger("syncagent").info(
                "health and metrics at %s/healthz and %s/metrics", monitor.url, monitor.url
            )
        say = logging.getLogger("syncagent").info
        for root in app.config.roots:  # the first screen says where everything goes
            say("backing up %s to %s on 123pan (%s mode)", root.local, root.remote, root.mode)
        say(
            "running until stopped: press Ctrl-C or send SIGTERM (systemctl stop, podman stop); "
            "SIGHUP (systemctl reload) re-reads %s",
            reloader.source or "nothing: no sync.yaml is in use",
        )
        try:
            agent.run()
            if agent.fatal and monitor is not None and not stopping:
                from syncagent.fatal_hold import hold_until_stopped_or_reloaded

                hold_until_stopped_or_reloaded(agent.fatal, reloader, stopping)
        finally:
            if monitor is not None:
                monitor.stop()
    return agent
