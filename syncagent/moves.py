"""Carrying out a pass's changes to the remote tree before its uploads: moves and renames,
and replacing an entry whose kind changed; and the ledger rows following them.

A candidate move is first confirmed: unless its ctime shows the inode untouched, the file is
hashed and moved only if its MD5 is the one recorded (an inode reused by a new file with the
same size and mtime must be uploaded, not "moved"). A folder whose files all moved together
is moved (and renamed) in one call; other files are moved in one call per destination folder
(up to 100 IDs, the endpoint's maximum), then renamed one by one. Whatever 123pan refuses comes
back as an upload, so a refused move costs bytes, never a file. Fatal errors (credentials,
quota) propagate.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from syncagent.errors import RemoteError
from syncagent.ledger import Ledger, repo
from syncagent.model import FolderMove, LocalEntry, Move, Upload
from syncagent.replaced import Replacements

if TYPE_CHECKING:
    from syncagent.pan123 import Pan123Client

__all__ = ["MOVE_BATCH", "RemoteMover", "find_dir", "local_md5"]

log = logging.getLogger("syncagent")

MOVE_BATCH = 100  # file IDs per move call (its documented maximum)
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def local_md5(path: Path, entry: LocalEntry) -> str | None:
    """The MD5 of ``path`` if it is still the regular file scanned as ``entry`` (same dev,
    inode, size and mtime, read through one descriptor), else None."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
        ) != (entry.dev, entry.inode, entry.size, entry.mtime_ns):
            return None
        digest = hashlib.md5()
        while piece := os.read(fd, 1 << 20):
            digest.update(piece)
        return digest.hexdigest()
    except OSError:
        return None
    finally:
        os.close(fd)


def find_dir(client: Pan123Client, remote_root: int, rel: str) -> int | None:
    """The ID of an existing remote folder below ``remote_root``, found by listing (never
    created)."""
    folder = remote_root
    for name in [p for p in rel.split("/") if p]:
        match = [i for i in client.list_folder(folder) if i.is_folder and i.name == name]
        if not match:
            return None
        folder = match[0].file_id
    return folder


class RemoteMover:
    """Moves of one root in one pass; ``moved`` counts the files moved so far, ``hashed`` the
    files read to confirm a move, and ``moved_from`` holds the old paths actually moved."""

    def __init__(
        self,
        client: Pan123Client,
        ledger: Ledger,
        root_id: int,
        remote_root: int,
        pass_id: int,
        local_root: Path,
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._root_id = root_id
        self._remote_root = remote_root
        self._pass_id = pass_id
        self._local_root = local_root
        self.moved = 0
        self.hashed = 0
        self.moved_from: set[str] = set()

    def confirm(self, moves: list[Move]) -> tuple[list[Move], list[Upload]]:
        """Moves whose content is confirmed, and uploads for the rest (with their MD5 when
        it was read, so it is not read again)."""
        good: list[Move] = []
        uploads: list[Upload] = []
        for m in moves:
            if m.confirmed:
                good.append(m)
                continue
            md5 = local_md5(self._local_root / m.entry.rel_path, m.entry)
            self.hashed += md5 is not None
            if md5 == m.md5:
                good.append(m)
                continue
            log.info(
                "%s has the identity of %s but %s; uploading it",
                m.entry.rel_path,
                m.old_rel,
                "other content" if md5 else "it changed",
            )
            uploads.append(Upload(m.entry, m.new_remote, "new", md5))
        return good, uploads

    def folder(self, fm: FolderMove) -> list[Upload]:
        """Move/rename one remote folder; on any refusal (or a file whose content is not
        confirmed) fall back to per-file moves."""
        good, uploads = self.confirm(list(fm.files))
        if uploads:
            return uploads + self._files(good)
        old_parent, _, old_name = fm.old_remote_prefix.rpartition("/")
        new_parent, _, new_name = fm.new_remote_prefix.rpartition("/")
        client = self._client
        try:
            folder_id = self._find_dir(fm.old_remote_prefix)
            if folder_id is None:
                return self._files(good)
            if new_parent != old_parent:
                client.move([folder_id], client.ensure_dir(self._remote_root, new_parent))
            if new_name != old_name:
                client.rename(folder_id, new_name)
        except RemoteError as exc:
            if exc.fatal:
                raise
            log.info("cannot move folder %s on 123pan (%s); moving its files", fm.old_prefix, exc)
            return self._files(good)
        client.dirs.flush(self._remote_root, fm.old_remote_prefix)
        client.dirs.flush(self._remote_root, fm.new_remote_prefix)
        self._record(good)
        log.info(
            "moved folder %s -> %s on 123pan (%d files, no upload)",
            fm.old_prefix,
            fm.new_prefix,
            len(fm.files),
        )
        return []

    def files(self, moves: list[Move]) -> list[Upload]:
        """Move/rename files remotely; the ones not confirmed or refused come back as
        uploads."""
        good, uploads = self.confirm(moves)
        return uploads + self._files(good)

    def _files(self, moves: list[Move]) -> list[Upload]:
        fallback: list[Upload] = []
        by_folder: defaultdict[str, list[Move]] = defaultdict(list)
        in_place: list[Move] = []
        for m in moves:
            old_dir = m.old_remote.rpartition("/")[0]
            new_dir = m.new_remote.rpartition("/")[0]
            (by_folder[new_dir] if new_dir != old_dir else in_place).append(m)
        there: list[Move] = []
        for new_dir, group in by_folder.items():
            for start in range(0, len(group), MOVE_BATCH):
                batch = group[start : start + MOVE_BATCH]
                moved, refused = self._move(batch, new_dir)
                there += moved
                fallback += refused
        done: list[Move] = []
        try:
            for m in [*in_place, *there]:
                new_name = m.new_remote.rpartition("/")[2]
                if new_name != m.old_remote.rpartition("/")[2]:
                    try:
                        self._client.rename(m.remote_id, new_name)
                    except RemoteError as exc:
                        if exc.fatal:
                            raise
                        log.info("cannot rename %s on 123pan (%s); uploading it", m.old_rel, exc)
                        fallback.append(Upload(m.entry, m.new_remote, "new", m.md5))
                        continue
                done.append(m)
                log.info("moved %s -> %s on 123pan (no upload)", m.old_rel, m.entry.rel_path)
        finally:  # what moved is recorded, even when a fatal error stops the rest
            self._record(done)
        return fallback

    def _move(self, batch: list[Move], new_dir: str) -> tuple[list[Move], list[Upload]]:
        """Move files into one folder: the batch in one call; if 123pan refuses it (one
        name clash refuses all), each file alone, and those refused become uploads."""
        client = self._client
        try:
            client.move([m.remote_id for m in batch], client.ensure_dir(self._remote_root, new_dir))
            return batch, []
        except RemoteError as exc:
            if exc.fatal:
                raise
            if len(batch) == 1:
                log.info("cannot move %s on 123pan (%s); uploading it", batch[0].old_rel, exc)
                m = batch[0]
                return [], [Upload(m.entry, m.new_remote, "new", m.md5)]
        moved: list[Move] = []
        refused: list[Upload] = []
        for m in batch:
            ok, up = self._move([m], new_dir)
            moved += ok
            refused += up
        return moved, refused

    def replace(self, rep: Replacements) -> None:
        """Retire remote entries of the other kind (a file where a folder must go, or the
        reverse) and forget their rows. A refusal is logged: the uploads then fail with their
        reason and the next pass tries again."""
        ids = [remote_id for _, remote_id in rep.files]
        try:
            for path in rep.folders:
                folder_id = self._find_dir(path)
                if folder_id is not None:
                    ids.append(folder_id)
            if ids:
                self._retire(ids)
        except RemoteError as exc:
            if exc.fatal:
                raise
            log.warning("cannot replace entries of another kind on 123pan: %s", exc)
            return
        for path in [*rep.folders, *(p for p, _ in rep.files)]:
            self._client.dirs.flush(self._remote_root, path)
        repo.forget_many(self._ledger, self._root_id, sorted(rep.rows))
        for path in rep.folders:
            log.info("replaced folder %s on 123pan: a file of that name took its place", path)
        for rel, _ in rep.files:
            log.info("replaced file %s on 123pan: a folder of that name took its place", rel)

    def _retire(self, ids: list[int]) -> None:
        """Take replaced remote entries out of the way: to the recycle bin for now.

        The hook for versions: keeping the old entry aside (moved, not trashed) goes here.
        """
        self._client.trash(ids)

    def _find_dir(self, rel: str) -> int | None:
        return find_dir(self._client, self._remote_root, rel)

    def _record(self, moves: list[Move]) -> None:
        """The ledger rows of moved files follow them to their new paths (one transaction)."""
        repo.record_moves(
            self._ledger,
            self._root_id,
            [
                (m.old_rel, repo.Done(self._root_id, m.entry, m.md5, m.remote_id, m.new_remote))
                for m in moves
            ],
            self._pass_id,
        )
        self.moved += len(moves)
        self.moved_from.update(m.old_rel for m in moves)
