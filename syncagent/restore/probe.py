"""What is on disk where a restore would write: one :class:`~syncagent.restore.plan.Local`
per entry. Never follows a link: a link (or a file) where a folder of the path should be
makes the entry ``blocked``, so nothing is ever written through it to outside the target.
A regular file of the entry's size is hashed, so an identical one is kept without
downloading anything.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from syncagent.catalog.format import Entry
from syncagent.restore.plan import Local

__all__ = ["Prober", "file_md5"]


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        while piece := f.read(1 << 20):
            digest.update(piece)
    return digest.hexdigest()


class Prober:
    """Looks at ``dest`` (the restore's target folder, which must be a real folder)."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self._folders: dict[str, str | None] = {"": None}  # rel dir -> why blocked / None

    def _blocked(self, rel_dir: str) -> str | None:
        """Why nothing may be written in ``rel_dir`` (None: fine, or it does not exist yet)."""
        if rel_dir in self._folders:
            return self._folders[rel_dir]
        parent = rel_dir.rsplit("/", 1)[0] if "/" in rel_dir else ""
        why = self._blocked(parent)
        if why is None:
            try:
                st = os.lstat(self.dest / rel_dir)
            except FileNotFoundError:
                st = None
            except OSError as exc:
                why = f"{rel_dir} cannot be examined: {exc.strerror}"
                st = None
            if st is not None and stat.S_ISLNK(st.st_mode):
                why = f"{rel_dir} is a link on disk: nothing is written through it"
            elif st is not None and not stat.S_ISDIR(st.st_mode):
                why = f"{rel_dir} is a file on disk, not a folder"
        self._folders[rel_dir] = why
        return why

    def forget(self, rel_dir: str) -> None:
        """``rel_dir`` changed (made or replaced): look again next time."""
        for key in [k for k in self._folders if k == rel_dir or k.startswith(rel_dir + "/")]:
            del self._folders[key]

    def look(self, entry: Entry) -> Local:
        rel_dir = entry.path.rsplit("/", 1)[0] if "/" in entry.path else ""
        why = self._blocked(rel_dir)
        if why is not None:
            return Local("blocked", why=why)
        path = self.dest / entry.path
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return Local("missing")
        except OSError as exc:
            return Local("blocked", why=f"cannot be examined: {exc.strerror}")
        if stat.S_ISDIR(st.st_mode):
            return Local("dir")
        if stat.S_ISLNK(st.st_mode):
            return Local("symlink", target=os.fsencode(os.readlink(path)))
        if not stat.S_ISREG(st.st_mode):
            return Local("other")
        md5 = None
        if entry.kind == "file" and st.st_size == entry.size:
            try:
                md5 = file_md5(path)
            except OSError as exc:
                return Local("blocked", why=f"cannot be read: {exc.strerror}")
        return Local("file", size=st.st_size, md5=md5)
