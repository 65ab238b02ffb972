"""Download URLs of the emulator: byte ranges, expiry, the download_info rate limit, and faults
on the body (cut mid-way, wrong bytes), spoken to with plain ``requests``."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterator

import pytest
import requests
from conftest import Api, md5

from syncagent.emulator import Emulator
from syncagent.emulator.downloads import RangeNotSatisfiable, parse_range


@pytest.fixture(autouse=True)
def _collect_dropped_pools() -> Iterator[None]:
    """A reset connection's traceback keeps its pool alive in a cycle: collect it."""
    yield
    gc.collect()


def url_of(api: Api, file_id: int) -> str:
    return str(api.ok(api.get("/api/v1/file/download_info", fileId=file_id))["downloadUrl"])


def stored(api: Api, data: bytes, name: str = "f.bin") -> int:
    return int(api.ok(api.single(name, data))["fileID"])


def test_parse_range_forms() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=2-4", 10) == (2, 3)
    assert parse_range("bytes=7-", 10) == (7, 3)
    assert parse_range("bytes=-3", 10) == (7, 3)
    assert parse_range("bytes=-30", 10) == (0, 10)
    assert parse_range("bytes=5-100", 10) == (5, 5)
    assert parse_range("bytes=1-2,4-5", 10) is None  # several ranges: the whole file
    assert parse_range("items=1-2", 10) is None
    for bad in ("bytes=10-", "bytes=12-14", "bytes=-0", "bytes=5-3"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(bad, 10)


def test_range_requests_answer_206_with_content_range(api: Api) -> None:
    data = os.urandom(5000)
    url = url_of(api, stored(api, data))
    whole = api.http.get(url, timeout=10)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["Accept-Ranges"] == "bytes"
    part = api.http.get(url, headers={"Range": "bytes=1000-"}, timeout=10)
    assert part.status_code == 206
    assert part.headers["Content-Range"] == "bytes 1000-4999/5000"
    assert part.content == data[1000:]
    mid = api.http.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert (mid.status_code, mid.content) == (206, data[10:20])
    past = api.http.get(url, headers={"Range": "bytes=5000-"}, timeout=10)
    assert past.status_code == 416


def test_download_urls_expire_after_the_setting(emulator: Emulator, api: Api) -> None:
    file_id = stored(api, b"short-lived\n")
    emulator.configure(download_ttl=0)
    expired = api.http.get(url_of(api, file_id), timeout=10)
    assert expired.status_code == 403
    emulator.configure(download_ttl=3600)
    assert api.http.get(url_of(api, file_id), timeout=10).content == b"short-lived\n"


def test_download_info_is_rate_limited_on_the_free_tier(emulator: Emulator, api: Api) -> None:
    file_id = stored(api, b"x" * 10)
    emulator.configure(rate_limits="free")
    codes = [api.get("/api/v1/file/download_info", fileId=file_id)["code"] for _ in range(6)]
    assert codes.count(0) >= 2 and 429 in codes, codes  # 2 per second on the free tier


def test_a_dropped_body_ends_short_and_a_corrupt_one_differs_in_one_byte(
    emulator: Emulator, api: Api
) -> None:
    data = os.urandom(300_000)
    a, b = stored(api, data, "a.bin"), stored(api, data[::-1], "b.bin")
    emulator.reset_activity()
    emulator.drop_next_download(a, after_bytes=100_000)
    with pytest.raises(
        (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)
    ):
        api.http.get(url_of(api, a), timeout=10).content  # noqa: B018
    # the fault was for a only: b comes whole
    assert api.http.get(url_of(api, b), timeout=10).content == data[::-1]
    emulator.corrupt_next_download(at=5)
    bad = api.http.get(url_of(api, a), timeout=10).content
    assert len(bad) == len(data) and md5(bad) != md5(data)
    assert [i for i in range(len(data)) if bad[i] != data[i]] == [5]
    good = api.http.get(url_of(api, a), headers={"Range": "bytes=100000-"}, timeout=10)
    assert good.content == data[100_000:]
    counts = emulator.activity()["counts"]
    # what left the emulator: 100,000 (cut) + 300,000 (b) + 300,000 (corrupt) + 200,000
    assert counts["download_bytes"] == 900_000


def test_download_bps_slows_the_body_down(emulator: Emulator, api: Api) -> None:
    data = os.urandom(200_000)
    url = url_of(api, stored(api, data))
    emulator.configure(download_bps=400_000)
    started = time.monotonic()
    assert api.http.get(url, timeout=30).content == data
    assert time.monotonic() - started >= 0.45  # 200 kB at 400 kB/s (a lower bound only)
