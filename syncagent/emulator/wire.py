"""Reading an HTTP/1.1 request head (request line + headers) cheaply and within limits.

The standard library parses request headers with the full e-mail parser, which compiles a new
regular expression for every multipart request (each has its own boundary): about a tenth of
the emulator's CPU per small upload. Headers are simple ``name: value`` lines, so they are read
here directly, with the same limits as ``http.server`` (65,536 bytes a line, 100 headers).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["MAX_HEADERS", "MAX_LINE", "HeadError", "Headers", "read_headers"]

MAX_LINE = 65_536
MAX_HEADERS = 100


class _LineReader(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


class HeadError(Exception):
    """A request head that breaks the limits: ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Headers:
    """Case-insensitive header lookup (repeated headers are joined with ``, ``)."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._values: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            self._values[key] = f"{self._values[key]}, {value}" if key in self._values else value

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __len__(self) -> int:
        return len(self._values)


def read_headers(rfile: _LineReader) -> Headers:
    """Read header lines up to the blank line; raise HeadError past the limits."""
    items: list[tuple[str, str]] = []
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise HeadError(431, "Line too long")
        if line in (b"\r\n", b"\n", b""):
            return Headers(items)
        if len(items) >= MAX_HEADERS:
            raise HeadError(431, "Too many headers")
        if line[:1] in (b" ", b"\t") and items:  # obsolete line folding
            name, value = items[-1]
            items[-1] = (name, f"{value} {line.strip().decode('latin-1')}")
            continue
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or not name or name != name.strip():
            raise HeadError(400, "Bad header line")
        items.append((name, value.strip()))
