"""Keeping each root's catalog current, at the end of a pass.

A root whose pass changed something gets its entries rebuilt; when their digest differs from
the one last published (kept in the ledger's ``kv`` table, key ``catalog.<root id>``), a new
catalog is published. A no-op pass costs one ``kv`` query: nothing is walked or uploaded,
unless the last publication of a root failed (value ``stale``), which is tried again. (A
ledger from before catalogs existed gets one with its next change, not on a no-op pass.)
A failure is logged and never fails the pass.

Deltas (:mod:`syncagent.catalog.delta`): the last full catalog published for a root is kept
in the state dir (``<state_dir>/catalog/<root id>/``: the object's bytes, and ``base.json``
with its name and fileID). When it is at least ``DELTA_MIN_BYTES`` compressed (the
environment variable ``SYNCAGENT_CATALOG_DELTA_MIN_BYTES`` overrides it), a changed root
gets a delta against it, provided 123pan still holds that base (one ``detail`` call: not
trashed, same size and etag) and the delta stays under ``COMPACT_FRACTION`` of it;
otherwise a new full catalog (which then becomes the base). The local copy is written
only after its object is published and checked, so a crash leaves at worst a local base
that 123pan no longer holds, which the ``detail`` check turns into a full publication.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from syncagent.config import RootConfig, SyncConfig
from syncagent.errors import RemoteError, SyncAgentError
from syncagent.ledger import Ledger, repo

if TYPE_CHECKING:
    from syncagent.catalog.format import Entry, Header

if TYPE_CHECKING:
    from syncagent.pan123 import Pan123Client

__all__ = ["STALE", "CatalogKeeper"]

log = logging.getLogger("syncagent")

STALE = "stale"
KEY_PREFIX = "catalog."


def key(root_id: int) -> str:
    return f"{KEY_PREFIX}{root_id}"


MIN_BYTES_ENV = "SYNCAGENT_CATALOG_DELTA_MIN_BYTES"


def delta_min_bytes() -> int:
    from syncagent.catalog.delta import DELTA_MIN_BYTES

    raw = os.environ.get(MIN_BYTES_ENV, "")
    return int(raw) if raw.isdigit() else DELTA_MIN_BYTES


@dataclass(frozen=True)
class Base:
    """The last full catalog published for a root, as kept in the state dir."""

    name: str
    file_id: int
    blob: bytes


class BaseStore:
    """``<state_dir>/catalog/<root id>/``: the base object's bytes and ``base.json``."""

    def __init__(self, state_dir: Path, root_id: int) -> None:
        self.folder = state_dir / "catalog" / str(root_id)

    def load(self) -> Base | None:
        try:
            meta = json.loads((self.folder / "base.json").read_text(encoding="utf-8"))
            name, file_id = str(meta["name"]), int(meta["file_id"])
            blob = (self.folder / name).read_bytes()
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if hashlib.md5(blob).hexdigest() != meta.get("md5"):
            return None
        return Base(name, file_id, blob)

    def save(self, base: Base) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _atomic_write(self.folder / base.name, base.blob)
        meta = {"name": base.name, "file_id": base.file_id}
        meta["md5"] = hashlib.md5(base.blob).hexdigest()
        _atomic_write(self.folder / "base.json", json.dumps(meta).encode())
        self._drop_others(keep=base.name)

    def clear(self) -> None:
        self._drop_others(keep=None)

    def _drop_others(self, keep: str | None) -> None:
        if not self.folder.is_dir():
            return
        for path in self.folder.iterdir():
            if path.name != keep and (keep is None or path.name != "base.json"):
                path.unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class CatalogKeeper:
    """Publishes catalogs for one configuration; ``client`` is made only when needed."""

    def __init__(
        self, config: SyncConfig, ledger: Ledger, client: Callable[[], Pan123Client]
    ) -> None:
        self.config = config
        self.ledger = ledger
        self._client = client
        self.published: list[str] = []  # object names, for the caller's report
        self.published_bytes = 0  # their total size

    def after_pass(self, roots: Sequence[tuple[RootConfig, int, bool]]) -> None:
        """``roots``: (root, root id, whether its pass changed anything)."""
        if not roots:
            return
        known = repo.get_values(self.ledger, KEY_PREFIX)
        for root, root_id, changed in roots:
            last = known.get(key(root_id))
            if not changed and last != STALE:
                continue
            try:
                self._refresh(root, root_id, last)
            except (RemoteError, OSError, SyncAgentError) as exc:
                log.warning("the catalog of %s was not published: %s", root.local, exc)
                repo.set_value(self.ledger, key(root_id), STALE)

    def _refresh(self, root: RootConfig, root_id: int, last: str | None) -> None:
        # loaded here: a no-op pass never needs them
        from syncagent.catalog.build import build_entries
        from syncagent.catalog.format import Header, digest, encode, entry_lines, host_name
        from syncagent.catalog.remote import object_name, publish
        from syncagent.ignore import IgnoreRules

        ignore = IgnoreRules.for_root(root.local, root.ignore, own=self.config.own_paths)
        from syncagent.versions import catalog_entries

        entries = [
            *build_entries(self.ledger, root_id, root.local, ignore),
            *catalog_entries(self.ledger, root_id),
        ]
        lines = entry_lines(entries)
        new = digest(lines)
        if new == last:
            return
        client = self._client()
        _, remote_id = repo.ensure_root(self.ledger, str(root.local), root.remote, root.mode)
        if remote_id is None:
            remote_id = client.ensure_dir(0, root.remote.strip("/"))
            repo.set_root_remote(self.ledger, root_id, remote_id)
        now = time.time()
        header = Header(host_name(), str(root.local), root.remote, now)
        store = BaseStore(self.config.state_dir, root_id)
        delta = self._delta(client, store.load(), header, entries)
        if delta is not None:
            base_name, blob = delta
            name = object_name(new, now, delta=True)
            publish(client, remote_id, blob, name, keep=base_name)
        else:
            blob = encode(header, lines)
            name = object_name(new, now)
            file_id = publish(client, remote_id, blob, name)
            if len(blob) >= delta_min_bytes():
                store.save(Base(name, file_id, blob))
            else:
                store.clear()
        repo.set_value(self.ledger, key(root_id), new)
        self.published.append(name)
        self.published_bytes += len(blob)

    def _delta(
        self, client: Pan123Client, base: Base | None, header: Header, entries: list[Entry]
    ) -> tuple[str, bytes] | None:
        """(base name, delta object) when a delta should be published, else None."""
        from syncagent.catalog.delta import diff, encode_delta, use_delta
        from syncagent.catalog.format import decode_all

        min_bytes = delta_min_bytes()
        if base is None or len(base.blob) < min_bytes:
            return None
        try:
            _, current, versions = decode_all(base.blob)
        except SyncAgentError:
            return None
        changes = diff([*current, *versions], entries)
        blob = encode_delta(header, base.name, changes.digest, changes.changed, changes.removed)
        if not use_delta(len(base.blob), len(blob), min_bytes):
            log.info("catalog delta of %d bytes: compacting into a full catalog", len(blob))
            return None
        try:
            stored = client.detail(base.file_id)
        except RemoteError as exc:
            log.info("catalog base %s not found (%s): publishing a full catalog", base.name, exc)
            return None
        if stored.trashed or stored.name != base.name or stored.size != len(base.blob):
            log.info("catalog base %s is gone: publishing a full catalog", base.name)
            return None
        if stored.etag.lower() != hashlib.md5(base.blob).hexdigest():
            return None
        return base.name, blob
