"""Remote folder path -> fileID, filled by mkdir or by listing, shared by all threads.

``ensure(parent_id, "a/b")`` walks the path, creating what is missing with mkdir; a folder
that already exists (mkdir answers "同名文件夹") is found by listing its parent, not treated as
an error. ``flush(parent_id, prefix)`` forgets a subtree when an ID turns out to be gone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from syncagent.errors import RemoteConflictError, RemoteNotFoundError
from syncagent.pan123.models import RemoteFile

__all__ = ["DirCache"]

Mkdir = Callable[[str, int], int]
ListAll = Callable[[int], list[RemoteFile]]


class DirCache:
    """Thread-safe cache of remote folder IDs keyed by (root folder ID, relative path).

    :param mkdir: ``(name, parent_id) -> new folder id``.
    :param list_all: ``parent_id -> every item of the folder`` (all pages).
    """

    def __init__(self, mkdir: Mkdir, list_all: ListAll) -> None:
        self._mkdir = mkdir
        self._list_all = list_all
        self._ids: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()

    def get(self, root_id: int, rel_dir: str) -> int | None:
        with self._lock:
            return self._ids.get((root_id, rel_dir.strip("/")))

    def put(self, root_id: int, rel_dir: str, folder_id: int) -> None:
        with self._lock:
            self._ids[(root_id, rel_dir.strip("/"))] = folder_id

    def flush(self, root_id: int, prefix: str = "") -> None:
        """Forget ``prefix`` and everything below it."""
        prefix = prefix.strip("/")
        with self._lock:
            for key in [
                k
                for k in self._ids
                if k[0] == root_id
                and (not prefix or k[1] == prefix or k[1].startswith(prefix + "/"))
            ]:
                del self._ids[key]

    def ensure(self, root_id: int, rel_dir: str, *, _again: bool = True) -> int:
        """The folder ID of ``rel_dir`` under ``root_id``, creating folders as needed."""
        rel_dir = rel_dir.strip("/")
        if not rel_dir:
            return root_id
        cached = self.get(root_id, rel_dir)
        if cached is not None:
            return cached
        parent_rel, _, name = rel_dir.rpartition("/")
        parent_id = self.ensure(root_id, parent_rel, _again=_again)
        # One creator at a time: two threads needing the same folder must not race mkdir.
        with self._lock:
            cached = self._ids.get((root_id, rel_dir))
            if cached is not None:
                return cached
            try:
                folder_id = self._create_or_find(name, parent_id)
            except RemoteNotFoundError:
                if not (_again and parent_rel):
                    raise
            else:
                self._ids[(root_id, rel_dir)] = folder_id
                return folder_id
        # The parent's cached ID is gone, and so may be any ancestor (deleting "a" removes
        # "a/b"): forget the whole top-level subtree and resolve the path again, once.
        self.flush(root_id, parent_rel.split("/", 1)[0])
        return self.ensure(root_id, rel_dir, _again=False)

    def _create_or_find(self, name: str, parent_id: int) -> int:
        try:
            return self._mkdir(name, parent_id)
        except RemoteConflictError:
            for item in self._list_all(parent_id):
                if item.name == name and item.is_folder and not item.trashed:
                    return item.file_id
            raise RemoteConflictError(
                f"a file (not a folder) named {name!r} is in the way"
            ) from None
