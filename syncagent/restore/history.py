"""Previous versions in a restore: a file's history, and the tree as it was at a time. Pure.

A catalog lists each file's current content and its previous versions, each with the time
it was superseded (:mod:`syncagent.versions`). The content a file had at time T is the
oldest one superseded after T (the current one if none was); a content whose mtime is
after T did not exist yet at T, so a file whose only content is newer is left out. A file
kept when a folder took its name (``syncagent.set_aside``) is chosen over that folder when
it was displaced after T.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from syncagent.catalog.format import Entry
from syncagent.errors import ConfigError

__all__ = ["as_of", "history", "parse_time", "with_version"]


def parse_time(text: str) -> float:
    """Epoch seconds from ``2026-12-01T08:15:00Z`` (any ISO 8601; no zone = UTC) or a
    number of epoch seconds. Raises ConfigError."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            [f"--at: {text!r} is not a time (ISO 8601 like 2026-12-01T08:15:00Z, or epoch)"]
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def history(entries: Sequence[Entry], versions: Sequence[Entry], path: str) -> list[Entry]:
    """Every content of the file ``path``, oldest first, the current one (if any) last."""
    kept = sorted((v for v in versions if v.path == path), key=lambda v: v.superseded or 0.0)
    current = [e for e in entries if e.path == path and e.kind == "file"]
    return [*kept, *current]


def as_of(entries: Sequence[Entry], versions: Sequence[Entry], at: float) -> list[Entry]:
    """The entries as they were at ``at`` (epoch seconds)."""
    by_path: defaultdict[str, list[Entry]] = defaultdict(list)
    for v in versions:
        by_path[v.path].append(v)
    out: list[Entry] = []
    seen: set[str] = set()
    for e in entries:
        seen.add(e.path)
        if e.kind != "file":
            # a file that this folder (or link) displaced after ``at`` was there at ``at``
            displaced = _content_at(by_path[e.path], None, at) if e.path in by_path else None
            out.append(displaced or e)
        elif (chosen := _content_at(by_path.get(e.path, []), e, at)) is not None:
            out.append(chosen)
    for path, kept in by_path.items():  # gone since (mirror mode): still there at ``at``?
        if path not in seen and (chosen := _content_at(kept, None, at)) is not None:
            out.append(chosen)
    out.sort(key=lambda e: e.path)
    return out


def _content_at(kept: list[Entry], current: Entry | None, at: float) -> Entry | None:
    candidates = sorted(kept, key=lambda v: v.superseded or 0.0)
    chosen = next((v for v in candidates if (v.superseded or 0.0) > at), current)
    if chosen is None or (chosen.mtime_ns is not None and chosen.mtime_ns > math.ceil(at * 1e9)):
        return None
    return replace(chosen, superseded=None)


def with_version(
    entries: Sequence[Entry], versions: Sequence[Entry], path: str, number: int
) -> list[Entry]:
    """The entries with ``path`` as its version ``number`` (1 = oldest, as ``ls --versions``
    numbers them). Raises ConfigError when there is no such version."""
    all_versions = history(entries, versions, path)
    if not 1 <= number <= len(all_versions):
        raise ConfigError(
            [f"--version: {path} has {len(all_versions)} versions; {number} is not one of them"]
        )
    chosen = replace(all_versions[number - 1], superseded=None)
    others = [e for e in entries if e.path != path]
    return sorted([*others, chosen], key=lambda e: e.path)
