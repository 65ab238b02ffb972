"""What a root's catalog says: an lstat walk of the root joined with the ledger's rows.

The scan (``walk.py``) keeps only what the ledger needs: regular files' stat facts, and a
reason for everything else. A catalog also needs folders (empty ones included), modes, and
link targets, so it walks the root once more, with the same ignore rules, never following
a link: this runs only after a pass that changed something, never on a no-op pass.

Each regular file takes its content facts from its ledger row: a row recorded ``done`` gives
the size, mtime, MD5 and fileID of the copy in the cloud (even when the local file changed
since and its new upload failed); a 0-byte file needs nothing from the cloud; any other file
is listed with its state (``failed``, ``pending``, ``skipped``) and no fileID. Files the
cloud still holds that are gone locally (archive mode keeps them) are listed from their rows,
mode unknown.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from syncagent.catalog.format import EMPTY_MD5, Entry
from syncagent.ignore import IgnoreRules
from syncagent.ledger import Ledger, repo
from syncagent.model import FileState

__all__ = ["build_entries", "local_entries"]

Row = tuple[str, int, int, "str | None", "int | None", "str | None", str]


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def local_entries(
    root: Path, ignore: IgnoreRules
) -> dict[str, tuple[os.stat_result, bytes | None]]:
    """rel_path -> (lstat, link target) of every folder, regular file and link under
    ``root`` that is not ignored (FIFOs, sockets, devices and non-UTF-8 names left out)."""
    found: dict[str, tuple[os.stat_result, bytes | None]] = {}
    folders = [("", os.fsencode(root))]
    while folders:
        rel_dir, abs_dir = folders.pop()
        try:
            it = os.scandir(abs_dir)
        except OSError:
            continue
        with it:
            for de in it:
                name = os.fsdecode(de.name)
                if not _utf8(name):
                    continue
                rel = f"{rel_dir}/{name}" if rel_dir else name
                try:
                    st = de.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if not ignore.folder(rel):
                        found[rel] = (st, None)
                        folders.append((rel, de.path))
                elif ignore.file(rel):
                    continue
                elif stat.S_ISREG(st.st_mode):
                    found[rel] = (st, None)
                elif stat.S_ISLNK(st.st_mode):
                    try:
                        found[rel] = (st, os.readlink(de.path))
                    except OSError:
                        continue
    return found


def build_entries(ledger: Ledger, root_id: int, root: Path, ignore: IgnoreRules) -> list[Entry]:
    """The catalog entries of one root (sorted by path)."""
    rows: dict[str, Row] = {r[0]: r for r in repo.catalog_rows(ledger, root_id)}
    entries: list[Entry] = []
    for rel, (st, target) in local_entries(root, ignore).items():
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            entries.append(Entry(rel, "dir", mtime_ns=st.st_mtime_ns, mode=mode))
        elif target is not None:
            entries.append(Entry(rel, "symlink", mtime_ns=st.st_mtime_ns, target=target))
        else:
            entries.append(_file(rel, st, mode, rows.pop(rel, None)))
    for rel, row in rows.items():  # gone locally, still in the cloud (archive, move modes)
        if row[6] in (FileState.DONE, FileState.GONE) and row[4] is not None:
            entries.append(Entry(rel, "file", row[1], row[3], row[2], None, row[4], row[5] or rel))
    entries.sort(key=lambda e: e.path)
    return entries


def _file(rel: str, st: os.stat_result, mode: int, row: Row | None) -> Entry:
    if row is not None and row[6] == FileState.DONE and row[4] is not None:
        _, size, mtime_ns, md5, file_id, remote, _ = row
        return Entry(rel, "file", size, md5, mtime_ns, mode, file_id, remote or rel)
    if st.st_size == 0:
        return Entry(rel, "file", 0, EMPTY_MD5, st.st_mtime_ns, mode)
    state = FileState.PENDING.value if row is None or row[6] == "new" else row[6]
    return Entry(rel, "file", st.st_size, None, st.st_mtime_ns, mode, state=state)
