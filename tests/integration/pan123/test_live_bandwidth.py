"""The bandwidth limits on the wire: uploads (single-step and slices) and downloads through
the client take at least as long as their bytes need at the limit, all transfers share it,
the rate is asked anew as it goes, and a shutdown does not wait for it.

Only lower bounds on time are asserted (a busy machine makes a transfer slower, never
faster), and each is several times what the transfer takes without a limit.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import md5
from pan123_support import SLICE, THRESHOLD, blob, make_client, put, stored

from syncagent.emulator import Emulator
from syncagent.errors import Interrupted
from syncagent.pan123.bandwidth import BURST_SECONDS

RATE = 400_000  # bytes per second


@pytest.fixture(autouse=True)
def _small_slices(emulator: Emulator) -> None:
    emulator.configure(slice_size=SLICE)


def _least(size: int, rate: int = RATE) -> float:
    """The shortest time ``size`` bytes can take at ``rate``: the burst an idle limit lets
    through comes off (the multipart fields and headers are not counted: they are small)."""
    return size / rate - BURST_SECONDS


@pytest.mark.parametrize(("size", "method"), [(THRESHOLD, "single"), (9 * SLICE + 5, "chunked")])
def test_an_upload_takes_as_long_as_its_bytes_need_and_arrives_whole(
    emulator: Emulator, tmp_path: Path, size: int, method: str
) -> None:
    data = blob(size, 31)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    with make_client(emulator, tmp_path / "state", upload_rate=lambda: RATE) as client:
        client.user_info()  # the token first: only the upload is timed
        t0 = time.monotonic()
        result = client.upload(path, 0, "bw/f.bin")
        took = time.monotonic() - t0
        assert result.method == method
        assert stored(emulator, client, result.file_id) == data
    assert took >= _least(size), f"{size} bytes in {took:.2f} s: faster than {RATE} B/s"


def test_uploads_in_parallel_share_one_limit(emulator: Emulator, tmp_path: Path) -> None:
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"f{i}.bin")
        paths[-1].write_bytes(blob(THRESHOLD, 40 + i))
    with make_client(emulator, tmp_path / "state", upload_rate=lambda: RATE) as client:
        client.user_info()
        t0 = time.monotonic()
        ids: list[int] = []
        threads = [
            threading.Thread(
                target=lambda p=p: ids.append(client.upload(p, 0, f"bw/{p.name}").file_id)
            )
            for p in paths
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        took = time.monotonic() - t0
        assert sorted(stored(emulator, client, i) for i in ids) == sorted(
            p.read_bytes() for p in paths
        )
    assert took >= _least(4 * THRESHOLD), f"4 uploads in {took:.2f} s: each had its own limit"


def test_a_limit_lifted_midway_lets_the_rest_go_at_once(emulator: Emulator, tmp_path: Path) -> None:
    """The rate is asked before each piece: a timetable that turns to ``off`` (or a lifted
    limit) speeds up transfers already under way, waiting ones included."""
    rate = [50_000]  # 9 slices of 64 KiB would take ~12 s at this rate
    data = blob(9 * SLICE + 5, 32)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    sent = threading.Event()
    with make_client(emulator, tmp_path / "state", upload_rate=lambda: rate[0]) as client:
        client.user_info()

        def lift(done: int, total: int) -> None:
            if not sent.is_set():
                sent.set()
                rate[0] = 0

        t0 = time.monotonic()
        result = client.upload(path, 0, "bw/f.bin", on_progress=lift)
        took = time.monotonic() - t0
        assert stored(emulator, client, result.file_id) == data
    assert sent.is_set()
    assert took < _least(len(data), 50_000) / 2, f"{took:.1f} s: the lifted limit still held"


def test_a_shutdown_does_not_wait_for_the_limit(emulator: Emulator, tmp_path: Path) -> None:
    data = blob(THRESHOLD, 33)  # ~13 s at 10 kB/s
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    errors: list[BaseException] = []
    with make_client(emulator, tmp_path / "state", upload_rate=lambda: 10_000) as client:
        client.user_info()
        started = threading.Event()

        def upload() -> None:
            try:
                client.upload(path, 0, "bw/f.bin", on_progress=lambda done, total: started.set())
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=upload)
        thread.start()
        assert started.wait(60)
        client.cancel()
        thread.join(60)
        assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], Interrupted), errors


def test_a_download_takes_as_long_as_its_bytes_need(emulator: Emulator, tmp_path: Path) -> None:
    data = blob(600_000, 34)
    fid = put(emulator, "d.bin", data)
    target = tmp_path / "d.bin"
    with make_client(emulator, tmp_path / "state", download_rate=lambda: RATE) as client:
        client.user_info()
        t0 = time.monotonic()
        client.download(fid, target, size=len(data), md5=md5(data))
        took = time.monotonic() - t0
    assert target.read_bytes() == data
    assert took >= _least(len(data)), f"{len(data)} bytes in {took:.2f} s"
