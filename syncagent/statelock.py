"""One syncagent per state dir: an exclusive ``flock`` on ``<state_dir>/agent.lock``.

Held by the watch agent for its lifetime and by ``sync`` for its pass, so two of them never
upload the same files side by side. The file holds the owner's PID, which the refusal names.
The kernel drops the lock when the process dies, however it dies.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from syncagent.errors import StateLockedError

__all__ = ["StateLock"]


class StateLock:
    """An exclusive lock on ``<state_dir>/agent.lock`` holding the owner's PID."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "agent.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`StateLockedError` naming the holder's PID."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "unknown"
            f.close()
            raise StateLockedError(
                f"another syncagent (pid {owner}) is already running on {self.path.parent}"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
