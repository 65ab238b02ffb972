"""The slice send window of the uploader: at most ``slice_workers`` slice bodies are written at
once, and a slice whose body is written awaits its answer without holding a place.

A fake API stands in for 123pan: its ``upload_slice`` reads the body as the HTTP layer would,
then holds the answer back until as many slices await their answers as the window allows
(twice ``slice_workers``), so the test waits on that condition, never on a time.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from syncagent.errors import Interrupted
from syncagent.pan123.http import FormFile
from syncagent.pan123.upload import (
    Uploader,
    UploadSession,
    UploadSettings,
    _Counter,
    _Range,
    _Source,
)

SLICE = 64 * 1024
SLICES = 8
DEADLINE = 30.0  # seconds a slice waits for the others before it answers anyway


class HeldAnswers:
    """``upload_slice`` that counts bodies being read and slices awaiting their answer."""

    def __init__(self, release_at: int) -> None:
        self._lock = threading.Lock()
        self._release_at = release_at
        self.released = threading.Event()
        self.reading = self.most_reading = 0
        self.waiting = self.most_waiting = 0
        self.bodies: dict[int, bytes] = {}

    def upload_slice(
        self, server: str, preupload_id: str, slice_no: int, slice_md5: str, file: FormFile
    ) -> None:
        with file.open() as stream:
            with self._lock:
                self.reading += 1
                self.most_reading = max(self.most_reading, self.reading)
            pieces = []
            while len(stream) > 4096:  # type: ignore[arg-type]
                pieces.append(stream.read(4096))
                time.sleep(0.0005)  # a slow link: reads of several bodies interleave
            with self._lock:  # before the last read, which gives the place up
                self.reading -= 1
            pieces.append(stream.read(4096))
            assert stream.read(4096) == b""
            with self._lock:
                self.waiting += 1
                self.most_waiting = max(self.most_waiting, self.waiting)
                if self.waiting >= self._release_at:
                    self.released.set()
            self.bodies[slice_no] = b"".join(pieces)
        self.released.wait(DEADLINE)  # the answer, one "round trip" later
        with self._lock:
            self.waiting -= 1


@pytest.fixture
def data_fd(tmp_path: Path) -> Iterator[tuple[bytes, int]]:
    data = os.urandom(SLICE * SLICES - 100)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    yield data, fd
    os.close(fd)


@pytest.mark.parametrize("slice_workers", [1, 2, 3])
def test_answers_are_awaited_outside_the_window(
    data_fd: tuple[bytes, int], tmp_path: Path, slice_workers: int
) -> None:
    data, fd = data_fd
    api = HeldAnswers(release_at=2 * slice_workers)
    uploader = Uploader(
        cast(Any, api), cast(Any, None), UploadSettings(slice_workers=slice_workers)
    )
    session = UploadSession("pre", SLICE, "http://up.test", "etag", len(data))
    source = _Source(tmp_path / "big.bin", fd)
    sent = uploader._send_slices(source, session, "key", _Counter(len(data), None))
    assert sent == SLICES
    # twice the window awaited their answers at once: a written slice gave its place up
    assert api.released.is_set()
    assert api.most_waiting == 2 * slice_workers
    assert api.most_reading <= slice_workers  # never more bodies written at once
    assert b"".join(api.bodies[n] for n in range(1, SLICES + 1)) == data


def test_range_calls_on_end_once_when_read_to_its_end(data_fd: tuple[bytes, int]) -> None:
    data, fd = data_fd
    ended: list[int] = []
    with _Range(fd, 10, 100, on_end=lambda: ended.append(1)) as r:
        assert r.read(60) == data[10:70]
        assert ended == []
        assert r.read(60) == data[70:110]
        assert ended == [1]  # the last byte was read: the body is written
        assert r.read(10) == b""
    assert ended == [1]  # not again at close


def test_range_calls_on_end_at_close_when_cut_short(data_fd: tuple[bytes, int]) -> None:
    _, fd = data_fd
    ended: list[int] = []
    with _Range(fd, 0, 100, on_end=lambda: ended.append(1)) as r:
        r.read(10)  # the connection broke here
    assert ended == [1]


class CancelledMidway:
    """``upload_slice`` that shuts the uploader down while slice 1's body is being written,
    once slice 2 waits for its place in the window (slice_workers = 1)."""

    def __init__(self) -> None:
        self.uploader: Uploader | None = None
        self.opened: list[int] = []
        self._second_waits = threading.Event()

    def upload_slice(
        self, server: str, preupload_id: str, slice_no: int, slice_md5: str, file: FormFile
    ) -> None:
        if slice_no != 1:
            self._second_waits.set()  # about to ask for its place, which slice 1 holds
        with file.open() as stream:
            self.opened.append(slice_no)
            if slice_no == 1:
                assert self._second_waits.wait(DEADLINE)
                while len(stream) > 4096:  # type: ignore[arg-type]
                    stream.read(4096)
                assert self.uploader is not None
                self.uploader.cancel()  # the shutdown, before the last byte frees the place
            while stream.read(4096):
                pass


def test_a_slice_waiting_for_its_place_is_not_sent_after_a_shutdown(
    data_fd: tuple[bytes, int], tmp_path: Path
) -> None:
    data, fd = data_fd
    api = CancelledMidway()
    uploader = Uploader(cast(Any, api), cast(Any, None), UploadSettings(slice_workers=1))
    api.uploader = uploader
    session = UploadSession("pre", SLICE, "http://up.test", "etag", len(data))
    with pytest.raises(Interrupted):
        uploader._send_slices(
            _Source(tmp_path / "big.bin", fd), session, "key", _Counter(len(data), None)
        )
    assert api.opened == [1]  # slice 2 got its place after the shutdown, and stopped there
