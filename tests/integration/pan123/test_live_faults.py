"""Uploads through the client while the emulator misbehaves on purpose (real HTTP, real faults).

Each scenario checks the outcome at the emulator: the stored bytes (downloaded back), how many
faults it injected, which slices it received, and that no ``name(1)`` copy appeared.
"""

from __future__ import annotations

import hashlib
import time
from functools import partial
from pathlib import Path
from typing import Any

import pan123_support
import pytest
from pan123_support import SLICE, activity, blob, calls, live_names, slices_received, stored

from syncagent.emulator import Emulator
from syncagent.errors import ApiError, RateLimitedError, ServerError, VerifyingError

BAD_MD5 = "分片1的MD5与sliceMD5不一致"

make_client = partial(pan123_support.make_client, attempts=5, complete_deadline=30.0)


@pytest.fixture
def files(tmp_path: Path, emulator: Emulator) -> tuple[Path, bytes, Path, bytes]:
    """A small file (single-step) and a 5½-slice file (chunked), different content per test."""
    emulator.configure(slice_size=SLICE)
    seed = int(hashlib.md5(str(tmp_path).encode()).hexdigest()[:8], 16)
    small, big = blob(20_000, seed), blob(5 * SLICE + SLICE // 2, seed + 1)
    (tmp_path / "small.txt").write_bytes(small)
    (tmp_path / "big.bin").write_bytes(big)
    return tmp_path / "small.txt", small, tmp_path / "big.bin", big


FAULTS: dict[str, dict[str, Any]] = {
    "429": {"code": 429},
    "http429": {"http_status": 429},
    "http500": {"http_status": 500},
    "http503": {"http_status": 503},
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_storm_on_every_upload_endpoint_is_ridden_out(
    emulator: Emulator,
    tmp_path: Path,
    files: tuple[Path, bytes, Path, bytes],
    fault: str,
) -> None:
    small_path, small, big_path, big = files
    for endpoint in (
        "upload/v2/file/single/create",
        "upload/v2/file/create",
        "upload/v2/file/slice",
        "upload/v2/file/upload_complete",
        "upload/v2/file/domain",
    ):
        emulator.fail_next(endpoint, times=3, **FAULTS[fault])
    with make_client(emulator, tmp_path / "state") as client:
        one = client.upload(small_path, 0, "storm/small.txt")
        two = client.upload(big_path, 0, "storm/big.bin")
        assert (one.method, two.method) == ("single", "chunked")
        assert activity(emulator)["faults_injected"] == 15
        assert stored(emulator, client, one.file_id) == small
        assert stored(emulator, client, two.file_id) == big
        folder = client.detail(one.file_id).parent_id
        assert live_names(emulator, client, folder) == ["big.bin", "small.txt"]  # no name(1)
    counts = activity(emulator)["counts"]
    assert counts["preuploads"] == 1
    assert counts["single_uploads"] == counts["chunked_uploads"] == 1
    assert sorted(slices_received(emulator)[0]) == [1, 2, 3, 4, 5, 6]


def test_connections_dropped_mid_request_are_retried(
    emulator: Emulator, tmp_path: Path, files: tuple[Path, bytes, Path, bytes]
) -> None:
    small_path, small, big_path, big = files
    emulator.drop_next("upload/v2/file/slice", times=2)
    emulator.drop_next("upload/v2/file/single/create", times=2)
    emulator.drop_next("upload/v2/file/create", times=1)
    with make_client(emulator, tmp_path / "state") as client:
        one = client.upload(small_path, 0, "drop/small.txt")
        two = client.upload(big_path, 0, "drop/big.bin")
        assert activity(emulator)["faults_injected"] == 5
        assert stored(emulator, client, one.file_id) == small
        assert stored(emulator, client, two.file_id) == big
        remote = client.detail(two.file_id)
        assert (remote.size, remote.etag) == (len(big), hashlib.md5(big).hexdigest())
        assert live_names(emulator, client, remote.parent_id) == ["big.bin", "small.txt"]
    received = slices_received(emulator)
    assert len(received) == 1 and sorted(received[0]) == [1, 2, 3, 4, 5, 6]


def test_connection_dropped_after_the_whole_slice_was_sent(
    emulator: Emulator, tmp_path: Path, files: tuple[Path, bytes, Path, bytes]
) -> None:
    """The connection is reset once the whole slice was sent, with no answer: sent again."""
    _, _, big_path, big = files
    emulator.drop_next("upload/v2/file/slice", times=3, after_bytes=10 * SLICE)
    with make_client(emulator, tmp_path / "state", slice_workers=1) as client:
        result = client.upload(big_path, 0, "big.bin")
        assert stored(emulator, client, result.file_id) == big
    # each slice accepted once (two may be open at once: one written, one awaiting its answer)
    (received,) = slices_received(emulator)
    assert sorted(received) == [1, 2, 3, 4, 5, 6]


def test_connection_dropped_on_upload_complete_is_retried(
    emulator: Emulator, tmp_path: Path, files: tuple[Path, bytes, Path, bytes]
) -> None:
    _, _, big_path, big = files
    emulator.drop_next("upload/v2/file/upload_complete", times=2)
    with make_client(emulator, tmp_path / "state") as client:
        result = client.upload(big_path, 0, "big.bin")
        assert result.method == "chunked"
        assert stored(emulator, client, result.file_id) == big
    assert activity(emulator)["counts"]["chunked_uploads"] == 1


def test_20103_storms_are_polled_through(
    emulator: Emulator, tmp_path: Path, files: tuple[Path, bytes, Path, bytes]
) -> None:
    _, _, big_path, big = files
    emulator.configure(complete_pending_polls=5)
    emulator.fail_next("upload/v2/file/upload_complete", times=4, code=20103)
    with make_client(emulator, tmp_path / "state") as client:
        result = client.upload(big_path, 0, "verify/big.bin")
        assert result.method == "chunked"
        assert stored(emulator, client, result.file_id) == big
    # 4 injected + 5 answered "verifying" by the emulator itself + the one that completed
    assert activity(emulator)["faults_injected"] == 4
    assert calls(emulator, "upload/v2/file/upload_complete") == 6


def test_verifying_forever_gives_up_at_the_deadline(
    emulator: Emulator, tmp_path: Path, files: tuple[Path, bytes, Path, bytes]
) -> None:
    _, _, big_path, _ = files
    emulator.configure(complete_pending_polls=1_000_000)
    with make_client(emulator, tmp_path / "state", complete_deadline=0.5) as client:
        started = time.monotonic()
        with pytest.raises(VerifyingError):
            client.upload(big_path, 0, "big.bin")
        elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 5
    assert calls(emulator, "upload/v2/file/upload_complete") >= 3


def test_slice_refused_for_its_md5_is_sent_again_alone(
    emulator: Emulator, tmp_path: Path, files: tuple[Path, bytes, Path, bytes]
) -> None:
    _, _, big_path, big = files
    emulator.fail_next("upload/v2/file/slice", times=1, code=1, message=BAD_MD5)
    with make_client(emulator, tmp_path / "state", slice_workers=1) as client:
        result = client.upload(big_path, 0, "md5/big.bin")
        assert result.method == "chunked"
        assert result.slices_sent == 6
        assert stored(emulator, client, result.file_id) == big
    act = activity(emulator)
    assert act["faults_injected"] == 1  # slice 1's first attempt
    assert act["counts"]["preuploads"] == 1  # the upload was not started over
    (received,) = slices_received(emulator)
    assert sorted(received) == [1, 2, 3, 4, 5, 6]
    assert calls(emulator, "upload/v2/file/slice") == 6


def test_a_slice_refused_again_and_again_fails_the_upload_quickly(
    emulator: Emulator, tmp_path: Path, files: tuple[Path, bytes, Path, bytes]
) -> None:
    _, _, big_path, _ = files
    emulator.fail_next("upload/v2/file/slice", times=None, code=1, message=BAD_MD5)
    with (
        make_client(emulator, tmp_path / "state", slice_workers=1) as client,
        pytest.raises(ApiError),
    ):
        client.upload(big_path, 0, "md5/big.bin")
    # the slices open at once (one written, one awaiting its answer) use their three
    # attempts, then the upload stops: the other slices are not tried
    assert 3 <= activity(emulator)["faults_injected"] <= 3 * 2


@pytest.mark.parametrize(
    "endpoint",
    ["upload/v2/file/create", "upload/v2/file/slice", "upload/v2/file/single/create"],
)
def test_server_errors_forever_end_in_server_error_after_the_attempts(
    emulator: Emulator,
    tmp_path: Path,
    files: tuple[Path, bytes, Path, bytes],
    endpoint: str,
) -> None:
    small_path = files[0]
    many_slices = tmp_path / "many.bin"
    many_slices.write_bytes(blob(20 * SLICE, seed=7))  # 20 slices, 4 workers
    path = small_path if endpoint.endswith("single/create") else many_slices
    emulator.fail_next(endpoint, times=None, http_status=500)
    with make_client(emulator, tmp_path / "state", attempts=3) as client:
        started = time.monotonic()
        with pytest.raises(ServerError) as info:
            client.upload(path, 0, "doomed.bin")
        elapsed = time.monotonic() - started
    assert info.value.endpoint == endpoint
    assert info.value.http_status == 500
    injected = activity(emulator)["faults_injected"]
    if endpoint == "upload/v2/file/slice":
        # the slices open at once (two per worker: one written, one awaiting its answer) use
        # their attempts; no other slice is tried
        assert 3 <= injected <= 3 * 2 * 4
    else:
        assert injected == 3
    assert elapsed < 3


def test_rate_limited_forever_ends_in_rate_limited_error(
    emulator: Emulator, tmp_path: Path, files: tuple[Path, bytes, Path, bytes]
) -> None:
    _, _, big_path, _ = files
    emulator.fail_next("upload/v2/file/create", times=None, code=429)
    with (
        make_client(emulator, tmp_path / "state", attempts=4) as client,
        pytest.raises(RateLimitedError),
    ):
        started = time.monotonic()
        client.upload(big_path, 0, "big.bin")
    # 429s are retried for the time budget (2 s here), not for the 4 tries: then it ends.
    assert activity(emulator)["faults_injected"] > 4
    assert 2.0 <= time.monotonic() - started < 30
    assert activity(emulator)["counts"].get("preuploads", 0) == 0
