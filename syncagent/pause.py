"""Pausing the watch agent: ``syncagent pause [--for DURATION]`` and ``syncagent resume``.

A pause is a file in the state dir, ``paused.json`` (``{"since": ..., "until": ... or
null}``, wall-clock seconds), written atomically by ``pause`` and removed by ``resume``. A file
is the one channel that works for every way the agent runs: another terminal, another user
with access to the state dir, ``podman exec``, and an agent started later (a pause set while
no agent runs holds when one starts). The agent looks at it about once a second
(:class:`PauseWatch`): while it holds, no pass starts and a pass under way lets its uploads
in flight finish and starts no other; on resume (or when ``until`` has passed) a full pass
catches up on everything that changed meanwhile. ``sync``, a command a person runs on
purpose, does not look at it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from syncagent.app import human_time

__all__ = ["PAUSE_FILE", "Pause", "PauseWatch", "clear_pause", "read_pause", "write_pause"]

PAUSE_FILE = "paused.json"


@dataclass(frozen=True)
class Pause:
    """A pause: since when, and until when (None: until ``syncagent resume``)."""

    since: float
    until: float | None = None
    unreadable: bool = False  # the file is there but is not a pause: held until resumed

    def over(self, now: float) -> bool:
        return self.until is not None and now >= self.until

    def describe(self) -> str:
        """``paused until 18:30`` / ``paused since 14:02 until syncagent resume``."""
        if self.unreadable:
            return f"paused ({PAUSE_FILE} cannot be read; `syncagent resume` removes it)"
        if self.until is None:
            return f"paused since {human_time(self.since)} until `syncagent resume`"
        return f"paused until {human_time(self.until)}"


def write_pause(state_dir: Path, until: float | None, now: float | None = None) -> Pause:
    """Pause the agent of ``state_dir`` (made if missing) until ``until`` (None: until
    resumed). Atomic: an agent reading at that moment sees the old file or the new one."""
    pause = Pause(time.time() if now is None else now, until)
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / PAUSE_FILE
    tmp = path.with_name(f".{PAUSE_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"since": pause.since, "until": pause.until}), encoding="utf-8")
    os.replace(tmp, path)
    return pause


def clear_pause(state_dir: Path) -> Pause | None:
    """Resume: remove the pause file; the pause that held (None: there was none, or it
    had ended)."""
    held = read_pause(state_dir)
    with contextlib.suppress(FileNotFoundError):
        (state_dir / PAUSE_FILE).unlink()
    return held


def read_pause(state_dir: Path, now: float | None = None) -> Pause | None:
    """The pause in force at ``now`` (default: the time now), or None. A file that cannot
    be read as a pause counts as one until resumed: a person asked for a pause, and a
    backup that goes on after such a request would be the surprise."""
    try:
        text = (state_dir / PAUSE_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return Pause(0.0, unreadable=True)
    try:
        raw = json.loads(text)
        pause = Pause(float(raw["since"]), None if raw["until"] is None else float(raw["until"]))
    except (ValueError, KeyError, TypeError):
        return Pause(0.0, unreadable=True)
    return None if pause.over(time.time() if now is None else now) else pause


class PauseWatch:
    """The agent's view of the pause file, read at most every ``every`` seconds."""

    def __init__(
        self,
        state_dir: Path,
        *,
        every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state_dir = state_dir
        self._every = every
        self._clock = clock
        self._checked = -float("inf")
        self._current: Pause | None = None

    def expire(self) -> None:
        """Read the file again on the next :meth:`current` (a pause was just seen)."""
        self._checked = -float("inf")

    def current(self) -> Pause | None:
        """The pause in force (the file read again once ``every`` has passed)."""
        now = self._clock()
        if now - self._checked >= self._every:
            self._checked = now
            self._current = read_pause(self._state_dir)
        return self._current
