"""Recognising moves and renames, so unchanged content is moved on 123pan, not re-uploaded. Pure.

A new path whose (dev, inode, size, mtime_ns) equal those of a done file that is no longer
there is the same file, moved: a :class:`~syncagent.model.Move`. When every file the ledger
knows below a folder moved to one new folder with the same relative paths, and nothing is
left in the old one, the folder itself moved: one :class:`~syncagent.model.FolderMove`.
Anything ambiguous (two gone files with the same identity) is left to be uploaded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping

from syncagent.model import FileState, FolderMove, LedgerFacts, Move, Upload

__all__ = ["find_moves"]


def _split(old: str, new: str) -> tuple[str, str, int]:
    """(old prefix, new prefix, shared tail length) of two slash paths."""
    a, b = old.split("/"), new.split("/")
    k = 0
    while k < min(len(a), len(b)) - 1 and a[-1 - k] == b[-1 - k]:
        k += 1
    return "/".join(a[: len(a) - k]), "/".join(b[: len(b) - k]), k


def _drop_tail(path: str, k: int) -> str:
    parts = path.split("/")
    return "/".join(parts[: len(parts) - k])


def find_moves(
    uploads: list[Upload], ledger: Mapping[str, LedgerFacts], present: Collection[str]
) -> tuple[list[FolderMove], list[Move], list[Upload]]:
    """Split planned uploads into folder moves, file moves and real uploads."""
    gone: dict[tuple[int, int, int, int], tuple[str, LedgerFacts]] = {}
    ambiguous: set[tuple[int, int, int, int]] = set()
    for rel, f in ledger.items():
        if (
            rel in present
            or f.state != FileState.DONE
            or not (f.remote_id and f.remote_name and f.md5)
        ):
            continue
        key = (f.dev, f.inode, f.size, f.mtime_ns)
        if key in gone:
            ambiguous.add(key)
        gone[key] = (rel, f)
    moves: list[Move] = []
    rest: list[Upload] = []
    for u in uploads:
        key = (u.entry.dev, u.entry.inode, u.entry.size, u.entry.mtime_ns)
        hit = gone.pop(key, None) if u.why == "new" and key not in ambiguous else None
        if hit is None:
            rest.append(u)
            continue
        rel, f = hit
        assert f.remote_id is not None and f.remote_name and f.md5
        moves.append(Move(rel, u.entry, f.remote_name, u.remote_rel, f.remote_id, f.md5))

    groups: dict[tuple[str, str], list[tuple[Move, int]]] = defaultdict(list)
    for m in moves:
        old_prefix, new_prefix, k = _split(m.old_rel, m.entry.rel_path)
        if k and old_prefix and new_prefix:
            groups[(old_prefix, new_prefix)].append((m, k))
    folder_moves: list[FolderMove] = []
    taken: set[str] = set()
    for (old_prefix, new_prefix), members in groups.items():
        known_under_old = [r for r in ledger if r.startswith(old_prefix + "/")]
        if (
            len(known_under_old) != len(members)
            or any(p.startswith(old_prefix + "/") for p in present)
            or any(r.startswith(new_prefix + "/") for r in ledger)
        ):
            continue
        first, k = members[0]
        folder_moves.append(
            FolderMove(
                old_prefix,
                new_prefix,
                _drop_tail(first.old_remote, k),
                _drop_tail(first.new_remote, k),
                tuple(m for m, _ in members),
            )
        )
        taken.update(m.old_rel for m, _ in members)
    return folder_moves, [m for m in moves if m.old_rel not in taken], rest
