"""Recognising moves and renames, so unchanged content is moved on 123pan, not re-uploaded. Pure.

A new path whose (dev, inode, size, mtime_ns) equal those of a done file that is no longer
there is a candidate :class:`~syncagent.model.Move`: the same file, moved, once its content is
confirmed (``Move.confirmed``: an unchanged ctime, else the executor hashes it). When every
file the ledger knows below a folder moved to one new folder with the same relative paths, and
nothing is left in the old one, the folder itself moved: one :class:`~syncagent.model.FolderMove`.
Anything ambiguous (two gone files with the same identity) is left to be uploaded.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterator, Mapping

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


def _ancestors(path: str) -> Iterator[str]:
    """``a``, ``a/b`` for ``a/b/c``: every folder above a path."""
    at = path.find("/")
    while at != -1:
        yield path[:at]
        at = path.find("/", at + 1)


def find_moves(
    uploads: list[Upload], ledger: Mapping[str, LedgerFacts], present: Collection[str]
) -> tuple[list[FolderMove], list[Move], list[Upload]]:
    """Split planned uploads into folder moves, file moves and real uploads.

    Linear in the ledger, the tree and the uploads: gone files are indexed by identity, and
    folders are checked against counts made in one sweep (1,000 renamed folders in a
    100,000-file root once took minutes: each folder scanned the whole ledger).
    """
    gone: dict[tuple[int, int, int, int], tuple[str, LedgerFacts]] = {}
    ambiguous: set[tuple[int, int, int, int]] = set()
    for rel, f in ledger.items():
        if (
            f.state != FileState.DONE
            or not (f.remote_id and f.remote_name and f.md5)
            or rel in present
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
        # An unchanged ctime means the inode itself was not touched (its folder moved): a
        # new file on a reused inode always has a new ctime. Anything else is hashed first.
        confirmed = f.ctime_ns != 0 and f.ctime_ns == u.entry.ctime_ns
        moves.append(Move(rel, u.entry, f.remote_name, u.remote_rel, f.remote_id, f.md5, confirmed))
    return (*_folder_moves(moves, ledger, present), rest)


def _folder_moves(
    moves: list[Move], ledger: Mapping[str, LedgerFacts], present: Collection[str]
) -> tuple[list[FolderMove], list[Move]]:
    """Whole folders among ``moves``: every file the ledger knows below the old folder moved
    to the same relative path below a new folder that the ledger did not know, and nothing
    is left in the old one."""
    groups: dict[tuple[str, str], list[tuple[Move, int]]] = defaultdict(list)
    for m in moves:
        old_prefix, new_prefix, k = _split(m.old_rel, m.entry.rel_path)
        if k and old_prefix and new_prefix:
            groups[(old_prefix, new_prefix)].append((m, k))
    if not groups:
        return [], moves
    olds = {old for old, _ in groups}
    news = {new for _, new in groups}
    known_under: Counter[str] = Counter()  # ledger rows below each old folder
    new_known: set[str] = set()  # new folders the ledger already has rows below
    for rel in ledger:
        for folder in _ancestors(rel):
            if folder in olds:
                known_under[folder] += 1
            if folder in news:
                new_known.add(folder)
    old_present = {folder for rel in present for folder in _ancestors(rel) if folder in olds}
    folder_moves: list[FolderMove] = []
    taken: set[str] = set()
    for (old_prefix, new_prefix), members in groups.items():
        if (
            known_under[old_prefix] != len(members)
            or old_prefix in old_present
            or new_prefix in new_known
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
    return folder_moves, [m for m in moves if m.old_rel not in taken]
