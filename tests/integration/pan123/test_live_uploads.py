"""Upload paths of the client against the emulator: single-step, chunked, 秒传, resume, refusals.

What was sent is checked where it arrived: ``activity()['slices']`` lists every slice the
emulator accepted per preuploadID, the counters tell single-step from chunked from 秒传, and
the stored bytes are downloaded back.
"""

from __future__ import annotations

import os
import threading
from functools import partial
from pathlib import Path

import pan123_support
import pytest
from pan123_support import SLICE, THRESHOLD, blob, counts, live_items, md5, slices, stored

from syncagent.emulator import Emulator
from syncagent.errors import (
    ApiError,
    FileChangedError,
    IntegrityError,
    UnsupportedFileError,
)
from syncagent.pan123 import MemoryUploadState, UploadSession

make_client = partial(pan123_support.make_client, attempts=3)


@pytest.fixture(autouse=True)
def small_slices(emulator: Emulator) -> None:
    emulator.configure(slice_size=SLICE)


# -- the two paths -------------------------------------------------------------------------


def test_small_file_goes_single_step_and_big_file_chunked(
    emulator: Emulator, tmp_path: Path
) -> None:
    small, big = blob(THRESHOLD, 10), blob(4 * SLICE + 1, 11)  # exactly at / just past
    (tmp_path / "small.bin").write_bytes(small)
    (tmp_path / "big.bin").write_bytes(big)
    progress: list[tuple[int, int]] = []
    lock = threading.Lock()

    def on_progress(done: int, total: int) -> None:
        with lock:
            progress.append((done, total))

    with make_client(emulator, tmp_path / "state") as client:
        one = client.upload(tmp_path / "small.bin", 0, "a/b/small.bin", on_progress=on_progress)
        two = client.upload(tmp_path / "big.bin", 0, "a/b/big.bin")
        assert (one.method, one.size, one.md5) == ("single", len(small), md5(small))
        assert (two.method, two.size, two.md5) == ("chunked", len(big), md5(big))
        assert two.slices_sent == 5
        assert stored(emulator, client, one.file_id) == small
        assert stored(emulator, client, two.file_id) == big
        b = client.detail(one.file_id)
        assert client.detail(two.file_id).parent_id == b.parent_id
        a = client.detail(b.parent_id)
        assert (a.name, a.is_folder) == ("b", True)
        assert client.detail(a.parent_id).parent_id == 0  # a/b/ made by containDir, under root
    assert progress[-1] == (len(small), len(small))
    c = counts(emulator)
    assert (c["single_uploads"], c["chunked_uploads"], c["folders_created"]) == (1, 1, 2)
    assert [sorted(v) for v in slices(emulator).values()] == [[1, 2, 3, 4, 5]]
    assert emulator.activity()["endpoints"]["upload/v2/file/domain"]["calls"] == 1


def test_uploading_again_overwrites_without_a_copy(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    emulator.configure(overwrite_old="trash")  # to see the replaced one in the bin
    with make_client(emulator, tmp_path / "state") as client:
        path.write_bytes(blob(5000, 20))
        first = client.upload(path, 0, "dup/f.bin")
        path.write_bytes(blob(3 * SLICE, 21))  # now chunked, other content
        second = client.upload(path, 0, "dup/f.bin")
        folder = client.detail(first.file_id).parent_id
        names = [i["filename"] for i in live_items(emulator, client, folder)]
        assert names == ["f.bin"]
        assert stored(emulator, client, second.file_id) == path.read_bytes()
        assert client.detail(first.file_id).trashed  # duplicate=2: the old one replaced


# -- 秒传 ----------------------------------------------------------------------------------


def test_same_content_again_is_instant_with_no_slice_sent(
    emulator: Emulator, tmp_path: Path
) -> None:
    data = blob(5 * SLICE + 1, 30)
    (tmp_path / "a.bin").write_bytes(data)
    (tmp_path / "copy.bin").write_bytes(data)
    with make_client(emulator, tmp_path / "state") as client:
        first = client.upload(tmp_path / "a.bin", 0, "a.bin")
        assert first.method == "chunked"
        sessions = slices(emulator)
        assert [sorted(v) for v in sessions.values()] == [[1, 2, 3, 4, 5, 6]]
        second = client.upload(tmp_path / "copy.bin", 0, "elsewhere/deep/copy.bin")
        assert second.method == "reuse"
        assert second.slices_sent == 0
        assert second.file_id != first.file_id
        assert slices(emulator) == sessions  # no new preupload, no slice
        remote = client.detail(second.file_id)
        assert (remote.name, remote.size, remote.etag) == ("copy.bin", len(data), md5(data))
        assert client.detail(remote.parent_id).name == "deep"  # 秒传 took the containDir path
        assert stored(emulator, client, second.file_id) == data
    c = counts(emulator)
    assert (c["reuse"], c["preuploads"], c["chunked_uploads"]) == (1, 1, 1)


# -- resume --------------------------------------------------------------------------------


class OutageAfter:
    """An upload-state store that, after ``k`` slices are recorded, makes the emulator refuse
    every further slice (as if the network went away): the upload stops part-way."""

    def __init__(self, inner: MemoryUploadState, emu: Emulator, k: int) -> None:
        self.inner = inner
        self.emu = emu
        self.k = k
        self.marked = 0
        self.keys: list[str] = []
        self._lock = threading.Lock()

    def load(self, key: str) -> UploadSession | None:
        return self.inner.load(key)

    def save(self, key: str, session: UploadSession) -> None:
        self.keys.append(key)
        self.inner.save(key, session)

    def mark_slice(self, key: str, slice_no: int) -> None:
        self.inner.mark_slice(key, slice_no)
        with self._lock:
            self.marked += 1
            if self.marked == self.k:
                self.emu.fail_next("upload/v2/file/slice", times=None, code=9999, message="断网")

    def clear(self, key: str) -> None:
        self.inner.clear(key)


@pytest.mark.parametrize("workers", [1, 4])
def test_interrupted_upload_resumes_with_only_the_missing_slices(
    emulator: Emulator, tmp_path: Path, workers: int
) -> None:
    n = 12  # more than the outage can let through: 3 + every other slice open at once
    data = blob(n * SLICE - 100, 40 + workers)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    state = MemoryUploadState()
    outage = OutageAfter(state, emulator, k=3)

    with (
        make_client(
            emulator, tmp_path / "state", slice_workers=workers, upload_state=outage
        ) as client,
        pytest.raises(ApiError) as info,
    ):
        client.upload(path, 0, "resume/big.bin")
    assert info.value.code == 9999
    assert len(outage.keys) == 1
    session = state.load(outage.keys[0])
    assert session is not None
    (preupload_id, first_run), *others = slices(emulator).items()
    assert others == []
    assert session.preupload_id == preupload_id
    assert sorted(first_run) == sorted(session.done)  # every accepted slice was recorded
    assert len(set(first_run)) == len(first_run)
    # the outage begins as the third slice is recorded; slices already open (up to two per
    # worker: one written, one awaiting its answer) may still be accepted
    assert 3 <= len(first_run) <= 3 + 2 * workers - 1 < n

    emulator.clear_faults()
    with make_client(
        emulator, tmp_path / "state", slice_workers=workers, upload_state=state
    ) as again:
        result = again.upload(path, 0, "resume/big.bin")
        assert result.method == "chunked"
        assert result.slices_sent == n - len(first_run)
        assert stored(emulator, again, result.file_id) == data
        assert again.detail(result.file_id).name == "big.bin"
    received = slices(emulator)
    assert list(received) == [preupload_id]  # the same session, not a new one
    assert sorted(received[preupload_id]) == list(range(1, n + 1))  # each slice exactly once
    assert received[preupload_id][: len(first_run)] == first_run
    assert counts(emulator)["preuploads"] == 1
    assert state.load(outage.keys[0]) is None  # forgotten once done


def test_resume_of_a_session_123pan_forgot_starts_over(emulator: Emulator, tmp_path: Path) -> None:
    data = blob(4 * SLICE + 7, 50)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    state = MemoryUploadState()
    outage = OutageAfter(state, emulator, k=2)
    with (
        make_client(emulator, tmp_path / "state", slice_workers=1, upload_state=outage) as client,
        pytest.raises(ApiError),
    ):
        client.upload(path, 0, "big.bin")
    emulator.clear_faults()
    key = outage.keys[0]
    session = state.load(key)
    assert session is not None
    state.save(key, UploadSession("not-a-known-id", SLICE, session.server, md5(data), len(data)))
    with make_client(emulator, tmp_path / "state", upload_state=state) as again:
        result = again.upload(path, 0, "big.bin")
        assert result.method == "chunked"
        assert result.slices_sent == 5
        assert stored(emulator, again, result.file_id) == data
    assert counts(emulator)["preuploads"] == 2


# -- refusals ------------------------------------------------------------------------------


def test_empty_file_is_refused_before_any_request(emulator: Emulator, tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    with (
        make_client(emulator, tmp_path / "state") as client,
        pytest.raises(UnsupportedFileError) as info,
    ):
        client.upload(tmp_path / "empty", 0, "empty")
    assert info.value.path == str(tmp_path / "empty")
    assert "empty" in str(info.value)
    assert emulator.activity()["endpoints"] == {}


def test_file_over_10_gb_is_refused_before_any_request(emulator: Emulator, tmp_path: Path) -> None:
    huge = tmp_path / "huge.bin"
    with open(huge, "wb") as f:
        f.truncate(10_000_000_001)  # sparse: takes no space
    with (
        make_client(emulator, tmp_path / "state") as client,
        pytest.raises(UnsupportedFileError) as info,
    ):
        client.upload(huge, 0, "huge.bin")
    assert "10 GB" in str(info.value)
    assert emulator.activity()["endpoints"] == {}


@pytest.mark.parametrize("size", [50_000, 3 * SLICE + 10], ids=["single", "chunked"])
def test_file_growing_during_upload_is_reported(
    emulator: Emulator, tmp_path: Path, size: int
) -> None:
    path = tmp_path / "log.txt"
    path.write_bytes(blob(size, 60))
    grown: list[int] = []
    lock = threading.Lock()

    def on_progress(done: int, total: int) -> None:
        with lock:
            if not grown:
                with open(path, "ab") as f:
                    f.write(b"one more line\n")
                grown.append(done)

    with (
        make_client(emulator, tmp_path / "state") as client,
        pytest.raises(FileChangedError) as info,
    ):
        client.upload(path, 0, "log.txt", on_progress=on_progress)
    assert grown
    assert info.value.path == str(path)


def test_content_not_matching_the_declared_md5_is_an_integrity_error(
    emulator: Emulator, tmp_path: Path
) -> None:
    data = blob(3 * SLICE + 1, 70)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    wrong = md5(b"not the content")
    state = MemoryUploadState()
    with make_client(emulator, tmp_path / "state", upload_state=state) as client:
        with pytest.raises(IntegrityError) as info:
            client.upload(path, 0, "big.bin", md5=wrong)
        assert info.value.endpoint == "upload/v2/file/upload_complete"
        assert live_items(emulator, client, 0) == []  # nothing placed
        # the failed session is forgotten: a correct upload starts afresh and succeeds
        result = client.upload(path, 0, "big.bin")
        assert result.method == "chunked"
        assert stored(emulator, client, result.file_id) == data
    assert counts(emulator)["preuploads"] == 2


@pytest.mark.parametrize("size", [THRESHOLD, 4 * SLICE + 1], ids=["single", "chunked"])
def test_a_file_that_shrinks_while_it_is_sent_fails_at_once(
    emulator: Emulator, tmp_path: Path, size: int
) -> None:
    """copytruncate rotating a log mid-upload: the body would come out shorter than declared
    and the request would wait for the read timeout (120 s), SIGTERM or not."""
    import time

    path = tmp_path / "app.log"
    data = blob(size, 77)
    path.write_bytes(data)
    truncated = threading.Event()

    def on_progress(done: int, total: int) -> None:
        if done and not truncated.is_set():
            truncated.set()
            os.truncate(path, 1000)

    with make_client(emulator, tmp_path / "state") as client:
        t0 = time.monotonic()
        with pytest.raises(FileChangedError):
            client.upload(path, 0, "logs/app.log", md5=md5(data), on_progress=on_progress)
        assert time.monotonic() - t0 < 30
    assert truncated.is_set()
