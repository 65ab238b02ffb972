"""The ledger's side of not trusting itself over the cloud: reads and writes of a root's
account binding, of rows whose remote copy turned out to be gone or unproven, and of uploads
awaiting verification.

A row leaves ``done`` (or ``uploaded``) for ``pending`` with its reason when what it claims
can no longer be believed: the root was bound to another account or remote folder, the remote
folder was trashed, or a check found its remote copy gone. A pending row whose local file is
unchanged keeps its MD5, so the next pass adopts a matching remote copy or re-sends the file
without hashing it again. Each change is one short transaction.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.engine import Connection

from syncagent.binding import Account, Bound
from syncagent.ledger import Ledger
from syncagent.model import FileState

__all__ = [
    "Claim",
    "awaiting_verification",
    "bind_root",
    "confirm",
    "get_cursor",
    "requeue",
    "reset_remote",
    "root_binding",
    "sample_done",
    "set_cursor",
]

_TRUSTED = (FileState.DONE.value, FileState.UPLOADED.value)


class Claim(NamedTuple):
    """A row's claim that 123pan holds a file: where, and with which size and MD5."""

    row_id: int
    rel_path: str
    remote_id: int
    size: int
    md5: str | None
    mtime_ns: int = 0  # the local file's, when the row was written
    inode: int = 0


def root_binding(ledger: Ledger, root_id: int) -> tuple[Bound, int, int]:
    """(the root's binding, 1 if it has file rows else 0, its rows awaiting verification),
    in one read (no count of all rows: this runs on every pass)."""
    with ledger.reading() as conn:
        row = conn.execute(
            text(
                "SELECT api_base, client_id, account_uid, remote_path, "
                "EXISTS (SELECT 1 FROM files WHERE root_id = :r), "
                "(SELECT count(*) FROM files WHERE root_id = :r AND state = :s) "
                "FROM roots WHERE id = :r"
            ),
            {"r": root_id, "s": FileState.UPLOADED.value},
        ).one()
    return Bound(row[0], row[1], row[2], row[3]), int(row[4]), int(row[5])


def _requeue_all(conn: Connection, root_id: int, reason: str) -> None:
    conn.execute(
        text(
            "UPDATE files SET state = :pending, remote_id = NULL, reason = :reason, "
            "verified_at = NULL WHERE root_id = :r AND state IN (:done, :uploaded)"
        ),
        {
            "pending": FileState.PENDING.value,
            "reason": reason,
            "r": root_id,
            "done": _TRUSTED[0],
            "uploaded": _TRUSTED[1],
        },
    )
    conn.execute(text("DELETE FROM remote_dirs WHERE root_id = :r"), {"r": root_id})


def bind_root(
    ledger: Ledger,
    root_id: int,
    account: Account,
    uid: int | None,
    remote_path: str,
    *,
    reason: str | None,
) -> None:
    """Bind the root to ``account`` and ``remote_path``; with a ``reason`` (rows made for
    something else), its done and uploaded rows become pending and its remote folder is
    resolved again. Resumable upload sessions of another account are forgotten."""
    with ledger.write() as conn:
        old = conn.execute(
            text("SELECT api_base, client_id FROM roots WHERE id = :r"), {"r": root_id}
        ).one()
        conn.execute(
            text(
                "UPDATE roots SET api_base = :api, client_id = :cid, account_uid = :uid, "
                "remote_path = :remote, remote_id = NULL WHERE id = :r"
            ),
            {
                "api": account.api_base,
                "cid": account.client_id,
                "uid": uid,
                "remote": remote_path,
                "r": root_id,
            },
        )
        if reason is not None:
            _requeue_all(conn, root_id, reason)
            if tuple(old) != (account.api_base, account.client_id):
                conn.execute(text("DELETE FROM upload_slices"))
                conn.execute(text("DELETE FROM upload_sessions"))


def reset_remote(ledger: Ledger, root_id: int, reason: str) -> None:
    """The root's remote folder is gone: every row that claimed a remote copy becomes
    pending, and the folder is resolved (created) again."""
    with ledger.write() as conn:
        conn.execute(text("UPDATE roots SET remote_id = NULL WHERE id = :r"), {"r": root_id})
        _requeue_all(conn, root_id, reason)


def requeue(ledger: Ledger, root_id: int, rel_paths: list[str], reason: str) -> None:
    """These files' remote copies are gone or differ: upload them again."""
    if not rel_paths:
        return
    with ledger.write() as conn:
        conn.execute(
            text(
                "UPDATE files SET state = :pending, remote_id = NULL, reason = :reason, "
                "verified_at = NULL WHERE root_id = :r AND rel_path = :p"
            ),
            [
                {"pending": FileState.PENDING.value, "reason": reason, "r": root_id, "p": p}
                for p in rel_paths
            ],
        )


def confirm(ledger: Ledger, root_id: int, rel_paths: list[str]) -> None:
    """Uploads verified on 123pan: done."""
    if not rel_paths:
        return
    now = time.time()
    with ledger.write() as conn:
        conn.execute(
            text(
                "UPDATE files SET state = :done, verified_at = :now, reason = NULL "
                "WHERE root_id = :r AND rel_path = :p AND state = :uploaded"
            ),
            [
                {
                    "done": FileState.DONE.value,
                    "uploaded": FileState.UPLOADED.value,
                    "now": now,
                    "r": root_id,
                    "p": p,
                }
                for p in rel_paths
            ],
        )


def _claims(ledger: Ledger, sql: str, params: dict[str, object]) -> list[Claim]:
    with ledger.reading() as conn:
        return [
            Claim(int(r[0]), str(r[1]), int(r[2]), int(r[3]), r[4], int(r[5]), int(r[6]))
            for r in conn.execute(
                text(
                    "SELECT id, rel_path, remote_id, size, md5, mtime_ns, inode FROM files "
                    "WHERE remote_id IS NOT NULL AND " + sql
                ),
                params,
            )
        ]


def awaiting_verification(ledger: Ledger, root_id: int) -> list[Claim]:
    """Uploads 123pan accepted that were never verified (a crash came in between)."""
    return _claims(
        ledger, "root_id = :r AND state = :s", {"r": root_id, "s": FileState.UPLOADED.value}
    )


def sample_done(ledger: Ledger, root_id: int, after_id: int, limit: int) -> list[Claim]:
    """Up to ``limit`` done rows after row ``after_id``, by row id (a rotating sample)."""
    return _claims(
        ledger,
        "root_id = :r AND state = :s AND id > :after ORDER BY id LIMIT :n",
        {"r": root_id, "s": FileState.DONE.value, "after": after_id, "n": limit},
    )


def get_cursor(ledger: Ledger, name: str) -> int:
    with ledger.reading() as conn:
        value = conn.execute(text("SELECT value FROM kv WHERE key = :k"), {"k": name}).scalar()
    try:
        return int(value or 0)
    except ValueError:
        return 0


def set_cursor(ledger: Ledger, name: str, value: int) -> None:
    with ledger.write() as conn:
        conn.execute(
            text(
                "INSERT INTO kv (key, value) VALUES (:k, :v) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ),
            {"k": name, "v": str(value)},
        )
