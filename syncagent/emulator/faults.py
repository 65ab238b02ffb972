"""Fault injection: what the emulator does wrong on purpose, and when.

Rules are consumed per call of an endpoint (``*`` matches every endpoint): answer a business
code, answer an HTTP status, drop the connection part-way through the request body, or wait
before answering. Download URLs take their own rules only (endpoint ``download`` or
``download/<fileID>``, never ``*`` or the random profile): ``drop`` cuts the answer's body
part-way, ``corrupt`` serves it with one byte changed. A seeded random profile mixes these
for soak tests and is reproducible. Deciding is pure bookkeeping here; the HTTP layer carries
the decision out.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Fault", "FaultPlan", "RandomProfile"]

Kind = Literal["code", "http", "drop", "delay", "corrupt"]


@dataclass(frozen=True)
class Fault:
    """One misbehaviour for one call.

    :param kind: ``code`` (business error on HTTP 200), ``http`` (an HTTP status with a JSON
        body), ``drop`` (close the connection after reading ``after_bytes`` of the body, no
        answer; on a download: after sending ``after_bytes`` of the answer's body),
        ``delay`` (sleep ``seconds``, then handle the call normally) or ``corrupt`` (downloads
        only: the byte at ``after_bytes`` of the answer's body, default its middle, is
        changed).
    """

    kind: Kind
    code: int = 0
    message: str = ""
    http_status: int = 500
    after_bytes: int | None = None
    seconds: float = 0.0


@dataclass
class _Rule:
    endpoint: str
    fault: Fault
    remaining: int | None  # None = every call until cleared


@dataclass(frozen=True)
class RandomProfile:
    """A reproducible mix of faults: each call misbehaves with ``probability``."""

    seed: int
    probability: float = 0.05
    kinds: tuple[Kind, ...] = ("code", "http", "drop", "delay")
    max_delay: float = 0.2
    endpoints: tuple[str, ...] = ()  # empty = all


_DEFAULT_MESSAGES = {
    429: "请求太频繁",
    401: "access_token无效",
    20103: "文件正在校验中,请间隔1秒后再试",
    1: "内部错误",
}


@dataclass
class FaultPlan:
    """Thread-safe list of pending faults plus an optional random profile."""

    _rules: list[_Rule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _random: RandomProfile | None = None
    _rng: random.Random | None = None
    injected: int = 0

    def add(self, endpoint: str, fault: Fault, times: int | None = 1) -> None:
        """Make the next ``times`` calls of ``endpoint`` misbehave (None = until cleared)."""
        if fault.kind == "code" and not fault.message:
            fault = Fault("code", fault.code, _DEFAULT_MESSAGES.get(fault.code, "injected"))
        with self._lock:
            self._rules.append(_Rule(endpoint.strip("/"), fault, times))

    def set_random(self, profile: RandomProfile | None) -> None:
        with self._lock:
            self._random = profile
            self._rng = None if profile is None else random.Random(profile.seed)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._random = None
            self._rng = None

    def pending(self) -> list[dict[str, object]]:
        with self._lock:
            return [
                {"endpoint": r.endpoint, "kind": r.fault.kind, "remaining": r.remaining}
                for r in self._rules
            ]

    def take_exact(self, *endpoints: str) -> Fault | None:
        """The first rule for one of ``endpoints`` by name (no ``*``, no random profile)."""
        with self._lock:
            for endpoint in endpoints:
                for rule in self._rules:
                    if rule.endpoint == endpoint:
                        if rule.remaining is not None:
                            rule.remaining -= 1
                            if rule.remaining <= 0:
                                self._rules.remove(rule)
                        self.injected += 1
                        return rule.fault
        return None

    def take(self, endpoint: str) -> Fault | None:
        """The fault for this call of ``endpoint``, if any (consumes one use of a rule)."""
        with self._lock:
            for rule in self._rules:
                if rule.endpoint in (endpoint, "*"):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining <= 0:
                            self._rules.remove(rule)
                    self.injected += 1
                    return rule.fault
            profile, rng = self._random, self._rng
            if profile is None or rng is None:
                return None
            if profile.endpoints and endpoint not in profile.endpoints:
                return None
            if rng.random() >= profile.probability:
                return None
            self.injected += 1
            kind = rng.choice(profile.kinds)
            if kind == "code":
                code = 20103 if endpoint.endswith("upload_complete") else rng.choice([429, 1])
                return Fault("code", code, _DEFAULT_MESSAGES[code])
            if kind == "http":
                return Fault("http", http_status=rng.choice([500, 502, 503, 504]))
            if kind == "drop":
                return Fault("drop", after_bytes=rng.randrange(0, 4096))
            return Fault("delay", seconds=rng.uniform(0, profile.max_delay))
