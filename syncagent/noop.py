"""The no-op ``sync`` without the ledger's libraries: deciding, from an SQLite ledger read
with the stdlib, that a pass would do nothing, and recording that pass.

Loading SQLAlchemy costs a no-op pass more CPU than walking 50,000 files. So ``sync``, once
its scans are started, asks :func:`quick_pass` first. It answers only when every root's
pass would provably do nothing; anything else, or any doubt, returns None and the pass runs
the full way (:mod:`syncagent.engine`), which reads the same facts again. The facts checked,
per root, are the ones the engine acts on before its own no-op short cut:

- the ledger is at this version's schema (else the full way migrates it);
- the root is known with the configured mode, and its rows are bound to this account and
  remote folder (else they are re-checked: :mod:`syncagent.reconcile`);
- no upload awaits verification (state ``uploaded``: the full way confirms it);
- no remembered problem reading the root, no hold or approval of the mass-change guard and
  no catalog left stale (``kv``: the full way clears or retries them);
- the root can be read and its scan matched every row not recorded gone.

Only with credentials (the embedded emulator starts in the full way) and not for a dry run
or ``--check-remote``. The pass is then recorded as the full way records one (a ``passes``
row, result ``ok``, the newest 100 kept).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from syncagent.binding import Account, Bound, binding_change
from syncagent.config import RootConfig, SyncConfig
from syncagent.host import host_name, mapped_config, read_host_id
from syncagent.scanner import ScanJob, root_problem, sqlite_file
from syncagent.walk import COUNT_ROWS

__all__ = ["SCHEMA_HEAD", "quick_pass"]

log = logging.getLogger("syncagent")

SCHEMA_HEAD = "0003"  # syncagent.ledger.SCHEMA_HEAD (a test keeps them equal)
BUSY_TIMEOUT = 10.0  # seconds to wait for another program's lock before going the full way
DUE_PREFIX = "version_due."  # syncagent.versions.DUE_PREFIX (a test keeps them equal)
KEPT_PASSES = 100  # as syncagent.ledger.repo.start_pass keeps


def quick_pass(config: SyncConfig, scans: Mapping[Path, ScanJob]) -> int | None:
    """The files found unchanged, when every root's pass would do nothing (the pass is
    then recorded); None: the pass must run the full way."""
    if config.credentials is None:
        return None
    host_id = read_host_id(config.state_dir)  # none yet: the full way registers the host
    if host_id is None:
        return None
    config = mapped_config(config, host_name(config))  # the folders this host backs up into
    path = sqlite_file(config.ledger_url)
    if path is None or not os.path.isfile(path):
        return None
    started = time.time()
    try:
        db = sqlite3.connect(
            f"file:{urllib.parse.quote(path)}?mode=rw",
            uri=True,
            timeout=BUSY_TIMEOUT,
            isolation_level=None,  # transactions opened here, explicitly
        )
    except sqlite3.Error:
        return None
    try:
        unchanged = _unchanged(db, config, scans, host_id)
        if unchanged is None:
            return None
        _record_pass(db, started, host_id)
    except (sqlite3.Error, UnicodeError, ValueError, TypeError) as exc:
        log.debug("no quick no-op check (%s); the pass runs the full way", exc)
        return None
    finally:
        db.close()
    log.info("nothing changed in %d files: pass recorded without loading the ledger", unchanged)
    return unchanged


def _unchanged(
    db: sqlite3.Connection, config: SyncConfig, scans: Mapping[Path, ScanJob], host_id: str
) -> int | None:
    if db.execute("SELECT version_num FROM alembic_version").fetchall() != [(SCHEMA_HEAD,)]:
        return None
    assert config.credentials is not None
    account = Account(config.api_base, config.credentials.client_id)
    now = time.time()
    checks: list[tuple[ScanJob, int]] = []
    for root in config.roots:
        job = scans.get(root.local)
        if job is None or root_problem(root.local) is not None:
            return None
        row = db.execute(
            "SELECT id, remote_path, mode, api_base, client_id, account_uid FROM roots "
            "WHERE local_path = ? AND host_id = ?",
            (str(root.local), host_id),
        ).fetchone()
        if row is None:
            return None
        root_id, remote_path, mode, api_base, client_id, uid = row
        if mode != root.mode:
            return None
        if binding_change(Bound(api_base, client_id, uid, remote_path), account, root.remote):
            return None
        if _kv_says_act(db, root, root_id, now):
            return None
        awaiting = db.execute(
            "SELECT count(*) FROM files WHERE state = 'uploaded' AND root_id = ?", (root_id,)
        ).fetchone()[0]
        if awaiting:
            return None
        rows = int(db.execute(COUNT_ROWS, (root_id, root_id)).fetchone()[0])
        checks.append((job, rows))
    unchanged = 0
    for job, rows in checks:  # the scans last: the ledger's answers need no walk
        if job.result().matched != rows:
            return None
        unchanged += rows
    return unchanged


def _kv_says_act(db: sqlite3.Connection, root: RootConfig, root_id: int, now: float) -> bool:
    """Whether the root's few ``kv`` keys ask the full pass to act: a root not read, a
    guard hold or approval, a stale catalog, or a version that ``keep_days`` drops by now.
    Read by key (the table also holds every version record: never read it whole)."""
    keys = {
        f"root_not_read:{root_id}": None,
        f"guard_hold:{root_id}": None,
        f"guard_approved:{root_id}": None,
        f"catalog.{root_id}": "stale",
    }
    due_key = f"{DUE_PREFIX}{root_id}"
    wanted = [*keys, due_key]
    marks = ",".join("?" * len(wanted))
    found = dict(db.execute(f"SELECT key, value FROM kv WHERE key IN ({marks})", wanted))
    for key, value in keys.items():
        if key in found and (value is None or found[key] == value):
            return True
    due = found.get(due_key)
    if due is None or not (root.versions and root.versions_keep_days):
        return False
    return float(due) <= now


def _record_pass(db: sqlite3.Connection, started: float, host_id: str) -> None:
    """The pass of this host (``repo.start_pass``/``finish_pass`` in one); the host seen."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "INSERT INTO passes (started_at, finished_at, uploaded, failed, bytes_sent, result, "
            "host_id) VALUES (?, ?, 0, 0, 0, 'ok', ?)",
            (started, time.time(), host_id),
        )
        db.execute("UPDATE hosts SET last_seen = ? WHERE id = ?", (started, host_id))
        db.execute(
            "DELETE FROM passes WHERE id IN (SELECT id FROM passes WHERE host_id = ? "
            "ORDER BY id DESC LIMIT -1 OFFSET ?)",
            (host_id, KEPT_PASSES),
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
