"""Unit tests of the pure parts of the uploader: settings, resumable state, file ranges, MD5."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from requests_toolbelt import MultipartEncoder  # type: ignore[import-untyped]

from syncagent.errors import UnsupportedFileError
from syncagent.pan123.upload import (
    READ_PIECE,
    SINGLE_MAX,
    MemoryUploadState,
    UploadSession,
    UploadSettings,
    _Range,
    _range_md5,
    file_md5,
)

DATA = bytes(range(256)) * 40  # 10240 bytes, every offset distinguishable by its neighbours


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    path = tmp_path / "blob.bin"
    path.write_bytes(DATA)
    return path


@pytest.fixture
def blob_fd(blob: Path) -> Iterator[int]:
    fd = os.open(blob, os.O_RDONLY)
    yield fd
    os.close(fd)


@pytest.mark.parametrize("threshold", [0, -1, SINGLE_MAX + 1, 2 * SINGLE_MAX])
def test_threshold_outside_1_to_1_gb_is_refused(threshold: int) -> None:
    with pytest.raises(ValueError, match="single_threshold"):
        UploadSettings(single_threshold=threshold)


@pytest.mark.parametrize("threshold", [1, 16 << 20, SINGLE_MAX])
def test_threshold_inside_the_range_is_accepted(threshold: int) -> None:
    assert UploadSettings(single_threshold=threshold).single_threshold == threshold


@pytest.mark.parametrize("workers", [0, -3])
def test_zero_workers_refused(workers: int) -> None:
    with pytest.raises(ValueError, match="slice_workers"):
        UploadSettings(slice_workers=workers)


def test_default_settings() -> None:
    s = UploadSettings()
    assert (s.single_threshold, s.slice_workers, s.duplicate, s.contain_dir, s.verify) == (
        16 << 20,
        4,
        2,
        True,
        True,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.slice_workers = 9  # type: ignore[misc]


SESSION = UploadSession("pre-1", 1024, "http://up.test", "abc", 5000)


def test_memory_state_save_load_mark_clear() -> None:
    state = MemoryUploadState()
    assert state.load("k") is None
    state.save("k", SESSION)
    assert state.load("k") == SESSION
    assert state.load("k").done == frozenset()  # type: ignore[union-attr]
    state.mark_slice("k", 3)
    state.mark_slice("k", 1)
    state.mark_slice("k", 3)
    loaded = state.load("k")
    assert loaded is not None
    assert loaded.done == frozenset({1, 3})
    assert dataclasses.replace(loaded, done=frozenset()) == SESSION
    state.clear("k")
    assert state.load("k") is None
    state.clear("k")  # clearing twice is fine


def test_memory_state_keys_are_independent() -> None:
    state = MemoryUploadState()
    other = dataclasses.replace(SESSION, preupload_id="pre-2")
    state.save("a", SESSION)
    state.save("b", other)
    state.mark_slice("a", 2)
    state.mark_slice("nobody", 1)  # unknown key: ignored, not created
    assert state.load("nobody") is None
    b = state.load("b")
    assert b is not None and b.done == frozenset()
    state.clear("a")
    assert state.load("b") == other


def test_saving_again_replaces_the_session() -> None:
    state = MemoryUploadState()
    state.save("k", SESSION)
    state.mark_slice("k", 1)
    state.save("k", dataclasses.replace(SESSION, preupload_id="pre-new"))
    loaded = state.load("k")
    assert loaded is not None
    assert (loaded.preupload_id, loaded.done) == ("pre-new", frozenset())


def test_range_reads_exactly_its_window(blob_fd: int) -> None:
    seen: list[int] = []
    with _Range(blob_fd, 1000, 300, seen.append) as r:
        assert len(r) == 300
        assert r.read(100) == DATA[1000:1100]
        assert len(r) == 200
        assert r.read(0) == b""
        assert r.read(150) == DATA[1100:1250]
        assert len(r) == 50
        assert r.read(1000) == DATA[1250:1300]  # never past the window
        assert len(r) == 0
        assert r.read() == b""
        assert r.read(10) == b""
    assert seen == [100, 150, 50]


def test_range_read_all_and_tail_of_file(blob_fd: int) -> None:
    with _Range(blob_fd, 0, len(DATA)) as r:
        assert r.read() == DATA
        assert len(r) == 0
    with _Range(blob_fd, len(DATA) - 7, 7) as r:
        assert r.read(-1) == DATA[-7:]


def test_ranges_of_one_descriptor_read_independently(blob_fd: int) -> None:
    """Slices are read by several threads from one descriptor: pread, no shared offset."""
    a, b = _Range(blob_fd, 0, 100), _Range(blob_fd, 5000, 100)
    assert a.read(10) == DATA[:10]
    assert b.read(10) == DATA[5000:5010]
    assert a.read(10) == DATA[10:20]
    with a:
        pass
    assert os.fstat(blob_fd).st_size == len(DATA)  # closing a range leaves the file open


def test_range_streams_through_requests_toolbelt(blob_fd: int) -> None:
    """The encoder sizes the part by ``len()`` and reads until it is 0: exactly the window."""
    with _Range(blob_fd, 4096, 1024) as r:
        encoder = MultipartEncoder(
            fields=[("sliceNo", "2"), ("slice", ("slice", r, "application/octet-stream"))]
        )
        declared = encoder.len
        body = encoder.read()
    assert len(body) == declared
    start = body.index(b"application/octet-stream\r\n\r\n") + len(
        b"application/octet-stream\r\n\r\n"
    )
    end = body.index(b"\r\n--" + encoder.boundary_value.encode(), start)
    assert body[start:end] == DATA[4096:5120]


def test_range_md5_is_the_md5_of_the_window(blob_fd: int) -> None:
    assert _range_md5(blob_fd, 10, 500) == hashlib.md5(DATA[10:510]).hexdigest()


@pytest.mark.parametrize("size", [1, 1000, READ_PIECE, READ_PIECE + 1, 2 * READ_PIECE + 12345])
def test_file_md5_matches_hashlib(tmp_path: Path, size: int) -> None:
    content = (DATA * (size // len(DATA) + 1))[:size]
    path = tmp_path / "f"
    path.write_bytes(content)
    got = file_md5(path)
    assert got == hashlib.md5(content).hexdigest()
    assert got == got.lower() and len(got) == 32


def test_file_md5_refuses_a_link_and_a_fifo_without_blocking(tmp_path: Path) -> None:
    (tmp_path / "target").write_bytes(b"outside")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    os.mkfifo(tmp_path / "fifo")
    for name in ("link", "fifo"):
        with pytest.raises(UnsupportedFileError):
            file_md5(tmp_path / name)
