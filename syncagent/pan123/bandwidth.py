"""Pacing the bytes of uploads (or downloads) to a bandwidth limit, across every connection.

One :class:`Throttle` per direction and client: all files and slices in flight share it, so
the limit is the client's total, as rclone's ``--bwlimit`` is. The rate is asked of a
callable before each piece, so a timetable that changes at 23:00, or a limit changed by a
reload, applies to the next piece of every transfer.

Each :meth:`Throttle.take` books its bytes on one timeline and waits until its booking is
due; an idle throttle lets a short burst through. Waits are cut into short steps, so a rate
lifted (``off``) frees waiting transfers at once and a shutdown interrupts them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from syncagent.errors import Interrupted

__all__ = ["Throttle"]

BURST_SECONDS = 0.1  # how far bytes may run ahead of the rate (a burst after an idle spell)
_STEP = 0.25  # the longest single wait: the rate and a shutdown are checked this often
MIN_PIECE = 16 * 1024  # the smallest piece :meth:`Throttle.piece` asks for


class Throttle:
    """Paces bytes to ``rate()`` bytes per second (0: no limit) for any number of threads.

    :param cancelled: set by a shutdown; a waiting :meth:`take` then raises
        :class:`~syncagent.errors.Interrupted` (the transfer resumes on the next start).
    :param clock: monotonic seconds; ``wait(seconds)`` waits (both injectable for tests).
    """

    def __init__(
        self,
        rate: Callable[[], int],
        *,
        cancelled: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], object] | None = None,
    ) -> None:
        self.rate = rate
        self._cancelled = cancelled or threading.Event()
        self._clock = clock
        self._wait = wait or self._cancelled.wait
        self._lock = threading.Lock()
        self._due = 0.0  # clock time at which everything booked so far has passed

    def piece(self, n: int) -> int:
        """How much of ``n`` bytes to move at once: about a quarter second's worth at the
        rate (at least ``MIN_PIECE``). At a low rate a 256 KiB piece would leave the
        connection silent for minutes, and a server drops a connection that is silent for
        long (nginx: 60 s); small pieces keep bytes flowing."""
        rate = self.rate()
        return n if rate <= 0 else max(1, min(n, max(MIN_PIECE, rate // 4)))

    def take(self, n: int) -> None:
        """Return once ``n`` more bytes may go at the current rate."""
        rate = self.rate()
        if rate <= 0 or n <= 0:
            return
        with self._lock:
            now = self._clock()
            self._due = max(self._due, now) + n / rate
            until = self._due - BURST_SECONDS
        while (left := until - self._clock()) > 0:
            if self._cancelled.is_set():
                raise Interrupted("stopped while waiting for the bandwidth limit")
            if self.rate() <= 0:  # the limit was lifted meanwhile
                with self._lock:
                    self._due = 0.0
                return
            self._wait(min(left, _STEP))
        if self._cancelled.is_set():
            raise Interrupted("stopped while waiting for the bandwidth limit")
