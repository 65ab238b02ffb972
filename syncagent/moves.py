"""Carrying out a pass's moves and renames on 123pan, and the ledger rows following them.

A folder whose files all moved together is moved (and renamed) in one call; anything else
goes file by file. Whatever 123pan refuses comes back as an upload, so a refused move costs
bytes, never a file. Fatal errors (credentials, quota) propagate.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from syncagent.errors import RemoteError
from syncagent.ledger import Ledger, repo
from syncagent.model import FolderMove, Move, Upload

if TYPE_CHECKING:
    from syncagent.pan123 import Pan123Client

__all__ = ["RemoteMover"]

log = logging.getLogger("syncagent")


class RemoteMover:
    """Moves of one root in one pass; ``moved`` counts the files moved so far."""

    def __init__(
        self, client: Pan123Client, ledger: Ledger, root_id: int, remote_root: int, pass_id: int
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._root_id = root_id
        self._remote_root = remote_root
        self._pass_id = pass_id
        self.moved = 0

    def folder(self, fm: FolderMove) -> list[Upload]:
        """Move/rename one remote folder; on any refusal fall back to per-file moves."""
        old_parent, _, old_name = fm.old_remote_prefix.rpartition("/")
        new_parent, _, new_name = fm.new_remote_prefix.rpartition("/")
        client = self._client
        try:
            folder_id = self._find_dir(fm.old_remote_prefix)
            if folder_id is None:
                return self.files(list(fm.files))
            if new_parent != old_parent:
                client.move([folder_id], client.ensure_dir(self._remote_root, new_parent))
            if new_name != old_name:
                client.rename(folder_id, new_name)
        except RemoteError as exc:
            if exc.fatal:
                raise
            log.info("cannot move folder %s on 123pan (%s); moving its files", fm.old_prefix, exc)
            return self.files(list(fm.files))
        client.dirs.flush(self._remote_root, fm.old_remote_prefix)
        client.dirs.flush(self._remote_root, fm.new_remote_prefix)
        self._record(list(fm.files))
        log.info(
            "moved folder %s -> %s on 123pan (%d files, no upload)",
            fm.old_prefix,
            fm.new_prefix,
            len(fm.files),
        )
        return []

    def files(self, moves: list[Move]) -> list[Upload]:
        """Move/rename files remotely; the ones 123pan refuses are returned as uploads."""
        fallback: list[Upload] = []
        client = self._client
        for m in moves:
            old_dir, _, old_name = m.old_remote.rpartition("/")
            new_dir, _, new_name = m.new_remote.rpartition("/")
            try:
                if new_dir != old_dir:
                    client.move([m.remote_id], client.ensure_dir(self._remote_root, new_dir))
                if new_name != old_name:
                    client.rename(m.remote_id, new_name)
            except RemoteError as exc:
                if exc.fatal:
                    raise
                log.info("cannot move %s on 123pan (%s); uploading it", m.old_rel, exc)
                fallback.append(Upload(m.entry, m.new_remote, "new", m.md5))
                continue
            self._record([m])
            log.info("moved %s -> %s on 123pan (no upload)", m.old_rel, m.entry.rel_path)
        return fallback

    def _find_dir(self, rel: str) -> int | None:
        """The ID of an existing remote folder, found by listing (never created)."""
        folder = self._remote_root
        for name in [p for p in rel.split("/") if p]:
            listing = self._client.list_folder(folder)
            match = [i for i in listing if i.is_folder and i.name == name]
            if not match:
                return None
            folder = match[0].file_id
        return folder

    def _record(self, moves: list[Move]) -> None:
        """The ledger rows of moved files follow them to their new paths."""
        for m in moves:
            done = repo.Done(self._root_id, m.entry, m.md5, m.remote_id, m.new_remote)
            repo.record_move(self._ledger, self._root_id, m.old_rel, done, self._pass_id)
        self.moved += len(moves)
