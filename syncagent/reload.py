"""SIGHUP: the watch agent re-reads its configuration without exiting.

``systemctl reload syncagent`` (the units' ``ExecReload=``) or ``kill -HUP PID``: the agent
finishes what is in flight as for a stop (no new upload starts; a chunked upload stays
resumable), re-reads the same sync.yaml, and starts again with it; the startup pass that
follows is a quick no-op pass for roots already backed up. A file that no longer loads is
logged, naming the file and every problem, and the agent goes on with the configuration it
had. What cannot change without a restart is said so and kept: the state dir (its lock is
held), the monitoring address, and the credentials' environment variables (the process's
environment is not re-read; a credentials file named by ``secrets_file`` is).

Started with folders on the command line and no sync.yaml, there is nothing to re-read: a
SIGHUP is logged and ignored.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from syncagent.config import SyncConfig, load_config
from syncagent.errors import ConfigError

__all__ = ["Reloader"]

log = logging.getLogger("syncagent")


class Reloader:
    """SIGHUP handling for ``run``: :meth:`arm` with what stops the current agent; after it
    returned, :meth:`requested` says whether a reload ended it and :meth:`reread` gives the
    configuration to go on with."""

    def __init__(self, source: Path | None) -> None:
        """``source``: the sync.yaml in use (None: folders given on the command line)."""
        self.source = source
        self._wanted = threading.Event()
        self._stop: Callable[[], None] = lambda: None

    def install(self) -> None:
        signal.signal(signal.SIGHUP, self._on_signal)

    def arm(self, stop: Callable[[], None]) -> None:
        """``stop``: ends the running agent (called from the signal handler: set events only)."""
        self._wanted.clear()
        self._stop = stop

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.source is None:
            return  # nothing to re-read (folders given on the command line): ignored
        self._wanted.set()
        self._stop()

    @property
    def requested(self) -> bool:
        return self._wanted.is_set()

    def reread(self, current: SyncConfig, cli_paths: tuple[str, ...] = ()) -> SyncConfig:
        """The configuration to run with next: ``source`` loaded again, or ``current`` when
        it does not load (logged, naming the file) or changes what needs a restart."""
        self._wanted.clear()
        assert self.source is not None
        try:
            fresh = load_config(self.source)
        except ConfigError as err:
            log.error(
                "SIGHUP: %s was not reloaded, the agent goes on with the configuration it had: %s",
                self.source,
                "; ".join(err.problems),
            )
            return current
        if cli_paths:  # the roots picked on the command line stay picked
            wanted = {str(Path(p).expanduser().resolve()) for p in cli_paths}
            fresh = dataclasses.replace(
                fresh, roots=tuple(r for r in fresh.roots if str(r.local.resolve()) in wanted)
            )
        kept = []
        if fresh.state_dir != current.state_dir:
            kept.append(f"state_dir stays {current.state_dir}")
        if (fresh.monitor_host, fresh.monitor_port) != (current.monitor_host, current.monitor_port):
            kept.append("monitoring stays as it was")
        if kept:
            log.warning("SIGHUP: needs a restart to change: %s", "; ".join(kept))
            fresh = dataclasses.replace(
                fresh,
                state_dir=current.state_dir,
                monitor_host=current.monitor_host,
                monitor_port=current.monitor_port,
            )
        before = {str(r.local) for r in current.roots}
        after = {str(r.local) for r in fresh.roots}
        log.info(
            "SIGHUP: reloaded %s: %d roots (%s added, %s removed)",
            self.source,
            len(fresh.roots),
            ", ".join(sorted(after - before)) or "none",
            ", ".join(sorted(before - after)) or "none",
        )
        return fresh
