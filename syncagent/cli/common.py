"""What every command shares: exit statuses, signals, config discovery, logging, formatting.

Maps the error tree to exit statuses in one place: a usage or configuration error exits 2,
credentials that 123pan refused exit 3 (neither is worth a restart: the systemd unit lists both
in ``RestartPreventExitStatus``), any other :class:`~syncagent.errors.SyncAgentError` exits 1
with its message, never a traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import click

from syncagent.errors import AuthError, ConfigError, SyncAgentError

if TYPE_CHECKING:
    from syncagent.config import SyncConfig

EXIT_FAILED = 1
EXIT_CONFIG = 2  # also click's usage errors
EXIT_CREDENTIALS = 3  # 123pan refused the client ID or secret


def exit_status(err: BaseException | None) -> int:
    """The exit status for a command that failed with ``err``."""
    if isinstance(err, ConfigError):
        return EXIT_CONFIG
    if isinstance(err, AuthError):
        return EXIT_CREDENTIALS
    return EXIT_FAILED


def fail(err: SyncAgentError) -> NoReturn:
    click.echo(f"syncagent: {err.message}", err=True)
    sys.exit(exit_status(err))


@contextlib.contextmanager
def stopped_by_signals(stop: Callable[[], None]) -> Iterator[list[int]]:
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


def stop_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM, armed now: call it before saying "press Ctrl-C",
    or a signal sent as soon as that is read ends the process with a traceback."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop


def wait_for_signal(stop: threading.Event | None = None) -> None:
    """Block until SIGINT or SIGTERM (``stop`` from :func:`stop_signals`, armed earlier)."""
    stop = stop or stop_signals()
    while not stop.wait(0.5):
        pass


CONFIG_ENV = "SYNCAGENT_CONFIG"
SYSTEM_CONFIG = Path("/etc/syncagent/sync.yaml")  # the systemd unit's and the image's

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=(
        f"sync.yaml to use [default: ${CONFIG_ENV}, else the first that exists of "
        "./sync.yaml, $XDG_CONFIG_HOME/syncagent/sync.yaml, "
        f"{SYSTEM_CONFIG}]."
    ),
)


def discover_config(environ: dict[str, str] | None = None) -> Path | None:
    """Where the configuration is when ``--config`` is not given, as people expect it:
    ``$SYNCAGENT_CONFIG``, then ``./sync.yaml``, then ``$XDG_CONFIG_HOME/syncagent/sync.yaml``
    (``~/.config/...``), then the system file. None when there is none."""
    env = os.environ if environ is None else environ
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    xdg = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    for candidate in (Path("sync.yaml"), xdg / "syncagent" / "sync.yaml", SYSTEM_CONFIG):
        if candidate.is_file():
            return candidate
    return None


def load(
    config_path: Path | None, paths: tuple[str, ...] = (), *, roots_required: bool = True
) -> SyncConfig:
    """The configuration, or exit 2 with every problem listed.

    ``roots_required=False``: with no configuration found and no folder given, the defaults
    (the state dir and ledger from the environment), for commands that only read them."""
    from syncagent.config import load_config

    if config_path is None:
        config_path = discover_config()
    try:
        if config_path is None:
            if not paths and not roots_required:
                return load_config(None, roots_required=False)
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
            # compared with links resolved: a root is named by its link or by its folder
            wanted = {Path(p).expanduser().resolve() for p in paths}
            real = {r.local: Path(os.path.realpath(r.local)) for r in config.roots}
            unknown = wanted - set(real.values())
            if unknown:
                raise ConfigError(
                    [
                        f"roots: {p} is not a root of {config_path}"
                        for p in sorted(map(str, unknown))
                    ]
                )
            config = dataclasses.replace(
                config, roots=tuple(r for r in config.roots if real[r.local] in wanted)
            )
        return config
    except ConfigError as err:
        fail(err)


def bwlimit_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--bwlimit`` for a command whose transfers go ``what`` (upload or download)."""
    return click.option(
        "--bwlimit",
        default=None,
        metavar="LIMIT",
        help=f"Limit the {what} bandwidth: a rate (2M, 512k, off) or a timetable "
        f"('08:00,512k 23:00,off') [default: limits.{what}_bandwidth].",
    )


def with_bwlimit(
    config: SyncConfig, what: Literal["upload", "download"], given: str | None
) -> SyncConfig:
    """``config`` with ``--bwlimit`` (if ``given``) as its ``what`` limit; exit 2 when it
    does not parse. Logs the limit in force (after logging is set up)."""
    import datetime

    from syncagent.config import bandwidth_limit

    if given is not None:
        try:
            limit = bandwidth_limit(given)
        except ValueError as exc:
            fail(ConfigError([f"--bwlimit: {exc}"]))
        if what == "upload":
            config = dataclasses.replace(config, upload_bandwidth=limit)
        else:
            config = dataclasses.replace(config, download_bandwidth=limit)
    limit = config.upload_bandwidth if what == "upload" else config.download_bandwidth
    if limit.limited:
        logging.getLogger("syncagent").info(
            "%s bandwidth: %s (%s)", what, limit.describe(datetime.datetime.now()), limit.text
        )
    return config


def guard_state(config: SyncConfig) -> None:
    """Before a backup (after logging is set up: both log): the state made private, and the
    own files inside the roots, which are never backed up, named once."""
    from syncagent.private import announce_own_files, tighten_state

    tighten_state(config)
    announce_own_files(config)


LOG_ROTATE_BYTES = 10 << 20  # a log file is rotated at 10 MiB ...
LOG_ROTATE_KEEP = 5  # ... keeping 5 old ones: sync.log.1 ... sync.log.5


def verbosity_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``-v``/``-vv`` and ``-q`` on a command, passed on as ``verbosity``: -1 quiet (warnings
    and errors only), 0 the configured level, 1 every decision, 2 every request too."""

    def to_verbosity(ctx: click.Context, param: click.Parameter, value: int) -> int:
        if ctx.params.pop("_quiet", False):
            return -1
        return int(value)

    command = click.option(
        "-v",
        "--verbose",
        "verbosity",
        count=True,
        callback=to_verbosity,
        help="-v: log each decision (plan, skip, move, retry); -vv: each request too.",
    )(command)
    return click.option(
        "-q",
        "--quiet",
        "_quiet",
        is_flag=True,
        is_eager=True,
        expose_value=True,
        help="Log warnings and errors only.",
    )(command)


def log_levels(config_level: str, verbosity: int) -> tuple[int, int]:
    """(syncagent's level, the request log's level) for a verbosity. Pure."""
    if verbosity < 0:
        return logging.WARNING, logging.WARNING
    if verbosity == 0:
        level = getattr(logging, config_level.upper())
        return level, max(level, logging.INFO)
    return logging.DEBUG, logging.DEBUG if verbosity >= 2 else logging.INFO


def setup_logging(
    config: SyncConfig, verbosity: int, console: logging.Handler | None = None
) -> None:
    """Log to stderr (or ``console``: a handler that prints above a live progress block) and
    to ``log_file`` when set, rotated by size (:data:`LOG_ROTATE_BYTES`, keeping
    :data:`LOG_ROTATE_KEEP`): no logrotate is needed, in a container or on a desktop. Then
    log what loading the config decided (the notices); a log file that cannot be opened
    exits 2 like any configuration problem."""
    from logging.handlers import RotatingFileHandler

    level, requests_level = log_levels(config.log_level, verbosity)
    plain = "%(asctime)s %(levelname)s %(message)s"
    stream = console or logging.StreamHandler(sys.stderr)
    handlers: list[logging.Handler] = [stream]
    if config.log_file is not None:
        try:
            config.log_file.parent.mkdir(parents=True, exist_ok=True)
            file_handler = RotatingFileHandler(
                config.log_file,
                maxBytes=LOG_ROTATE_BYTES,
                backupCount=LOG_ROTATE_KEEP,
                encoding="utf-8",
            )
        except OSError as exc:
            fail(ConfigError([f"logging.file: cannot write {config.log_file}: {exc.strerror}"]))
        file_handler.setFormatter(logging.Formatter(plain))
        handlers.append(file_handler)
    # rich's handler draws the time and level itself
    stream.setFormatter(logging.Formatter(plain if console is None else "%(message)s"))
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrations are not news
    logging.basicConfig(level=level, handlers=handlers, force=True)
    logging.getLogger("syncagent.pan123").setLevel(requests_level)
    for notice in config.notices:
        logging.getLogger("syncagent").warning("%s", notice)


def shown(path: str) -> str:
    """A path safe for a terminal: control characters written as escapes."""
    if path.isprintable():
        return path
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"
