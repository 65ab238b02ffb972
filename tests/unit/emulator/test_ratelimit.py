"""Unit tests of the emulator's sliding-window rate limiter, on a fake clock (no sleeping)."""

from __future__ import annotations

import pytest

from syncagent.emulator.ratelimit import FREE, PRESETS, VIP, RateLimiter, RateStats


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def at(self, t: float) -> Clock:
        self.now = 1000.0 + t
        return self


def admitted(
    limiter: RateLimiter, clock: Clock, times: list[float], name: str = "ep"
) -> list[bool]:
    out = []
    for t in times:
        clock.at(t)
        out.append(limiter.admit(name))
    return out


def test_integer_qps_is_a_sliding_one_second_window() -> None:
    clock = Clock()
    limiter = RateLimiter({"ep": 2}, clock)
    got = admitted(limiter, clock, [0.0, 0.5, 0.9, 0.99, 1.0, 1.2, 1.5, 1.6])
    # 0.9/0.99: two already in (0, 0.5]; 1.0: the call at 0.0 left the window;
    # 1.2: 0.5 and 1.0 inside; 1.5: 0.5 left; 1.6: 1.0 and 1.5 inside
    assert got == [True, True, False, False, True, False, True, False]


def test_refused_calls_do_not_use_up_the_window() -> None:
    clock = Clock()
    limiter = RateLimiter({"ep": 1}, clock)
    assert admitted(limiter, clock, [0.0] + [0.1 * k for k in range(1, 10)] + [1.0]) == [True] + [
        False
    ] * 9 + [True]


def test_burst_of_exactly_the_limit() -> None:
    clock = Clock()
    limiter = RateLimiter({"ep": 8}, clock)
    got = admitted(limiter, clock, [0.0] * 9)
    assert got == [True] * 8 + [False]
    assert admitted(limiter, clock, [0.999]) == [False]
    assert admitted(limiter, clock, [1.0] * 9) == [True] * 8 + [False]


def test_fractional_qps_above_one_rounds_down() -> None:
    clock = Clock()
    limiter = RateLimiter({"ep": 2.5}, clock)
    assert admitted(limiter, clock, [0.0, 0.0, 0.0]) == [True, True, False]
    assert limiter.limits() == {"ep": 2.0}


def test_qps_below_one_spaces_calls() -> None:
    clock = Clock()
    limiter = RateLimiter({"slow": 0.2}, clock)  # one call per 5 s
    got = admitted(limiter, clock, [0.0, 1.0, 4.99, 5.0, 5.1, 9.99, 10.0], "slow")
    assert got == [True, False, False, True, False, False, True]
    assert limiter.limits() == {"slow": pytest.approx(0.2)}


def test_half_qps_is_one_call_per_two_seconds() -> None:
    clock = Clock()
    limiter = RateLimiter({"ep": 0.5}, clock)
    assert admitted(limiter, clock, [0.0, 1.9, 2.0, 3.0, 4.0]) == [True, False, True, False, True]


def test_endpoints_are_independent_and_unknown_ones_unlimited() -> None:
    clock = Clock()
    limiter = RateLimiter({"a": 1, "b": 1}, clock)
    assert admitted(limiter, clock, [0.0, 0.0], "a") == [True, False]
    assert admitted(limiter, clock, [0.0, 0.0], "b") == [True, False]
    assert admitted(limiter, clock, [0.0] * 100, "other") == [True] * 100


def test_stats_count_calls_limited_and_peak() -> None:
    clock = Clock()
    limiter = RateLimiter({"ep": 2}, clock)
    admitted(limiter, clock, [0.0, 0.1, 0.2, 0.3])  # 2 pass, 2 limited, 4 within 1 s
    admitted(limiter, clock, [5.0, 7.0])  # spread out: 1 per second
    admitted(limiter, clock, [0.0, 0.0, 0.0], "free-for-all")
    stats = limiter.stats()
    assert stats["ep"] == RateStats(calls=6, limited=2, peak_per_second=4)
    assert stats["free-for-all"] == RateStats(calls=3, limited=0, peak_per_second=3)
    assert set(stats) == {"ep", "free-for-all"}


def test_peak_uses_a_sliding_second() -> None:
    clock = Clock()
    limiter = RateLimiter({}, clock)
    # 0.0 and 1.0 are exactly 1 s apart: never in one window; (0.4, 1.4] holds four calls
    admitted(limiter, clock, [0.0, 0.5, 0.9, 1.0, 1.4])
    assert limiter.stats()["ep"].peak_per_second == 4
    limiter2 = RateLimiter({}, clock)
    admitted(limiter2, clock, [0.0, 1.0, 2.0, 3.0])
    assert limiter2.stats()["ep"].peak_per_second == 1


def test_reset_stats_clears_counts_and_windows() -> None:
    clock = Clock()
    limiter = RateLimiter({"ep": 1}, clock)
    assert admitted(limiter, clock, [0.0, 0.1]) == [True, False]
    limiter.reset_stats()
    assert limiter.stats() == {}
    assert admitted(limiter, clock, [0.2]) == [True]  # the window was emptied too
    assert limiter.stats()["ep"] == RateStats(1, 0, 1)


def test_set_limits_replaces_the_table() -> None:
    clock = Clock()
    limiter = RateLimiter({"ep": 1}, clock)
    assert admitted(limiter, clock, [0.0, 0.0]) == [True, False]
    limiter.set_limits({"ep": 3})
    assert admitted(limiter, clock, [0.1, 0.1, 0.1, 0.1]) == [True, True, True, False]
    limiter.set_limits({})
    assert admitted(limiter, clock, [0.2] * 20) == [True] * 20
    assert limiter.limits() == {}
    assert limiter.stats()["ep"].calls == 26


def test_presets_match_the_reference_table() -> None:
    assert PRESETS["off"] == {}
    assert PRESETS["free"] is FREE and PRESETS["vip"] is VIP
    assert FREE["api/v1/access_token"] == 8 and VIP["api/v1/access_token"] == 10
    assert FREE["api/v2/file/list"] == 5 and VIP["api/v2/file/list"] == 10
    assert FREE["api/v1/file/list"] == 0.2
    assert FREE["upload/v1/file/mkdir"] == 5 and VIP["upload/v1/file/mkdir"] == 20
    assert FREE["api/v1/file/move"] == 3 and FREE["api/v1/file/delete"] == 1
    assert FREE["upload/v2/file/create"] == 1 and VIP["upload/v2/file/create"] == 20
    assert FREE["upload/v2/file/upload_complete"] == 5
    assert "upload/v2/file/slice" not in FREE
    assert "upload/v2/file/single/create" not in FREE
    for name, q in FREE.items():
        assert VIP.get(name, float("inf")) >= q, name
