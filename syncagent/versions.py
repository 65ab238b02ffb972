"""Keeping previous versions of changed files, and pruning them (retention).

Before a changed file's new content replaces its remote copy, the copy is kept aside: renamed
to ``<UTC time>~<name>`` in place (one call), then moved into
``<remote root>/.syncagent/versions/<remote rel path>/`` (one call), and only then is the new
content uploaded (``duplicate=2`` then finds no file of that name to replace). A move and a
rename keep the fileID, so the record, written to the ledger's ``kv`` table (key
``version.<root id>.<fileID>``) *before* the first remote call, names a complete copy at every
step. A rerun after a crash finds the record: still ``pending``, the step is finished from
where 123pan has the file (``detail``); ``done``, nothing is repeated. See
docs/architecture.md ("Versions") for the whole argument.

Retention (``versions.keep``: newest N per path; ``versions.keep_days``) drops the record
first, then puts the copy in the recycle bin (never a hard delete).
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from syncagent.catalog import CATALOG_DIR
from syncagent.catalog.format import Entry
from syncagent.config import RootConfig
from syncagent.errors import RemoteError
from syncagent.ledger import Ledger, repo

if TYPE_CHECKING:
    from syncagent.pan123 import Pan123Client

__all__ = [
    "VERSIONS_DIR",
    "Kept",
    "catalog_entries",
    "keep_aside",
    "load",
    "orphans",
    "prune",
    "prune_due",
    "put_back",
    "save",
    "to_prune",
]

log = logging.getLogger("syncagent")

KEY_PREFIX = "version."
DUE_PREFIX = "version_due."  # + root id: when keep_days next drops a version (epoch s)
VERSIONS_DIR = f"{CATALOG_DIR}/versions"


@dataclass(frozen=True)
class Kept:
    """One previous version of a file, as recorded in the ledger."""

    root_id: int
    file_id: int
    path: str  # original local rel path
    remote_rel: str  # the remote rel path of the file it was (names mapped)
    name: str  # its name in the versions folder
    size: int
    md5: str
    mtime_ns: int
    at: float  # when it was superseded (kept aside)
    done: bool = False
    # why it was kept: "changed" (new content replaced it), "deleted" (mirror mode: deleted
    # locally), "displaced" (a folder of its name took its place, or it was below a folder
    # a file of that name replaced); see syncagent.set_aside
    why: str = "changed"

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX}{self.root_id}.{self.file_id}"

    @property
    def folder(self) -> str:
        """Its folder below the remote root."""
        return f"{VERSIONS_DIR}/{self.remote_rel}"


def version_name(at: float, remote_rel: str) -> str:
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{stamp}~{remote_rel.rsplit('/', 1)[-1]}"


def save(ledger: Ledger, kept: Kept) -> None:
    """Write a version's record (its ``kv`` row)."""
    value = {k: v for k, v in asdict(kept).items() if k not in ("root_id", "file_id")}
    repo.set_value(ledger, kept.key, json.dumps(value, ensure_ascii=False))


_save = save


def load(ledger: Ledger, root_id: int) -> list[Kept]:
    """Every version recorded for a root, oldest first."""
    prefix = f"{KEY_PREFIX}{root_id}."
    out = []
    for key, value in repo.get_values(ledger, prefix).items():
        out.append(Kept(root_id, int(key[len(prefix) :]), **json.loads(value)))
    out.sort(key=lambda k: (k.path, k.at))
    return out


def orphans(kept: Iterable[Kept], current: Mapping[str, int | None]) -> list[Kept]:
    """Copies kept aside whose replacement never reached 123pan: the ledger still names the
    kept copy as the path's current one (``current``: rel path -> its recorded fileID), as
    after a crash between keeping it aside and the upload, or while it was kept aside (the
    record still pending: no pass of this root is under way, so no one finishes it). A copy
    set aside because its file was deleted or displaced is never one (a crash before its row
    was forgotten leaves the same row, and the rerun finishes that step). Pure."""
    return [k for k in kept if k.why == "changed" and current.get(k.path) == k.file_id]


def put_back(client: Pan123Client, ledger: Ledger, remote_root: int, kept: Kept) -> None:
    """Return a kept copy to its path when its replacement cannot be sent (the file can no
    longer be read): the cloud then holds the last content it had at that path again, as
    before the pass that kept it aside. Idempotent: each step is checked with ``detail``,
    and the record goes last."""
    parent_rel, _, name = kept.remote_rel.rpartition("/")
    parent = client.ensure_dir(remote_root, parent_rel) if parent_rel else remote_root
    if any(
        f.name == name and not f.trashed and f.file_id != kept.file_id
        for f in client.list_folder(parent)
    ):
        # the new content did arrive (the crash came before it was recorded): the kept copy
        # is a version like any other, and the next pass that reads the file verifies it
        return
    now = client.detail(kept.file_id)
    if now.trashed:  # put in the recycle bin meanwhile (the web app): nothing to put back
        repo.delete_values(ledger, [kept.key])
        return
    if now.parent_id != parent:
        client.move([kept.file_id], parent)
    if now.name != name:
        client.rename(kept.file_id, name)
    repo.restore_done(ledger, kept.root_id, kept.path, kept.file_id)
    repo.delete_values(ledger, [kept.key])
    log.warning(
        "%s: its new content could not be sent; the previous copy is back in its place",
        kept.path,
    )


def keep_aside(
    client: Pan123Client,
    ledger: Ledger,
    remote_root: int,
    root_id: int,
    file_id: int,
    path: str,
    remote_rel: str,
    size: int,
    md5: str,
    mtime_ns: int,
    why: str = "changed",
) -> Kept | None:
    """Keep the remote copy ``file_id`` (at ``remote_rel``) as a version; idempotent.

    None when 123pan no longer holds that copy (deleted or trashed in the web app): there is
    nothing to keep, the record is dropped and the upload goes on. Any other failure raises
    (the upload does not run; the next pass finishes the step)."""
    key = f"{KEY_PREFIX}{root_id}.{file_id}"
    try:
        return _keep_aside(
            client, ledger, remote_root, root_id, file_id, path, remote_rel, size, md5, mtime_ns,
            why,
        )  # fmt: skip
    except RemoteError:
        if any(f.file_id == file_id and not f.trashed for f in client.infos([file_id])):
            raise
        repo.delete_values(ledger, [key])
        log.warning("%s: its previous copy is no longer on 123pan; no version kept", path)
        return None


def _keep_aside(
    client: Pan123Client,
    ledger: Ledger,
    remote_root: int,
    root_id: int,
    file_id: int,
    path: str,
    remote_rel: str,
    size: int,
    md5: str,
    mtime_ns: int,
    why: str,
) -> Kept:
    raw = repo.get_value(ledger, f"{KEY_PREFIX}{root_id}.{file_id}")
    if raw is not None:
        kept = Kept(root_id, file_id, **json.loads(raw))
        if kept.done:
            return kept
        where = client.detail(file_id)  # a crash left it half-way: finish from where it is
        if where.trashed:
            raise RemoteError("in the recycle bin")
        renamed = where.name == kept.name
    else:
        now = time.time()
        kept = Kept(
            root_id, file_id, path, remote_rel, version_name(now, remote_rel), size, md5,
            mtime_ns, now, why=why,
        )  # fmt: skip
        _save(ledger, kept)  # recorded before any remote call: it names a complete copy
        renamed = False
    folder_id = client.ensure_dir(remote_root, kept.folder)
    if raw is not None and where.parent_id == folder_id:
        if not renamed:
            client.rename(file_id, kept.name)
    else:
        if not renamed:
            client.rename(file_id, kept.name)  # free the name in place: no clash anywhere
        client.move([file_id], folder_id)
    kept = replace(kept, done=True)
    _save(ledger, kept)
    log.info("kept the previous version of %s as %s/%s", path, kept.folder, kept.name)
    return kept


def to_prune(
    kept: Iterable[Kept], keep: int | None, keep_days: float | None, now: float
) -> list[Kept]:
    """The versions retention drops (pure): beyond the newest ``keep`` of a path, or
    superseded more than ``keep_days`` ago."""
    by_path: defaultdict[str, list[Kept]] = defaultdict(list)
    for k in kept:
        by_path[k.path].append(k)
    out: list[Kept] = []
    for versions in by_path.values():
        versions.sort(key=lambda k: k.at, reverse=True)
        for n, k in enumerate(versions):
            if (keep is not None and n >= keep) or (
                keep_days is not None and now - k.at > keep_days * 86400.0
            ):
                out.append(k)
    return out


def prune_due(ledger: Ledger, roots: Iterable[tuple[RootConfig, int]], now: float) -> set[int]:
    """The roots (ids) among ``roots`` whose ``keep_days`` drops a version by ``now``,
    though their pass changed nothing: one ``kv`` read of a handful of keys, none when no
    root sets ``keep_days`` (a no-op pass must not load the version records)."""
    aging = {root_id for root, root_id in roots if root.versions and root.versions_keep_days}
    if not aging:
        return set()
    due = repo.get_values(ledger, DUE_PREFIX)
    return {
        root_id
        for root_id in aging
        if (when := due.get(f"{DUE_PREFIX}{root_id}")) is not None and float(when) <= now
    }


def _next_due(ledger: Ledger, root_id: int, kept: list[Kept], keep_days: float | None) -> None:
    """Record when ``keep_days`` next drops one of ``kept`` (for :func:`prune_due`)."""
    key = f"{DUE_PREFIX}{root_id}"
    if keep_days is None or not kept:
        repo.delete_values(ledger, [key])
    else:
        repo.set_value(ledger, key, repr(min(k.at for k in kept) + keep_days * 86400.0))


def prune(
    client: Callable[[], Pan123Client], ledger: Ledger, root: RootConfig, root_id: int
) -> int:
    """Apply a root's retention: records dropped first, then copies to the recycle bin
    (``client`` is made only when something is dropped). Records when ``keep_days`` next
    drops a version, so that a pass that changes nothing prunes then (:func:`prune_due`)."""
    if not root.versions or (root.versions_keep is None and root.versions_keep_days is None):
        return 0
    kept = load(ledger, root_id)
    drop = to_prune(kept, root.versions_keep, root.versions_keep_days, time.time())
    dropped = {k.key for k in drop}
    _next_due(ledger, root_id, [k for k in kept if k.key not in dropped], root.versions_keep_days)
    if not drop:
        return 0
    repo.delete_values(ledger, [k.key for k in drop])
    try:
        client().trash([k.file_id for k in drop])
    except RemoteError as exc:
        log.warning("%s: %d old versions not trashed: %s", root.local, len(drop), exc)
        return 0
    log.info("%s: %d old versions went to the 123pan recycle bin", root.local, len(drop))
    return len(drop)


def catalog_entries(ledger: Ledger, root_id: int) -> list[Entry]:
    """The catalog lines of a root's versions."""
    return [
        Entry(
            k.path,
            "file",
            k.size,
            k.md5,
            k.mtime_ns,
            file_id=k.file_id,
            remote=f"{k.folder}/{k.name}",
            superseded=k.at,
        )
        for k in load(ledger, root_id)
    ]
