"""Reads and writes of the ledger, one function per question or state change.

Roots and passes belong to a host (``ledger.host_id``, set by :mod:`syncagent.fleet` when a
command opens the ledger; None: the rows of no host, as before hosts existed): each host
sees its own. Bulk reads use SQLAlchemy Core (one query per root, not one per path: a
100,000-file rescan must cost one read). Each state change is its own short transaction,
committed before the caller acknowledges it. Every database error leaves this module as a
:class:`~syncagent.errors.LedgerError` (the raw DB-API reads are translated too). Also the
ledger-backed :class:`LedgerUploadState`, which keeps resumable chunked uploads across restarts.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import TextClause, delete, func, select, text, update

from syncagent.ledger import Ledger
from syncagent.ledger.models import (
    KV,
    FileRow,
    Host,
    PassRow,
    Root,
    UploadSessionRow,
    UploadSliceRow,
)
from syncagent.model import FileState, LedgerFacts, LocalEntry

if TYPE_CHECKING:
    from syncagent.pan123.upload import UploadSession

__all__ = [
    "LedgerUploadState",
    "RootStatus",
    "ensure_root",
    "finish_pass",
    "load_facts",
    "record_done",
    "record_failure",
    "record_skip",
    "record_uploaded",
    "root_status",
    "start_pass",
]


def _this_host(ledger: Ledger) -> Any:
    """The condition "the root is this ledger user's host's"."""
    return Root.host_id.is_(None) if ledger.host_id is None else Root.host_id == ledger.host_id


def ensure_root(ledger: Ledger, local: str, remote: str, mode: str) -> tuple[int, int | None]:
    """The root's id and its remote folder id (None until resolved), this host's.

    A changed ``remote`` is not recorded here: the root's rows were made for the old folder,
    and :func:`syncagent.ledger.trust.bind_root` re-binds them (the engine does, first).
    """
    with ledger.session() as s:
        row = s.scalars(select(Root).where(_this_host(ledger), Root.local_path == local)).first()
        if row is None:
            row = Root(
                host_id=ledger.host_id,
                local_path=local,
                remote_path=remote,
                mode=mode,
                created_at=time.time(),
            )
            s.add(row)
            s.flush()
        elif row.mode != mode:
            row.mode = mode
        return row.id, row.remote_id


def find_root(ledger: Ledger, local: str) -> tuple[int, int | None] | None:
    """The root's id and remote folder id, if the ledger knows the root (reads only: a dry
    run uses this where a pass uses :func:`ensure_root`)."""
    with ledger.session(write=False) as s:
        row = s.execute(
            select(Root.id, Root.remote_id).where(_this_host(ledger), Root.local_path == local)
        ).first()
    return None if row is None else (int(row[0]), row[1])


def set_root_remote(ledger: Ledger, root_id: int, remote_id: int) -> None:
    with ledger.session() as s:
        s.execute(update(Root).where(Root.id == root_id).values(remote_id=remote_id))


def load_facts(ledger: Ledger, root_id: int) -> dict[str, LedgerFacts]:
    """Every file row of a root, keyed by rel_path, in one query.

    Read through the raw DB-API cursor: this runs on every pass over every file, and
    SQLAlchemy's per-row result processing costs several times the query itself.
    """
    rows = _raw_rows(
        ledger,
        "rel_path, size, mtime_ns, dev, inode, md5, state, next_attempt_at, reason, "
        "remote_name, remote_id, ctime_ns",
        "",
        root_id,
    )
    facts = LedgerFacts._make
    return {row[0]: facts(row[1:]) for row in rows}


def _raw_rows(ledger: Ledger, columns: str, where: str, root_id: int) -> list[Any]:
    """``SELECT columns FROM files WHERE root_id = <root_id> AND where`` through the DB-API
    cursor (see :func:`load_facts` for why)."""
    return ledger.raw_rows(
        f"SELECT {columns} FROM files WHERE root_id = :root{where}", {"root": root_id}
    )


def count_files(ledger: Ledger, root_id: int) -> int:
    """The root's rows, leaving out files recorded gone (a scan never matches those)."""
    every = _raw_rows(ledger, "count(*)", "", root_id)[0][0]  # from the index alone
    gone = _raw_rows(ledger, "count(*)", f" AND state = '{FileState.GONE.value}'", root_id)
    return int(every) - int(gone[0][0])


# Values a new row needs when the caller does not give them (NOT NULL columns).
_NEW_ROW = {
    "size": 0,
    "mtime_ns": 0,
    "ctime_ns": 0,
    "dev": 0,
    "inode": 0,
    "attempts": 0,
    "next_attempt_at": 0.0,
    "seen_pass": 0,
}


@functools.lru_cache(maxsize=64)
def _upsert_sql(inserted: tuple[str, ...], updated: tuple[str, ...]) -> TextClause:
    """``INSERT ... ON CONFLICT (root_id, rel_path) DO UPDATE`` for these columns.

    Plain SQL that SQLite and PostgreSQL both understand, built once per column set: the
    ORM-level upsert rebuilt and re-keyed its statement on every call, which was a third of
    the CPU of a pass over small files. A new row gets ``_NEW_ROW`` defaults; an existing
    row changes only in the columns given.
    """
    names = ", ".join(("root_id", "rel_path", *inserted))
    params = ", ".join(f":{c}" for c in ("root_id", "rel_path", *inserted))
    updates = ", ".join(f"{c} = excluded.{c}" for c in updated)
    return text(
        f"INSERT INTO files ({names}) VALUES ({params}) "
        f"ON CONFLICT (root_id, rel_path) DO UPDATE SET {updates}"
    )


def _upsert(ledger: Ledger, root_id: int, rel_path: str, values: dict[str, Any]) -> None:
    row = {**_NEW_ROW, **values}
    statement = _upsert_sql(tuple(sorted(row)), tuple(sorted(values)))
    params = {"root_id": root_id, "rel_path": rel_path, **row}
    ledger.write_retried(lambda conn: conn.execute(statement, params))  # (idempotent)


def _stat_values(entry: LocalEntry) -> dict[str, Any]:
    return {
        "size": entry.size,
        "mtime_ns": entry.mtime_ns,
        "ctime_ns": entry.ctime_ns,
        "dev": entry.dev,
        "inode": entry.inode,
    }


@dataclass(frozen=True)
class Done:
    """A file uploaded and verified, to be recorded."""

    root_id: int
    entry: LocalEntry
    md5: str
    remote_id: int
    remote_name: str


def record_done(ledger: Ledger, done: list[Done], pass_id: int) -> None:
    """Record many uploaded-and-verified files in one transaction."""
    if not done:
        return
    now = time.time()
    rows = [_done_values(d, now, pass_id) for d in done]
    statement = _upsert_sql(tuple(sorted(rows[0])), tuple(sorted(rows[0])))
    params = [
        {"root_id": d.root_id, "rel_path": d.entry.rel_path, **r}
        for d, r in zip(done, rows, strict=True)
    ]
    ledger.write_retried(lambda conn: conn.execute(statement, params))  # (idempotent)


def record_uploaded(ledger: Ledger, uploaded: Done, pass_id: int) -> None:
    """Record a file the moment 123pan accepted it (state ``uploaded``: fileID and MD5 kept,
    verification pending), so a crash before its batch is verified costs a verification on
    the next run, not a second upload."""
    values = _done_values(uploaded, time.time(), pass_id)
    values.update(state=FileState.UPLOADED.value, verified_at=None)
    _upsert(ledger, uploaded.root_id, uploaded.entry.rel_path, values)


def _done_values(d: Done, now: float, pass_id: int) -> dict[str, Any]:
    return {
        **_stat_values(d.entry),
        "md5": d.md5,
        "remote_id": d.remote_id,
        "remote_name": d.remote_name,
        "state": FileState.DONE.value,
        "reason": None,
        "attempts": 0,
        "next_attempt_at": 0.0,
        "last_error_code": None,
        "trace_id": None,
        "uploaded_at": now,
        "verified_at": now,
        "seen_pass": pass_id,
    }


def record_skip(
    ledger: Ledger, root_id: int, rel_path: str, reason: str, entry: LocalEntry | None, pass_id: int
) -> None:
    values: dict[str, Any] = {
        "state": FileState.SKIPPED.value,
        "reason": reason,
        "seen_pass": pass_id,
    }
    if entry is not None:
        values.update(_stat_values(entry))
    _upsert(ledger, root_id, rel_path, values)


def record_failure(
    ledger: Ledger,
    root_id: int,
    entry: LocalEntry,
    reason: str,
    *,
    md5: str | None,
    code: int | None,
    trace_id: str | None,
    backoff: Callable[[int], float],
    pass_id: int,
) -> tuple[int, float]:
    """Count a failed attempt; the next one is due ``backoff(attempts)`` seconds from now.

    :returns: (attempts so far, seconds until the next attempt).
    """
    with ledger.session() as s:
        previous = s.scalar(
            select(FileRow.attempts).where(
                FileRow.root_id == root_id, FileRow.rel_path == entry.rel_path
            )
        )
    attempts = 1 + (previous or 0)
    delay = backoff(attempts)
    _upsert(
        ledger,
        root_id,
        entry.rel_path,
        {
            **_stat_values(entry),
            "md5": md5,
            "state": FileState.FAILED.value,
            "reason": reason,
            "attempts": attempts,
            "next_attempt_at": time.time() + delay,
            "last_error_code": code,
            "trace_id": trace_id,
            "seen_pass": pass_id,
        },
    )
    return attempts, delay


def record_stat(ledger: Ledger, root_id: int, entry: LocalEntry, pass_id: int) -> None:
    """A done file was hashed again and holds the recorded content: keep its new stat facts
    (so it is not hashed again), nothing else changes."""
    with ledger.write() as conn:
        conn.execute(
            text(
                "UPDATE files SET size = :size, mtime_ns = :mtime_ns, ctime_ns = :ctime_ns, "
                "dev = :dev, inode = :inode, seen_pass = :seen_pass "
                "WHERE root_id = :root_id AND rel_path = :rel_path"
            ),
            {
                **_stat_values(entry),
                "seen_pass": pass_id,
                "root_id": root_id,
                "rel_path": entry.rel_path,
            },
        )


def forget(ledger: Ledger, root_id: int, rel_path: str) -> None:
    with ledger.session() as s:
        s.execute(
            delete(FileRow).where(
                FileRow.root_id == root_id,
                FileRow.rel_path == rel_path,
                FileRow.remote_id.is_(None),
            )
        )


def forget_many(ledger: Ledger, root_id: int, rel_paths: list[str]) -> None:
    """Drop the rows of files that are gone (after their remote copies were handled)."""
    if not rel_paths:
        return
    with ledger.write() as conn:
        conn.execute(
            text("DELETE FROM files WHERE root_id = :root_id AND rel_path = :rel_path"),
            [{"root_id": root_id, "rel_path": r} for r in rel_paths],
        )


def mark_gone(ledger: Ledger, root_id: int, rel_paths: list[str], pass_id: int) -> None:
    """Files deleted locally whose copies stay on 123pan: kept, in state gone (a scan
    never matches them, so they must not count against its no-op fast path)."""
    if not rel_paths:
        return
    with ledger.write() as conn:
        conn.execute(
            text(
                "UPDATE files SET state = :state, reason = NULL, attempts = 0, "
                "next_attempt_at = 0, seen_pass = :pass_id "
                "WHERE root_id = :root_id AND rel_path = :rel_path"
            ),
            [
                {
                    "state": FileState.GONE.value,
                    "pass_id": pass_id,
                    "root_id": root_id,
                    "rel_path": r,
                }
                for r in rel_paths
            ],
        )


def _pass_of_host(ledger: Ledger) -> Any:
    host = ledger.host_id
    return PassRow.host_id.is_(None) if host is None else PassRow.host_id == host


def start_pass(ledger: Ledger) -> int:
    """A new pass of this host (its 100 newest are kept); the host is seen now."""
    with ledger.session() as s:
        now = time.time()
        row = PassRow(started_at=now, host_id=ledger.host_id)
        s.add(row)
        s.flush()
        if ledger.host_id is not None:
            s.execute(update(Host).where(Host.id == ledger.host_id).values(last_seen=now))
        old = (
            select(PassRow.id).where(_pass_of_host(ledger)).order_by(PassRow.id.desc()).offset(100)
        )
        s.execute(delete(PassRow).where(PassRow.id.in_(old.scalar_subquery())))
        return row.id


def finish_pass(
    ledger: Ledger, pass_id: int, *, uploaded: int, failed: int, bytes_sent: int, result: str
) -> None:
    with ledger.session() as s:
        s.execute(
            update(PassRow)
            .where(PassRow.id == pass_id)
            .values(
                finished_at=time.time(),
                uploaded=uploaded,
                failed=failed,
                bytes_sent=bytes_sent,
                result=result,
            )
        )


@dataclass(frozen=True)
class RootStatus:
    local_path: str
    remote_path: str
    counts: dict[str, int]
    bytes_pending: int
    problems: list[tuple[str, str, str]]  # (state, rel_path, reason)
    not_read: str | None = None  # why the last pass could not read the root at all
    held: str | None = None  # the mass-change guard's hold on its passes (Hold JSON)


_NOT_READ = "root_not_read:"  # kv key prefix, + the root's id


def root_problems(ledger: Ledger) -> dict[int, str]:
    """Root id -> why the last pass could not read that root (see :func:`set_root_problem`)."""
    with ledger.session(write=False) as s:
        rows = s.execute(select(KV.key, KV.value).where(KV.key.startswith(_NOT_READ))).all()
    return {int(key.removeprefix(_NOT_READ)): str(value) for key, value in rows}


def set_root_problem(ledger: Ledger, root_id: int, problem: str | None) -> None:
    """Remember why a pass could not read a root (its folder, its ``.syncignore``), shown
    by ``status``; None: it was read again."""
    with ledger.session() as s:
        s.execute(delete(KV).where(KV.key == f"{_NOT_READ}{root_id}"))
        if problem is not None:
            s.add(KV(key=f"{_NOT_READ}{root_id}", value=problem))


_HOLD = "guard_hold:"  # kv key prefix, + the root's id: the guard's Hold (JSON)
_APPROVED = "guard_approved:"  # kv key prefix, + the root's id: the local path approved


def guard_state(ledger: Ledger) -> tuple[dict[int, str], dict[int, str]]:
    """(root id -> held pass (JSON), root id -> approved local path), in one query."""
    values = get_values(ledger, "guard_")
    holds = {int(k.removeprefix(_HOLD)): v for k, v in values.items() if k.startswith(_HOLD)}
    approved = {
        int(k.removeprefix(_APPROVED)): v for k, v in values.items() if k.startswith(_APPROVED)
    }
    return holds, approved


def set_hold(ledger: Ledger, root_id: int, hold: str | None) -> None:
    """Record the guard's hold on a root (None: no hold, and any approval is used up)."""
    with ledger.session() as s:
        s.execute(delete(KV).where(KV.key == f"{_HOLD}{root_id}"))
        if hold is not None:
            s.add(KV(key=f"{_HOLD}{root_id}", value=hold))
        else:
            s.execute(delete(KV).where(KV.key == f"{_APPROVED}{root_id}"))


def approve(ledger: Ledger, root_id: int, local: str) -> None:
    """Let the next pass of a held root run whatever it holds."""
    set_value(ledger, f"{_APPROVED}{root_id}", local)


def root_status(ledger: Ledger, most: int = 200) -> list[RootStatus]:
    """Per root: counts by state, bytes not yet uploaded, failed and skipped files, and why
    the last pass could not read it, if it could not."""
    out = []
    not_read = root_problems(ledger)
    holds = guard_state(ledger)[0]
    with ledger.session(write=False) as s:
        for root in s.scalars(select(Root).where(_this_host(ledger)).order_by(Root.id)):
            counts = dict(
                s.execute(
                    select(FileRow.state, func.count())
                    .where(FileRow.root_id == root.id)
                    .group_by(FileRow.state)
                ).all()
            )
            pending = s.scalar(
                select(func.coalesce(func.sum(FileRow.size), 0)).where(
                    FileRow.root_id == root.id,
                    FileRow.state.in_([FileState.PENDING.value, FileState.FAILED.value]),
                )
            )
            problems = s.execute(
                select(FileRow.state, FileRow.rel_path, FileRow.reason)
                .where(
                    FileRow.root_id == root.id,
                    FileRow.state.in_([FileState.FAILED.value, FileState.SKIPPED.value]),
                )
                .order_by(FileRow.state, FileRow.rel_path)
                .limit(most)
            ).all()
            out.append(
                RootStatus(
                    root.local_path,
                    root.remote_path,
                    {str(k): int(v) for k, v in counts.items()},
                    int(pending or 0),
                    [(str(a), str(b), str(c or "")) for a, b, c in problems],
                    not_read.get(root.id),
                    holds.get(root.id),
                )
            )
    return out


def last_pass(ledger: Ledger) -> PassRow | None:
    with ledger.session(write=False) as s:
        return s.scalars(
            select(PassRow).where(_pass_of_host(ledger)).order_by(PassRow.id.desc()).limit(1)
        ).first()


class LedgerUploadState:
    """Resumable chunked-upload sessions kept in the ledger (``UploadStateStore``)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def load(self, key: str) -> UploadSession | None:
        from syncagent.pan123.upload import UploadSession

        with self._ledger.session(write=False) as s:
            row = s.get(UploadSessionRow, key)
            if row is None:
                return None
            done = frozenset(
                s.scalars(select(UploadSliceRow.slice_no).where(UploadSliceRow.key == key))
            )
            return UploadSession(
                row.preupload_id, row.slice_size, row.server, row.md5, row.size, done
            )

    def save(self, key: str, session: UploadSession) -> None:
        with self._ledger.session() as s:
            s.execute(delete(UploadSliceRow).where(UploadSliceRow.key == key))
            s.merge(
                UploadSessionRow(
                    key=key,
                    preupload_id=session.preupload_id,
                    slice_size=session.slice_size,
                    server=session.server,
                    md5=session.md5,
                    size=session.size,
                    created_at=time.time(),
                )
            )
            for n in session.done:
                s.add(UploadSliceRow(key=key, slice_no=n))

    def mark_slice(self, key: str, slice_no: int) -> None:
        with self._ledger.session() as s:
            s.merge(UploadSliceRow(key=key, slice_no=slice_no))

    def clear(self, key: str) -> None:
        with self._ledger.session() as s:
            s.execute(delete(UploadSliceRow).where(UploadSliceRow.key == key))
            s.execute(delete(UploadSessionRow).where(UploadSessionRow.key == key))


def done_files(ledger: Ledger, root_id: int) -> list[tuple[str, str | None, int, str | None]]:
    """(rel_path, remote name, size, md5) of every file recorded as uploaded."""
    t = FileRow.__table__
    query = select(t.c.rel_path, t.c.remote_name, t.c.size, t.c.md5).where(
        t.c.root_id == root_id, t.c.state == FileState.DONE.value
    )
    with ledger.reading() as conn:
        return [(r[0], r[1], r[2], r[3]) for r in conn.execute(query)]


def mark_pending(ledger: Ledger, root_id: int, rel_paths: list[str]) -> None:
    """Make the next pass upload these files again."""
    with ledger.session() as s:
        s.execute(
            update(FileRow)
            .where(FileRow.root_id == root_id, FileRow.rel_path.in_(rel_paths))
            .values(state=FileState.PENDING.value, reason="re-queued by verify --repair")
        )


def record_moves(ledger: Ledger, root_id: int, moves: list[tuple[str, Done]], pass_id: int) -> None:
    """Files moved (remotely too): their rows move to the new paths, in one transaction."""
    if not moves:
        return
    now = time.time()
    rows = [_done_values(done, now, pass_id) for _, done in moves]
    statement = _upsert_sql(tuple(sorted(rows[0])), tuple(sorted(rows[0])))
    with ledger.write() as conn:
        conn.execute(
            text("DELETE FROM files WHERE root_id = :root_id AND rel_path = :rel_path"),
            [{"root_id": root_id, "rel_path": old_rel} for old_rel, _ in moves],
        )
        conn.execute(
            statement,
            [
                {"root_id": root_id, "rel_path": done.entry.rel_path, **row}
                for (_, done), row in zip(moves, rows, strict=True)
            ],
        )


def catalog_rows(
    ledger: Ledger, root_id: int
) -> list[tuple[str, int, int, str | None, int | None, str | None, str]]:
    """(rel_path, size, mtime_ns, md5, remote_id, remote_name, state) of every row of a root:
    what the cloud catalog says of each file (one query, raw cursor as in load_facts)."""
    rows = _raw_rows(
        ledger, "rel_path, size, mtime_ns, md5, remote_id, remote_name, state", "", root_id
    )
    return [tuple(r) for r in rows]


def get_value(ledger: Ledger, key: str) -> str | None:
    """A small setting of the ledger itself (the ``kv`` table)."""
    with ledger.session() as s:
        row = s.get(KV, key)
        return None if row is None else row.value


def get_values(ledger: Ledger, prefix: str) -> dict[str, str]:
    """Every ``kv`` setting whose key starts with ``prefix`` (one query, through the raw
    cursor: every pass asks, the no-op ones included).

    On SQLite (keys compared byte-wise) a range on the primary key, ``prefix <= key <
    prefix`` with its last character raised, reads only those rows: the ``version.`` records
    can number 100,000s and a no-op pass asks for the catalog's handful. Other databases
    (whose collation may not compare byte-wise) use ``LIKE``."""
    if ledger.engine.dialect.name != "sqlite" or not prefix:
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = ledger.raw_rows("SELECT key, value FROM kv WHERE key LIKE :p", {"p": like})
        return {str(k): str(v) for k, v in rows if str(k).startswith(prefix)}
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    rows = ledger.raw_rows(
        "SELECT key, value FROM kv WHERE key >= :low AND key < :high",
        {"low": prefix, "high": upper},
    )
    return {str(k): str(v) for k, v in rows}


def set_value(ledger: Ledger, key: str, value: str) -> None:
    with ledger.session() as s:
        s.merge(KV(key=key, value=value))


def delete_values(ledger: Ledger, keys: list[str]) -> None:
    """Drop ``kv`` settings (one transaction)."""
    with ledger.session() as s:
        for key in keys:
            row = s.get(KV, key)
            if row is not None:
                s.delete(row)


def mark_sending(ledger: Ledger, root_id: int, rel_path: str) -> None:
    """A done file's new content is about to be sent: its row is no longer done (pending;
    the stat, MD5 and fileID of the copy it had stay). A pass that dies once 123pan has
    accepted the new content, before it is recorded, then leaves no row calling the old
    content done while 123pan holds the new one at that path."""
    with ledger.write() as conn:
        conn.execute(
            text(
                "UPDATE files SET state = :pending "
                "WHERE root_id = :r AND rel_path = :p AND state = :done"
            ),
            {
                "pending": FileState.PENDING.value,
                "done": FileState.DONE.value,
                "r": root_id,
                "p": rel_path,
            },
        )


def restore_done(ledger: Ledger, root_id: int, rel_path: str, remote_id: int) -> None:
    """The copy ``remote_id`` a row still names is back at its path (its replacement never
    arrived): the row is done again, as before :func:`mark_sending`."""
    with ledger.write() as conn:
        conn.execute(
            text(
                "UPDATE files SET state = :done "
                "WHERE root_id = :r AND rel_path = :p AND state = :pending AND remote_id = :id"
            ),
            {
                "pending": FileState.PENDING.value,
                "done": FileState.DONE.value,
                "r": root_id,
                "p": rel_path,
                "id": remote_id,
            },
        )
