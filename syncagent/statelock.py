"""One syncagent per state dir: an exclusive ``flock`` on ``<state_dir>/agent.lock``.

Held by the watch agent for its lifetime and by ``sync`` for its pass, so two of them never
upload the same files side by side. The file holds the owner's PID, which the refusal names.
The kernel drops the lock when the process dies, however it dies. A state dir that cannot be
used (read-only, a file in the way) is a :class:`~syncagent.errors.StateError` naming it; a
full one still gives the lock (the PID is only written when it fits).
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO

from syncagent.errors import StateError, StateLockedError

__all__ = ["StateLock"]

log = logging.getLogger("syncagent")


class StateLock:
    """An exclusive lock on ``<state_dir>/agent.lock`` holding the owner's PID."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "agent.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`StateLockedError` naming the holder's PID, or
        :class:`StateError` naming the state dir when it cannot be used at all."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            f = open(self.path, "a+")  # noqa: SIM115 - held until release()
        except OSError as exc:
            raise StateError(
                f"cannot use the state directory {self.path.parent}: cannot open "
                f"{self.path}: {exc.strerror or exc}"
            ) from exc
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "unknown"
            f.close()
            raise StateLockedError(
                f"another syncagent (pid {owner}) is already running on {self.path.parent}"
            ) from None
        self._file = f
        try:  # only for the refusal's message: a full disk must not stop the agent here
            pid = str(os.getpid()).encode()
            os.pwrite(f.fileno(), pid, 0)  # unbuffered: close() has nothing left to write
            os.ftruncate(f.fileno(), len(pid))
        except OSError as exc:
            log.warning("cannot write the PID to %s: %s", self.path, exc.strerror or exc)

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
