"""Carrying out a restore's actions on disk.

Order: folders (parents first; made 0700 so they can be filled whatever their final mode),
then the downloads in parallel (each streamed to a temporary file beside its target,
checked, and renamed into place with its mode and mtime: see
:mod:`syncagent.pan123.download`; files of 8 MiB and more fsynced one by one before their
rename, the smaller ones made durable and renamed in batches by
:class:`~syncagent.restore.placing.Placer`: one ``syncfs`` per batch), then empty files and
links (each made under a temporary name and renamed into place), one last ``syncfs`` so
that the renames are durable too, and last the folders' modes and mtimes, deepest first
(writing into a folder changes its mtime).

Before anything is written, the folders of its path are checked again (no link, no file on
the way), so nothing is written outside the target folder. A stop (SIGINT/SIGTERM) lets the
downloads in flight stop between pieces; their partial files are resumed by the next run.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from syncagent.errors import Interrupted, RemoteError
from syncagent.progress import NoProgress, Progress
from syncagent.restore.placing import Placer
from syncagent.restore.plan import Action

if TYPE_CHECKING:
    from syncagent.pan123 import Pan123Client

__all__ = ["Progress", "RestoreReport", "Restorer"]

log = logging.getLogger("syncagent")

# Files this big are made durable one by one before their rename; smaller ones (an fsync
# costs ~7 ms a file here, more than the download of a small file) in batches (placing.py).
FSYNC_EACH = 8 << 20


@dataclass
class RestoreReport:
    downloaded: int = 0
    bytes_restored: int = 0
    bytes_fetched: int = 0  # over the network (less when partial files were resumed)
    folders: int = 0
    links: int = 0
    empty: int = 0
    same: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    unavailable: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """Everything asked for is in place and verified."""
        return not (self.failed or self.conflicts or self.refused or self.interrupted)


def default_modes() -> tuple[int, int]:
    """(file, folder) modes for entries whose mode is unknown: 0666/0777 less the umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask, 0o777 & ~mask


class Restorer:
    """Carries out actions below ``dest`` with ``workers`` parallel downloads."""

    def __init__(
        self,
        client: Pan123Client,
        dest: Path,
        *,
        workers: int = 4,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.dest = dest
        self.workers = max(1, workers)
        self.progress: Progress = progress or NoProgress()
        self.stop = stop or threading.Event()
        self._lock = threading.Lock()
        self._file_mode, self._dir_mode = default_modes()

    def run(self, actions: list[Action]) -> RestoreReport:
        report = RestoreReport()
        by: dict[str, list[Action]] = {}
        for a in actions:
            by.setdefault(a.outcome, []).append(a)
        for a in by.get("conflict", []):
            report.conflicts.append((a.entry.path, a.reason))
        for a in by.get("refused", []):
            report.refused.append((a.entry.path, a.reason))
        for a in by.get("unavailable", []):
            report.unavailable.append((a.entry.path, a.reason))
        for a in sorted(by.get("mkdir", []), key=lambda a: a.entry.path):
            self._guard(report, a, self._mkdir)
        downloads = by.get("download", [])
        self.progress.start(len(downloads), sum(a.entry.size for a in downloads))
        placer = Placer()
        placer.sync_also(self.dest)
        try:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="restore") as pool:
                futures = [pool.submit(self._download, a, report, placer) for a in downloads]
                for future in futures:
                    future.result()
            for a in by.get("empty", []):
                self._guard(report, a, self._empty)
            for a in by.get("link", []):
                self._guard(report, a, self._link)
            for a in by.get("same", []):
                self._guard(report, a, self._same)
        finally:
            placer.close()  # the small files' batches, then the renames made durable
        for reason in placer.errors:
            report.failed.append((".", reason))
        if self.stop.is_set():
            report.interrupted = True
            return report
        dirs = [
            a.entry for a in actions if a.entry.kind == "dir" and a.outcome in ("mkdir", "same")
        ]
        for e in sorted(dirs, key=lambda e: e.path.count("/"), reverse=True):
            self._guard(report, Action(e, "same"), self._folder_times)
        return report

    # -- one action each -------------------------------------------------------------------

    def _guard(self, report: RestoreReport, action: Action, do: Callable[[Action], None]) -> None:
        if self.stop.is_set():
            return
        try:
            self._check_path(action.entry.path)
            do(action)
        except OSError as exc:
            report.failed.append((action.entry.path, exc.strerror or str(exc)))
            return
        except _Blocked as exc:
            report.refused.append((action.entry.path, str(exc)))
            return
        with self._lock:
            if action.outcome == "mkdir":
                report.folders += 1
            elif action.outcome == "link":
                report.links += 1
            elif action.outcome == "empty":
                report.empty += 1
            elif action.outcome == "same" and action.entry.kind != "dir":
                report.same += 1

    def _check_path(self, rel: str) -> None:
        """Every folder on the way to ``rel`` is a real folder (made if missing)."""
        parts = rel.split("/")[:-1]
        current = self.dest
        for part in parts:
            current = current / part
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                try:
                    os.mkdir(current, self._dir_mode)
                    continue
                except FileExistsError:  # another worker made it meanwhile
                    st = os.lstat(current)
            if not stat.S_ISDIR(st.st_mode):
                raise _Blocked(f"{current.relative_to(self.dest)} is not a folder on disk")

    def _mkdir(self, action: Action) -> None:
        path = self.dest / action.entry.path
        if action.replace:
            os.unlink(path)
        os.mkdir(path, 0o700)

    def _download(self, action: Action, report: RestoreReport, placer: Placer) -> None:
        e = action.entry
        if self.stop.is_set():
            return

        def placed(error: OSError | None) -> None:
            if error is None:
                self._done(report, e.path, e.size)
            else:
                self._failed(report, e.path, error.strerror or str(error))

        batched = e.size < FSYNC_EACH
        try:
            self._check_path(e.path)
            assert e.file_id is not None and e.md5 is not None
            result = self.client.download(
                e.file_id,
                self.dest / e.path,
                size=e.size,
                md5=e.md5,
                mode=self._file_mode if e.mode is None else e.mode,
                mtime_ns=e.mtime_ns,
                on_progress=self.progress.advance,
                place=(lambda tmp, target: placer.add(tmp, target, placed)) if batched else None,
            )
        except Interrupted:
            with self._lock:
                report.interrupted = True
            return
        except (RemoteError, OSError, _Blocked) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._failed(report, e.path, reason)
            return
        with self._lock:
            report.bytes_fetched += result.fetched
        if not batched:
            self._done(report, e.path, e.size)

    def _done(self, report: RestoreReport, path: str, size: int) -> None:
        with self._lock:
            report.downloaded += 1
            report.bytes_restored += size
        self.progress.file_done(path, True)

    def _failed(self, report: RestoreReport, path: str, reason: str) -> None:
        with self._lock:
            report.failed.append((path, reason))
        self.progress.file_done(path, False)
        log.warning("restoring %s failed: %s", path, reason)

    def _temp(self, path: Path) -> Path:
        return path.with_name(f".{threading.get_ident()}.syncagent-new")

    def _empty(self, action: Action) -> None:
        e = action.entry
        path = self.dest / e.path
        tmp = self._temp(path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, self._file_mode if e.mode is None else e.mode)
            if e.mtime_ns is not None:
                os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def _link(self, action: Action) -> None:
        e = action.entry
        path = self.dest / e.path
        tmp = self._temp(path)
        tmp.unlink(missing_ok=True)
        os.symlink(e.target or b"", os.fsencode(tmp))
        if e.mtime_ns is not None:
            os.utime(tmp, ns=(e.mtime_ns, e.mtime_ns), follow_symlinks=False)
        os.replace(tmp, path)

    def _same(self, action: Action) -> None:
        """Already there: give it the catalog's mode and mtime (links: mtime only)."""
        e = action.entry
        if e.kind == "dir":
            return  # after everything else, in _folder_times
        path = self.dest / e.path
        if e.kind == "file" and e.mode is not None:
            os.chmod(path, e.mode)  # a regular file (probed): no link is followed
        if e.mtime_ns is not None:
            os.utime(path, ns=(e.mtime_ns, e.mtime_ns), follow_symlinks=False)

    def _folder_times(self, action: Action) -> None:
        e = action.entry
        path = self.dest / e.path
        os.chmod(path, self._dir_mode if e.mode is None else e.mode)  # a folder (checked)
        if e.mtime_ns is not None:
            os.utime(path, ns=(e.mtime_ns, e.mtime_ns), follow_symlinks=False)


class _Blocked(Exception):
    """A folder on the way is a link or a file on disk."""
