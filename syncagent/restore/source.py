"""Where a restore learns what was backed up: the root's catalog, or else the remote listing.

The catalog (:mod:`syncagent.catalog`) has everything: original names, modes, mtimes, empty
files and folders, links. Without one (never written, or deleted), the remote tree itself is
listed: its files and folders come back with the names syncagent mapped for 123pan mapped
back (``a：b.txt`` → ``a:b.txt``) wherever that makes no two names in a folder collide, and
without modes or mtimes, which 123pan does not keep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from syncagent.catalog import CATALOG_DIR
from syncagent.catalog.format import Entry, Header
from syncagent.catalog.remote import fetch, find_folder
from syncagent.errors import ConfigError
from syncagent.remote_names import FULL_WIDTH

if TYPE_CHECKING:
    from syncagent.pan123 import Pan123Client

__all__ = ["DEFAULT_PARENT", "Source", "load", "unmapped"]

DEFAULT_PARENT = "/syncagent"  # where `syncagent sync FOLDER` puts a folder without sync.yaml
_UNMAP = {ord(str(full)): code for code, full in FULL_WIDTH.items()}


@dataclass(frozen=True)
class Source:
    remote_root: str
    entries: list[Entry]
    origin: Literal["catalog", "listing"]
    header: Header | None = None
    catalog_name: str = ""
    versions: list[Entry] = field(default_factory=list)  # previous versions (catalog only)


def unmapped(names: list[str]) -> dict[str, str]:
    """Remote name -> local name for the items of one folder: full-width look-alikes mapped
    back, except where two items would end up with the same name (those keep theirs)."""
    back = {n: n.translate(_UNMAP) for n in names}
    taken: dict[str, int] = {}
    for n in names:
        taken[back[n]] = taken.get(back[n], 0) + 1
    return {n: back[n] if taken[back[n]] == 1 else n for n in names}


def listed(client: Pan123Client, folder_id: int) -> list[Entry]:
    """The remote tree below ``folder_id`` as entries (the catalog folder left out)."""
    entries: list[Entry] = []
    queue: list[tuple[str, str, int]] = [("", "", folder_id)]
    while queue:
        local_dir, remote_dir, fid = queue.pop()
        items = client.list_folder(fid)
        if not remote_dir:
            items = [i for i in items if not (i.is_folder and i.name == CATALOG_DIR)]
        names = unmapped([i.name for i in items])
        for item in items:
            local = f"{local_dir}/{names[item.name]}" if local_dir else names[item.name]
            remote = f"{remote_dir}/{item.name}" if remote_dir else item.name
            if item.is_folder:
                entries.append(Entry(local, "dir", remote=remote))
                queue.append((local, remote, item.file_id))
            else:
                entries.append(
                    Entry(local, "file", item.size, item.etag, file_id=item.file_id, remote=remote)
                )
    entries.sort(key=lambda e: e.path)
    return entries


def load(client: Pan123Client, remote_root: str) -> Source:
    """The entries of the root backed up to ``remote_root``: from its catalog if one reads
    whole, else from the listing. Raises ConfigError when the folder does not exist."""
    folder = find_folder(client, remote_root)
    if folder is None:
        raise ConfigError([f"--root: nothing is backed up at {remote_root} on 123pan"])
    got = fetch(client, folder)
    if got is not None:
        return Source(remote_root, got.entries, "catalog", got.header, got.name, got.versions)
    return Source(remote_root, listed(client, folder), "listing")


def root_folders(client: Pan123Client) -> list[str]:
    """The remote paths of the folders under ``/syncagent`` (the default layout)."""
    parent = find_folder(client, DEFAULT_PARENT)
    if parent is None:
        return []
    return sorted(f"{DEFAULT_PARENT}/{i.name}" for i in client.list_folder(parent) if i.is_folder)
