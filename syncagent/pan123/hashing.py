"""Hashing a file in one read: its whole MD5 and, in the same pass, the MD5 of each slice.

A chunked upload needs the whole file's MD5 (the ``etag`` of V2 create) and each slice's MD5
(``sliceMD5``). Reading the file once for the first and once more per slice for the second
costs a second pass over the disk or page cache for every big file; here each piece read is fed
to both digests (the slices' on a second thread, so a big file's two MD5s take one MD5's
wall time on two cores). The slice size 123pan answers is only known after create, so the slices are
cut at the size it has always answered (:data:`SLICE_HINT`); an uploader told another size
hashes its slices itself.

Stdlib only, apart from the error tree.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from syncagent.errors import Interrupted

__all__ = ["READ_PIECE", "SLICE_HINT", "FileDigest", "digest_fd"]

READ_PIECE = 1 << 20  # 1 MiB per read
SLICE_HINT = 16 << 20  # the sliceSize 123pan answers V2 create with
_STOP_EVERY = 64  # pieces between checks for a shutdown (64 MiB)
_QUEUED_PIECES = 16  # pieces the slice thread may lag behind (16 MiB)


@dataclass(frozen=True)
class FileDigest:
    """A file's MD5 and its slices' MD5s (lower-case hex).

    :param slice_size: the size the slices were cut at (0: no slices hashed).
    :param slice_md5s: slice 1 first; the last slice may be short.
    """

    md5: str
    size: int
    slice_size: int = 0
    slice_md5s: tuple[str, ...] = ()

    def slice_md5(self, slice_no: int, slice_size: int) -> str | None:
        """The MD5 of slice ``slice_no`` (1-based) at ``slice_size``, if hashed at that size."""
        if slice_size != self.slice_size or not 1 <= slice_no <= len(self.slice_md5s):
            return None
        return self.slice_md5s[slice_no - 1]


def digest_fd(
    fd: int,
    slice_size: int = 0,
    stopped: Callable[[], bool] | None = None,
    piece_size: int = READ_PIECE,
) -> FileDigest:
    """Hash the file behind ``fd`` from offset 0 with ``pread`` (its offset is not moved).

    :param slice_size: also hash each slice of this size in the same read (0: do not). For a
        file of more than one slice the slice digests run on a second thread, fed the same
        pieces (hashlib lets go of the GIL), so the two MD5s take one MD5's wall time on two
        cores: the whole-file MD5 is what a chunked upload waits for before it may start.
    :param stopped: asked every 64 pieces; once true, hashing ends with
        :class:`~syncagent.errors.Interrupted` (a shutdown does not wait for a big file).
    """
    whole = hashlib.md5()
    slicer: _Slicer | None = None
    if slice_size:
        slicer = _Slicer(slice_size)
        if _larger_than(fd, slice_size):
            slicer.start()
    offset = 0
    pieces = 0
    try:
        while piece := os.pread(fd, piece_size, offset):
            whole.update(piece)
            offset += len(piece)
            if slicer is not None:
                slicer.feed(piece)
            pieces += 1
            if stopped is not None and pieces % _STOP_EVERY == 0 and stopped():
                raise Interrupted("hashing stopped by the shutdown")
    finally:
        slices = slicer.finish() if slicer is not None else ()
    return FileDigest(whole.hexdigest(), offset, slice_size, slices)


def _larger_than(fd: int, size: int) -> bool:
    try:
        return os.fstat(fd).st_size > size
    except OSError:
        return False


class _Slicer:
    """The MD5 of each slice, fed piece by piece, inline or on a thread of its own."""

    def __init__(self, slice_size: int) -> None:
        self._size = slice_size
        self._part = hashlib.md5()
        self._in_part = 0
        self._done: list[str] = []
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._queue = queue.Queue(maxsize=_QUEUED_PIECES)  # bounds the memory held
        self._thread = threading.Thread(target=self._run, name="slice-md5", daemon=True)
        self._thread.start()

    def feed(self, piece: bytes) -> None:
        if self._queue is None:
            self._take(piece)
        else:
            self._queue.put(piece)

    def finish(self) -> tuple[str, ...]:
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        if self._in_part:
            self._done.append(self._part.hexdigest())
            self._in_part = 0
        return tuple(self._done)

    def _run(self) -> None:
        assert self._queue is not None
        while (piece := self._queue.get()) is not None:
            self._take(piece)

    def _take(self, piece: bytes) -> None:
        view = memoryview(piece)
        while view:
            take = min(len(view), self._size - self._in_part)
            self._part.update(view[:take])
            self._in_part += take
            view = view[take:]
            if self._in_part == self._size:
                self._done.append(self._part.hexdigest())
                self._part, self._in_part = hashlib.md5(), 0
