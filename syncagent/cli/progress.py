"""The live progress block of ``sync`` on a terminal, drawn by rich, with log lines above it.

One block refreshed on a timer (not on every event, so thousands of small files cost nothing
to draw): files done/total, bytes done/total, rate, ETA and elapsed time, and under it one
indented line per large file in flight with its own percentage. Log records go
through rich's own handler on the same console, so they are printed above the block instead
of tearing it. Used only when stderr is a terminal; anything else gets plain log lines.

rich is imported here only, and only for a terminal: a scripted or no-op ``sync`` never pays
for its import.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING

from syncagent.cli.common import mb, shown

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["LiveProgress", "console_handler", "stderr_console"]

MAX_SHOWN = 4  # large files in flight listed under the bar


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def console_handler(console: Console) -> logging.Handler:
    """A logging handler that prints on ``console``, above any live block."""
    from rich.logging import RichHandler

    return RichHandler(
        console=console,
        show_path=False,
        markup=False,
        rich_tracebacks=False,
        log_time_format="%H:%M:%S",
    )


class LiveProgress:
    """The engine's Progress protocol drawn as one live rich block.

    Use as a context manager around the pass; the block stays on screen when it ends.
    """

    def __init__(self, console: Console, verb: str = "uploading") -> None:
        """``verb``: what the block says while files go (``restore`` downloads)."""
        from rich.console import RenderableType
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.text import Text

        self._lock = threading.Lock()
        self._verb = verb
        in_flight: dict[str, tuple[int, int]] = {}
        self._in_flight = in_flight

        class Block(Progress):
            """The bar's line, then the large files in flight (a few, oldest first)."""

            def get_renderables(self) -> Iterable[RenderableType]:
                yield self.make_tasks_table(self.tasks)
                for rel, (done, total) in list(in_flight.items())[:MAX_SHOWN]:
                    yield Text(
                        f"  {shown(rel)}: {100 * done // max(1, total)}% "
                        f"({mb(done)} of {mb(total)})",
                        no_wrap=True,
                        overflow="ellipsis",
                    )

        self._progress = Block(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[files_done]}/{task.fields[files]} files"),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            console=console,
            refresh_per_second=4,
        )
        # hidden while the scan runs: the block appears once there is something to send
        self._task = self._progress.add_task(
            verb, total=None, files=0, files_done=0, start=False, visible=False
        )

    def __enter__(self) -> LiveProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    # -- the engine's Progress protocol ---------------------------------------------------

    def start(self, files: int, total_bytes: int) -> None:
        with self._lock:
            self._progress.reset(
                self._task,
                total=total_bytes,
                description=self._verb,
                files=files,
                files_done=0,
                visible=True,
            )
            self._progress.start_task(self._task)

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self._progress.advance(self._task, nbytes)

    def sending(self, rel_path: str, done: int, total: int) -> None:
        with self._lock:
            self._in_flight[rel_path] = (done, total)

    def file_done(self, rel_path: str, ok: bool) -> None:
        with self._lock:
            self._in_flight.pop(rel_path, None)
            task = self._progress.tasks[0]
            done = int(task.fields.get("files_done", 0)) + 1
            self._progress.update(
                self._task,
                files_done=done,
                description="done" if done >= int(task.fields.get("files", 0)) else self._verb,
            )
