"""File content of the emulated drive, on disk, streamed in and out in bounded pieces.

Owns ``<data_dir>/blobs`` (one file per distinct (MD5, size): that is what makes 秒传 possible),
``<data_dir>/incoming`` (single-step bodies being received) and ``<data_dir>/uploads`` (one
pre-sized file per V2 chunked upload; each slice is written at its offset, so completing an
upload is a hash and a rename, never a copy). Nothing here holds more than one piece in memory.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["PIECE", "BlobStore", "TooLong"]

PIECE = 1 << 20

Reader = Callable[[int], bytes]


class TooLong(Exception):
    """The incoming data is longer than the caller allowed; the rest was drained, not stored."""


class _Writer:
    """Writes pieces to a file on its own thread, at most ``depth`` pieces behind.

    Hashing and writing to new page-cache pages cost about the same here (~700 and ~400
    MB/s); doing them on two threads (both release the GIL) overlaps them.
    """

    def __init__(self, out: BinaryIO, depth: int = 4) -> None:
        self._out = out
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="emulator-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (piece := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._out.write(piece)
                except BaseException as exc:  # handed to the request thread in put()/close()
                    self._error = exc

    def put(self, piece: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(piece)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


def _copy(read: Reader, out: BinaryIO, limit: int) -> tuple[str, int]:
    """Copy ``read`` to ``out`` hashing on the way; (MD5 hex, length).

    Past ``limit`` bytes the rest is read and dropped, then TooLong raised. Bodies past one
    piece are written by a :class:`_Writer` so hashing and disk writes overlap.
    """
    digest = hashlib.md5()
    length = 0
    writer: _Writer | None = None
    try:
        while piece := read(PIECE):
            length += len(piece)
            if length > limit:
                while read(PIECE):
                    pass
                raise TooLong(str(length))
            if writer is None and length >= PIECE:
                writer = _Writer(out)
            if writer is None:
                out.write(piece)
            else:
                writer.put(piece)
            digest.update(piece)
    finally:
        if writer is not None:
            writer.close()
    return digest.hexdigest(), length


class BlobStore:
    """Content-addressed file store.

    :param root: the emulator's data dir.
    """

    def __init__(self, root: Path) -> None:
        self._blobs = root / "blobs"
        self._incoming = root / "incoming"
        self._uploads = root / "uploads"
        for d in (self._blobs, self._incoming, self._uploads):
            d.mkdir(parents=True, exist_ok=True)
        self._tag = uuid.uuid4().hex[:12]
        self._serial = itertools.count(1)
        self._made_dirs: set[str] = set()
        # Leftovers of a crash mid-request are garbage: nothing refers to them.
        for stale in self._incoming.iterdir():
            stale.unlink(missing_ok=True)

    def path(self, md5: str, size: int) -> Path:
        return self._blobs / md5[:2] / f"{md5}-{size}"

    def has(self, md5: str, size: int) -> bool:
        return self.path(md5, size).is_file()

    def receive(self, read: Reader, limit: int) -> tuple[Path, str, int]:
        """Stream ``read`` into a new incoming file, hashing as it goes.

        :param read: called with a piece size; returns b"" at the end.
        :param limit: the most bytes to keep; past that the rest is drained and TooLong raised.
        :returns: (temporary path, lower-case MD5 hex, length).
        """
        tmp = self._incoming / f"{self._tag}-{next(self._serial)}"
        try:
            with open(tmp, "wb") as out:
                md5, length = _copy(read, out, limit)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, md5, length

    def adopt(self, tmp: Path, md5: str, size: int) -> None:
        """Move a received file to its blob place (or drop it if that content is known)."""
        target = self.path(md5, size)
        if target.exists():
            tmp.unlink(missing_ok=True)
            return
        if md5[:2] not in self._made_dirs:
            target.parent.mkdir(exist_ok=True)
            self._made_dirs.add(md5[:2])
        os.replace(tmp, target)

    def discard(self, tmp: Path) -> None:
        tmp.unlink(missing_ok=True)

    # -- chunked uploads -----------------------------------------------------------------

    def _upload_path(self, preupload_id: str) -> Path:
        return self._uploads / f"{preupload_id}.part"

    def start_upload(self, preupload_id: str, size: int) -> None:
        """Create the sparse file that the slices of an upload are written into."""
        with open(self._upload_path(preupload_id), "wb") as f:
            f.truncate(size)

    def write_slice(
        self, preupload_id: str, offset: int, read: Reader, limit: int
    ) -> tuple[str, int]:
        """Write one slice at ``offset``; returns (MD5 hex, length) of what arrived.

        Bytes beyond ``limit`` are drained and TooLong raised, so a bad slice never writes
        past its own range.
        """
        with open(self._upload_path(preupload_id), "r+b") as out:
            out.seek(offset)
            return _copy(read, out, limit)

    def upload_md5(self, preupload_id: str) -> str:
        digest = hashlib.md5()
        with open(self._upload_path(preupload_id), "rb") as f:
            while piece := f.read(PIECE):
                digest.update(piece)
        return digest.hexdigest()

    def read_upload(self, preupload_id: str, start: int, length: int) -> Iterator[bytes]:
        """Yield ``length`` bytes of an upload's file from ``start``, a piece at a time."""
        fd = os.open(self._upload_path(preupload_id), os.O_RDONLY)
        try:
            while length > 0 and (piece := os.pread(fd, min(PIECE, length), start)):
                start += len(piece)
                length -= len(piece)
                yield piece
        finally:
            os.close(fd)

    def finish_upload(self, preupload_id: str, md5: str, size: int) -> None:
        self.adopt(self._upload_path(preupload_id), md5, size)

    def stream(
        self, md5: str, size: int, start: int = 0, length: int | None = None, step: int = PIECE
    ) -> Iterator[bytes]:
        """Yield a blob's content (``length`` bytes from ``start``; default all) in pieces
        of at most ``step`` bytes."""
        left = size - start if length is None else length
        with open(self.path(md5, size), "rb") as f:
            f.seek(start)
            while left > 0 and (piece := f.read(min(step, left))):
                left -= len(piece)
                yield piece
