"""Reading what is there: the local tree as the CLI can see it, and the emulator's tree and
stored bytes straight from its data dir (its SQLite catalog, read-only, and its blob files),
so that nothing of syncagent's client stands between the check and the truth.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncagent.emulator import Emulator

from .invariants import LocalFile, RemoteFile
from .plan import Node, Tree

__all__ = ["RemoteTree", "Tap", "disk_model", "local_files", "read_remote", "stored_bytes"]

FOLDER = 1  # the catalog's type of a folder


def _open_to_cli(mode: int) -> bool:
    """A folder the CLI (owner permissions, no capability to override them) can list and
    enter."""
    return mode & 0o500 == 0o500


def local_files(root: Path) -> tuple[dict[str, LocalFile], set[str]]:
    """Every regular file below ``root`` (never following links) with whether the CLI can
    read it, and every folder."""
    files: dict[str, LocalFile] = {}
    dirs: set[str] = set()
    stack: list[tuple[str, Path, bool]] = [("", root, _open_to_cli(root.lstat().st_mode))]
    while stack:
        rel_dir, path, open_above = stack.pop()
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                dirs.add(rel)
                stack.append((rel, Path(entry.path), open_above and _open_to_cli(st.st_mode)))
            elif stat.S_ISREG(st.st_mode):
                data = Path(entry.path).read_bytes()  # the test process may read anything
                files[rel] = LocalFile(data, open_above and bool(st.st_mode & 0o400))
    return files, dirs


def disk_model(root: Path) -> Tree:
    """The tree on disk in the terms of the plan's model (for checking the driver itself)."""
    tree = Tree()
    tree.nodes[""].mode = stat.S_IMODE(root.lstat().st_mode)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                tree.nodes[rel] = Node("dir", mode=mode)
            elif stat.S_ISREG(st.st_mode):
                tree.nodes[rel] = Node("file", path.read_bytes(), mode)
            elif stat.S_ISLNK(st.st_mode):
                tree.nodes[rel] = Node("link", target=os.readlink(path))
            elif stat.S_ISFIFO(st.st_mode):
                tree.nodes[rel] = Node("fifo")
    return tree


@dataclass
class RemoteTree:
    files: dict[str, RemoteFile]  # live files below the remote root, by relative path
    dirs: set[str]
    declared_md5s: set[str]  # every MD5 in the catalog: files (trashed too) and uploads


def _catalog(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{data_dir / 'emulator.sqlite3'}?mode=ro", uri=True)


def read_remote(data_dir: Path, remote_root: str) -> RemoteTree:
    """The live tree below ``remote_root`` (an absolute path), with each file's stored bytes."""
    with contextlib.closing(_catalog(data_dir)) as db:
        rows = db.execute(
            "SELECT id, parent_id, name, type, size, md5 FROM entries WHERE trashed = 0"
        ).fetchall()
        md5s = {str(r[0]) for r in db.execute("SELECT md5 FROM entries WHERE md5 != ''")}
        md5s |= {str(r[0]) for r in db.execute("SELECT md5 FROM preuploads")}
    children: dict[int, list[tuple[int, str, int, int, str]]] = {}
    for fid, parent, name, kind, size, md5 in rows:
        children.setdefault(int(parent), []).append((int(fid), str(name), kind, size, md5))
    current = 0
    for part in remote_root.strip("/").split("/"):
        found = [c for c in children.get(current, []) if c[1] == part and c[2] == FOLDER]
        if not found:
            return RemoteTree({}, set(), md5s)
        current = found[0][0]
    files: dict[str, RemoteFile] = {}
    dirs: set[str] = set()
    stack = [("", current)]
    while stack:
        prefix, parent = stack.pop()
        for fid, name, kind, size, md5 in children.get(parent, []):
            rel = prefix + name
            if kind == FOLDER:
                dirs.add(rel)
                stack.append((rel + "/", fid))
            else:
                blob = data_dir / "blobs" / md5[:2] / f"{md5}-{size}"
                content = blob.read_bytes() if blob.is_file() else None
                files[rel] = RemoteFile(int(size), str(md5), content)
    return RemoteTree(files, dirs, md5s)


@dataclass
class Tap:
    """Watches every body the emulator receives (single-step files and slices) for markers,
    so that bytes sent and then refused or discarded are seen too.

    Installed on one running emulator's blob store (an instance attribute, nothing global):
    each ``read`` the store makes is looked at, with the tail of the last piece kept so that a
    marker split between two pieces is found.
    """

    markers: list[bytes]
    hits: list[str] = field(default_factory=list)

    def install(self, emu: Emulator) -> None:
        blobs = emu.core.blobs
        receive, write_slice = blobs.receive, blobs.write_slice

        def tapped_receive(read: Callable[[int], bytes], limit: int) -> Any:
            return receive(self._wrap(read, "a request body"), limit)

        def tapped_slice(pre: str, offset: int, read: Callable[[int], bytes], limit: int) -> Any:
            return write_slice(pre, offset, self._wrap(read, f"a slice of upload {pre}"), limit)

        blobs.receive = tapped_receive  # type: ignore[method-assign]
        blobs.write_slice = tapped_slice  # type: ignore[method-assign,assignment]

    def _wrap(self, read: Callable[[int], bytes], what: str) -> Callable[[int], bytes]:
        keep = max(len(m) for m in self.markers) - 1
        tail = b""
        seen = False

        def tapped(n: int) -> bytes:
            nonlocal tail, seen
            piece = read(n)
            window = tail + piece
            if not seen and any(m in window for m in self.markers):
                seen = True
                self.hits.append(what)
            tail = window[-keep:] if keep else b""
            return piece

        return tapped


def stored_bytes(data_dir: Path) -> dict[str, bytes]:
    """Every file the emulator keeps content in (blobs, incoming bodies, partial uploads)."""
    out: dict[str, bytes] = {}
    for sub in ("blobs", "incoming", "uploads"):
        for path in sorted((data_dir / sub).rglob("*")):
            with contextlib.suppress(FileNotFoundError):  # a body being renamed away
                if path.is_file():
                    out[path.relative_to(data_dir).as_posix()] = path.read_bytes()
    return out
