"""Writing a large download to disk on a thread of its own, with ``O_DIRECT`` where it works.

A restore of a large file should run at the disk's speed without filling the page cache
with bytes nobody reads again (and without the long fsync of all those dirty pages before
the rename). :class:`BlockWriter` takes the pieces as they arrive, copies them into an
aligned buffer (anonymous ``mmap``: page aligned) and writes each full buffer with
``pwrite`` through a descriptor opened with ``O_DIRECT``. What is not a whole number of
blocks at the end (the tail) goes through an ordinary descriptor. Where ``O_DIRECT`` is
refused (tmpfs, some network and FUSE filesystems, other systems: ``EINVAL`` at open or at
the first write), or the write starts at an unaligned offset (a resumed partial file), the
same writer falls back to ordinary writes, so the caller never needs to know.

Writing overlaps receiving and hashing (each releases the GIL). At most ``DEPTH`` pieces
wait for the thread, plus one buffer: memory stays bounded whatever the file's size.
Whatever happens, after :meth:`BlockWriter.close` every piece given to :meth:`put` is in
the file (the caller counts them as kept for a resume), or the write error is raised.
``O_DIRECT`` does not make anything durable by itself: the caller still fsyncs the file
before its rename.
"""

from __future__ import annotations

import errno
import mmap
import os
import queue
import threading

__all__ = ["ALIGN", "BLOCK", "BlockWriter"]

ALIGN = 4096  # offsets, lengths and buffer addresses of O_DIRECT writes: a multiple of this
BLOCK = 4 << 20  # bytes written by one O_DIRECT pwrite
DEPTH = 8  # pieces that may wait for the thread

_O_DIRECT: int = getattr(os, "O_DIRECT", 0)
_OPEN_FLAGS = os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW


class BlockWriter:
    """Writes pieces to ``fd`` (open for writing, positioned nowhere: ``pwrite`` at
    ``offset`` onwards) on its own thread; ``path`` is the same file, opened again with
    ``O_DIRECT`` when ``direct`` and the offset allow it.

    The caller keeps ``fd`` and closes it after :meth:`close`.
    """

    def __init__(
        self, fd: int, path: os.PathLike[str] | str, offset: int, *, direct: bool = True
    ) -> None:
        self._fd = fd
        self._offset = offset  # where the next byte written to disk goes
        self._direct_fd = -1
        if direct and _O_DIRECT and offset % ALIGN == 0:
            try:
                self._direct_fd = os.open(path, _OPEN_FLAGS | _O_DIRECT)
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
                    raise
        self._buffer = mmap.mmap(-1, BLOCK) if self._direct_fd >= 0 else None
        self._filled = 0
        self.direct_bytes = 0  # how many were written with O_DIRECT
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=DEPTH)
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="download-writer", daemon=True)
        self._thread.start()

    @property
    def direct(self) -> bool:
        """Writes still go through ``O_DIRECT`` (false after a fallback, and after close)."""
        return self._direct_fd >= 0

    def put(self, piece: bytes) -> None:
        """Queue ``piece`` (waits while the thread is ``DEPTH`` pieces behind); raises the
        error of an earlier write, if any."""
        if self._error is not None:
            raise self._error
        self._queue.put(piece)

    def close(self) -> None:
        """Write everything put (the tail without ``O_DIRECT``) and stop the thread; raises
        the write error, if any. The file then holds every byte put, in order."""
        self._queue.put(None)
        self._thread.join()
        if self._direct_fd >= 0:
            os.close(self._direct_fd)
            self._direct_fd = -1
        if self._buffer is not None:
            self._buffer.close()
            self._buffer = None
        if self._error is not None:
            raise self._error

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while (piece := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._write(piece)
                except OSError as exc:  # raised in the caller's thread by put()/close()
                    self._error = exc
        if self._error is None:
            try:
                self._flush_tail()
            except OSError as exc:
                self._error = exc

    def _write(self, piece: bytes) -> None:
        view = memoryview(piece)
        while view and self._buffer is not None:
            n = min(len(view), BLOCK - self._filled)
            self._buffer[self._filled : self._filled + n] = view[:n]
            self._filled += n
            view = view[n:]
            if self._filled == BLOCK:
                self._write_block(BLOCK)
        if view:  # no O_DIRECT (any more): the ordinary way
            self._pwrite_all(view)

    def _write_block(self, length: int) -> None:
        """Write the buffer's first ``length`` bytes (a multiple of ALIGN) at the offset,
        with O_DIRECT; where that is refused (EINVAL) fall back to ordinary writes for them
        and everything after."""
        assert self._buffer is not None
        data = memoryview(self._buffer)[:length]
        try:
            done = 0
            try:
                while done < length and done % ALIGN == 0:
                    n = os.pwrite(self._direct_fd, data[done:], self._offset + done)
                    done += n
                    self.direct_bytes += n
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._stop_direct()
            # an unaligned short write or a refusal: the rest the ordinary way
            self._offset += done
            self._pwrite_all(data[done:])
        finally:
            data.release()
        self._filled = 0
        if self._direct_fd < 0:  # fell back: no buffer from now on
            self._buffer.close()
            self._buffer = None

    def _stop_direct(self) -> None:
        os.close(self._direct_fd)
        self._direct_fd = -1

    def _flush_tail(self) -> None:
        """The buffer's last bytes: whole blocks with O_DIRECT, the rest without."""
        if self._buffer is None:
            return
        filled = self._filled
        whole = filled - filled % ALIGN
        tail = bytes(self._buffer[whole:filled])
        if whole:
            self._write_block(whole)
        self._filled = 0
        self._pwrite_all(memoryview(tail))

    def _pwrite_all(self, data: memoryview) -> None:
        """Write ``data`` at the offset through the ordinary descriptor."""
        while data:
            n = os.pwrite(self._fd, data, self._offset)
            data = data[n:]
            self._offset += n
