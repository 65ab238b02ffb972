"""One read for a file's MD5 and its slices' MD5s (syncagent/pan123/hashing.py)."""

from __future__ import annotations

import hashlib
import os
import random
import threading
from pathlib import Path

import pytest

from syncagent.errors import Interrupted
from syncagent.pan123.hashing import FileDigest, digest_fd


def _digest(path: Path, slice_size: int, piece: int) -> FileDigest:
    fd = os.open(path, os.O_RDONLY)
    try:
        return digest_fd(fd, slice_size, piece_size=piece)
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("size", "slice_size", "piece"),
    [
        (10_000, 3_000, 1_024),  # slice boundaries inside pieces
        (12_288, 4_096, 4_096),  # exact multiples: no short last slice
        (5, 4_096, 1_024),  # one short slice
        (100_000, 7_777, 65_536),  # pieces bigger than slices
    ],
)
def test_slices_and_whole_match_separate_hashes(
    tmp_path: Path, size: int, slice_size: int, piece: int
) -> None:
    data = random.Random(size).randbytes(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    got = _digest(path, slice_size, piece)
    assert got.md5 == hashlib.md5(data).hexdigest()
    assert got.size == size
    expected = [
        hashlib.md5(data[i : i + slice_size]).hexdigest() for i in range(0, size, slice_size)
    ]
    assert list(got.slice_md5s) == expected
    assert got.slice_md5(1, slice_size) == expected[0]
    assert got.slice_md5(len(expected), slice_size) == expected[-1]
    assert got.slice_md5(1, slice_size * 2) is None  # hashed at another size: unknown
    assert got.slice_md5(len(expected) + 1, slice_size) is None


def test_no_slices_unless_asked(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc" * 1000)
    got = _digest(tmp_path / "f", 0, 1024)
    assert got.md5 == hashlib.md5(b"abc" * 1000).hexdigest()
    assert (got.slice_size, got.slice_md5s) == (0, ())


def test_a_stop_ends_hashing(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 200_000)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        with pytest.raises(Interrupted):
            digest_fd(fd, 0, lambda: True, piece_size=1_000)
    finally:
        os.close(fd)


def test_a_stop_while_slices_hash_on_their_thread_leaves_no_thread(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"y" * 300_000)  # 30 slices: the slice thread runs
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        with pytest.raises(Interrupted):
            digest_fd(fd, 10_000, lambda: True, piece_size=1_000)
    finally:
        os.close(fd)
    assert not [t for t in threading.enumerate() if t.name == "slice-md5"]
