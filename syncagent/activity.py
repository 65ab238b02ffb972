"""What the running agent is doing now, shared with ``syncagent status`` through a small file.

The agent writes ``<state_dir>/activity.json`` (atomically, at most about once a second while
uploading): its PID, the phase (``scanning``, ``uploading``, ``idle``), the current counts and
rate. ``status`` reads it and shows it only while that PID is alive, so a crashed agent never
looks busy. Writing it is best effort: a full or read-only state dir is logged once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["ActivityFile", "read_activity"]

log = logging.getLogger("syncagent")

FILE = "activity.json"


class ActivityFile:
    """The agent's side: implements the engine's Progress and records phases."""

    def __init__(self, state_dir: Path, clock: Any = time.time) -> None:
        self.path = state_dir / FILE
        self._clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"pid": os.getpid(), "phase": "starting"}
        self._written = 0.0
        self._t0 = 0.0
        self._warned = False

    def _write(self, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._written < 1.0:
            return
        self._written = now
        self._state["updated_at"] = now
        tmp = self.path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self._state), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:  # only status reads it: a full state dir must not stop uploads
            if not self._warned:
                log.warning("cannot write %s: %s", self.path, exc.strerror or exc)
                self._warned = True

    def phase(self, phase: str, **details: Any) -> None:
        with self._lock:
            self._state = {"pid": os.getpid(), "phase": phase, **details}
            self._write(force=True)

    # -- the engine's Progress protocol ---------------------------------------------------

    def start(self, files: int, total_bytes: int) -> None:
        with self._lock:
            self._t0 = self._clock()
            self._state = {
                "pid": os.getpid(),
                "phase": "uploading",
                "files": files,
                "files_done": 0,
                "bytes": total_bytes,
                "bytes_done": 0,
            }
            self._write(force=True)

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self._state["bytes_done"] = self._state.get("bytes_done", 0) + nbytes
            elapsed = max(1e-6, self._clock() - self._t0)
            self._state["rate"] = self._state["bytes_done"] / elapsed
            self._write()

    def file_done(self, rel_path: str, ok: bool) -> None:
        with self._lock:
            self._state["files_done"] = self._state.get("files_done", 0) + 1
            self._state["last_file"] = rel_path
            self._write()

    @property
    def current_phase(self) -> str:
        with self._lock:
            return str(self._state.get("phase", "starting"))

    def clear(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


def read_activity(state_dir: Path) -> dict[str, Any] | None:
    """The running agent's activity, or None when no agent is alive."""
    try:
        state = json.loads((state_dir / FILE).read_text(encoding="utf-8"))
        os.kill(int(state["pid"]), 0)  # raises if that process is gone
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return dict(state)
