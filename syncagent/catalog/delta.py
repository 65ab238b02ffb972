"""Catalog deltas: what changed since a full catalog, and how a reader merges it. Pure.

A full catalog of a large root is megabytes (44 bytes an entry compressed: 4.4 MB for
100,000 files), and a pass that changed one file would upload all of it again. Once the
root's full catalog is at least :data:`DELTA_MIN_BYTES` compressed, such a pass publishes a
*delta* instead: a gzip'd JSON-lines object (format version :data:`DELTA_VERSION`) whose
header names its base (the full catalog's object name) and the digest of the tree the merge
must give, and whose lines are the entries added or changed since the base (the same
encoding as a full catalog) and the entries removed (``{"p": path, "k": "-"}``, with ``v``
for a previous version).

A delta is *cumulative*: it holds every change since its base, so a reader needs the base
and the newest delta only, never a chain. When a delta would be larger than
:data:`COMPACT_FRACTION` of its base, a new full catalog is written instead (compaction).

A reader merges and then checks the result against the digest the writer recorded: a delta
applied to anything but the tree it was computed from is refused, never shown.

An entry's identity is its path plus, for a previous version, when it was superseded.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from syncagent.catalog.format import (
    _CODE_KIND,
    DELTA_VERSION,
    EMPTY_MD5,
    FORMAT,
    Entry,
    Header,
    _dumps,
    _entry,
    _line,
    digest,
    entry_lines,
    header_of,
    open_object,
)
from syncagent.errors import CatalogError

__all__ = [
    "COMPACT_FRACTION",
    "DELTA_MIN_BYTES",
    "Changes",
    "Delta",
    "apply",
    "decode_delta",
    "diff",
    "encode_delta",
    "normalize",
    "tree_digest",
    "use_delta",
]

DELTA_MIN_BYTES = 1 << 20  # a full catalog this large (compressed) gets deltas
COMPACT_FRACTION = 0.25  # a delta larger than this share of its base: write a full one

Key = tuple[str, "float | None"]


def key_of(e: Entry) -> Key:
    return (e.path, e.superseded)


def normalize(e: Entry) -> Entry:
    """The entry as a reader decodes it (the encoding drops nothing a reader can see, but
    e.g. ``remote`` equal to ``path`` is implied): the writer diffs and digests these."""
    return _entry(_line(e))


def tree_digest(entries: Iterable[Entry]) -> str:
    """The digest a merged tree must have (the MD5 of its full-catalog encoding)."""
    return digest(entry_lines(entries))


@dataclass(frozen=True)
class Delta:
    """The changes from a base full catalog (named ``base``) to a tree of digest ``digest``."""

    header: Header
    base: str
    digest: str
    changed: list[Entry]
    removed: list[Key]

    @property
    def count(self) -> int:
        return len(self.changed) + len(self.removed)


def canonical_line(e: Entry) -> dict[str, Any]:
    """The entry's line as a reader writes it back after decoding (an empty file's MD5 is
    implied by the encoding, and made explicit here): equal lines, equal decoded entries."""
    if e.kind == "file" and e.size == 0 and not e.md5:
        e = replace(e, md5=EMPTY_MD5)
    return _line(e)


@dataclass(frozen=True)
class Changes:
    changed: list[Entry]  # added or changed, as a reader decodes them
    removed: list[Key]
    digest: str  # of the whole current tree (:func:`tree_digest` of what a reader merges)


def diff(base: Iterable[Entry], current: Iterable[Entry]) -> Changes:
    """What changed from ``base`` (entries as decoded from a full catalog) to ``current``.

    Compares encoded lines, not entries: a 100,000-entry tree is diffed in about a second.
    """
    old = {key_of(e): canonical_line(e) for e in base}
    lines = sorted(
        ((key_of(e), canonical_line(e)) for e in current), key=lambda x: (x[0][0], x[0][1] or 0.0)
    )
    changed = [_entry(line) for k, line in lines if old.get(k) != line]
    keys = {k for k, _ in lines}
    removed = sorted((k for k in old if k not in keys), key=lambda k: (k[0], k[1] or 0.0))
    body = "".join([_dumps(line) + "\n" for _, line in lines]).encode("utf-8")
    return Changes(changed, removed, hashlib.md5(body).hexdigest())


def apply(base: Iterable[Entry], delta: Delta) -> list[Entry]:
    """The tree: ``base`` with ``delta``'s removals and changes (not checked: see
    :func:`merge_checked`)."""
    merged = {key_of(e): e for e in base}
    for k in delta.removed:
        merged.pop(k, None)
    for e in delta.changed:
        merged[key_of(e)] = e
    return sorted(merged.values(), key=lambda e: (e.path, e.superseded or 0.0))


def merge_checked(base: Iterable[Entry], delta: Delta) -> list[Entry]:
    """:func:`apply`, refused (CatalogError) unless the result has the recorded digest."""
    merged = apply(base, delta)
    got = tree_digest(merged)
    if got != delta.digest:
        raise CatalogError(
            f"catalog delta does not apply to base {delta.base}: the merge gives {got[:8]}, "
            f"not {delta.digest[:8]}"
        )
    return merged


def encode_delta(
    header: Header, base: str, tree: str, changed: Sequence[Entry], removed: Sequence[Key]
) -> bytes:
    """The compressed delta object (deterministic for the same arguments)."""
    rows = [_dumps(_line(e)) + "\n" for e in changed]
    for path, superseded in removed:
        gone: dict[str, Any] = {"p": path, "k": "-"}
        if superseded is not None:
            gone["v"] = superseded
        rows.append(_dumps(gone) + "\n")
    head = {
        "format": FORMAT,
        "version": DELTA_VERSION,
        "kind": "delta",
        "base": base,
        "digest": tree,
        "host": header.host,
        "root": header.root,
        "remote": header.remote,
        "written_at": header.written_at,
        "entries": len(rows),
    }
    raw = json.dumps(head, ensure_ascii=False).encode() + b"\n" + "".join(rows).encode()
    return gzip.compress(raw, compresslevel=6, mtime=0)


def decode_delta(blob: bytes) -> Delta:
    """Read a delta object; torn, foreign or a full catalog raises CatalogError."""
    head, lines = open_object(blob, "delta")
    try:
        changed: list[Entry] = []
        removed: list[Key] = []
        for line in lines:
            d = json.loads(line)
            if isinstance(d, dict) and d.get("k") == "-" and isinstance(d.get("p"), str):
                removed.append((d["p"], None if d.get("v") is None else float(d["v"])))
            elif isinstance(d, dict) and d.get("k") in _CODE_KIND:
                changed.append(_entry(d))
            else:
                raise CatalogError(f"bad catalog delta line: {str(d)[:200]}")
        header = header_of(head)
        base, tree = str(head["base"]), str(head["digest"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"the catalog delta cannot be read: {exc}") from None
    if header.entries != len(changed) + len(removed):
        raise CatalogError(
            f"the catalog delta holds {len(changed) + len(removed)} of {header.entries} lines"
        )
    return Delta(header, base, tree, changed, removed)


def use_delta(base_size: int, delta_size: int, min_bytes: int = DELTA_MIN_BYTES) -> bool:
    """Whether to publish a delta of ``delta_size`` bytes rather than a full catalog, given
    the base's compressed size: only for a large base, and only while the delta stays
    under :data:`COMPACT_FRACTION` of it (else: compaction, a new full catalog)."""
    return base_size >= min_bytes and delta_size <= base_size * COMPACT_FRACTION
