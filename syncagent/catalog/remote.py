"""The catalog objects on 123pan: publish a new one, fetch the newest readable one.

Publishing never edits in place: the new object is uploaded under a new name (checked with
one ``detail`` call: size and etag, and the folder it landed in), and only then are the older
objects moved to the recycle bin. A crash before the switch leaves the old catalog and maybe
the new one; names sort by time, and a reader takes the newest one that decodes whole, so it
sees either the old catalog or the new one, never a torn one.

Deltas (:mod:`syncagent.catalog.delta`) are ``delta-<time>-<digest>.jsonl.gz`` beside the
full ``catalog-*`` objects. Publishing one trashes every older object *except its base*; a
reader takes the newest object of either kind that yields a checked tree: a delta whose
base is gone, or that is torn, or whose merge does not give the recorded digest, is passed
over for the next older object (an older delta, the base itself, an older full catalog).
Readers from before deltas match ``catalog-*`` only, so they read the base: an older tree,
never a wrong one.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from syncagent.catalog import CATALOG_DIR
from syncagent.catalog.delta import decode_delta, merge_checked
from syncagent.catalog.format import Entry, Header, decode_all
from syncagent.errors import CatalogError, IntegrityError

if TYPE_CHECKING:
    from syncagent.pan123 import Pan123Client, RemoteFile

__all__ = ["Fetched", "fetch", "find_folder", "is_delta", "object_name", "publish"]

log = logging.getLogger("syncagent")

NAME = re.compile(r"(catalog|delta)-(\d{8}T\d{12})-[0-9a-f]{8}\.jsonl\.gz")


def object_name(digest: str, now: float, *, delta: bool = False) -> str:
    """``catalog-<UTC time to the microsecond>-<digest>.jsonl.gz`` (``delta-…`` for a
    delta): later sorts last by time."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now % 1 * 1e6):06d}"
    return f"{'delta' if delta else 'catalog'}-{stamp}-{digest[:8]}.jsonl.gz"


def _order(name: str) -> tuple[str, int]:
    """Sort key: time, then a full catalog after a delta of the same microsecond."""
    m = NAME.fullmatch(name)
    assert m is not None
    return (m.group(2), 1 if m.group(1) == "catalog" else 0)


def is_delta(name: str) -> bool:
    return name.startswith("delta-")


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
        key=lambda f: _order(f.name),
    )


def publish(
    client: Pan123Client, root_folder_id: int, data: bytes, name: str, *, keep: str | None = None
) -> int:
    """Upload ``data`` as ``.syncagent/<name>`` under the root, then trash older catalogs
    (all but ``keep``: the base a new delta needs).

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
    mine = _order(name)
    objects = _objects(client, folder)
    older = [f.file_id for f in objects if _order(f.name) < mine and f.name != keep]
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
    """The newest catalog of a root that reads whole, a delta merged onto its base (None:
    no readable catalog)."""
    folder = _child_folder(client, root_folder_id, CATALOG_DIR)
    if folder is None:
        return None
    objects = _objects(client, folder)
    by_name = {f.name: f for f in objects}
    fulls: dict[str, tuple[Header, list[Entry], list[Entry]] | None] = {}
    with tempfile.TemporaryDirectory(prefix="syncagent-catalog-") as tmp:

        def read(item: RemoteFile) -> bytes:
            target = Path(tmp) / item.name
            # read once from a temporary folder: no fsync needed
            client.download(item.file_id, target, size=item.size, md5=item.etag, fsync=False)
            data = target.read_bytes()
            target.unlink()
            return data

        def full(item: RemoteFile) -> tuple[Header, list[Entry], list[Entry]] | None:
            if item.name not in fulls:
                try:
                    fulls[item.name] = decode_all(read(item))
                except (CatalogError, IntegrityError) as exc:
                    log.warning("catalog %s cannot be used (%s)", item.name, exc)
                    fulls[item.name] = None
            return fulls[item.name]

        for item in reversed(objects):
            if not is_delta(item.name):
                got = full(item)
                if got is None:
                    continue
                return Fetched(got[0], got[1], item.name, got[2])
            try:
                delta = decode_delta(read(item))
                base_item = by_name.get(delta.base)
                if base_item is None or is_delta(delta.base):
                    raise CatalogError(f"its base {delta.base} is gone")
                base = full(base_item)
                if base is None:
                    raise CatalogError(f"its base {delta.base} cannot be read")
                merged = merge_checked([*base[1], *base[2]], delta)
            except (CatalogError, IntegrityError) as exc:
                log.warning("catalog delta %s cannot be used (%s)", item.name, exc)
                continue
            current = [e for e in merged if e.superseded is None]
            versions = [e for e in merged if e.superseded is not None]
            header = replace(delta.header, entries=len(merged), version=base[0].version)
            return Fetched(header, current, item.name, versions)
    return None
