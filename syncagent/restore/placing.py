"""Putting many small downloaded files under their final names, durably, in batches.

A restored file is written to a temporary name beside its target, checked (size and MD5),
given its mode and mtime, and only then renamed into place; the rename must never reach the
disk before the file's bytes do, or a crash could leave a file under its final name that
is empty or holds garbage (the rename is metadata, journaled on its own; the bytes are
written back later). An ``fsync`` per file gives that guarantee but costs ~7 ms here, more
than the download of a 4 KiB file. :class:`Placer` gives the same guarantee for a batch:
one ``syncfs`` of the filesystem (which returns only once every file's bytes written
before the call are on disk, and reports a writeback error), *then* the renames of the
batch. The batch is every file that finished while the previous batch was being placed
(group commit, at most one batch per ``interval``), on a thread of its own, so downloads
never wait for it.

The crash argument, per file: (1) its bytes were written and checked before it joined a
batch; (2) the batch's ``syncfs`` returned before its rename was issued; so (3) whatever a
crash keeps of the rename, the name points at the complete bytes, or the file is still
under its temporary name, complete, and the next run's download finds it, checks it
without fetching a byte, and places it. A ``syncfs`` that fails renames nothing of its
batch (the files are reported failed and their temporary files stay for the next run).
:meth:`Placer.close` ends with one more ``syncfs`` of each filesystem touched, so that
once a restore reports success, the renames themselves are on disk too.

Where the C library has no ``syncfs`` (not Linux) every file of a batch is fsynced
instead (one by one, then the renames): slower, equally safe.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Placer", "syncfs"]

log = logging.getLogger("syncagent")

Done = Callable[[OSError | None], None]


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_SYNCFS = _load_syncfs()


def syncfs(path: Path) -> bool:
    """Make everything written to the filesystem holding ``path`` durable (``syncfs(2)``,
    which releases the GIL while it waits); False where there is no ``syncfs``.

    :raises OSError: the filesystem reported a writeback error.
    """
    if _SYNCFS is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY)
    try:
        if _SYNCFS(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)
    return True


@dataclass
class _Item:
    tmp: Path
    target: Path
    done: Done


class Placer:
    """Renames checked temporary files into place in durable batches (see the module).

    :param interval: seconds at least between two batches (each costs a ``syncfs``).
    :param sync: what makes a filesystem durable (:func:`syncfs`; tests wrap it to watch
        the order of syncs and renames).
    """

    def __init__(self, *, interval: float = 0.2, sync: Callable[[Path], bool] = syncfs) -> None:
        self._interval = interval
        self._sync = sync
        self._cond = threading.Condition()
        self._pending: list[_Item] = []
        self._closing = False
        self._folders: dict[int, Path] = {}  # a folder on each filesystem written to
        self.batches = 0  # how many syncfs-then-rename batches were placed
        self.errors: list[str] = []  # the last syncs that failed (renames not durable)
        self._thread = threading.Thread(target=self._run, name="restore-placer", daemon=True)
        self._thread.start()

    def add(self, tmp: Path, target: Path, done: Done) -> None:
        """Place ``tmp`` (complete, checked, mode and mtime set) at ``target`` (same
        folder) once its bytes are durable; ``done(None)`` then, or ``done(error)``."""
        with self._cond:
            self._pending.append(_Item(tmp, target, done))
            self._cond.notify()

    def close(self) -> None:
        """Place everything added, then make the renames durable; waits."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()

    def sync_also(self, folder: Path) -> None:
        """Have :meth:`close` sync the filesystem of ``folder`` too (what was renamed or
        made there without this placer: links, empty files, large files)."""
        with self._cond:
            self._remember(folder)

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        last = 0.0
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                deadline = last + self._interval
                while not self._closing and (now := time.monotonic()) < deadline:
                    self._cond.wait(deadline - now)  # let a batch gather
                batch, self._pending = self._pending, []
                closing = self._closing and not batch
            if closing:
                self._sync_touched()
                return
            last = time.monotonic()
            self._place(batch)

    def _place(self, batch: list[_Item]) -> None:
        self.batches += 1
        folders: dict[int, Path] = {}
        for parent in {item.tmp.parent for item in batch}:
            with contextlib.suppress(OSError):  # reported by its rename below
                folders.setdefault(os.lstat(parent).st_dev, parent)
        try:
            for folder in folders.values():
                if not self._sync(folder):
                    for item in batch:
                        _fsync(item.tmp)
        except OSError as exc:
            log.warning("making restored files durable failed: %s", exc)
            for item in batch:
                item.done(exc)  # not renamed: their temporary files stay, complete
            return
        with self._cond:
            for dev, folder in folders.items():
                self._folders.setdefault(dev, folder)
        for item in batch:
            try:
                os.replace(item.tmp, item.target)
            except OSError as exc:
                item.done(exc)
                continue
            item.done(None)

    def _remember(self, folder: Path) -> None:
        with contextlib.suppress(OSError):
            self._folders.setdefault(os.lstat(folder).st_dev, folder)

    def _sync_touched(self) -> None:
        with self._cond:
            folders = list(self._folders.values())
        for folder in folders:
            try:
                if not self._sync(folder):
                    os.sync()
            except OSError as exc:
                log.warning("syncing %s failed: %s", folder, exc)
                self.errors.append(f"making the restored files durable failed: {exc}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
