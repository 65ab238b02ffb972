"""The catalog's format: one gzip-compressed JSON-lines object per root. Pure.

Line 1 is the header (``format``, ``version``, ``host``, ``root``, ``remote``,
``written_at``, ``entries``: the entry count); every further line is one entry with short
keys::

    {"p": "docs/report:Q1?.txt", "k": "f", "s": 1234, "h": "<md5>", "t": <mtime_ns>,
     "m": 420, "i": <fileID>, "r": "docs/report：Q1？.txt"}
    {"p": "docs/empty", "k": "d", "t": ..., "m": 493}
    {"p": "docs/link", "k": "l", "l": "../target", "t": ..., "m": 511}

``p`` is the original local path (relative, POSIX, before name mapping), ``k`` the kind
(``f`` file, ``d`` folder, ``l`` symbolic link), ``r`` the path on 123pan when it differs
from ``p``, ``x`` the state of a file that is not (or not yet) in the cloud (``failed``,
``pending``, ``skipped``; absent when it is). A previous version of a file (see
:mod:`syncagent.versions`) is a file entry with ``v``: when it was superseded (epoch
seconds); its ``r`` is its place in the versions folder. A catalog with versions has
format version 2 (older readers refuse it rather than mistake versions for files); one
without keeps version 1. A link target that is not UTF-8 is kept as hex
in ``lx``. Entries are sorted by path, so the same tree always encodes to the same bytes and
:func:`digest` tells whether anything changed. A torn object fails gzip's CRC or the entry
count and is refused whole (:class:`~syncagent.errors.CatalogError`).

Chosen on measurement (``bench/catalog_bench.py``, docs/benchmarks.md): 44 bytes an entry
compressed; an SQLite file of the same rows is 3x larger (and still larger gzip'd).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from syncagent.errors import CatalogError

__all__ = [
    "DELTA_VERSION",
    "FORMAT",
    "VERSION",
    "Entry",
    "Header",
    "decode",
    "decode_all",
    "digest",
    "encode",
    "entry_lines",
]

FORMAT = "syncagent-catalog"
VERSION = 2
PLAIN_VERSION = 1  # written when a catalog lists no versions
DELTA_VERSION = 3  # a delta object (syncagent.catalog.delta); full catalogs stay 1 or 2
EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"

Kind = Literal["file", "dir", "symlink"]
_KIND_CODE: dict[str, str] = {"file": "f", "dir": "d", "symlink": "l"}
_CODE_KIND: dict[str, Kind] = {"f": "file", "d": "dir", "l": "symlink"}


@dataclass(frozen=True)
class Entry:
    """One thing of a backed-up tree.

    :param path: original local relative path (POSIX).
    :param mode: permission bits (``st_mode & 0o7777``); None when not known (a file that
        is no longer on the machine that wrote the catalog, or one listed from 123pan).
    :param mtime_ns: modification time; None when not known.
    :param file_id: 123pan fileID of a file's content (None: not in the cloud, or empty).
    :param remote: the path on 123pan (names mapped), for files that are in the cloud.
    :param target: a symbolic link's target, as bytes (link targets need not be UTF-8).
    :param state: ``done`` when the cloud holds it; else ``failed``, ``pending``, ``skipped``.
    """

    path: str
    kind: Kind
    size: int = 0
    md5: str | None = None
    mtime_ns: int | None = None
    mode: int | None = None
    file_id: int | None = None
    remote: str | None = None
    target: bytes | None = None
    state: str = "done"
    superseded: float | None = None  # a previous version: when it was replaced

    @property
    def restorable(self) -> bool:
        """Whether a restore can bring it back (the cloud holds it, or nothing is needed)."""
        if self.kind != "file":
            return True
        return self.size == 0 or (self.state == "done" and self.file_id is not None)


@dataclass(frozen=True)
class Header:
    host: str
    root: str  # the local folder it was written for
    remote: str  # the remote root path
    written_at: float
    entries: int = 0
    version: int = VERSION


def _line(e: Entry) -> dict[str, Any]:
    out: dict[str, Any] = {"p": e.path, "k": _KIND_CODE[e.kind]}
    if e.kind == "file":
        out["s"] = e.size
        if e.md5:
            out["h"] = e.md5
    if e.mtime_ns is not None:
        out["t"] = e.mtime_ns
    if e.mode is not None:
        out["m"] = e.mode
    if e.file_id is not None:
        out["i"] = e.file_id
    if e.remote is not None and e.remote != e.path:
        out["r"] = e.remote
    if e.target is not None:
        try:
            out["l"] = e.target.decode("utf-8")
        except UnicodeDecodeError:
            out["lx"] = e.target.hex()
    if e.state != "done":
        out["x"] = e.state
    if e.superseded is not None:
        out["v"] = e.superseded
    return out


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True)
class Lines:
    """Entries encoded once (sorted), for both :func:`digest` and :func:`encode`."""

    body: bytes
    count: int
    versions: int = 0


def entry_lines(entries: Iterable[Entry]) -> Lines:
    rows = sorted(entries, key=lambda e: (e.path, e.superseded or 0.0))
    text = "".join([_dumps(_line(e)) + "\n" for e in rows])
    return Lines(text.encode("utf-8"), len(rows), sum(e.superseded is not None for e in rows))


def digest(entries: Iterable[Entry] | Lines) -> str:
    """MD5 of the entries as encoded: equal digests, equal catalogs (header aside)."""
    lines = entries if isinstance(entries, Lines) else entry_lines(entries)
    return hashlib.md5(lines.body).hexdigest()


def encode(header: Header, entries: Sequence[Entry] | Lines) -> bytes:
    """The compressed object (deterministic for the same header and entries)."""
    lines = entries if isinstance(entries, Lines) else entry_lines(entries)
    head = {
        "format": FORMAT,
        "version": header.version if lines.versions else PLAIN_VERSION,
        "host": header.host,
        "root": header.root,
        "remote": header.remote,
        "written_at": header.written_at,
        "entries": lines.count,
    }
    raw = json.dumps(head, ensure_ascii=False).encode() + b"\n" + lines.body
    return gzip.compress(raw, compresslevel=6, mtime=0)


def _entry(d: Any) -> Entry:
    if not isinstance(d, dict) or not isinstance(d.get("p"), str) or d.get("k") not in _CODE_KIND:
        raise CatalogError(f"bad catalog entry: {str(d)[:200]}")
    target: bytes | None = None
    if "l" in d:
        target = str(d["l"]).encode("utf-8")
    elif "lx" in d:
        target = bytes.fromhex(str(d["lx"]))
    kind = _CODE_KIND[d["k"]]
    size = int(d.get("s", 0))
    md5 = str(d["h"]) if d.get("h") else (EMPTY_MD5 if kind == "file" and size == 0 else None)
    return Entry(
        path=d["p"],
        kind=kind,
        size=size,
        md5=md5,
        mtime_ns=None if d.get("t") is None else int(d["t"]),
        mode=None if d.get("m") is None else int(d["m"]),
        file_id=None if d.get("i") is None else int(d["i"]),
        remote=str(d["r"]) if d.get("r") is not None else (d["p"] if "i" in d else None),
        target=target,
        state=str(d.get("x", "done")),
        superseded=None if d.get("v") is None else float(d["v"]),
    )


def decode(blob: bytes) -> tuple[Header, list[Entry]]:
    """Read a catalog object (its current entries); torn or foreign raises CatalogError."""
    header, entries, _ = decode_all(blob)
    return header, entries


def open_object(blob: bytes, kind: str) -> tuple[dict[str, Any], list[bytes]]:
    """The header and the entry lines of a catalog object of ``kind`` ("full" or "delta");
    a torn, foreign, newer or other-kind object raises CatalogError."""
    what = "catalog" if kind == "full" else "catalog delta"
    try:
        raw = gzip.decompress(blob)
    except (OSError, EOFError, zlib.error) as exc:
        raise CatalogError(f"the {what} is not a complete gzip object: {exc}") from None
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    try:
        head = json.loads(lines[0]) if lines else None
        if not isinstance(head, dict) or head.get("format") != FORMAT:
            raise CatalogError("not a syncagent catalog")
        if int(head.get("version", 0)) > DELTA_VERSION:
            raise CatalogError(
                f"catalog format {head.get('version')} is newer than this syncagent "
                f"understands ({DELTA_VERSION}): upgrade syncagent"
            )
    except (ValueError, TypeError) as exc:
        raise CatalogError(f"the {what} cannot be read: {exc}") from None
    if head.get("kind", "full") != kind:
        raise CatalogError(
            "a catalog delta, not a full catalog"
            if kind == "full"
            else "a full catalog, not a delta"
        )
    return head, lines[1:]


def header_of(head: dict[str, Any]) -> Header:
    """The :class:`Header` of an object's decoded first line (KeyError/ValueError if bad)."""
    return Header(
        host=str(head.get("host", "")),
        root=str(head.get("root", "")),
        remote=str(head.get("remote", "")),
        written_at=float(head.get("written_at", 0.0)),
        entries=int(head["entries"]),
        version=int(head["version"]),
    )


def decode_all(blob: bytes) -> tuple[Header, list[Entry], list[Entry]]:
    """Header, current entries, and previous versions (oldest first per path)."""
    head, lines = open_object(blob, "full")
    try:
        entries = [_entry(json.loads(line)) for line in lines]
        header = header_of(head)
    except (ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"the catalog cannot be read: {exc}") from None
    if header.entries != len(entries):
        raise CatalogError(f"the catalog holds {len(entries)} of {header.entries} entries")
    current = [e for e in entries if e.superseded is None]
    return header, current, [e for e in entries if e.superseded is not None]


def host_name() -> str:
    return os.uname().nodename
