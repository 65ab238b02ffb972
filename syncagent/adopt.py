"""Adopting files 123pan already holds instead of sending them again.

When a root's remote folder is resolved afresh (a first run, another account, a changed
``remote:``, a folder re-created after it was trashed) or the ledger is rebuilt, the remote
tree below it is listed once. A planned upload whose 123pan path (names mapped by
:mod:`~syncagent.remote_names`) holds a file of the same size is a candidate: its local MD5
(recorded, or hashed now; only candidates are hashed) is compared with the remote etag, and a
match is *adopted*: recorded done with that fileID, no byte sent. Everything else is uploaded.

:func:`match` is pure; :func:`remote_tree` lists, :func:`adopt` hashes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from syncagent.catalog import CATALOG_DIR
from syncagent.model import LocalEntry, Upload

if TYPE_CHECKING:
    from syncagent.pan123 import Pan123Client, RemoteFile

__all__ = ["Adopted", "Adoption", "adopt", "match", "remote_tree"]


def remote_tree(client: Pan123Client, folder_id: int) -> dict[str, RemoteFile]:
    """Every file below ``folder_id`` (all pages, recycle bin left out) by its path relative
    to the folder, breadth first; one list call per 100 items of each folder. The root's
    cloud catalog (``.syncagent`` at the top) is not a user folder and is left out."""
    found: dict[str, RemoteFile] = {}
    queue: list[tuple[str, int]] = [("", folder_id)]
    while queue:
        prefix, fid = queue.pop(0)
        for item in client.list_folder(fid):
            rel = f"{prefix}/{item.name}" if prefix else item.name
            if item.is_folder:
                if not (prefix == "" and item.name == CATALOG_DIR):
                    queue.append((rel, item.file_id))
            else:
                found[rel] = item
    return found


def match(
    uploads: Iterable[Upload], remote: Mapping[str, RemoteFile]
) -> tuple[list[tuple[Upload, RemoteFile]], list[Upload]]:
    """(candidates: uploads whose 123pan path holds a file of the same size, the rest)."""
    candidates: list[tuple[Upload, RemoteFile]] = []
    rest: list[Upload] = []
    for u in uploads:
        item = remote.get(u.remote_rel)
        if item is not None and not item.is_folder and item.size == u.entry.size:
            candidates.append((u, item))
        else:
            rest.append(u)
    return candidates, rest


@dataclass(frozen=True)
class Adopted:
    """A local file found on 123pan with the same size and MD5."""

    upload: Upload
    entry: LocalEntry  # its stat facts when it was hashed
    md5: str
    remote: RemoteFile


@dataclass
class Adoption:
    adopted: list[Adopted] = field(default_factory=list)
    rest: list[Upload] = field(default_factory=list)  # to upload
    hashed: int = 0


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _local_md5(path: Path, upload: Upload) -> tuple[LocalEntry, str, bool] | None:
    """(stat facts, MD5, hashed now) of a file that held still while read; None otherwise
    (it changed, vanished or cannot be read: the upload path deals with it)."""
    try:
        st = os.stat(path, follow_symlinks=False)
        e = upload.entry
        entry = LocalEntry(
            e.rel_path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino
        )
        if upload.md5 and (st.st_size, st.st_mtime_ns, st.st_ino) == (e.size, e.mtime_ns, e.inode):
            return entry, upload.md5, False
        digest = hashlib.md5()
        with open(path, "rb") as f:
            while piece := f.read(1 << 20):
                digest.update(piece)
        if _identity(os.stat(path, follow_symlinks=False)) != _identity(st):
            return None
        return entry, digest.hexdigest(), True
    except OSError:
        return None


def adopt(
    local_root: Path,
    uploads: list[Upload],
    remote: Mapping[str, RemoteFile],
    *,
    workers: int = 4,
    stopped: Callable[[], bool] = lambda: False,
) -> Adoption:
    """Split ``uploads`` into files 123pan already holds (same path, size and MD5) and the
    rest. Only candidates of the right size are hashed (``workers`` at a time)."""
    candidates, rest = match(uploads, remote)
    result = Adoption(rest=rest)
    if not candidates:
        return result

    def check(
        pair: tuple[Upload, RemoteFile],
    ) -> tuple[Upload, RemoteFile, tuple[LocalEntry, str, bool] | None]:
        if stopped():
            return pair[0], pair[1], None
        return pair[0], pair[1], _local_md5(local_root / pair[0].entry.rel_path, pair[0])

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="adopt") as pool:
        for upload, item, found in pool.map(check, candidates):
            if found is None:
                result.rest.append(upload)
                continue
            entry, md5, hashed = found
            result.hashed += int(hashed)
            if md5 == item.etag and entry.size == item.size:
                result.adopted.append(Adopted(upload, entry, md5, item))
            else:
                # the local MD5 is kept, so the upload does not hash the file again
                same = (entry.size, entry.mtime_ns) == (upload.entry.size, upload.entry.mtime_ns)
                result.rest.append(
                    Upload(entry, upload.remote_rel, upload.why, md5) if same else upload
                )
    return result
