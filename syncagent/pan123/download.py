"""Downloading one file from 123pan to a local path, streamed, checked, and resumable.

``download_info`` gives a URL (it expires after a while: a refused URL is asked for again);
the body is streamed into a temporary file beside the target, named after the target and
the expected MD5, so a later attempt (or a later run, after a kill) finds it and asks only
for the rest with an HTTP ``Range`` request. The MD5 is computed while the bytes arrive (the
prefix already on disk is read once when resuming). Only a file whose size and MD5 equal the
etag is given its mode and mtime and renamed into place: the target name never holds a
partial or wrong file. A body that is cut off is resumed; a file whose bytes come out wrong
is fetched again from the start, and after ``attempts`` tries is reported with
:class:`~syncagent.errors.IntegrityError` and its temporary file removed.

Memory: at most 9 pieces of 256 KiB per download (one being received, eight waiting for the
writer thread), plus the writer's 4 MiB block for a large file. A large file is written with
``O_DIRECT`` where the filesystem allows it (:mod:`syncagent.pan123.blockwrite`): it goes
to disk at the disk's speed without filling the page cache, and its fsync is short.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from syncagent.errors import IntegrityError, Interrupted, RemoteError, TransportError
from syncagent.pan123.api import Pan123Api
from syncagent.pan123.blockwrite import BlockWriter
from syncagent.pan123.http import HttpTransport, RetryPolicy

__all__ = ["PART_SUFFIX", "DownloadResult", "Downloader", "temp_path"]

log = logging.getLogger("syncagent.pan123")

PIECE = 1 << 18
THREADED = 4 << 20  # files this big are written by a thread of their own, with O_DIRECT
PART_SUFFIX = ".syncagent-part"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def temp_path(target: Path, md5: str) -> Path:
    """The temporary file a download of ``md5`` to ``target`` is written to (hidden, short
    whatever the target's name, and the same on every run so a killed download resumes)."""
    tag = hashlib.sha1(os.fsencode(target.name)).hexdigest()[:16]
    return target.with_name(f".{tag}.{md5}{PART_SUFFIX}")


@dataclass(frozen=True)
class DownloadResult:
    """A file in place: ``fetched`` bytes came over the network (less than ``size`` when a
    partial file was resumed), in ``attempts`` tries."""

    path: Path
    size: int
    md5: str
    fetched: int
    resumed_from: int
    attempts: int


class _Expired(Exception):
    """The URL was refused (403/404/410): ask download_info for a new one."""


class _Restart(Exception):
    """The server did not answer the range asked for: start from byte 0."""


class Downloader:
    """Downloads files; thread-safe (one per client, used by many workers).

    :param attempts: tries per file, for cut bodies, wrong bytes and transport errors alike.
    :param cancelled: once set, a download stops between pieces with
        :class:`~syncagent.errors.Interrupted` and keeps its partial file for the next run.
    :param direct: write large files with ``O_DIRECT`` where the filesystem allows it.
    """

    def __init__(
        self,
        api: Pan123Api,
        transport: HttpTransport,
        *,
        attempts: int = 5,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        cancelled: threading.Event | None = None,
        rng: random.Random | None = None,
        direct: bool = True,
    ) -> None:
        self._api = api
        self._direct = direct
        self._transport = transport
        self._attempts = attempts
        self._retry = retry or RetryPolicy(base=0.2, cap=5.0)
        self._sleep = sleep
        self._cancelled = cancelled or threading.Event()
        self._rng = rng or random.Random()

    def download(
        self,
        file_id: int,
        target: Path,
        *,
        size: int,
        md5: str,
        mode: int | None = None,
        mtime_ns: int | None = None,
        on_progress: Callable[[int], None] | None = None,
        fsync: bool = True,
        place: Callable[[Path, Path], None] | None = None,
    ) -> DownloadResult:
        """Fetch ``file_id`` (expected ``size`` bytes with MD5 ``md5``) to ``target``.

        :param mode: permission bits given to the file before it is renamed into place.
        :param mtime_ns: modification time given to it likewise.
        :param on_progress: called with the byte count of each piece received.
        :param fsync: make the content durable before the rename (``False``: the caller
            knows the file need not survive a crash).
        :param place: instead of fsync and rename, hand the checked temporary file (mode
            and mtime set) and the target to this, which puts it in place once its bytes
            are durable (:class:`syncagent.restore.placing.Placer`: one ``syncfs`` for a
            batch of small files instead of an fsync each, ~7 ms a file here).
        :raises IntegrityError: the bytes kept coming out wrong (nothing left behind).
        :raises Interrupted: cancelled; the partial file stays for the next run.
        :raises RemoteError: download_info failed (e.g. the file is gone: 5066).
        """
        md5 = md5.lower()
        tmp = temp_path(target, md5)
        seal = _Seal(md5, mode, mtime_ns, fsync and place is None)
        url: str | None = None
        fetched = wrong = 0
        resumed_from = _size_of(tmp)
        last_error = ""
        for attempt in range(1, self._attempts + 1):
            if self._cancelled.is_set():
                raise Interrupted(f"download of {target.name} stopped")
            try:
                if url is None:
                    url = self._api.download_url(file_id)
                digest, got, sealed = self._fetch(url, tmp, size, on_progress, seal)
                fetched += got
            except _Expired:
                url, last_error = None, "the download URL was refused"
                continue  # a fresh URL right away: not a failure of the server
            except _Restart:
                tmp.unlink(missing_ok=True)
                last_error = "the server did not answer the byte range asked for"
                continue
            except (TransportError, _Cut) as exc:
                fetched += exc.fetched if isinstance(exc, _Cut) else 0
                last_error = str(exc)
                log.info("download of %s cut off (%s); resuming", target.name, exc)
                self._pause(attempt)
                continue
            except RemoteError as exc:
                if not exc.retryable or attempt == self._attempts:
                    raise
                last_error = str(exc)
                self._pause(attempt)
                continue
            if digest == md5:
                if not sealed:
                    _finish(tmp, seal)
                if place is None:
                    os.replace(tmp, target)
                else:
                    place(tmp, target)
                return DownloadResult(target, size, md5, fetched, resumed_from, attempt)
            wrong += 1
            last_error = f"got MD5 {digest}, expected {md5}"
            log.warning("download of %s: wrong bytes (%s); fetching it again", target, last_error)
            tmp.unlink(missing_ok=True)
            resumed_from = 0
            self._pause(attempt)
        tmp.unlink(missing_ok=True)
        raise IntegrityError(
            f"download failed after {self._attempts} tries: {last_error}",
            endpoint="download",
        )

    def _pause(self, attempt: int) -> None:
        self._sleep(self._retry.delay(attempt - 1, self._rng))
        if self._cancelled.is_set():
            raise Interrupted("download stopped")

    def _fetch(
        self,
        url: str,
        tmp: Path,
        size: int,
        on_progress: Callable[[int], None] | None,
        seal: _Seal,
    ) -> tuple[str, int, bool]:
        """Bring ``tmp`` to ``size`` bytes; returns (MD5 of tmp, bytes received, sealed):
        ``sealed`` when the file came out right and ``seal`` was applied through the
        descriptor it was written with (saving an open of it again)."""
        have = _size_of(tmp)
        if have > size:
            tmp.unlink()
            have = 0
        digest = hashlib.md5()
        if have:
            with open(tmp, "rb") as f:
                while piece := f.read(PIECE):
                    digest.update(piece)
        if have == size:
            return digest.hexdigest(), 0, False
        headers = {"Range": f"bytes={have}-"} if have else {}
        got = 0
        with self._transport.stream(url, headers) as answer:
            if answer.status in (403, 404, 410):
                raise _Expired
            if answer.status == 416 or (answer.status == 200 and have):
                if answer.status == 200:  # range ignored: take the whole body from 0
                    have, digest = 0, hashlib.md5()
                else:
                    raise _Restart
            elif answer.status == 206:
                m = _CONTENT_RANGE.fullmatch(answer.headers.get("Content-Range", ""))
                if m is None or int(m.group(1)) != have:
                    raise _Restart
            elif answer.status != 200:
                raise TransportError(f"download answered HTTP {answer.status}", endpoint="download")
            flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
            fd = os.open(tmp, flags | (0 if have else os.O_TRUNC), 0o600)
            try:
                writer: BlockWriter | _Inline = (
                    BlockWriter(fd, tmp, have, direct=self._direct)
                    if size >= THREADED
                    else _Inline(fd, have)
                )
                throttle = self._transport.download_throttle  # the bandwidth limit
                try:
                    for piece in answer.pieces(
                        PIECE if throttle is None else throttle.piece(PIECE)
                    ):
                        if self._cancelled.is_set():
                            raise Interrupted("download stopped")
                        if throttle is not None:
                            throttle.take(len(piece))
                        if have + got + len(piece) > size:
                            raise _Restart  # longer than the file: not what was asked for
                        writer.put(piece)
                        digest.update(piece)
                        got += len(piece)
                        if on_progress is not None:
                            on_progress(len(piece))
                except TransportError as exc:
                    raise _Cut(str(exc), got) from exc
                finally:
                    writer.close()  # every piece counted in ``got`` is in the file
                hexdigest = digest.hexdigest()
                sealed = have + got == size and hexdigest == seal.md5
                if sealed:
                    seal.apply(fd)
            finally:
                os.close(fd)
        if have + got != size:
            raise _Cut(f"the body ended after {have + got} of {size} bytes", got)
        return hexdigest, got, sealed


class _Inline:
    """Writes in the caller's thread: for small files a thread would cost more than it saves."""

    def __init__(self, fd: int, offset: int) -> None:
        self._fd = fd
        self._offset = offset

    def put(self, piece: bytes) -> None:
        view = memoryview(piece)
        while view:
            n = os.pwrite(self._fd, view, self._offset)
            view = view[n:]
            self._offset += n

    def close(self) -> None:
        pass


class _Cut(Exception):
    """The body stopped early; ``fetched`` bytes of it were kept."""

    def __init__(self, message: str, fetched: int) -> None:
        super().__init__(message)
        self.fetched = fetched


def _size_of(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except FileNotFoundError:
        return 0


@dataclass(frozen=True)
class _Seal:
    """What a complete, checked file gets before its rename."""

    md5: str
    mode: int | None
    mtime_ns: int | None
    fsync: bool

    def apply(self, fd: int) -> None:
        """Make the file durable (``fsync``), give it its mode and mtime."""
        if self.fsync:
            os.fsync(fd)
        if self.mode is not None:
            os.fchmod(fd, self.mode & 0o7777)
        if self.mtime_ns is not None:
            os.utime(fd, ns=(self.mtime_ns, self.mtime_ns))


def _finish(tmp: Path, seal: _Seal) -> None:
    """Seal a complete file found on disk (left by an earlier run)."""
    fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        seal.apply(fd)
    finally:
        os.close(fd)
