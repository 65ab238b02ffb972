"""The no-op pass on a server ledger: is the walked tree exactly as recorded? One query.

On SQLite the scan compares each chunk with its ledger rows as it walks (the stdlib helpers
read the file directly, see :class:`~syncagent.walk.ChunkWorker`). A PostgreSQL ledger is not
a file the helpers can open, so the comparison runs once, after the walk: the server digests
the root's ``done`` rows (MD5 over their stat facts in ``rel_path`` order) and counts every
other state, in one ``GROUP BY`` query; this module digests the walked files the same way.
Equal digests and counts mean the pass has nothing to do, and the rows are never loaded.

The rule is the SQLite path's: every walked file has a row recorded done with the same
(size, mtime_ns, ctime_ns, dev, inode), or recorded skipped with the same (size, mtime_ns,
dev, inode); every walk skip a row recorded skipped with the same reason; no other row
(``gone`` rows aside). Anything else, including any doubt, answers None (plan the full way).
"""

from __future__ import annotations

import hashlib

from syncagent.ledger import Ledger
from syncagent.walk import RawFile, RawSkip

__all__ = ["applies", "unchanged_rows"]

_DIGEST_SQL = (
    "SELECT state, count(*), md5(string_agg("
    "length(rel_path) || ':' || rel_path || ' ' || size || ' ' || mtime_ns || ' ' || "
    "ctime_ns || ' ' || dev || ' ' || inode, chr(10) ORDER BY rel_path COLLATE \"C\")) "
    "FROM files WHERE root_id = :root AND state != 'gone' GROUP BY state"
)
_SKIPPED_SQL = (
    "SELECT rel_path, size, mtime_ns, dev, inode, reason FROM files "
    "WHERE root_id = :root AND state = 'skipped'"
)


def applies(ledger: Ledger) -> bool:
    """Whether this check is how the ledger's no-op pass is found (PostgreSQL)."""
    return ledger.engine.dialect.name == "postgresql"


def _digest(files: list[RawFile]) -> str:
    """MD5 of the files' lines as the server writes them (code point order of rel_path is
    the "C" collation's byte order of UTF-8)."""
    lines = "\n".join(
        f"{len(rel)}:{rel} {size} {mtime} {ctime} {dev} {inode}"
        for rel, size, mtime, ctime, dev, inode in sorted(files)
    )
    return hashlib.md5(lines.encode("utf-8")).hexdigest()


def unchanged_rows(
    ledger: Ledger, root_id: int, files: list[RawFile], skips: list[RawSkip]
) -> int | None:
    """The root's rows (gone aside) when the walk found exactly what they record, else None."""
    if not root_id:  # a root the ledger does not know (a dry run): nothing to compare
        return None
    groups = {
        str(state): (int(count), digest)
        for state, count, digest in ledger.raw_rows(_DIGEST_SQL, {"root": root_id})
    }
    if set(groups) - {"done", "skipped"}:
        return None  # pending, failed, uploaded: work is due
    done_count, done_digest = groups.get("done", (0, None))
    skipped_count = groups.get("skipped", (0, None))[0]
    done_files = files
    if skipped_count or skips:
        skipped = {str(r[0]): r for r in ledger.raw_rows(_SKIPPED_SQL, {"root": root_id})}
        done_files = []
        matched_skips = 0
        for file in files:
            row = skipped.get(file[0])
            if row is None:
                done_files.append(file)
            elif tuple(row[1:5]) == (file[1], file[2], file[4], file[5]):
                matched_skips += 1
            else:
                return None
        for rel, reason in skips:
            row = skipped.get(rel)
            if row is None or row[5] != reason:
                return None
            matched_skips += 1
        if matched_skips != skipped_count:
            return None
    if len(done_files) != done_count:
        return None
    if done_count:
        try:
            if _digest(done_files) != done_digest:
                return None
        except UnicodeError:  # a name the database could not hold as it is
            return None
    return done_count + skipped_count
