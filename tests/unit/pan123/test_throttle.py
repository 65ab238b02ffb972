"""The throttle's arithmetic on a fake clock: bytes wait exactly as long as the rate needs
(less the burst), an idle spell lets one burst through, a rate of 0 waits for nothing, a limit
lifted during a wait ends it, and a shutdown interrupts it."""

from __future__ import annotations

import io
import threading

import pytest

from syncagent.errors import Interrupted
from syncagent.pan123.bandwidth import BURST_SECONDS, MIN_PIECE, Throttle
from syncagent.pan123.multipart import MultipartBody


class FakeTime:
    """A clock that moves only when something waits on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        assert seconds > 0
        self.waits.append(seconds)
        self.now += seconds


def test_pieces_wait_as_long_as_the_rate_needs() -> None:
    fake = FakeTime()
    throttle = Throttle(lambda: 100_000, clock=fake.clock, wait=fake.wait)
    start = fake.now
    for _ in range(10):
        throttle.take(50_000)  # 10 x 0.5 s of bytes
    assert fake.now - start == pytest.approx(5.0 - BURST_SECONDS)
    assert max(fake.waits) <= 0.25 + 1e-9  # cut into short steps


def test_an_idle_throttle_lets_one_burst_through_and_no_more() -> None:
    fake = FakeTime()
    throttle = Throttle(lambda: 100_000, clock=fake.clock, wait=fake.wait)
    throttle.take(int(100_000 * BURST_SECONDS))  # the burst: no wait
    assert fake.waits == []
    fake.now += 60  # idle for a minute: the credit does not pile up
    throttle.take(int(100_000 * BURST_SECONDS))
    throttle.take(100_000)
    assert sum(fake.waits) == pytest.approx(1.0)


def test_no_limit_waits_for_nothing() -> None:
    fake = FakeTime()
    throttle = Throttle(lambda: 0, clock=fake.clock, wait=fake.wait)
    for _ in range(100):
        throttle.take(10**9)
    assert fake.waits == []


def test_a_limit_lifted_during_a_wait_ends_it() -> None:
    fake = FakeTime()
    rate = [10_000]
    throttle = Throttle(lambda: rate[0], clock=fake.clock, wait=fake.wait)

    def wait(seconds: float) -> None:
        fake.wait(seconds)
        if len(fake.waits) == 3:
            rate[0] = 0

    throttle._wait = wait
    throttle.take(1_000_000)  # 100 s at the old rate
    assert len(fake.waits) == 3
    throttle.take(1_000_000)  # and what comes after is not held by the old booking
    assert len(fake.waits) == 3


def test_a_shutdown_interrupts_a_wait() -> None:
    cancelled = threading.Event()
    fake = FakeTime()

    def wait(seconds: float) -> None:
        fake.wait(seconds)
        cancelled.set()

    throttle = Throttle(lambda: 10_000, cancelled=cancelled, clock=fake.clock, wait=wait)
    with pytest.raises(Interrupted):
        throttle.take(1_000_000)
    assert len(fake.waits) == 1


def test_threads_share_one_timeline() -> None:
    """Four threads taking at once are paced as one stream: the last is done after all the
    bytes' time, not a quarter of it."""
    lock = threading.Lock()
    fake = FakeTime()
    done: list[float] = []

    def wait(seconds: float) -> None:
        with lock:
            fake.wait(seconds)

    throttle = Throttle(lambda: 100_000, clock=fake.clock, wait=wait)

    def worker() -> None:
        for _ in range(5):
            throttle.take(20_000)
        done.append(fake.now)

    start = fake.now
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(done) == 4
    assert max(done) - start >= 4 * 5 * 20_000 / 100_000 - BURST_SECONDS - 1e-9


def test_pieces_are_a_quarter_second_at_the_rate_so_a_slow_link_never_falls_silent() -> None:
    rate = [4_000]
    throttle = Throttle(lambda: rate[0])
    assert throttle.piece(256 * 1024) == MIN_PIECE  # 4 s of bytes: not 65 s
    rate[0] = 400_000
    assert throttle.piece(256 * 1024) == 100_000
    rate[0] = 0
    assert throttle.piece(256 * 1024) == 256 * 1024
    assert throttle.piece(10) == 10


def test_a_throttled_multipart_body_hands_out_small_paced_pieces() -> None:
    fake = FakeTime()
    throttle = Throttle(lambda: 40_000, clock=fake.clock, wait=fake.wait)
    data = bytes(range(256)) * 400  # 102,400 bytes
    body = MultipartBody({"a": "b"}, "file", "f.bin", io.BytesIO(data), throttle)
    head = body.read(256 * 1024)
    pieces = list(iter(lambda: body.read(256 * 1024), b""))
    tail = pieces.pop()
    assert head.endswith(b"\r\n\r\n") and tail.startswith(b"\r\n--")
    assert b"".join(pieces) == data
    assert max(len(p) for p in pieces) == MIN_PIECE
    assert fake.now - 1000.0 == pytest.approx(len(data) / 40_000 - BURST_SECONDS)
