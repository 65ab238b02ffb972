"""``syncagent db rebuild``: a new ledger made from what 123pan holds.

For a ledger that is corrupt or lost. The old SQLite file (and its journals) is kept aside as
``<name>.corrupt-<time>``, never deleted; another database has its rows cleared. Then, per
root: the local tree is scanned, the root's remote folder listed, and each local file whose
123pan path holds a file of the same size and MD5 is adopted (:mod:`syncagent.adopt`):
recorded done with that fileID. Nothing is uploaded; the next pass sends the rest.

The remote listing is the source of what is current. The root's cloud catalog
(:mod:`syncagent.catalog`) is read for what the listing cannot tell: the previous versions kept
under ``.syncagent/versions`` and the local path each stood for. Those still on 123pan get
their ledger records back (:func:`versions_from_catalog`), so retention still prunes them and
the next catalog still lists them (without this, the first pass after a rebuild published a
catalog that had forgotten every version).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from syncagent.binding import Account
from syncagent.config import RootConfig, SyncConfig
from syncagent.errors import LedgerError
from syncagent.ignore import IgnoreRules
from syncagent.ledger import Ledger, repo
from syncagent.planner import plan
from syncagent.reconcile import Reconciler
from syncagent.scanner import ScanJob, default_helpers, sqlite_file

if TYPE_CHECKING:
    from syncagent.pan123 import Pan123Client

__all__ = ["RootRebuilt", "clear_rows", "rebuild_ledger", "set_aside"]

log = logging.getLogger("syncagent")


@dataclass(frozen=True)
class RootRebuilt:
    root: RootConfig
    adopted: int  # recorded done: 123pan holds the same bytes
    to_upload: int  # the next pass sends these
    hashed: int
    versions: int = 0  # previous versions recorded again from the cloud catalog


def set_aside(ledger_url: str, now: float | None = None) -> Path | None:
    """Move an SQLite ledger and its journals aside (``.corrupt-<time>``); the new name of
    the main file, or None when there was none (or the ledger is not an SQLite file)."""
    path = sqlite_file(ledger_url)
    if path is None:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    main = Path(path)
    kept = None
    for suffix in ("", "-wal", "-shm", "-journal"):
        src = Path(str(main) + suffix)
        if src.exists():
            dst = Path(f"{main}.corrupt-{stamp}{suffix}")
            try:
                os.replace(src, dst)
            except OSError as exc:
                raise LedgerError(f"cannot move the old ledger {src} aside: {exc}") from exc
            kept = kept or dst
    return kept


def clear_rows(ledger: Ledger) -> None:
    """A ledger that is not a file (PostgreSQL): forget this host's roots and their rows.

    A fleet shares the ledger: the other hosts' roots, files and passes stay as they are
    (a rebuild on one host must not make every other host upload everything again).
    Without a host (``ledger.host_id`` None) every row goes, as before hosts existed.
    """
    from sqlalchemy import text

    with ledger.write() as conn:
        if ledger.host_id is None:
            for table in ("upload_slices", "upload_sessions", "remote_dirs", "files", "roots"):
                conn.execute(text(f"DELETE FROM {table}"))
            conn.execute(text("DELETE FROM kv WHERE key LIKE 'version.%'"))  # by old root IDs
            return
        mine = "SELECT id FROM roots WHERE host_id = :host"
        for (root_id,) in conn.execute(text(mine), {"host": ledger.host_id}).fetchall():
            conn.execute(text("DELETE FROM kv WHERE key LIKE :k"), {"k": f"version.{root_id}.%"})
        for table in ("remote_dirs", "files"):
            conn.execute(
                text(f"DELETE FROM {table} WHERE root_id IN ({mine})"), {"host": ledger.host_id}
            )
        conn.execute(text("DELETE FROM roots WHERE host_id = :host"), {"host": ledger.host_id})


def rebuild_ledger(
    config: SyncConfig,
    ledger: Ledger,
    client: Callable[[], Pan123Client],
    account: Account | None,
) -> list[RootRebuilt]:
    """Fill an empty ledger from the remote: adopt what matches, per root."""
    checks = Reconciler(ledger, client, account, workers=config.workers)
    out = []
    for root in config.roots:
        root_id, _ = repo.ensure_root(ledger, str(root.local), root.remote, root.mode)
        checks.before_scan(root, root_id, None)  # binds the (empty) root to the account
        job = ScanJob(
            root.local,
            IgnoreRules.for_root(root.local, root.ignore, own=config.own_paths),
            helpers=default_helpers(),
        )
        try:
            found = job.result()
            entries, skips = found.entries, found.skips
        finally:
            job.close()
        planned = plan(entries, skips, {}, names=config.names, now=time.time())
        pass_id = repo.start_pass(ledger)
        remote_id, adoption = checks.resolve(root, root_id, planned.uploads, pass_id)
        versions = versions_from_catalog(client(), ledger, root_id, remote_id)
        repo.finish_pass(ledger, pass_id, uploaded=0, failed=0, bytes_sent=0, result="rebuilt")
        out.append(
            RootRebuilt(root, len(adoption.adopted), len(adoption.rest), adoption.hashed, versions)
        )
        log.info(
            "%s: ledger rebuilt: %d adopted, %d to upload, %d versions from the catalog",
            root.local,
            out[-1].adopted,
            out[-1].to_upload,
            versions,
        )
    return out


def versions_from_catalog(
    client: Pan123Client, ledger: Ledger, root_id: int, remote_root: int
) -> int:
    """Record again the previous versions the root's newest cloud catalog lists and 123pan
    still holds (not trashed); how many. No catalog (or none readable): 0."""
    from syncagent.catalog.remote import fetch
    from syncagent.versions import VERSIONS_DIR, Kept, save

    fetched = fetch(client, remote_root)
    if fetched is None:
        return 0
    prefix = VERSIONS_DIR + "/"
    listed = [
        e
        for e in fetched.versions
        if e.file_id and e.md5 and e.remote and e.remote.startswith(prefix)
    ]
    ids = [e.file_id for e in listed if e.file_id]
    alive = {f.file_id for f in client.infos(ids) if not f.trashed}
    count = 0
    for e in listed:
        if e.file_id not in alive or e.file_id is None or e.md5 is None or e.remote is None:
            continue
        remote_rel, _, name = e.remote[len(prefix) :].rpartition("/")
        save(
            ledger,
            Kept(
                root_id, e.file_id, e.path, remote_rel, name, e.size, e.md5, e.mtime_ns or 0,
                e.superseded or 0.0, done=True,
            ),
        )  # fmt: skip
        count += 1
    return count
