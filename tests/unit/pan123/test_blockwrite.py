"""The O_DIRECT block writer of large downloads, on the real filesystem: the file holds
exactly the bytes put, in order, whatever the piece sizes, the total (whole blocks or not)
and the offset it starts at; whole blocks go through O_DIRECT where the filesystem takes
it, the tail and an unaligned start the ordinary way."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from syncagent.pan123.blockwrite import ALIGN, BLOCK, BlockWriter


def _o_direct_works(folder: Path) -> bool:
    probe = folder / "probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | getattr(os, "O_DIRECT", 0), 0o600)
    except OSError:
        return False
    os.close(fd)
    probe.unlink()
    return hasattr(os, "O_DIRECT")


def _write(path: Path, data: bytes, offset: int, *, direct: bool, seed: int) -> BlockWriter:
    rng = random.Random(seed)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        writer = BlockWriter(fd, path, offset, direct=direct)
        at = 0
        while at < len(data):
            n = rng.choice((1, 4095, 4096, 65536, 262144, 300_001))
            writer.put(data[at : at + n])
            at += n
        writer.close()
    finally:
        os.close(fd)
    return writer


@pytest.mark.parametrize(
    "size", [0, 1, ALIGN - 1, ALIGN, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 12345]
)
def test_the_file_holds_the_bytes_put_and_whole_blocks_went_direct(
    tmp_path: Path, size: int
) -> None:
    data = random.Random(size).randbytes(size)
    path = tmp_path / "out.bin"
    writer = _write(path, data, 0, direct=True, seed=size)
    assert path.read_bytes() == data
    if _o_direct_works(tmp_path):
        assert writer.direct_bytes == size - size % ALIGN
    assert not writer.direct  # closed


def test_a_resume_at_an_aligned_offset_appends_direct(tmp_path: Path) -> None:
    head = os.urandom(2 * ALIGN)
    rest = os.urandom(BLOCK + 777)
    path = tmp_path / "out.bin"
    path.write_bytes(head)
    writer = _write(path, rest, len(head), direct=True, seed=1)
    assert path.read_bytes() == head + rest
    if _o_direct_works(tmp_path):
        assert writer.direct_bytes == len(rest) - len(rest) % ALIGN


def test_a_resume_at_an_unaligned_offset_writes_the_ordinary_way(tmp_path: Path) -> None:
    head = os.urandom(ALIGN + 3)
    rest = os.urandom(BLOCK + 5)
    path = tmp_path / "out.bin"
    path.write_bytes(head)
    writer = _write(path, rest, len(head), direct=True, seed=2)
    assert path.read_bytes() == head + rest
    assert writer.direct_bytes == 0


def test_without_direct_everything_is_written_the_ordinary_way(tmp_path: Path) -> None:
    data = os.urandom(2 * BLOCK + 100)
    path = tmp_path / "out.bin"
    writer = _write(path, data, 0, direct=False, seed=3)
    assert path.read_bytes() == data
    assert writer.direct_bytes == 0


def test_a_write_error_is_raised_in_the_caller(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDONLY)  # not writable: every ordinary write fails
    try:
        writer = BlockWriter(fd, path, 0, direct=False)
        writer.put(b"x" * 10)  # queued: the error comes from the thread
        with pytest.raises(OSError):
            writer.close()
    finally:
        os.close(fd)
