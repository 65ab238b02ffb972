"""Filesystem events as hints: a watchdog observer per root that only says "this root changed".

Events are never trusted for what changed: the engine rescans and compares with the ledger,
so a missed or coalesced event costs nothing but latency. The handler does no I/O. When the
inotify watch limit is reached, the root falls back to polling and says which sysctl to raise;
``watch: poll`` roots (network filesystems, bind mounts) poll from the start. An inotify queue
overflow (events lost) marks every inotify root dirty, so a rescan recovers them.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from syncagent.config import RootConfig
from syncagent.ignore import inside

__all__ = ["INOTIFY_HINT", "Dirty", "RootWatcher"]

log = logging.getLogger("syncagent")

INOTIFY_HINT = (
    "the inotify watch limit is reached; raise it with "
    "`sysctl fs.inotify.max_user_watches=524288` (add it to /etc/sysctl.conf to keep it); "
    "until then this root is polled"
)
_IGNORED_SUFFIXES = ("-journal", "-wal", "-shm")  # the ledger's own files, if inside a root

# watchdog 7 warns each time a folder created under a recursive watch is registered twice
# (once for its own creation, once while its parent is walked), printing its whole watch
# table: a `cp -r` of a tree wrote megabytes of these to the log. Harmless: the callback is
# the same one.
warnings.filterwarnings(
    "ignore", message="Callback with id .* already exists", category=RuntimeWarning
)


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
    """Marks the root dirty, except for reads and for syncagent's own files (``own``: its
    state dir, ledger and logs, when a root holds them): the agent writes those during
    every pass, and each write would call for another pass."""

    def __init__(self, root: Path, dirty: Dirty, own: tuple[str, ...]) -> None:
        self._root = root
        self._dirty = dirty
        self._own = own

    def _own_file(self, path: str) -> bool:
        return any(path == p or path.startswith(p + os.sep) for p in self._own)

    def on_any_event(self, event: FileSystemEvent) -> None:
        path = os.fsdecode(event.src_path)
        if event.event_type in ("opened", "closed_no_write") or path.endswith(_IGNORED_SUFFIXES):
            return
        dest = os.fsdecode(getattr(event, "dest_path", "") or "")
        if self._own_file(path) and (not dest or self._own_file(dest)):
            return
        self._dirty.mark(self._root)


def _identity(folder: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class _OverflowAlarm(logging.Handler):
    """Marks every watched root dirty when watchdog reports an inotify queue overflow.

    watchdog rebuilds its watches after an overflow but tells no event handler, only its
    log, so this listens there: the events lost are then recovered by a rescan.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._lock_roots = threading.Lock()
        self._watched: dict[Path, Dirty] = {}

    def watch(self, root: Path, dirty: Dirty) -> None:
        with self._lock_roots:
            self._watched[root] = dirty

    def unwatch(self, root: Path) -> None:
        with self._lock_roots:
            self._watched.pop(root, None)

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" not in record.getMessage():
            return
        with self._lock_roots:
            watched = list(self._watched.items())
        for root, dirty in watched:
            log.warning("%s: inotify events were lost (queue overflow); rescanning", root)
            dirty.mark(root)


_overflow = _OverflowAlarm()
_inotify_log = logging.getLogger("watchdog.observers.inotify_c")
_inotify_log.addHandler(_overflow)
_inotify_log.setLevel(logging.WARNING)  # whatever the root logger's level, warnings reach it


class RootWatcher:
    """Watches one root; ``mode`` says how (``inotify`` or ``poll``).

    :param native: makes the platform's event observer (inotify on Linux).
    :param own: syncagent's own files; changes to them do not make the root dirty.
    """

    def __init__(
        self,
        root: RootConfig,
        dirty: Dirty,
        native: Callable[[], BaseObserver] = Observer,
        own: Iterable[Path] = (),
    ) -> None:
        self.root = root
        self._dirty = dirty
        # as event paths spell them: under the root as configured
        self._own = tuple(str(root.local / rel) for rel in inside(root.local, own))
        self._native = native
        self._observer: BaseObserver | None = None
        self.mode = "poll" if root.watch == "poll" else "inotify"
        self._folder = _identity(root.local)  # the folder being watched

    @property
    def missing(self) -> bool:
        """The root's folder is not there (removed, moved away or not mounted)."""
        return self._folder is None

    def check(self) -> None:
        """Notice the root itself going away, being moved, or being mounted over: inotify
        reports none of these for the folder it watches. The root is marked dirty (its
        pass then reports it, and mirror mode refuses to delete anything), and the folder
        now at the root's path, if any, is watched instead."""
        now = _identity(self.root.local)
        if now == self._folder:
            return
        self._folder = now
        if now is None:
            log.warning("%s is gone (removed, moved or unmounted)", self.root.local)
        else:
            log.warning("%s is a different folder now (mounted?); watching it", self.root.local)
        self._dirty.mark(self.root.local)
        if now is not None:
            self.stop()
            self.mode = "poll" if self.root.watch == "poll" else "inotify"
            self.start()

    def start(self) -> None:
        self._folder = _identity(self.root.local)
        if self._folder is None:
            log.warning("%s does not exist yet; watching for it to appear", self.root.local)
            return
        if self.mode == "inotify":
            native = self._native()
            try:
                self._start(native)
                return
            except OSError as exc:
                native.stop()  # its reader thread started with it
                if exc.errno not in (errno.ENOSPC, errno.EMFILE):
                    raise
                log.warning("%s: %s", self.root.local, INOTIFY_HINT)
                self.mode = "poll"
        self._start(PollingObserver(timeout=self.root.poll_interval))

    def _start(self, observer: BaseObserver) -> None:
        observer.schedule(
            _Handler(self.root.local, self._dirty, self._own), str(self.root.local), recursive=True
        )
        observer.daemon = True
        observer.start()
        self._observer = observer
        if self.mode == "inotify":
            _overflow.watch(self.root.local, self._dirty)

    def stop(self) -> None:
        _overflow.unwatch(self.root.local)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
