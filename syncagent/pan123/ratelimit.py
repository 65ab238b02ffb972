"""Client-side request pacing: never send an endpoint more calls than 123pan allows.

A limit of ``q`` calls per second is kept as a sliding window, the way the server may count:
at most ``floor(q)`` calls in any window of ``1 s + margin`` (for ``q < 1``: one call per
``1/q s + margin``). The margin absorbs network jitter between sending and arrival. One
:class:`Pacer` is shared by all threads of a client; the clock and sleep are injectable so unit
tests never wait.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

from syncagent.errors import Interrupted

__all__ = ["DEFAULT_MARGIN", "Pacer"]

DEFAULT_MARGIN = 0.05


class _Window:
    def __init__(self, qps: float, margin: float) -> None:
        self.cap = max(1, math.floor(qps)) if qps >= 1 else 1
        self.span = (1.0 if qps >= 1 else 1.0 / qps) + margin
        self.sent: deque[float] = deque()


class Pacer:
    """Waits, per endpoint, until one more call fits in the limit.

    :param limits: endpoint name -> calls per second; missing endpoints are not paced.
    :param clock: monotonic seconds.
    :param sleep: how to wait.
    :param cancelled: once set (a shutdown), a call that would have to wait raises
        :class:`~syncagent.errors.Interrupted` instead.
    """

    def __init__(
        self,
        limits: Mapping[str, float],
        *,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        cancelled: threading.Event | None = None,
    ) -> None:
        self._cancelled = cancelled or threading.Event()
        self._windows = {name: _Window(q, margin) for name, q in limits.items() if q > 0}
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent_by_thread = threading.local()  # endpoint -> when this thread's call was counted
        self.waited = 0.0  # total seconds spent waiting, for status displays

    def acquire(self, endpoint: str) -> float:
        """Block until a call of ``endpoint`` may be sent, and count it; returns the wait."""
        window = self._windows.get(endpoint)
        if window is None:
            return 0.0
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                # Same expression as the delay below, so "left the window" and "time left > 0"
                # never disagree by a rounding error (a 0 s wait, forever on a stepped clock).
                while window.sent and window.sent[0] + window.span <= now:
                    window.sent.popleft()
                if len(window.sent) < window.cap:
                    window.sent.append(now)
                    self._own_calls()[endpoint] = now
                    self.waited += waited
                    return waited
                delay = window.sent[0] + window.span - now
            if self._cancelled.is_set():
                raise Interrupted(f"{endpoint}: not sent: stopping")
            self._sleep(delay)
            waited += delay

    def release(self, endpoint: str) -> None:
        """This thread's call of ``endpoint`` has its answer: count it from now on, not from
        when it was sent.

        123pan counts a call when it arrives, some time after it was sent and before its answer
        came back. Counted from the answer, the next call leaves a full window after this one
        arrived, however differently the network (or a busy machine) delayed the two.
        """
        sent = self._own_calls().pop(endpoint, None)
        window = self._windows.get(endpoint)
        if window is None or sent is None:
            return
        with self._lock:
            if sent in window.sent:  # else already out of the window, or cleared by a penalty
                window.sent.remove(sent)
            window.sent.append(self._clock())

    def _own_calls(self) -> dict[str, float]:
        calls: dict[str, float] | None = getattr(self._sent_by_thread, "calls", None)
        if calls is None:
            calls = self._sent_by_thread.calls = {}
        return calls

    def penalize(self, endpoint: str) -> None:
        """After a 429, treat the window as full from now, so the next call waits a span."""
        window = self._windows.get(endpoint)
        if window is None:
            return
        with self._lock:
            now = self._clock()
            window.sent.clear()
            window.sent.extend([now] * window.cap)
