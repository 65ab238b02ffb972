"""Comparing the ledger with what 123pan really holds.

For each root, the remote tree below its folder is listed (recycle bin left out) and every file
the ledger calls done is looked up by its remote path: missing, or a different size or etag, is
a problem. ``repair`` marks those files pending, so the next pass uploads them again.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncagent.catalog import CATALOG_DIR
from syncagent.config import SyncConfig
from syncagent.ledger import Ledger, repo
from syncagent.pan123 import Pan123Client, RemoteFile

__all__ = ["Mismatch", "verify"]


@dataclass(frozen=True)
class Mismatch:
    root: str
    rel_path: str
    problem: str


def _walk(client: Pan123Client, folder_id: int) -> dict[str, RemoteFile]:
    """Every file below ``folder_id`` by relative path (iterative, breadth first)."""
    found: dict[str, RemoteFile] = {}
    queue: list[tuple[str, int]] = [("", folder_id)]
    while queue:
        prefix, fid = queue.pop(0)
        for item in client.list_folder(fid):
            rel = f"{prefix}/{item.name}" if prefix else item.name
            if item.is_folder:
                if not (prefix == "" and item.name == CATALOG_DIR):  # not a user folder
                    queue.append((rel, item.file_id))
            else:
                found[rel] = item
    return found


def verify(
    config: SyncConfig, ledger: Ledger, client: Pan123Client, *, repair: bool = False
) -> tuple[int, list[Mismatch]]:
    """(files checked, problems found); with ``repair`` the problem files become pending."""
    checked = 0
    problems: list[Mismatch] = []
    for root in config.roots:
        root_id, remote_id = repo.ensure_root(ledger, str(root.local), root.remote, root.mode)
        done = repo.done_files(ledger, root_id)
        if not done:
            continue
        if remote_id is None:
            remote_id = client.ensure_dir(0, root.remote.strip("/"))
        remote = _walk(client, remote_id)
        bad: list[str] = []
        for rel_path, remote_name, size, md5 in done:
            checked += 1
            item = remote.get(remote_name or rel_path)
            if item is None:
                problem = "missing on 123pan"
            elif item.size != size or item.etag != (md5 or "").lower():
                problem = (
                    f"differs on 123pan ({item.size} bytes, etag {item.etag}; "
                    f"expected {size} bytes, MD5 {md5})"
                )
            else:
                continue
            problems.append(Mismatch(str(root.local), rel_path, problem))
            bad.append(rel_path)
        if repair and bad:
            repo.mark_pending(ledger, root_id, bad)
    return checked, problems
