"""``localfile.open_below``: what a worker may read at a scanned path, and what it refuses."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from pathlib import Path

import pytest

from syncagent.errors import Interrupted, UnsupportedFileError
from syncagent.localfile import READ_PIECE, open_below
from syncagent.walk import LINK


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_bytes(b"outside the root")
    return tmp_path / "root"


def test_a_regular_file_is_opened_and_hashed_from_its_descriptor(root: Path) -> None:
    data = os.urandom(3 * READ_PIECE + 7)
    (root / "sub" / "f.bin").write_bytes(data)
    with open_below(root, "sub/f.bin") as f:
        (root / "sub" / "f.bin").unlink()  # whatever the path holds now, the file is read
        (root / "sub" / "f.bin").write_bytes(b"replaced")
        assert f.md5() == hashlib.md5(data).hexdigest()
        assert f.stat().st_size == len(data)
    assert f.fd == -1


def test_a_link_is_refused_with_the_scans_reason(root: Path) -> None:
    (root / "link").symlink_to(root.parent / "outside" / "secret")
    with pytest.raises(UnsupportedFileError) as info:
        open_below(root, "link")
    assert info.value.message == LINK


def test_a_fifo_is_refused_at_once_without_a_writer(root: Path) -> None:
    os.mkfifo(root / "sub" / "pipe")
    done = threading.Event()
    failure: list[BaseException] = []

    def attempt() -> None:
        try:
            open_below(root, "sub/pipe")
        except BaseException as exc:
            failure.append(exc)
        done.set()

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    if not done.wait(10):  # a blocking open would wait for a writer for good
        with open(root / "sub" / "pipe", "wb"):
            pass
        thread.join(5)
        raise AssertionError("opening a FIFO blocked")
    assert isinstance(failure[0], UnsupportedFileError), failure
    assert "FIFO" in failure[0].message


def test_a_socket_is_refused(root: Path) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(root / "sock"))
        with pytest.raises(UnsupportedFileError) as info:
            open_below(root, "sock")
    assert "socket" in info.value.message


def test_a_folder_on_the_way_swapped_for_a_link_is_not_entered(root: Path) -> None:
    (root.parent / "outside" / "sub").mkdir()
    (root.parent / "outside" / "sub" / "f.txt").write_bytes(b"outside")
    (root / "sub").rmdir()
    (root / "sub").symlink_to(root.parent / "outside" / "sub")
    with pytest.raises(FileNotFoundError):
        open_below(root, "sub/f.txt")


def test_a_folder_where_the_file_was_counts_as_gone(root: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_below(root, "sub")
    with pytest.raises(FileNotFoundError):
        open_below(root, "sub/missing")


def test_hashing_stops_on_a_shutdown(root: Path) -> None:
    with open(root / "big", "wb") as out:
        out.truncate(200 * READ_PIECE)  # sparse
    asked: list[int] = []

    def stopped() -> bool:
        asked.append(1)
        return True

    with open_below(root, "big") as big, pytest.raises(Interrupted):
        big.md5(stopped)
    assert len(asked) == 1  # asked once, after the first 64 MiB
