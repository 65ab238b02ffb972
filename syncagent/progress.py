"""The progress callbacks a backup pass and a restore both report through (the CLI's live
block and the agent's activity file draw them), the silent default, and a fan-out to both."""

from __future__ import annotations

from typing import Protocol

__all__ = ["LARGE_FILE", "Both", "NoProgress", "Progress"]

LARGE_FILE = 8 << 20  # a file this large is shown in flight with its own percentage


class Progress(Protocol):
    """Files and bytes to do, bytes done as they go, large files in flight, each file as it
    ends."""

    def start(self, files: int, total_bytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def sending(self, rel_path: str, done: int, total: int) -> None:
        """A file of :data:`LARGE_FILE` or more has ``done`` of its ``total`` bytes sent."""
        ...

    def file_done(self, rel_path: str, ok: bool) -> None: ...


class NoProgress:
    """Progress that nobody watches."""

    def start(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def sending(self, rel_path: str, done: int, total: int) -> None:
        pass

    def file_done(self, rel_path: str, ok: bool) -> None:
        pass


class Both:
    """Reports to two Progress at once (the terminal's block and the activity file)."""

    def __init__(self, first: Progress, second: Progress) -> None:
        self._all = (first, second)

    def start(self, files: int, total_bytes: int) -> None:
        for p in self._all:
            p.start(files, total_bytes)

    def advance(self, nbytes: int) -> None:
        for p in self._all:
            p.advance(nbytes)

    def sending(self, rel_path: str, done: int, total: int) -> None:
        for p in self._all:
            p.sending(rel_path, done, total)

    def file_done(self, rel_path: str, ok: bool) -> None:
        for p in self._all:
            p.file_done(rel_path, ok)
