"""What the running agent is doing now, shared with ``syncagent status`` through a small file.

The agent (and a ``sync``) writes ``<state_dir>/activity.json`` (atomically, at most about
once a second while uploading): its PID, the phase (``scanning``, ``uploading``, ``idle``),
the current counts, bytes and rate, and the large files in flight with their bytes sent.
Events only mark it changed; a flusher thread (:meth:`ActivityFile.running`) writes it
within about a second, so the file follows the pass even when events stop for a while (the
last files of a batch, a large file's slices) and never lags behind what the ledger holds.
``status`` reads it and shows it only while that PID is alive, so a crashed agent never
looks busy. Writing it is best effort: a full or read-only state dir is logged once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["ActivityFile", "read_activity"]

log = logging.getLogger("syncagent")

FILE = "activity.json"
FLUSH_EVERY = 1.0  # seconds: how stale the file may be while something changes


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
        self._dirty = False  # changed since it was last written

    @contextlib.contextmanager
    def running(self, every: float = FLUSH_EVERY) -> Iterator[ActivityFile]:
        """While the block runs, a thread writes what changed every ``every`` seconds; the
        file is removed after it (the process is done)."""
        stop = threading.Event()

        def flush() -> None:
            while not stop.wait(every):
                with self._lock:
                    if self._dirty:
                        self._write(force=True)

        flusher = threading.Thread(target=flush, name="activity-flush", daemon=True)
        flusher.start()
        try:
            yield self
        finally:
            stop.set()
            flusher.join()
            self.clear()

    def _write(self, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._written < FLUSH_EVERY:
            self._dirty = True  # the flusher writes it
            return
        self._dirty = False
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

    def sending(self, rel_path: str, done: int, total: int) -> None:
        with self._lock:
            self._state.setdefault("in_flight", {})[rel_path] = [done, total]
            self._write()

    def file_done(self, rel_path: str, ok: bool) -> None:
        with self._lock:
            self._state["files_done"] = self._state.get("files_done", 0) + 1
            self._state["last_file"] = rel_path
            self._state.get("in_flight", {}).pop(rel_path, None)
            self._write()

    def snapshot(self) -> dict[str, Any]:
        """What the file says now (a copy)."""
        with self._lock:
            return dict(json.loads(json.dumps(self._state)))  # deep: in_flight changes

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
