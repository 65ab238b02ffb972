"""Deciding what a pass does: local facts + ledger view + policy -> actions. Pure.

A file whose (size, mtime_ns, ctime_ns, dev, inode) match the ledger keeps its recorded MD5
and, when it is done, needs nothing; a done file with only a new ctime (new content with the
old mtime: ``cp -p``, ``tar x``, ``touch -r``; or only a chmod), or a changed done file of its
recorded size, is hashed again and sent only if its MD5 changed; a file that failed waits
until its next-attempt time; everything else is uploaded, with its names mapped for 123pan or
skipped with the reason. Empty files and files over 123pan's 10 GB limit are refused on their
size, before anything reads them. Things the scanner could not read are recorded as skipped.
Only changes are returned: a pass over an unchanged tree plans nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from syncagent.catalog import CATALOG_DIR
from syncagent.model import FileState, LedgerFacts, LocalEntry, LocalSkip, Move, Skip, Upload
from syncagent.remote_names import NameRefused, remote_path

__all__ = ["EMPTY_FILE", "MAX_FILE_SIZE", "RESERVED", "Plan", "plan", "too_large"]

EMPTY_FILE = "0-byte file: 123pan cannot store empty files"
RESERVED = f"{CATALOG_DIR}/ at the top of a root is where syncagent keeps its catalog in the cloud"
MAX_FILE_SIZE = 10_000_000_000  # 123pan's "10 GB" (the client refuses above it too)


def too_large(size: int) -> str:
    """The reason a file of ``size`` bytes is refused."""
    return f"file is over 123pan's 10 GB limit ({size} bytes)"


@dataclass
class Plan:
    uploads: list[Upload] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)  # filled by renames.find_moves
    unchanged: int = 0
    waiting: int = 0  # failed earlier, not due again yet


def _same(entry: LocalEntry, facts: LedgerFacts) -> bool:
    return (entry.size, entry.mtime_ns, entry.dev, entry.inode) == (
        facts.size,
        facts.mtime_ns,
        facts.dev,
        facts.inode,
    )


def _ctime_moved(entry: LocalEntry, facts: LedgerFacts) -> bool:
    """The ctime differs from the recorded one (a row that never recorded it counts too)."""
    return entry.ctime_ns != facts.ctime_ns


def plan(
    entries: Iterable[LocalEntry],
    skipped: Iterable[LocalSkip],
    ledger: Mapping[str, LedgerFacts],
    *,
    names: Literal["map", "skip"],
    now: float,
) -> Plan:
    """The actions for one root. ``now`` is compared with next-attempt times."""
    result = Plan()
    # 123pan name -> local path that owns it. Two local names can map to one remote name
    # (a:b.txt and a：b.txt); the first owner keeps it and the other is skipped, instead of
    # silently overwriting it. A file deleted locally (gone) owns no name any more.
    owners = {
        f.remote_name: rel
        for rel, f in ledger.items()
        if f.remote_name and f.state == FileState.DONE
    }
    for s in skipped:
        facts = ledger.get(s.rel_path)
        if facts is None or facts.state != FileState.SKIPPED or facts.reason != s.reason:
            result.skips.append(Skip(s.rel_path, s.reason))
        else:
            result.unchanged += 1
    for entry in sorted(entries, key=lambda e: e.rel_path):
        facts = ledger.get(entry.rel_path)
        same = facts is not None and _same(entry, facts)
        recheck = False
        if same and facts is not None:
            if facts.state == FileState.DONE and _ctime_moved(entry, facts) and facts.md5:
                recheck = True  # new content may hide behind the old size and mtime
            elif facts.state in (FileState.DONE, FileState.SKIPPED):
                result.unchanged += 1
                continue
            if facts.state == FileState.FAILED and facts.next_attempt_at > now:
                result.waiting += 1
                continue
        reason = None
        if entry.rel_path.split("/", 1)[0] == CATALOG_DIR:
            reason = RESERVED
        elif entry.size == 0:
            reason = EMPTY_FILE
        elif entry.size > MAX_FILE_SIZE:
            reason = too_large(entry.size)
        else:
            try:
                remote = remote_path(entry.rel_path, names)
            except NameRefused as exc:
                reason = str(exc)
        if reason is None and owners.setdefault(remote, entry.rel_path) != entry.rel_path:
            reason = (
                f"its 123pan name {remote!r} is already used by "
                f"{owners[remote]!r} (names differing only in characters 123pan maps)"
            )
        if reason is not None:
            result.skips.append(Skip(entry.rel_path, reason, entry))
            continue
        if recheck and facts is not None:
            result.uploads.append(Upload(entry, remote, "recheck", None, facts.md5))
            continue
        # A file back at the path of a gone one is new: its row owns nothing any more.
        why = (
            "new"
            if facts is None or facts.state == FileState.GONE
            else "retry"
            if same
            else "changed"
        )
        # the recorded MD5 holds only while the ctime does too
        md5 = facts.md5 if same and facts is not None and not _ctime_moved(entry, facts) else None
        # A done file of its recorded size may hold its recorded content again (put back
        # after a guard hold, restored from a backup, rewritten by a tool that saves the same
        # bytes): the worker hashes it anyway before sending, and sends it only if it differs.
        recorded = (
            facts.md5
            if facts is not None
            and facts.state == FileState.DONE
            and facts.size == entry.size
            and md5 is None
            else None
        )
        result.uploads.append(Upload(entry, remote, why, md5, recorded))
    return result
