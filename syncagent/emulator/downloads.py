"""Download URLs: what a GET of a ``download_info`` URL answers, decided without HTTP.

A URL names a file ID and an expiry, signed with the emulator's key; once the expiry has
passed (``settings.download_ttl`` after ``download_info``) it answers 403. A ``Range: bytes=``
header with one range is answered 206 with ``Content-Range`` (a range past the end: 416);
no header, or one this does not understand, gets the whole file (200), as HTTP allows.
Faults for downloads come from the fault plan's ``download/<fileID>`` and ``download`` rules.

Pure except for the catalog lookup: the handler writes what :func:`answer` decides.
"""

from __future__ import annotations

import hmac
import re
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

from syncagent.emulator import files
from syncagent.emulator.catalog import FILE, Entry
from syncagent.emulator.core import Core
from syncagent.emulator.faults import Fault
from syncagent.errors import EmulatorRejection

__all__ = ["Answer", "answer", "parse_range"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class RangeNotSatisfiable(Exception):
    """The range starts at or past the end of the file."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, length)`` for a single ``bytes=`` range, None for the whole file.

    :raises RangeNotSatisfiable: a range that starts at or beyond ``size``.
    """
    if not header:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None  # several ranges, other units, garbage: the whole file (RFC 9110 allows)
    first, last = m.group(1), m.group(2)
    if not first:  # the last N bytes
        n = int(last)
        if n == 0:
            raise RangeNotSatisfiable
        start = max(0, size - n)
        return start, size - start
    start = int(first)
    end = min(size - 1, int(last)) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable
    return start, end - start + 1


@dataclass(frozen=True)
class Answer:
    """What to send: ``status`` 200 or 206, the bytes ``[start, start + length)`` of ``entry``
    (``size`` in all), and a fault to carry out while sending, if any."""

    entry: Entry
    status: int
    start: int
    length: int
    fault: Fault | None

    @property
    def content_range(self) -> str | None:
        if self.status != 206:
            return None
        return f"bytes {self.start}-{self.start + self.length - 1}/{self.entry.size}"


def answer(core: Core, path: str, query: str, range_header: str | None) -> Answer:
    """Decide the answer to ``GET /download/<id>/<name>?expires=..&sign=..``.

    :raises EmulatorRejection: 404 (no such file), 403 (bad signature or expired), 416.
    """
    parts = path.split("/")  # "", "download", id, name
    params = dict(parse_qsl(query))
    try:
        file_id, expires = int(parts[2]), int(params.get("expires", "0"))
    except (IndexError, ValueError):
        raise EmulatorRejection(404, "Not Found", http_status=404) from None
    expected = files.download_sign(core.download_key, file_id, expires)
    if not hmac.compare_digest(params.get("sign", "").encode(), expected.encode()) or (
        expires < time.time()
    ):
        raise EmulatorRejection(403, "下载链接无效或已过期", http_status=403)
    entry = core.catalog.get(file_id)
    if entry is None or entry.type != FILE:
        raise EmulatorRejection(404, "Not Found", http_status=404)
    try:
        wanted = parse_range(range_header, entry.size)
    except RangeNotSatisfiable:
        raise EmulatorRejection(416, "Range Not Satisfiable", http_status=416) from None
    fault = core.faults.take_exact(f"download/{file_id}", "download")
    if wanted is None:
        return Answer(entry, 200, 0, entry.size, fault)
    return Answer(entry, 206, wanted[0], wanted[1], fault)
