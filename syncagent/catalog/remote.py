"""The catalog objects on 123pan: publish a new one, fetch the newest readable one.

Publishing never edits in place: the new object is uploaded under a new name (checked with
one ``detail`` call: size and etag, and the folder it landed in), and only then are the older
objects moved to the recycle bin. A crash before the switch leaves the old catalog and maybe
the new one; names sort by time, and a reader takes the newest one that decodes whole, so it
sees either the old catalog or the new one, never a torn one.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from syncagent.catalog import CATALOG_DIR
from syncagent.catalog.format import Entry, Header, decode_all
from syncagent.errors import CatalogError, IntegrityError

if TYPE_CHECKING:
    from syncagent.pan123 import Pan123Client, RemoteFile

__all__ = ["Fetched", "fetch", "find_folder", "object_name", "publish"]

log = logging.getLogger("syncagent")

NAME = re.compile(r"catalog-\d{8}T\d{12}-[0-9a-f]{8}\.jsonl\.gz")


def object_name(digest: str, now: float) -> str:
    """``catalog-<UTC time to the microsecond>-<digest>.jsonl.gz``: later sorts last."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now % 1 * 1e6):06d}"
    return f"catalog-{stamp}-{digest[:8]}.jsonl.gz"


def _child_folder(client: Pan123Client, parent_id: int, name: str) -> int | None:
    for item in client.list_folder(parent_id):
        if item.is_folder and item.name == name:
            return item.file_id
    return None


def find_folder(client: Pan123Client, path: str) -> int | None:
    """The ID of an existing remote folder by absolute path (None: missing); creates nothing."""
    current = 0
    for part in [p for p in path.strip("/").split("/") if p]:
        found = _child_folder(client, current, part)
        if found is None:
            return None
        current = found
    return current


def _objects(client: Pan123Client, folder_id: int) -> list[RemoteFile]:
    return sorted(
        (f for f in client.list_folder(folder_id) if not f.is_folder and NAME.fullmatch(f.name)),
        key=lambda f: f.name,
    )


def publish(client: Pan123Client, root_folder_id: int, data: bytes, name: str) -> int:
    """Upload ``data`` as ``.syncagent/<name>`` under the root, then trash older catalogs.

    :returns: the new object's fileID.
    """
    with tempfile.TemporaryDirectory(prefix="syncagent-catalog-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        result = client.upload(path, root_folder_id, f"{CATALOG_DIR}/{name}", verify=False)
    # One detail call checks what was stored and names the folder it went to: no listing of
    # the root to find .syncagent/ (a round trip per page on a slow link).
    stored = client.detail(result.file_id)
    if (stored.size, stored.etag) != (result.size, result.md5):
        raise IntegrityError(
            f"catalog {name}: 123pan stored {stored.size} bytes with etag {stored.etag!r}, "
            f"not {result.size} bytes with MD5 {result.md5}",
            endpoint="api/v1/file/detail",
        )
    folder = stored.parent_id
    older = [f.file_id for f in _objects(client, folder) if f.name < name]
    if older:
        client.trash(older)
    log.info("catalog %s published (%d bytes); %d older trashed", name, len(data), len(older))
    return result.file_id


@dataclass(frozen=True)
class Fetched:
    header: Header
    entries: list[Entry]
    name: str
    versions: list[Entry] = field(default_factory=list)  # previous versions of files


def fetch(client: Pan123Client, root_folder_id: int) -> Fetched | None:
    """The newest catalog of a root that reads whole (None: no readable catalog)."""
    folder = _child_folder(client, root_folder_id, CATALOG_DIR)
    if folder is None:
        return None
    with tempfile.TemporaryDirectory(prefix="syncagent-catalog-") as tmp:
        for item in reversed(_objects(client, folder)):
            target = Path(tmp) / item.name
            try:
                # read once from a temporary folder: no fsync needed
                client.download(item.file_id, target, size=item.size, md5=item.etag, fsync=False)
                header, entries, versions = decode_all(target.read_bytes())
            except (CatalogError, IntegrityError) as exc:
                log.warning("catalog %s cannot be used (%s); trying an older one", item.name, exc)
                continue
            return Fetched(header, entries, item.name, versions)
    return None
