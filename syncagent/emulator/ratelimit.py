"""Per-endpoint request limits of 123pan, and a record of the rates clients actually used.

The free-tier table is the documented one (developer notes, 2025-10), completed with the values
rclone's authors had confirmed by 123pan's support for the upload endpoints; ``vip`` is the VIP
column; ``off`` disables limiting. An endpoint missing from a table is unlimited.

A limit of ``q`` requests per second is enforced as a sliding window: at most ``floor(q)`` calls
in any 1-second window (for ``q < 1``: one call per ``1/q`` seconds). This is stricter than a
token bucket with a burst, so a client that passes here stays under the limit however the real
service counts. The clock is injectable.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["FREE", "PRESETS", "VIP", "RateLimiter", "RateStats"]

FREE: Mapping[str, float] = {
    "api/v1/access_token": 8,
    "api/v1/user/info": 10,
    "api/v2/file/list": 5,
    "api/v1/file/list": 0.2,
    "upload/v1/file/mkdir": 5,
    "api/v1/file/move": 3,
    "api/v1/file/delete": 1,
    "api/v1/file/trash": 5,
    "api/v1/file/infos": 10,
    "api/v1/file/download_info": 2,
    "upload/v2/file/create": 1,
    "upload/v2/file/upload_complete": 5,
}
VIP: Mapping[str, float] = {
    "api/v1/access_token": 10,
    "api/v1/user/info": 10,
    "api/v2/file/list": 10,
    "api/v1/file/list": 10,
    "upload/v1/file/mkdir": 20,
    "api/v1/file/move": 10,
    "api/v1/file/delete": 10,
    "api/v1/file/infos": 10,
    "upload/v2/file/create": 20,
    "upload/v2/file/upload_complete": 20,
}
PRESETS: Mapping[str, Mapping[str, float]] = {"free": FREE, "vip": VIP, "off": {}}


@dataclass(frozen=True)
class RateStats:
    """What one endpoint saw: calls, calls refused with 429, and the most calls in any 1 s."""

    calls: int
    limited: int
    peak_per_second: int


class _Window:
    def __init__(self, qps: float) -> None:
        self.span = 1.0 if qps >= 1 else 1.0 / qps
        self.cap = max(1, math.floor(qps)) if qps >= 1 else 1
        self.accepted: deque[float] = deque()


class RateLimiter:
    """Decides, per endpoint, whether a call is within its limit; thread-safe.

    :param limits: endpoint -> requests per second.
    :param clock: monotonic seconds.
    """

    def __init__(
        self, limits: Mapping[str, float], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows = {name: _Window(q) for name, q in limits.items()}
        self._arrivals: dict[str, deque[float]] = {}
        self._calls: dict[str, int] = {}
        self._limited: dict[str, int] = {}
        self._peak: dict[str, int] = {}

    def set_limits(self, limits: Mapping[str, float]) -> None:
        with self._lock:
            self._windows = {name: _Window(q) for name, q in limits.items()}

    def limits(self) -> dict[str, float]:
        with self._lock:
            return {n: (w.cap / w.span) for n, w in self._windows.items()}

    def admit(self, endpoint: str) -> bool:
        """Count one call; False means answer 429."""
        now = self._clock()
        with self._lock:
            self._calls[endpoint] = self._calls.get(endpoint, 0) + 1
            arrivals = self._arrivals.setdefault(endpoint, deque())
            arrivals.append(now)
            while arrivals and arrivals[0] <= now - 1.0:
                arrivals.popleft()
            self._peak[endpoint] = max(self._peak.get(endpoint, 0), len(arrivals))
            window = self._windows.get(endpoint)
            if window is None:
                return True
            while window.accepted and window.accepted[0] <= now - window.span:
                window.accepted.popleft()
            if len(window.accepted) >= window.cap:
                self._limited[endpoint] = self._limited.get(endpoint, 0) + 1
                return False
            window.accepted.append(now)
            return True

    def stats(self) -> dict[str, RateStats]:
        with self._lock:
            return {
                name: RateStats(calls, self._limited.get(name, 0), self._peak.get(name, 0))
                for name, calls in self._calls.items()
            }

    def reset_stats(self) -> None:
        with self._lock:
            self._arrivals.clear()
            self._calls.clear()
            self._limited.clear()
            self._peak.clear()
            for w in self._windows.values():
                w.accepted.clear()
