"""A file replaced by a folder of the same 123pan name, or a folder by a file. Pure.

123pan cannot hold a file and a folder under one name, so an upload below (or at) the name
of the other kind fails, and before this it failed on every pass. From the ledger (the remote
copies it knows, gone files included) and the paths about to be placed, this decides:

- the other kind is still there locally (``x：y`` beside a folder ``x:y/``, which 123pan
  maps to the same name): the newcomer is skipped with the reason, as for two files;
- else the local entry was replaced: the old remote entry is replaced too (trashed today;
  the versions feature keeps it aside instead), its rows are forgotten, the upload goes on.

Folders that 123pan holds but the ledger knows no file below (made in the web app, or left
empty by mirror mode) are not seen here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field

from syncagent.model import LedgerFacts, Skip

__all__ = ["Replacements", "replacements"]


@dataclass
class Replacements:
    files: list[tuple[str, int]] = field(default_factory=list)  # (row, remote_id) to retire
    folders: list[str] = field(default_factory=list)  # remote folder paths to retire
    rows: set[str] = field(default_factory=set)  # rows whose copies are retired with them
    skips: list[Skip] = field(default_factory=list)  # placed paths refused (a name clash)

    def __bool__(self) -> bool:
        return bool(self.files or self.folders or self.skips)


def _ancestors(path: str) -> Iterator[str]:
    at = path.find("/")
    while at != -1:
        yield path[:at]
        at = path.find("/", at + 1)


def replacements(
    placed: list[tuple[str, str]],
    facts: Mapping[str, LedgerFacts],
    present: Collection[str],
) -> Replacements:
    """What to retire on 123pan (or skip) before ``placed`` ((rel_path, remote_rel) of the
    files about to be uploaded or moved) can be placed."""
    out = Replacements()
    if not placed:
        return out
    targets = {remote for _, remote in placed}
    folders = {a for _, remote in placed for a in _ancestors(remote)}
    remote_file: dict[str, tuple[str, int]] = {}  # remote file path -> (row, remote_id)
    below: defaultdict[str, list[str]] = defaultdict(list)  # placed file name -> rows below
    for rel, f in facts.items():
        if not (f.remote_id and f.remote_name):
            continue
        if f.remote_name in folders:
            remote_file.setdefault(f.remote_name, (rel, f.remote_id))
        for a in _ancestors(f.remote_name):
            if a in targets:
                below[a].append(rel)
    for rel, remote in placed:
        for a in _ancestors(remote):
            if a in targets:  # placed in this very pass as a file too
                below[a].append(rel)
    refused: set[str] = set()
    retired_files: set[str] = set()
    for rel, remote in placed:
        for a in _ancestors(remote):
            hit = remote_file.get(a)
            if hit is None:
                continue
            if hit[0] in present:
                out.skips.append(
                    Skip(
                        rel,
                        f"its 123pan folder {a!r} is the name of the file {hit[0]!r} "
                        "(names differing only in characters 123pan maps)",
                    )
                )
                refused.add(rel)
                break
            if a not in retired_files:
                retired_files.add(a)
                out.files.append(hit)
                out.rows.add(hit[0])
        rows = below.get(remote)
        if rows is None or rel in refused:
            continue
        kept = [r for r in rows if r in present]
        if kept:
            out.skips.append(
                Skip(
                    rel,
                    f"its 123pan name {remote!r} is a folder holding {kept[0]!r} "
                    "(names differing only in characters 123pan maps)",
                )
            )
        else:
            out.folders.append(remote)
            out.rows.update(rows)
    return out
