"""The whole-file MD5 of each open chunked upload, kept up to date while its slices arrive.

Owns an in-memory digest per V2 upload session. Slices arrive in any order and in parallel;
the digest covers the longest run of stored slices from the start and is advanced on a
background thread as soon as the next slice in order is stored, so ``upload_complete`` hashes
only what is left instead of the whole file (a 900 MiB upload ended with ~2 s of hashing on
the shared cores; 123pan does its verifying on its own machines).

A slice written again below the hashed end, or while it is being hashed, spoils the digest:
the upload is then hashed whole at completion, as :meth:`BlobStore.upload_md5` always did. The
digests live in memory only: after an emulator restart an upload is hashed whole too. A digest
that does not match the declared ``etag`` is never trusted to refuse an upload; the caller
hashes the file whole to confirm.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RunningDigests"]

RangeReader = Callable[[str, int, int], Iterator[bytes]]


@dataclass
class _Upload:
    preupload_id: str
    size: int
    slice_size: int
    digest: Any = field(default_factory=hashlib.md5)
    end: int = 0  # bytes hashed, from offset 0
    stored: set[int] = field(default_factory=set)  # slices verified and not written since
    hashing: int = 0  # the slice being hashed now (0: none)
    spoiled: bool = False
    turn: threading.Lock = field(default_factory=threading.Lock)  # one advancer at a time

    def intact(self) -> bool:
        """Not spoiled (a method, read afresh each time: another thread may spoil it)."""
        return not self.spoiled


class RunningDigests:
    """Per-upload running MD5s.

    :param read: ``read(preupload_id, start, length)`` yields the upload file's bytes.
    """

    def __init__(self, read: RangeReader) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._uploads: dict[str, _Upload] = {}
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def open(self, preupload_id: str, size: int, slice_size: int) -> None:
        """A new upload session: nothing hashed yet."""
        with self._lock:
            self._uploads[preupload_id] = _Upload(preupload_id, size, slice_size)

    def writing(self, preupload_id: str, slice_no: int) -> None:
        """A slice is about to be written (again): it is no longer known good."""
        with self._lock:
            up = self._uploads.get(preupload_id)
            if up is None:
                return
            up.stored.discard(slice_no)
            if (slice_no - 1) * up.slice_size < up.end or up.hashing == slice_no:
                up.spoiled = True

    def stored(self, preupload_id: str, slice_no: int) -> None:
        """A slice was written whole and its MD5 checked: hash it once its turn comes."""
        with self._lock:
            up = self._uploads.get(preupload_id)
            if up is None:
                return
            up.stored.add(slice_no)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="emulator-running-md5", daemon=True
                )
                self._thread.start()
        self._queue.put(preupload_id)

    def result(self, preupload_id: str) -> str | None:
        """The whole file's MD5 (hashing what is left now), or None when it is not known."""
        with self._lock:
            up = self._uploads.get(preupload_id)
        if up is None:
            return None
        self._advance(up)
        with self._lock:
            if up.spoiled or up.end != up.size:
                return None
            return str(up.digest.hexdigest())

    def forget(self, preupload_id: str) -> None:
        with self._lock:
            self._uploads.pop(preupload_id, None)

    def close(self) -> None:
        """Stop the background thread (what it had not hashed is hashed at completion)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _run(self) -> None:
        while (preupload_id := self._queue.get()) is not None:
            with self._lock:
                up = self._uploads.get(preupload_id)
            if up is not None:
                try:
                    self._advance(up)
                except OSError:  # the upload's file went away (completed, or dropped)
                    with self._lock:
                        up.spoiled = True

    def _advance(self, up: _Upload) -> None:
        with up.turn:
            while True:
                with self._lock:
                    slice_no = up.end // up.slice_size + 1 if up.slice_size else 0
                    if up.spoiled or up.end >= up.size or slice_no not in up.stored:
                        return
                    up.hashing = slice_no
                    start = up.end
                length = min(up.slice_size, up.size - start)
                for piece in self._read(up.preupload_id, start, length):
                    up.digest.update(piece)  # spoiled meanwhile: never read again
                with self._lock:
                    up.hashing = 0
                    if not up.intact():
                        return
                    up.end = start + length
