"""Checking what the ledger claims against what 123pan holds, a few calls at a time.

- :func:`folder_gone`: is a folder (a root's remote folder) trashed, deleted, or below a
  trashed folder? One ``detail`` call per level up to the drive's root (``detail`` has no
  QPS limit).
- :func:`check_claims`: of some rows that claim a remote copy (fileID, size, MD5), which
  are really there: one ``infos`` call per 100 files, then one ``detail`` per distinct parent
  folder on the way up to the root's folder (a file inside a trashed folder is not itself
  marked trashed). Used for uploads awaiting verification after a crash and for the
  periodic sample of done files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from syncagent.errors import RemoteNotFoundError
from syncagent.ledger.trust import Claim

if TYPE_CHECKING:
    from syncagent.pan123 import Pan123Client

__all__ = ["check_claims", "folder_gone"]

MAX_DEPTH = 256  # folder levels followed up to the drive's root


def folder_gone(client: Pan123Client, folder_id: int) -> str | None:
    """Why the folder is no longer usable ("deleted", "in the recycle bin"), or None."""
    fid = folder_id
    for _ in range(MAX_DEPTH):
        if fid == 0:
            return None
        try:
            item = client.detail(fid)
        except RemoteNotFoundError:
            return "deleted" if fid == folder_id else "deleted with a folder above it"
        if item.trashed:
            return (
                "in the recycle bin"
                if fid == folder_id
                else "in the recycle bin with a folder above it"
            )
        fid = item.parent_id
    return None


def check_claims(
    client: Pan123Client, claims: Sequence[Claim], root_folder: int
) -> tuple[list[Claim], list[tuple[Claim, str]]]:
    """(claims 123pan bears out, [(claim, what is wrong)]) for files below ``root_folder``."""
    if not claims:
        return [], []
    found = {f.file_id: f for f in client.infos([c.remote_id for c in claims])}
    alive: dict[int, bool] = {root_folder: True}

    def under_root(folder: int) -> bool:
        chain: list[int] = []
        fid = folder
        ok = False
        for _ in range(MAX_DEPTH):
            if fid in alive:
                ok = alive[fid]
                break
            if fid == 0:  # reached the drive's root without meeting the root's folder
                break
            chain.append(fid)
            try:
                item = client.detail(fid)
            except RemoteNotFoundError:
                break
            if item.trashed:
                break
            fid = item.parent_id
        for f in chain:
            alive[f] = ok
        return ok

    good: list[Claim] = []
    bad: list[tuple[Claim, str]] = []
    for c in claims:
        item = found.get(c.remote_id)
        if item is None:
            bad.append((c, "deleted on 123pan"))
        elif item.trashed:
            bad.append((c, "in the 123pan recycle bin"))
        elif (item.size, item.etag) != (c.size, (c.md5 or "").lower()):
            bad.append((c, f"differs on 123pan ({item.size} bytes, etag {item.etag})"))
        elif not under_root(item.parent_id):
            bad.append((c, "its 123pan folder was trashed, deleted or moved away"))
        else:
            good.append(c)
    return good, bad
