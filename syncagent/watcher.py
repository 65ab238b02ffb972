"""Filesystem events as hints: a watchdog observer per root that only says "this root changed".

Events are never trusted for what changed: the engine rescans and compares with the ledger,
so a missed or coalesced event costs nothing but latency. The handler does no I/O. When the
inotify watch limit is reached, the root falls back to polling and says which sysctl to raise;
``watch: poll`` roots (network filesystems, bind mounts) poll from the start.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from syncagent.config import RootConfig

__all__ = ["INOTIFY_HINT", "Dirty", "RootWatcher"]

log = logging.getLogger("syncagent")

INOTIFY_HINT = (
    "the inotify watch limit is reached; raise it with "
    "`sysctl fs.inotify.max_user_watches=524288` (add it to /etc/sysctl.conf to keep it); "
    "until then this root is polled"
)
_IGNORED_SUFFIXES = ("-journal", "-wal", "-shm")  # the ledger's own files, if inside a root


class Dirty:
    """Which roots changed, and when they last did; shared by watchers and the agent."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._changed: dict[Path, float] = {}  # root -> last change
        self._since: dict[Path, float] = {}  # root -> first change not yet handled
        self.wake = threading.Event()

    def mark(self, root: Path) -> None:
        with self._lock:
            now = self._clock()
            self._changed[root] = now
            self._since.setdefault(root, now)
        self.wake.set()

    def take(self, quiet: float, max_wait: float) -> list[Path]:
        """Roots quiet for ``quiet`` seconds, or changing for over ``max_wait`` (a root that
        never stops changing still gets passes); they are forgotten until the next change."""
        now = self._clock()
        with self._lock:
            ready = [
                r
                for r, t in self._changed.items()
                if now - t >= quiet or now - self._since[r] >= max_wait
            ]
            for r in ready:
                del self._changed[r]
                del self._since[r]
            return ready


class _Handler(FileSystemEventHandler):
    def __init__(self, root: Path, dirty: Dirty) -> None:
        self._root = root
        self._dirty = dirty

    def on_any_event(self, event: FileSystemEvent) -> None:
        path = str(event.src_path)
        if event.event_type in ("opened", "closed_no_write") or path.endswith(_IGNORED_SUFFIXES):
            return
        self._dirty.mark(self._root)


class RootWatcher:
    """Watches one root; ``mode`` says how (``inotify`` or ``poll``)."""

    def __init__(self, root: RootConfig, dirty: Dirty) -> None:
        self.root = root
        self._dirty = dirty
        self._observer: BaseObserver | None = None
        self.mode = "poll" if root.watch == "poll" else "inotify"

    def start(self) -> None:
        if self.mode == "inotify":
            try:
                self._start(Observer())
                return
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EMFILE):
                    raise
                log.warning("%s: %s", self.root.local, INOTIFY_HINT)
                self.mode = "poll"
        self._start(PollingObserver(timeout=self.root.poll_interval))

    def _start(self, observer: BaseObserver) -> None:
        observer.schedule(
            _Handler(self.root.local, self._dirty), str(self.root.local), recursive=True
        )
        observer.daemon = True
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
