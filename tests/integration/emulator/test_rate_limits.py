"""Per-endpoint rate limits of the emulator over plain HTTP (reference section 7, checklist 9.4).

Limits are sliding 1-second windows; a refused call answers ``code 429`` on HTTP 200. Bursts
here are a few milliseconds long on loopback, far inside one window.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from syncagent.emulator import Emulator

PLATFORM = {"Platform": "open_platform"}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class Caller:
    """One session with a token minted while limits were off."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.http = requests.Session()
        self.token = ""

    def __enter__(self) -> Caller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def mint(self) -> requests.Response:
        return self.http.post(
            f"{self.emu.api_url}/api/v1/access_token",
            json={"clientID": self.emu.client_id, "clientSecret": self.emu.client_secret},
            headers=PLATFORM,
            timeout=10,
        )

    def login(self) -> None:
        env = self.mint().json()
        assert env["code"] == 0, env
        self.token = env["data"]["accessToken"]

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**PLATFORM, "Authorization": f"Bearer {self.token}"}
        return self.http.request(
            method, f"{self.emu.api_url}{path}", headers=headers, timeout=10, **kwargs
        )


def codes(make: Callable[[], requests.Response], n: int) -> list[int]:
    out = []
    for _ in range(n):
        r = make()
        assert r.status_code == 200
        out.append(int(r.json()["code"]))
    return out


@pytest.fixture
def free() -> Any:
    with Emulator.temporary(rate_limits="free") as emu, Caller(emu) as caller:
        yield caller


def test_token_endpoint_8_per_second_then_429(free: Caller) -> None:
    got = codes(free.mint, 9)
    assert got[:8] == [0] * 8
    assert got[8] == 429
    env = free.mint().json()
    assert env["code"] == 429
    assert env["data"] is None
    assert env["message"]
    time.sleep(1.1)
    assert codes(free.mint, 2) == [0, 0]


def test_create_is_one_per_second(free: Caller) -> None:
    free.login()

    def create(n: int) -> requests.Response:
        data = f"file {n}".encode()
        return free.call(
            "POST",
            "/upload/v2/file/create",
            json={
                "parentFileID": 0,
                "filename": f"f{n}.txt",
                "etag": md5(data),
                "size": len(data),
                "duplicate": 2,
            },
        )

    first = create(1).json()
    assert first["code"] == 0, first
    second = create(2).json()
    assert second["code"] == 429
    assert second["data"] is None
    time.sleep(1.05)
    assert create(3).json()["code"] == 0


# endpoint -> (free QPS, how to call it)
ROUTED: dict[str, tuple[int, str, str, dict[str, Any]]] = {
    "api/v1/user/info": (10, "GET", "/api/v1/user/info", {}),
    "api/v2/file/list": (
        5,
        "GET",
        "/api/v2/file/list",
        {"params": {"parentFileId": 0, "limit": 10}},
    ),
    "upload/v1/file/mkdir": (
        5,
        "POST",
        "/upload/v1/file/mkdir",
        {"json": {"name": "same", "parentID": 0}},
    ),
    "api/v1/file/move": (
        3,
        "POST",
        "/api/v1/file/move",
        {"json": {"fileIDs": [1], "toParentFileID": 0}},
    ),
    "api/v1/file/delete": (1, "POST", "/api/v1/file/delete", {"json": {"fileIDs": [1]}}),
    "api/v1/file/trash": (5, "POST", "/api/v1/file/trash", {"json": {"fileIDs": [1]}}),
    "api/v1/file/infos": (10, "POST", "/api/v1/file/infos", {"json": {"fileIds": [1]}}),
    "api/v1/file/download_info": (
        2,
        "GET",
        "/api/v1/file/download_info",
        {"params": {"fileId": 1}},
    ),
    "upload/v2/file/upload_complete": (
        5,
        "POST",
        "/upload/v2/file/upload_complete",
        {"json": {"preuploadID": "x"}},
    ),
}


def test_free_limits_of_routed_endpoints(free: Caller) -> None:
    """Each endpoint has its own window: its limit's worth of calls pass (whatever their
    business outcome), the next is refused with 429."""
    free.login()
    for name, (qps, method, path, kwargs) in ROUTED.items():
        got = codes(functools.partial(free.call, method, path, **kwargs), qps + 1)
        assert 429 not in got[:qps], (name, got)
        assert got[qps] == 429, (name, got)
    endpoints = free.emu.activity()["endpoints"]
    for name, (qps, *_) in ROUTED.items():
        assert endpoints[name]["calls"] == qps + 1, name
        assert endpoints[name]["limited"] == 1, name


def test_unlimited_endpoints_are_not_limited(free: Caller) -> None:
    free.login()
    got = codes(lambda: free.call("GET", "/upload/v2/file/domain"), 30)
    assert got == [0] * 30
    got = codes(
        lambda: free.call("PUT", "/api/v1/file/name", json={"fileId": 1, "fileName": "x"}), 15
    )
    assert 429 not in got


def test_limits_are_per_endpoint(free: Caller) -> None:
    free.login()
    assert (
        codes(lambda: free.call("POST", "/api/v1/file/delete", json={"fileIDs": [1]}), 2)[1] == 429
    )
    # another endpoint is unaffected
    info = codes(lambda: free.call("GET", "/api/v1/user/info"), 10)
    assert info == [0] * 10


def test_vip_preset_raises_limits() -> None:
    with Emulator.temporary(rate_limits="vip") as emu, Caller(emu) as caller:
        got = codes(caller.mint, 11)
        assert got[:10] == [0] * 10
        assert got[10] == 429
        time.sleep(1.05)
        caller.login()
        got = codes(
            lambda: caller.call(
                "GET", "/api/v2/file/list", params={"parentFileId": 0, "limit": 10}
            ),
            11,
        )
        assert got[:10] == [0] * 10
        assert got[10] == 429


def test_off_never_limits(api: Any) -> None:
    api.login()
    emu = api.emu
    h = api.headers()
    got = [
        api.http.get(f"{emu.api_url}/api/v1/user/info", headers=h, timeout=10).json()["code"]
        for _ in range(50)
    ]
    assert got == [0] * 50
    got = [
        api.http.post(
            f"{emu.api_url}/api/v1/file/delete", json={"fileIDs": [1]}, headers=h, timeout=10
        ).json()["code"]
        for _ in range(20)
    ]
    assert 429 not in got
    assert emu.activity()["endpoints"]["api/v1/user/info"]["limited"] == 0


def test_configure_at_run_time(emulator: Emulator) -> None:
    with Caller(emulator) as caller:
        _configure_at_run_time(emulator, caller)


def _configure_at_run_time(emulator: Emulator, caller: Caller) -> None:
    assert codes(caller.mint, 12) == [0] * 12  # fixture starts with limits off
    emulator.configure(rate_limits="free")
    assert emulator.settings.rate_limits == "free"
    got = codes(caller.mint, 9)
    assert got[:8] == [0] * 8
    assert got[8] == 429
    emulator.configure(rate_limits="off")
    assert codes(caller.mint, 5) == [0] * 5
    with pytest.raises(Exception, match="rate_limits"):
        emulator.configure(rate_limits="platinum")
    with pytest.raises(Exception, match="not a run-time setting"):
        emulator.configure(data_dir="/tmp")


def test_activity_reports_calls_limited_and_peak(free: Caller) -> None:
    free.login()
    for _ in range(7):
        free.call("GET", "/api/v2/file/list", params={"parentFileId": 0, "limit": 10})
    stats = free.emu.activity()["endpoints"]["api/v2/file/list"]
    assert stats == {"calls": 7, "limited": 2, "peak_per_second": 7}
    token = free.emu.activity()["endpoints"]["api/v1/access_token"]
    assert token == {"calls": 1, "limited": 0, "peak_per_second": 1}
    free.emu.reset_activity()
    assert "api/v2/file/list" not in free.emu.activity()["endpoints"]


def test_user_info_reports_the_tier() -> None:
    for preset, vip in (("free", False), ("vip", True)):
        with Emulator.temporary(rate_limits=preset) as emu, Caller(emu) as caller:
            caller.login()
            info = caller.call("GET", "/api/v1/user/info").json()["data"]
            assert info["vip"] is vip
            if vip:
                assert isinstance(info["vipInfo"], list) and info["vipInfo"]
                assert info["vipInfo"][0]["vipLevel"] in (1, 2, 3)
            else:
                assert info["vipInfo"] is None
