"""The progress callbacks a backup pass and a restore both report through (the CLI's live
block and the agent's activity file draw them), and the silent default."""

from __future__ import annotations

from typing import Protocol

__all__ = ["NoProgress", "Progress"]


class Progress(Protocol):
    """Files and bytes to do, bytes done, each file as it ends."""

    def start(self, files: int, total_bytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def file_done(self, rel_path: str, ok: bool) -> None: ...


class NoProgress:
    """Progress that nobody watches."""

    def start(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def file_done(self, rel_path: str, ok: bool) -> None:
        pass
