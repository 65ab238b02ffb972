"""The ``syncagent`` command line: the only module that talks to the terminal.

Maps the error tree to exit statuses in one place: a usage or configuration error exits 2, any
other :class:`~syncagent.errors.SyncAgentError` exits 1 with its message, never a traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

import click

from syncagent import __version__
from syncagent.errors import ConfigError, SyncAgentError

if TYPE_CHECKING:
    from syncagent.config import SyncConfig

__all__ = ["emulator_command", "main"]

DEFAULT_EMULATOR_PORT = 8123


def _fail(err: SyncAgentError) -> NoReturn:
    click.echo(f"syncagent: {err.message}", err=True)
    sys.exit(2 if isinstance(err, ConfigError) else 1)


@contextlib.contextmanager
def _stopped_by_signals(stop: Callable[[], None]) -> Iterator[list[int]]:
    """While the block runs, SIGINT and SIGTERM call ``stop`` (start no new upload, let the
    ones in flight finish or stay resumable) and are listed in the yielded list; a second
    signal ends the process at once (safe: a killed pass resumes). Handlers restored after."""
    stopped: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.append(signum)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopped
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stop.wait(0.5):
        pass


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


# -- backup commands ------------------------------------------------------------------------

CONFIG_ENV = "SYNCAGENT_CONFIG"

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"sync.yaml to use [default: ${CONFIG_ENV}, else ./sync.yaml if present].",
)


def _load(config_path: Path | None, paths: tuple[str, ...] = ()) -> SyncConfig:
    """The configuration, or exit 2 with every problem listed."""
    from syncagent.config import load_config

    if config_path is None:
        env_path = os.environ.get(CONFIG_ENV)
        if env_path:
            config_path = Path(env_path)
        elif Path("sync.yaml").is_file():
            config_path = Path("sync.yaml")
    try:
        if config_path is None:
            if not paths:
                raise ConfigError(
                    [
                        "roots: no sync.yaml found and no folder given; "
                        "run e.g. `syncagent sync ~/Documents`"
                    ]
                )
            return load_config(None, cli_paths=list(paths))
        config = load_config(config_path)
        if paths:
            wanted = {Path(p).expanduser().resolve() for p in paths}
            unknown = wanted - {r.local for r in config.roots}
            if unknown:
                raise ConfigError(
                    [
                        f"roots: {p} is not a root of {config_path}"
                        for p in sorted(map(str, unknown))
                    ]
                )
            config = dataclasses.replace(
                config, roots=tuple(r for r in config.roots if r.local in wanted)
            )
        return config
    except ConfigError as err:
        _fail(err)


def _setup_logging(config: SyncConfig, verbose: bool) -> None:
    level = logging.DEBUG if verbose else getattr(logging, config.log_level.upper())
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if config.log_file is not None:
        handlers.append(logging.FileHandler(config.log_file, encoding="utf-8"))
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrations are not news
    logging.basicConfig(
        level=level, handlers=handlers, format="%(asctime)s %(levelname)s %(message)s", force=True
    )


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
                f"\r{self._done}/{self._files} files  {_mb(self._sent)}/{_mb(self._total)}"
                f"  {_mb(rate)}/s  ETA {int(eta) // 60}:{int(eta) % 60:02d} ",
                nl=False,
                err=True,
            )


def _shown(path: str) -> str:
    """A path safe for a terminal: control characters written as escapes."""
    if path.isprintable():
        return path
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


@main.command("sync")
@config_option
@click.option("--dry-run", is_flag=True, help="Print what would be uploaded; change nothing.")
@click.option("-v", "--verbose", is_flag=True, help="Log every request and decision.")
@click.argument("paths", nargs=-1, type=click.Path(file_okay=False, exists=True))
def sync_command(
    config_path: Path | None, dry_run: bool, verbose: bool, paths: tuple[str, ...]
) -> None:
    """Back up once, then exit: 0 all uploaded and verified, 1 some failed, 2 bad config.

    Without a sync.yaml, each PATH is backed up to /syncagent/<folder name>; with one, PATHs
    pick which of its roots to back up.

    \b
    Example:
      syncagent sync ~/Documents
      syncagent sync --config /etc/syncagent/sync.yaml --dry-run
    """
    from syncagent.ignore import IgnoreRules
    from syncagent.scanner import ScanJob, default_helpers, sqlite_file
    from syncagent.statelock import StateLock

    config = _load(config_path, paths)
    _setup_logging(config, verbose)
    lock = StateLock(config.state_dir)
    if not dry_run:  # a running agent uploads changes itself: never both at once
        try:
            lock.acquire()
        except SyncAgentError as err:
            _fail(err)
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
            )
            with _stopped_by_signals(engine.stop) as stopped:
                report = engine.run_once(dry_run=dry_run, scans=scans)
    except SyncAgentError as err:
        _fail(err)
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
        click.echo(f"skipped {_shown(path)}: {reason}", err=True)
    for path, reason in report.failed:
        click.echo(f"FAILED {_shown(path)}: {reason}", err=True)
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
        f"{report.uploaded} uploaded ({_mb(report.bytes_sent)}), {report.moved} moved, "
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


@main.command("run")
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

    config = _load(config_path, paths)
    _setup_logging(config, verbose)
    lock = StateLock(config.state_dir)
    try:
        lock.acquire()
        with open_app(config, lambda m: click.echo(m, err=True)) as app:
            agent = Agent(
                config,
                app.ledger,
                lambda cfg, progress: SyncEngine(
                    cfg, app.ledger, app.client_factory(), progress=progress
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
        _fail(err)
    finally:
        lock.release()
    if agent.fatal:
        click.echo(f"syncagent: stopped: {agent.fatal}", err=True)
        sys.exit(1)
    click.echo("syncagent stopped", err=True)


@main.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.argument("paths", nargs=-1, type=click.Path(file_okay=False))
def status_command(config_path: Path | None, as_json: bool, paths: tuple[str, ...]) -> None:
    """Show where every file stands, from the ledger (no request to the cloud).

    \b
    Example:
      syncagent status --json
    """
    from syncagent.activity import read_activity
    from syncagent.app import human_time, open_ledger, token_expiry
    from syncagent.ledger import repo

    config = _load(config_path, paths)
    try:
        ledger = open_ledger(config)
        try:
            roots = repo.root_status(ledger)
            last = repo.last_pass(ledger)
        finally:
            ledger.close()
    except SyncAgentError as err:
        _fail(err)
    expiry = token_expiry(config)
    agent = read_activity(config.state_dir)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "roots": [
                        {
                            **dataclasses.asdict(r),
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
                    },
                    "token_expires_at": expiry,
                    "agent": agent,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    for r in roots:
        counts = ", ".join(f"{n} {k}" for k, n in sorted(r.counts.items())) or "no files yet"
        click.echo(f"{r.local_path} -> {r.remote_path}: {counts}; {_mb(r.bytes_pending)} pending")
        for state, rel, reason in r.problems:
            click.echo(f"  {state}: {_shown(rel)}: {reason}")
    if last is not None:
        result = last.result or "unfinished: running or interrupted"
        click.echo(
            f"last pass: {human_time(last.started_at)} ({result}, "
            f"{last.uploaded} uploaded, {last.failed} failed)"
        )
    click.echo(f"access token expires: {human_time(expiry)}")
    click.echo(f"agent: {_describe(agent)}")


def _describe(agent: dict[str, Any] | None) -> str:
    """One line on what the running agent is doing now."""
    if agent is None:
        return "not running"
    phase = agent.get("phase", "?")
    text = f"pid {agent.get('pid')}, {phase}"
    if phase == "uploading":
        text += (
            f" {agent.get('files_done', 0)}/{agent.get('files', 0)} files, "
            f"{_mb(agent.get('bytes_done', 0))}/{_mb(agent.get('bytes', 0))}, "
            f"{_mb(agent.get('rate', 0))}/s"
        )
        if agent.get("last_file"):
            text += f", last {_shown(str(agent['last_file']))}"
    elif phase == "scanning":
        text += " " + ", ".join(agent.get("roots", []))
    return text


@main.command("verify")
@config_option
@click.option("--repair", is_flag=True, help="Re-queue missing or mismatched files.")
@click.argument("paths", nargs=-1, type=click.Path(file_okay=False))
def verify_command(config_path: Path | None, repair: bool, paths: tuple[str, ...]) -> None:
    """Compare the ledger with the files on 123pan; exit 1 if any is missing or differs.

    \b
    Example:
      syncagent verify --repair && syncagent sync
    """
    from syncagent.app import open_app
    from syncagent.verify import verify

    config = _load(config_path, paths)
    _setup_logging(config, False)
    try:
        with open_app(config, lambda m: click.echo(m, err=True)) as app:
            checked, problems = verify(config, app.ledger, app.client, repair=repair)
    except SyncAgentError as err:
        _fail(err)
    for m in problems:
        click.echo(f"{m.root}/{m.rel_path}: {m.problem}")
    note = " (re-queued for the next sync)" if repair and problems else ""
    click.echo(f"checked {checked} files: {len(problems)} missing or different{note}")
    sys.exit(1 if problems else 0)


@main.group("db")
def db_group() -> None:
    """Ledger maintenance."""


@db_group.command("upgrade")
@config_option
def db_upgrade_command(config_path: Path | None) -> None:
    """Bring the ledger's schema up to date (also done on every start).

    \b
    Example:
      syncagent db upgrade --config sync.yaml
    """
    from syncagent.app import open_ledger

    config = _load(config_path, (str(Path.cwd()),) if config_path is None else ())
    try:
        open_ledger(config).close()
    except SyncAgentError as err:
        _fail(err)
    click.echo(f"ledger is up to date: {config.ledger_url}")
