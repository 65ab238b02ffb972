"""What every command shares: exit statuses, signals, config discovery, logging, formatting.

Maps the error tree to exit statuses in one place: a usage or configuration error exits 2, any
other :class:`~syncagent.errors.SyncAgentError` exits 1 with its message, never a traceback.
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
from typing import TYPE_CHECKING, NoReturn

import click

from syncagent.errors import ConfigError, SyncAgentError

if TYPE_CHECKING:
    from syncagent.config import SyncConfig


def fail(err: SyncAgentError) -> NoReturn:
    click.echo(f"syncagent: {err.message}", err=True)
    sys.exit(2 if isinstance(err, ConfigError) else 1)


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


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
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


def load(config_path: Path | None, paths: tuple[str, ...] = ()) -> SyncConfig:
    """The configuration, or exit 2 with every problem listed."""
    from syncagent.config import load_config

    if config_path is None:
        config_path = discover_config()
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
        fail(err)


def setup_logging(config: SyncConfig, verbose: bool) -> None:
    level = logging.DEBUG if verbose else getattr(logging, config.log_level.upper())
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if config.log_file is not None:
        handlers.append(logging.FileHandler(config.log_file, encoding="utf-8"))
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrations are not news
    logging.basicConfig(
        level=level, handlers=handlers, format="%(asctime)s %(levelname)s %(message)s", force=True
    )


def shown(path: str) -> str:
    """A path safe for a terminal: control characters written as escapes."""
    if path.isprintable():
        return path
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"
