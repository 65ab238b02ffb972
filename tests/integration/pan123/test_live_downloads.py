"""Downloads through the client against the emulator: checked, placed atomically, resumed with
HTTP Range after a cut body or a killed run, fetched again after wrong bytes, and paced.

Uploads are made with plain HTTP (``conftest.Api``); what crossed the wire is read from the
emulator's own counters (``download_bytes``: body bytes it sent).
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import md5
from pan123_support import blob, counts, endpoint_stats, make_client, put

from syncagent.emulator import Emulator
from syncagent.errors import IntegrityError, RemoteNotFoundError
from syncagent.pan123 import Pan123Client
from syncagent.pan123.download import temp_path

SIZE = 700_000


@pytest.fixture(autouse=True)
def _collect_dropped_pools() -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture
def client(tmp_path: Path, emulator: Emulator) -> Iterator[Pan123Client]:
    c = make_client(emulator, tmp_path / "state")
    yield c
    c.close()


def sent(emulator: Emulator) -> int:
    return int(counts(emulator).get("download_bytes", 0))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".syncagent-part"))


def test_download_places_checked_bytes_with_mode_and_mtime(
    tmp_path: Path, emulator: Emulator, client: Pan123Client
) -> None:
    data = blob(SIZE, 1)
    fid = put(emulator, "a.bin", data)
    target = tmp_path / "out" / "a.bin"
    target.parent.mkdir()
    mtime_ns = 1_500_000_000_123_456_789
    result = client.download(
        fid, target, size=len(data), md5=md5(data), mode=0o640, mtime_ns=mtime_ns
    )
    assert target.read_bytes() == data
    st = target.stat()
    assert (st.st_mode & 0o777, st.st_mtime_ns) == (0o640, mtime_ns)
    assert (result.fetched, result.attempts, result.resumed_from) == (len(data), 1, 0)
    assert leftovers(target.parent) == []


def test_a_cut_body_is_resumed_with_a_range_request(
    tmp_path: Path, emulator: Emulator, client: Pan123Client
) -> None:
    data = blob(SIZE, 2)
    fid = put(emulator, "cut.bin", data)
    emulator.reset_activity()
    emulator.drop_next_download(fid, after_bytes=300_000)
    target = tmp_path / "cut.bin"
    result = client.download(fid, target, size=len(data), md5=md5(data))
    assert target.read_bytes() == data
    assert result.attempts == 2
    assert sent(emulator) == len(data)  # 300,000 before the cut + the rest: nothing twice
    assert leftovers(tmp_path) == []


def test_a_partial_file_left_by_a_killed_run_is_resumed(
    tmp_path: Path, emulator: Emulator, client: Pan123Client
) -> None:
    data = blob(SIZE, 3)
    fid = put(emulator, "part.bin", data)
    target = tmp_path / "part.bin"
    temp_path(target, md5(data)).write_bytes(data[:450_000])
    emulator.reset_activity()
    result = client.download(fid, target, size=len(data), md5=md5(data))
    assert target.read_bytes() == data
    assert (result.resumed_from, result.fetched) == (450_000, len(data) - 450_000)
    assert sent(emulator) == len(data) - 450_000


def test_wrong_bytes_are_fetched_again_and_a_file_that_stays_wrong_is_not_left(
    tmp_path: Path, emulator: Emulator, client: Pan123Client
) -> None:
    data = blob(SIZE, 4)
    fid = put(emulator, "wrong.bin", data)
    emulator.corrupt_next_download(fid)
    target = tmp_path / "wrong.bin"
    result = client.download(fid, target, size=len(data), md5=md5(data))
    assert target.read_bytes() == data and result.attempts == 2

    target.unlink()
    emulator.corrupt_next_download(fid, times=None)  # every time
    with pytest.raises(IntegrityError, match="expected"):
        client.download(fid, target, size=len(data), md5=md5(data))
    emulator.clear_faults()
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_an_expired_url_is_asked_for_again(
    tmp_path: Path, emulator: Emulator, client: Pan123Client
) -> None:
    data = blob(SIZE, 5)
    fid = put(emulator, "late.bin", data)
    emulator.configure(download_ttl=0)  # every URL is already expired
    target = tmp_path / "late.bin"
    with pytest.raises(IntegrityError, match="URL was refused"):
        client.download(fid, target, size=len(data), md5=md5(data))
    emulator.configure(download_ttl=3600)
    client.download(fid, target, size=len(data), md5=md5(data))
    assert target.read_bytes() == data


def test_a_file_gone_remotely_is_reported(tmp_path: Path, client: Pan123Client) -> None:
    with pytest.raises(RemoteNotFoundError):
        client.download(987654, tmp_path / "x", size=1, md5="0" * 32)


def test_parallel_downloads_stay_under_the_download_info_limit(
    tmp_path: Path, emulator: Emulator
) -> None:
    emulator.configure(rate_limits="free")  # download_info: 2 per second
    datas = [os.urandom(1000 + i) for i in range(5)]
    ids = [put(emulator, f"p{i}", d) for i, d in enumerate(datas)]
    emulator.reset_activity()
    client = make_client(emulator, tmp_path / "state", qps="free")
    try:
        threads = [
            threading.Thread(
                target=client.download,
                args=(fid, tmp_path / f"p{i}"),
                kwargs={"size": len(d), "md5": md5(d)},
            )
            for i, (fid, d) in enumerate(zip(ids, datas, strict=True))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        client.close()
    assert [(tmp_path / f"p{i}").read_bytes() for i in range(5)] == datas
    stats = endpoint_stats(emulator)["api/v1/file/download_info"]
    assert (stats["calls"], stats["limited"]) == (5, 0)
