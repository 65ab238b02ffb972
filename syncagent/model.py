"""Plain data shared by the scanner, the planner and the workers (frozen, stdlib only).

Paths are named by their coordinate system: ``rel_path`` is POSIX and relative to a root (the
ledger's key); ``remote_rel`` is the same path with names mapped for 123pan.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "FileState",
    "FolderMove",
    "LedgerFacts",
    "LocalEntry",
    "LocalSkip",
    "Move",
    "Skip",
    "Upload",
]


class FileState(StrEnum):
    """Where a file stands, as recorded in the ledger."""

    PENDING = "pending"  # seen, not uploaded yet (new or changed)
    DONE = "done"  # uploaded and verified
    UPLOADED = "uploaded"  # accepted by 123pan (fileID, MD5 recorded), not yet verified
    FAILED = "failed"  # last attempt failed; retried after next_attempt_at
    SKIPPED = "skipped"  # will not be uploaded; the reason says why
    GONE = "gone"  # deleted locally; its copy stays on 123pan (archive and move modes)


class LocalEntry(NamedTuple):
    """A regular file found by the scanner, with the stat facts that identify its content.

    A NamedTuple rather than a frozen dataclass: a rescan makes one per file, and tuples are
    several times cheaper to create.
    """

    rel_path: str
    size: int
    mtime_ns: int
    ctime_ns: int
    dev: int
    inode: int


@dataclass(frozen=True)
class LocalSkip:
    """Something the scanner found but cannot upload (symlink, FIFO, unreadable...)."""

    rel_path: str
    reason: str


class LedgerFacts(NamedTuple):
    """What the ledger remembers of a path (a NamedTuple for the same reason)."""

    size: int
    mtime_ns: int
    dev: int
    inode: int
    md5: str | None
    state: str
    next_attempt_at: float = 0.0
    reason: str | None = None
    remote_name: str | None = None  # the 123pan path it was uploaded to
    remote_id: int | None = None  # its 123pan fileID
    ctime_ns: int = 0  # inode change time when last seen (a move keeps it only with its folder)


@dataclass(frozen=True)
class Upload:
    """Upload ``rel_path`` to ``remote_rel``; ``md5`` is known when the content is unchanged.

    ``recorded_md5`` is set (why ``"recheck"``) for a done file whose size and mtime are as
    recorded but whose ctime is not (``cp -p``, ``tar x`` and ``touch -r`` keep the mtime):
    it is hashed again and sent only if its MD5 differs from the recorded one. It is set
    for a changed done file of its recorded size too (why ``"changed"``): put back as it was
    (after a guard hold, say), it is not sent again.
    """

    entry: LocalEntry
    remote_rel: str
    why: str  # "new" or "changed" or "retry" or "recheck"
    md5: str | None = None
    recorded_md5: str | None = None


@dataclass(frozen=True)
class Skip:
    """Record that ``rel_path`` is not uploaded, and why."""

    rel_path: str
    reason: str
    entry: LocalEntry | None = None


@dataclass(frozen=True)
class Move:
    """A file that moved locally with its content unchanged: move/rename it on 123pan."""

    old_rel: str
    entry: LocalEntry  # where it is now
    old_remote: str
    new_remote: str
    remote_id: int
    md5: str
    # The identity alone does not prove the content (an inode is reused by a new file with
    # the same size and mtime after tar, cp -p, rsync -t): a move is confirmed by MD5 before
    # it is carried out, unless the ctime is also unchanged (its folder moved, not the file).
    confirmed: bool = False


@dataclass(frozen=True)
class FolderMove:
    """A whole folder that moved or was renamed: one remote call instead of one per file."""

    old_prefix: str
    new_prefix: str
    old_remote_prefix: str
    new_remote_prefix: str
    files: tuple[Move, ...]
