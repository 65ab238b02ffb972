"""Reading a file the scan found: one descriptor, opened without following a link, never blocking.

Between the scan and the upload the entry at a path can become anything: a symbolic link to a
file outside the root, a FIFO (whose ``open`` would block until a writer came), a folder. So a
worker never reads a file by its path. :func:`open_below` opens every folder on the way from the
root with ``O_NOFOLLOW`` relative to the one above it (a folder swapped for a link is not
entered), then the file itself with ``O_NOFOLLOW | O_NONBLOCK``, and checks with ``fstat`` on
that descriptor that it is a regular file. Everything after that (hashing, the single-step
body, every slice range) reads that descriptor with ``pread``, so what is hashed and sent is
the file that was checked, whatever the path points to by then.

Stdlib only, apart from the error tree and the scan's reasons.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from syncagent.errors import Interrupted, UnsupportedFileError
from syncagent.walk import LINK, not_regular

if TYPE_CHECKING:
    from syncagent.pan123.hashing import FileDigest

__all__ = ["READ_PIECE", "LocalFile", "open_below"]

READ_PIECE = 1 << 20  # hashing reads 1 MiB at a time
_STOP_EVERY = 64  # pieces between checks for a shutdown while hashing (64 MiB)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


class LocalFile:
    """An open regular file: read it only through this object (or its :attr:`fd`).

    :param fd: the descriptor (owned: closed by :meth:`close`).
    :param path: its path, for messages only.
    """

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path
        self.digest: FileDigest | None = None  # the slice MD5s, when md5() hashed them

    def stat(self) -> os.stat_result:
        """``fstat`` of the descriptor: the file read, not whatever the path holds now."""
        return os.fstat(self.fd)

    def md5(self, stopped: Callable[[], bool] | None = None, slice_size: int = 0) -> str:
        """Lower-case hex MD5 of the whole file, read with ``pread`` from offset 0.

        :param stopped: asked every 64 MiB; once true, hashing ends with
            :class:`~syncagent.errors.Interrupted` (a shutdown does not wait for a big file).
        :param slice_size: also hash the slices of this size in the same read (a file that
            goes up in slices, see :mod:`syncagent.pan123.hashing`); they are kept in
            :attr:`digest` for the upload.
        """
        if slice_size:
            # loaded only for a big file, which the client is about to send anyway
            from syncagent.pan123.hashing import digest_fd

            try:
                self.digest = digest_fd(self.fd, slice_size, stopped)
            except Interrupted:
                raise Interrupted(f"hashing {self.path} stopped by the shutdown") from None
            return self.digest.md5
        digest = hashlib.md5()
        offset = 0
        pieces = 0
        while piece := os.pread(self.fd, READ_PIECE, offset):
            digest.update(piece)
            offset += len(piece)
            pieces += 1
            if stopped is not None and pieces % _STOP_EVERY == 0 and stopped():
                raise Interrupted(f"hashing {self.path} stopped by the shutdown")
        return digest.hexdigest()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> LocalFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_below(root: Path, rel_path: str) -> LocalFile:
    """Open the regular file ``rel_path`` below ``root`` for reading, following no link.

    :raises UnsupportedFileError: the entry is now a symbolic link, FIFO, socket or device
        (the reason is the one the scan gives such an entry).
    :raises FileNotFoundError: it is gone, is now a folder, or a folder on its way is no
        longer a folder (replaced by a link, say): the file is no longer in the root.
    :raises OSError: it cannot be read (permissions, I/O, a path too long).
    """
    path = root / rel_path
    *folders, name = rel_path.split("/")
    dir_fd = os.open(root, _DIR_FLAGS)
    try:
        for folder in folders:
            try:
                next_fd = os.open(folder, _DIR_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise FileNotFoundError(
                        errno.ENOENT, f"{folder!r} on its path is no longer a folder", str(path)
                    ) from exc
                raise
            os.close(dir_fd)
            dir_fd = next_fd
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link
                raise UnsupportedFileError(LINK, str(path)) from exc
            if exc.errno == errno.ENXIO:  # a socket (or a device without its driver)
                mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
                raise UnsupportedFileError(not_regular(mode), str(path)) from exc
            raise
    finally:
        os.close(dir_fd)
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if stat.S_ISREG(mode):
        return LocalFile(fd, path)
    os.close(fd)
    if stat.S_ISDIR(mode):
        raise FileNotFoundError(errno.ENOENT, "it is a folder now", str(path))
    raise UnsupportedFileError(not_regular(mode), str(path))
