"""The running whole-file MD5 of chunked uploads (syncagent/emulator/running_md5.py)."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator

from syncagent.emulator.running_md5 import RunningDigests

SLICE = 1_000


class _File:
    """An upload's file in memory, read the way the blob store reads it."""

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)
        self.reads = 0
        self.during_read: list[object] = []

    def read(self, _id: str, start: int, length: int) -> Iterator[bytes]:
        self.reads += 1
        for call in self.during_read:
            assert callable(call)
            call()
        yield bytes(self.data[start : start + length])


def _store(digests: RunningDigests, f: _File, content: bytes, slice_no: int) -> None:
    digests.writing("u", slice_no)
    start = (slice_no - 1) * SLICE
    f.data[start : start + SLICE] = content[start : start + SLICE]
    digests.stored("u", slice_no)


def _content(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def _started(size: int) -> tuple[bytes, _File, RunningDigests]:
    """The content to upload, the upload's file (zeros yet) and the digests with it open."""
    f = _File(size)
    digests = RunningDigests(f.read)
    digests.open("u", size, SLICE)
    return _content(size), f, digests


def _wait_hashed(digests: RunningDigests, size: int) -> None:
    """The background thread has caught up (result() would hash the rest itself anyway)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        up = digests._uploads.get("u")  # a test looks at the progress
        if up is None or up.end >= size or up.spoiled:
            return
        time.sleep(0.01)


def test_slices_in_any_order_give_the_whole_files_md5() -> None:
    size = 4_500
    content, f, digests = _started(size)
    for n in (3, 1, 5, 2, 4):
        _store(digests, f, content, n)
    _wait_hashed(digests, size)
    assert digests.result("u") == hashlib.md5(content).hexdigest()
    assert f.reads == 5  # each slice read once, never the whole file again
    digests.close()


def test_a_missing_slice_leaves_it_unknown() -> None:
    size = 3_000
    content, f, digests = _started(size)
    _store(digests, f, content, 1)
    _store(digests, f, content, 3)
    assert digests.result("u") is None
    digests.close()


def test_a_slice_written_again_after_it_was_hashed_spoils_the_digest() -> None:
    size = 2_000
    content, f, digests = _started(size)
    _store(digests, f, content, 1)
    _wait_hashed(digests, SLICE)
    assert digests.result("u") is None  # slice 2 not there yet
    other = bytes(b ^ 0xFF for b in content)
    _store(digests, f, other, 1)  # slice 1 again, other bytes: the hashed prefix is stale
    _store(digests, f, content, 2)
    assert digests.result("u") is None
    digests.close()


def test_a_slice_written_while_it_is_hashed_spoils_the_digest() -> None:
    size = 2_000
    content, f, digests = _started(size)
    _store(digests, f, content, 2)
    f.during_read.append(lambda: digests.writing("u", 1))
    digests.writing("u", 1)
    f.data[:SLICE] = content[:SLICE]
    digests.stored("u", 1)
    _wait_hashed(digests, size)
    f.during_read.clear()
    assert digests.result("u") is None
    digests.close()


def test_unknown_and_forgotten_uploads_have_no_digest() -> None:
    f = _File(10)
    digests = RunningDigests(f.read)
    assert digests.result("nope") is None
    digests.open("u", 10, SLICE)
    digests.forget("u")
    digests.stored("u", 1)  # a late slice of a finished upload: ignored
    assert digests.result("u") is None
