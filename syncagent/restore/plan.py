"""Deciding what a restore does. Pure: entries + what is on disk + options -> actions.

Three steps, each a function of its inputs:

- :func:`select` keeps the entries asked for and refuses, with a reason, every path that
  could write outside the target folder (absolute, ``..``, ``.``, empty or oversized names,
  NUL) or that lies below something that is not a folder in the catalog itself;
- the caller looks at the disk (:class:`Local` per entry; :mod:`syncagent.restore.probe`);
- :func:`decide` turns each entry and what is on disk into one :class:`Action`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from syncagent.catalog.format import Entry

__all__ = [
    "Action",
    "Local",
    "Outcome",
    "Selection",
    "decide",
    "link_escapes",
    "path_problem",
    "select",
]

NAME_MAX = 255  # bytes, Linux


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot be written below the target folder (None: it can)."""
    if not path:
        return "empty path"
    if "\x00" in path:
        return "path contains a NUL character"
    if path.startswith("/"):
        return "absolute path: would be written outside the target folder"
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return f"path has a {part or 'empty'!r} component: could leave the target folder"
        if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
            return f"a name is longer than {NAME_MAX} bytes"
    return None


def link_escapes(path: str, target: bytes) -> bool:
    """Whether a link at ``path`` (relative to the target folder) points outside it."""
    if target.startswith(b"/"):
        return True
    joined = posixpath.normpath(
        posixpath.join(posixpath.dirname(path), target.decode("utf-8", "surrogateescape"))
    )
    return joined == ".." or joined.startswith("../")


@dataclass
class Selection:
    """What :func:`select` kept, what it refused (path, reason), and PATHs that matched
    nothing."""

    entries: list[Entry] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)


def _wanted(path: str, prefixes: Sequence[str]) -> bool:
    return not prefixes or any(path == p or path.startswith(p + "/") for p in prefixes)


def select(entries: Iterable[Entry], paths: Sequence[str] = ()) -> Selection:
    """The entries under ``paths`` (all when empty), every one safe to write."""
    prefixes = [p.strip("/") for p in paths]
    out = Selection()
    kinds: dict[str, str] = {}
    matched: set[str] = set()
    for e in sorted(entries, key=lambda e: e.path):
        if not _wanted(e.path, prefixes):
            continue
        matched.update(p for p in prefixes if e.path == p or e.path.startswith(p + "/"))
        problem = path_problem(e.path)
        if problem is None and e.path in kinds:
            problem = "listed twice in the catalog"
        if problem is None:
            parts = e.path.split("/")
            for i in range(1, len(parts)):
                above = kinds.get("/".join(parts[:i]))
                if above is not None and above != "dir":
                    problem = f"below {'/'.join(parts[:i])!r}, which is a {above}, not a folder"
                    break
        if problem is not None:
            out.refused.append((e.path, problem))
            continue
        kinds[e.path] = e.kind
        out.entries.append(e)
    out.unmatched = [p for p in prefixes if p not in matched]
    return out


@dataclass(frozen=True)
class Local:
    """What is at an entry's place on disk now.

    :param kind: ``missing``, ``dir``, ``file``, ``symlink`` or ``other``; ``blocked`` when
        a folder on the way is a link or not a folder (nothing may be written there).
    :param md5: a regular file's MD5, when its size equals the entry's (else None).
    """

    kind: Literal["missing", "dir", "file", "symlink", "other", "blocked"]
    size: int = 0
    md5: str | None = None
    target: bytes | None = None
    why: str = ""


Outcome = Literal[
    "mkdir",  # create the folder
    "download",  # fetch the content (replacing what is there when ``replace``)
    "empty",  # create a 0-byte file
    "link",  # create the symbolic link
    "same",  # already there and identical: only mode and mtime are set
    "conflict",  # something different is there: kept (restore with --overwrite)
    "refused",  # not written, with a reason
    "unavailable",  # the cloud does not hold it (it was never backed up)
]


@dataclass(frozen=True)
class Action:
    entry: Entry
    outcome: Outcome
    replace: bool = False  # remove what is there first (a file or link, never a folder)
    reason: str = ""


def decide(
    entry: Entry, local: Local, *, overwrite: bool, symlinks_outside: bool = False
) -> Action:
    """The one thing to do for ``entry`` given what is on disk."""
    if local.kind == "blocked":
        return Action(entry, "refused", reason=local.why)
    if entry.kind == "dir":
        if local.kind in ("missing", "dir"):
            return Action(entry, "mkdir" if local.kind == "missing" else "same")
        if overwrite and local.kind in ("file", "symlink"):
            return Action(entry, "mkdir", replace=True)
        return Action(entry, "conflict", reason=f"a {local.kind} is in the way of the folder")
    if entry.kind == "symlink":
        target = entry.target or b""
        if link_escapes(entry.path, target) and not symlinks_outside:
            return Action(
                entry,
                "refused",
                reason=f"link to {target.decode('utf-8', 'replace')!r} points outside the "
                "target folder (create it with --symlinks-outside)",
            )
        if local.kind == "missing":
            return Action(entry, "link")
        if local.kind == "symlink" and local.target == target:
            return Action(entry, "same")
        if overwrite and local.kind in ("file", "symlink"):
            return Action(entry, "link", replace=True)
        return _conflict(entry, local)
    if not entry.restorable:
        return Action(entry, "unavailable", reason=f"not in the cloud ({entry.state})")
    make: Outcome = "empty" if entry.size == 0 else "download"
    if local.kind == "missing":
        return Action(entry, make)
    if local.kind == "file" and local.size == entry.size and local.md5 == entry.md5:
        return Action(entry, "same")
    if overwrite and local.kind in ("file", "symlink"):
        return Action(entry, make, replace=True)
    return _conflict(entry, local)


def _conflict(entry: Entry, local: Local) -> Action:
    what = {"file": "a different file", "dir": "a folder", "symlink": "a different link"}
    return Action(
        entry,
        "conflict",
        reason=f"{what.get(local.kind, 'something else')} is there (kept; --overwrite replaces "
        "files and links, never folders)",
    )


def summary(actions: Sequence[Action]) -> Mapping[str, int]:
    counts: dict[str, int] = {}
    for a in actions:
        counts[a.outcome] = counts.get(a.outcome, 0) + 1
    return counts
