"""Hashing a file in one read: its whole MD5 and, in the same pass, the MD5 of each slice.

A chunked upload needs the whole file's MD5 (the ``etag`` of V2 create) and each slice's MD5
(``sliceMD5``). Reading the file once for the first and once more per slice for the second
costs a second pass over the disk or page cache for every big file; here each piece read is fed
to both digests. The slice size 123pan answers is only known after create, so the slices are
cut at the size it has always answered (:data:`SLICE_HINT`); an uploader told another size
hashes its slices itself.

Stdlib only, apart from the error tree.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from syncagent.errors import Interrupted

__all__ = ["READ_PIECE", "SLICE_HINT", "FileDigest", "digest_fd"]

READ_PIECE = 1 << 20  # 1 MiB per read
SLICE_HINT = 16 << 20  # the sliceSize 123pan answers V2 create with
_STOP_EVERY = 64  # pieces between checks for a shutdown (64 MiB)


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

    :param slice_size: also hash each slice of this size in the same read (0: do not).
    :param stopped: asked every 64 pieces; once true, hashing ends with
        :class:`~syncagent.errors.Interrupted` (a shutdown does not wait for a big file).
    """
    whole = hashlib.md5()
    slices: list[str] = []
    part = hashlib.md5() if slice_size else None
    in_part = 0
    offset = 0
    pieces = 0
    while piece := os.pread(fd, piece_size, offset):
        whole.update(piece)
        offset += len(piece)
        if part is not None:
            view = memoryview(piece)
            while view:
                take = min(len(view), slice_size - in_part)
                part.update(view[:take])
                in_part += take
                view = view[take:]
                if in_part == slice_size:
                    slices.append(part.hexdigest())
                    part, in_part = hashlib.md5(), 0
        pieces += 1
        if stopped is not None and pieces % _STOP_EVERY == 0 and stopped():
            raise Interrupted("hashing stopped by the shutdown")
    if part is not None and in_part:
        slices.append(part.hexdigest())
    return FileDigest(whole.hexdigest(), offset, slice_size, tuple(slices))
