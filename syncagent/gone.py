"""What became of the ledger rows whose files a scan did not find. Pure.

A row below a folder the walk could not read (or in a root it could not read) is *unknown*:
left as it is, never taken for a deletion (``chmod 000 photos`` must not empty the cloud's
copy of it in mirror mode). Every other row not found, not moved and not already recorded
gone is *gone*:

- mirror mode: a done file's copy goes to the 123pan recycle bin (guarded by the caller);
- archive and move modes (and in mirror mode a file whose copy is of an older version): a
  file with a copy on 123pan is kept in state ``gone``, which the no-op fast path ignores and
  which owns no 123pan name any more;
- a row with no copy on 123pan (never uploaded, skipped) is simply forgotten.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from syncagent.model import FileState, LedgerFacts, LocalSkip
from syncagent.walk import UNREADABLE, UNREADABLE_FOLDER

__all__ = ["Vanished", "unreadable_folders", "vacated", "vanished"]


@dataclass
class Vanished:
    """The rows of files no longer found, by what to do with them."""

    trash: list[tuple[str, int]] = field(default_factory=list)  # (rel_path, remote_id): mirror
    gone: list[str] = field(default_factory=list)  # keep in state gone
    forget: list[str] = field(default_factory=list)  # drop the row
    unknown: int = 0  # below a folder that could not be read: left alone


def unreadable_folders(skips: Iterable[LocalSkip]) -> set[str]:
    """Folders (``"."`` for the root) the walk could not list, and entries it could not
    classify (which may be folders)."""
    return {s.rel_path for s in skips if s.reason.startswith((UNREADABLE_FOLDER, UNREADABLE))}


def _ancestors(path: str) -> Iterator[str]:
    at = path.find("/")
    while at != -1:
        yield path[:at]
        at = path.find("/", at + 1)


def vanished(
    facts: Mapping[str, LedgerFacts],
    present: Collection[str],
    unreadable: Collection[str],
    handled: Collection[str],
    *,
    mirror: bool,
) -> Vanished:
    """Sort the rows not in ``present`` (paths found) nor in ``handled`` (moved, replaced).

    :param unreadable: folders the walk could not list (:func:`unreadable_folders`).
    """
    out = Vanished()
    root_unknown = "." in unreadable
    for rel, f in facts.items():
        if rel in present or rel in handled or f.state == FileState.GONE:
            continue
        if root_unknown or (unreadable and any(a in unreadable for a in _ancestors(rel))):
            out.unknown += 1
        elif mirror and f.state == FileState.DONE and f.remote_id:
            out.trash.append((rel, f.remote_id))
        elif f.remote_id:  # (in mirror mode: an older version's copy, never trashed blind)
            out.gone.append(rel)
        else:
            out.forget.append(rel)
    return out


def vacated(trashed: Iterable[str], exists: Callable[[str], bool]) -> list[str]:
    """The top-most folders above ``trashed`` files that no longer exist locally (``exists``
    tells): in mirror mode their remote folders go too, or a file made later under the same
    name would meet a leftover remote folder."""
    tops: list[str] = []
    seen: set[str] = set()
    for rel in sorted(trashed):
        for folder in _ancestors(rel):
            if folder in seen:
                break
            seen.add(folder)
            if not exists(folder):
                tops.append(folder)
                break
    return tops
