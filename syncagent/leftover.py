"""What a pass left unsent, kept in the ledger so ``status`` can tell it after any end.

A pass that is killed (SIGKILL, a crash, a power cut) cannot write anything at its end, so
what it means to send is written *before* its uploads start:

- a new file (no row yet) gets a row in state ``pending`` with its size: ``status`` counts
  it pending until its upload is recorded (``uploaded``, then ``done``) or it fails;
- a file that replaces a copy already recorded keeps its ``done`` row (the old copy is still
  the one 123pan holds, and the versions and the guard need that row as it is); it is listed
  instead in the ``unsent:<root id>`` kv entry with the pass's id and its new size. It counts
  as unsent while its row was not touched by that pass or a later one (``seen_pass``).

``status`` reads both (:func:`unsent`) and, with :func:`pass_state`, tells a pass that was
interrupted (stopped by a signal, or ended with the process) from one still running.
Nothing here talks to 123pan.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from syncagent.ledger import Ledger, repo
from syncagent.ledger.models import Root
from syncagent.model import FileState, LedgerFacts, Upload

__all__ = ["PREFIX", "Unsent", "pass_state", "record_work", "unsent"]

PREFIX = "unsent:"  # kv key prefix, + the root's id
NOT_SENT = "not sent yet"  # the reason on a pending row made here

_PENDING_COLUMNS = "root_id, rel_path, size, mtime_ns, ctime_ns, dev, inode, state, reason"
_PENDING_ROW = (
    f"INSERT INTO files ({_PENDING_COLUMNS}, attempts, next_attempt_at, seen_pass) "
    "VALUES ({marks}, 0, 0, 0) ON CONFLICT (root_id, rel_path) DO NOTHING"
)
# counted as pending already (status's bytes pending): not listed again
_COUNTED = (FileState.PENDING.value, FileState.FAILED.value)


@dataclass(frozen=True)
class Unsent:
    """What a root has not sent: files and bytes."""

    files: int = 0
    bytes: int = 0


def record_work(
    ledger: Ledger,
    root_id: int,
    pass_id: int,
    uploads: Iterable[Upload],
    facts: Mapping[str, LedgerFacts],
) -> None:
    """Before a root's uploads start: pending rows for its new files, the kv list for the
    files that replace a recorded copy (replacing the list an earlier pass left)."""
    new: list[tuple[Any, ...]] = []
    replacing: dict[str, int] = {}
    for u in uploads:
        row = facts.get(u.entry.rel_path)
        if row is None:
            e = u.entry
            new.append(
                (
                    root_id,
                    e.rel_path,
                    e.size,
                    e.mtime_ns,
                    e.ctime_ns,
                    e.dev,
                    e.inode,
                    FileState.PENDING.value,
                    NOT_SENT,
                )
            )
        elif row.state not in _COUNTED:
            replacing[u.entry.rel_path] = u.entry.size
    if new:  # the driver's executemany: SQLAlchemy's per-row parameters cost 10x more
        with ledger.write() as conn:
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            sql = _PENDING_ROW.format(marks=", ".join([mark] * len(new[0])))
            conn.exec_driver_sql(sql, new)
    key = f"{PREFIX}{root_id}"
    if replacing:
        repo.set_value(ledger, key, json.dumps({"pass": pass_id, "files": replacing}))
    elif repo.get_value(ledger, key) is not None:
        repo.delete_values(ledger, [key])


def unsent(ledger: Ledger) -> dict[str, Unsent]:
    """Root local path -> files and bytes not sent (this host's roots): pending and failed
    rows, and the listed replacements no pass has touched since they were listed."""
    lists = repo.get_values(ledger, PREFIX)
    out: dict[str, Unsent] = {}
    with ledger.session(write=False) as conn:
        roots: dict[int, str] = {  # this host's (a fleet shares the ledger)
            int(i): str(p)
            for i, p in conn.execute(
                select(Root.id, Root.local_path).where(repo._this_host(ledger))
            )
        }
        counted = {
            int(r): (int(n), int(b or 0))
            for r, n, b in conn.execute(
                text(
                    "SELECT root_id, count(*), sum(size) FROM files "
                    "WHERE state IN (:a, :b) GROUP BY root_id"
                ),
                {"a": _COUNTED[0], "b": _COUNTED[1]},
            ).all()
        }
        for root_id, local in roots.items():
            files, size = counted.get(root_id, (0, 0))
            raw = lists.get(f"{PREFIX}{root_id}")
            if raw is not None:
                listed = json.loads(raw)
                since = int(listed["pass"])
                sizes: dict[str, int] = listed["files"]
                touched = {
                    str(rel)
                    for (rel,) in conn.execute(
                        text(
                            "SELECT rel_path FROM files WHERE root_id = :root AND "
                            "(seen_pass >= :since OR state IN (:a, :b))"
                        ),
                        {"root": root_id, "since": since, "a": _COUNTED[0], "b": _COUNTED[1]},
                    ).all()
                }
                left = [n for rel, n in sizes.items() if rel not in touched]
                files += len(left)
                size += sum(left)
            out[local] = Unsent(files, size)
    return out


def pass_state(
    finished_at: float | None, result: str | None, state_dir: Path, agent_alive: bool
) -> str:
    """``ok``, ``failed``, ``fatal``, ``interrupted`` or ``running`` for the last pass: one
    that never finished is running only while its process (the state lock's owner) is."""
    if finished_at is not None:
        return result or "ok"
    if agent_alive or _lock_owner_alive(state_dir):
        return "running"
    return "interrupted"


def _lock_owner_alive(state_dir: Path) -> bool:
    """Whether the process named in ``agent.lock`` still runs (the lock file keeps the PID
    of its last owner; taking the lock to test it could make a starting ``sync`` fail)."""
    try:
        pid = int((state_dir / "agent.lock").read_text(encoding="ascii").strip())
        if pid == os.getpid():
            return False
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True
