"""``syncagent db rebuild``: a new ledger made from what 123pan holds.

For a ledger that is corrupt or lost. The old SQLite file (and its journals) is kept aside as
``<name>.corrupt-<time>``, never deleted; another database has its rows cleared. Then, per
root: the local tree is scanned, the root's remote folder listed, and each local file whose
123pan path holds a file of the same size and MD5 is adopted (:mod:`syncagent.adopt`):
recorded done with that fileID. Nothing is uploaded; the next pass sends the rest.

The cloud catalog (the restore issue) is not read yet: the remote listing is the source.
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
            return
        mine = "SELECT id FROM roots WHERE host_id = :host"
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
        _, adoption = checks.resolve(root, root_id, planned.uploads, pass_id)
        repo.finish_pass(ledger, pass_id, uploaded=0, failed=0, bytes_sent=0, result="rebuilt")
        out.append(RootRebuilt(root, len(adoption.adopted), len(adoption.rest), adoption.hashed))
        log.info(
            "%s: ledger rebuilt: %d adopted, %d to upload",
            root.local,
            out[-1].adopted,
            out[-1].to_upload,
        )
    return out
