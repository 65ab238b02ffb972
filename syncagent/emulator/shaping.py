"""Network shaping of the emulator: round-trip latency and bandwidth caps, on the real sockets.

Every benchmark over loopback answers in well under a millisecond; real users reach 123pan
across tens to hundreds of milliseconds with a bandwidth cap per connection. This module makes
the emulator's sockets behave like that, from four settings (all 0 = off, the default):

``rtt`` (seconds)
    A new connection waits one round trip before its first request is read (the TCP
    handshake), and every answer leaves one round trip after its request was read (half for
    the request to arrive, half for the answer to come back). The wait happens in the
    connection's own thread, so concurrent connections overlap their waits as on a network.
``rtt_jitter`` (seconds)
    Up to this much more, at random (uniform), on each of those waits.
``conn_bps`` (bytes per second)
    Each connection reads and writes at most this fast: a token bucket on the socket. Reads
    are taken from the socket in pieces only as the bucket allows, so the kernel's receive
    buffer fills and TCP holds the client back, as a slow link does.
``server_bps`` (bytes per second)
    All connections of both listeners together read and write at most this fast (one shared
    bucket per direction), the server's link.

:class:`Shaper` holds the shared buckets and reads the settings on each use, so a change
through ``configure()`` or the admin ``settings`` call applies to the next piece of every shaped
connection. A connection is shaped when shaping is on as it opens (:func:`shaped_files` gives it
paced ``rfile`` and ``wfile``); with everything 0 connections use the plain socket files, so
shaping costs nothing when off. Turning shaping on therefore reaches new connections only:
clients that keep connections alive should reconnect (or start after the change).
"""

from __future__ import annotations

import io
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from syncagent.emulator.settings import EmulatorSettings

__all__ = ["PIECE", "Shaper", "TokenBucket", "parse_rate", "shaped_files"]

PIECE = 64 * 1024  # most bytes a shaped read or write moves at once
_BURST_SECONDS = 0.05  # how far a bucket may run ahead of its rate after an idle spell
_SHAPED_RCVBUF = 256 * 1024  # a small receive buffer keeps the client close to the cap


_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3}


def parse_rate(text: str) -> int:
    """Bytes per second from ``20000000``, ``20M``, ``500k`` or ``1G`` (decimal units, as
    link speeds are given); raises ValueError on anything else or a negative rate."""
    raw = text.strip().lower().removesuffix("b/s").removesuffix("/s")
    unit = raw[-1:] if raw[-1:] in ("k", "m", "g") else ""
    number = float(raw[: len(raw) - len(unit)])
    if number < 0:
        raise ValueError(f"a rate cannot be negative: {text}")
    return int(number * _UNITS[unit])


class TokenBucket:
    """Paces bytes to ``rate`` per second for any number of threads, first come first served.

    Each :meth:`take` books its bytes on a shared timeline and sleeps until its booking ends;
    an idle bucket allows a burst of ``_BURST_SECONDS`` worth of bytes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free_at = 0.0  # monotonic time at which everything booked so far has passed

    def take(self, n: int, rate: int) -> None:
        """Wait until ``n`` bytes may pass at ``rate`` bytes/s (0: no wait)."""
        if rate <= 0 or n <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(self._free_at, now - _BURST_SECONDS)
            self._free_at = start + n / rate
            until = self._free_at - _BURST_SECONDS
        delay = until - now
        if delay > 0:
            time.sleep(delay)


class Shaper:
    """The emulator's shaping: settings read live, and the bucket all connections share.

    :param settings: returns the current settings (the emulator's ``core.settings``).
    """

    def __init__(self, settings: Callable[[], EmulatorSettings]) -> None:
        self._settings = settings
        self.server_in = TokenBucket()
        self.server_out = TokenBucket()

    @property
    def settings(self) -> EmulatorSettings:
        return self._settings()

    def active(self) -> bool:
        s = self._settings()
        return bool(s.rtt or s.rtt_jitter or s.conn_bps or s.server_bps)

    def round_trip(self) -> None:
        """Wait one round trip (with its jitter), if latency is set."""
        s = self._settings()
        wait = s.rtt + (random.uniform(0.0, s.rtt_jitter) if s.rtt_jitter > 0 else 0.0)
        if wait > 0:
            time.sleep(wait)

    def pace(self, bucket: TokenBucket, server: TokenBucket, n: int) -> None:
        """Let ``n`` bytes of one connection (its ``bucket``) pass under both caps."""
        s = self._settings()
        bucket.take(n, s.conn_bps)
        server.take(n, s.server_bps)


class _ShapedRaw(io.RawIOBase):
    """The receiving side of a socket, read in pieces only as fast as the caps allow."""

    def __init__(self, sock: socket.socket, shaper: Shaper, bucket: TokenBucket) -> None:
        super().__init__()
        self._sock = sock
        self._shaper = shaper
        self._bucket = bucket

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), PIECE)
        s = self._shaper.settings
        if s.conn_bps or s.server_bps:
            # a piece no bigger than a tenth of a second at the cap keeps pacing smooth
            rate = min(r for r in (s.conn_bps, s.server_bps) if r)
            want = max(1, min(want, rate // 10))
        n = self._sock.recv_into(view[:want])
        if n:
            self._shaper.pace(self._bucket, self._shaper.server_in, n)
        return n


class _ShapedWriter(io.BufferedIOBase):
    """The sending side of a socket: every write goes out in paced pieces."""

    def __init__(self, sock: socket.socket, shaper: Shaper, bucket: TokenBucket) -> None:
        super().__init__()
        self._sock = sock
        self._shaper = shaper
        self._bucket = bucket

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        s = self._shaper.settings
        piece = PIECE
        if s.conn_bps or s.server_bps:
            rate = min(r for r in (s.conn_bps, s.server_bps) if r)
            piece = max(1, min(piece, rate // 10))
        for i in range(0, len(view), piece):
            chunk = view[i : i + piece]
            self._shaper.pace(self._bucket, self._shaper.server_out, len(chunk))
            self._sock.sendall(chunk)
        return len(view)


def shaped_files(
    sock: socket.socket, shaper: Shaper, rbufsize: int
) -> tuple[io.BufferedReader, io.BufferedIOBase]:
    """A connection's ``rfile`` and ``wfile`` under the caps (a bucket for each way)."""
    s = shaper.settings
    if s.conn_bps or s.server_bps:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SHAPED_RCVBUF)
    size = rbufsize if rbufsize > 0 else io.DEFAULT_BUFFER_SIZE
    return (
        io.BufferedReader(_ShapedRaw(sock, shaper, TokenBucket()), size),
        _ShapedWriter(sock, shaper, TokenBucket()),
    )
