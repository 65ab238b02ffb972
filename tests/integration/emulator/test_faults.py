"""Fault injection of the emulator, from Python and over the admin HTTP endpoint.

Reference: checklist items 9.1 (5xx / connection resets) and 9.4 (fail the next N calls).
"""

from __future__ import annotations

import gc
import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from syncagent.emulator import Emulator, EmulatorSettings

ENVELOPE_KEYS = {"code", "message", "data", "x-traceID"}
Outcome = tuple[int, int] | str


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(autouse=True)
def _collect_dropped_pools() -> Iterator[None]:
    """Close what a dropped connection's traceback keeps alive.

    urllib3 2.x ``Session.close()`` only forgets its pools and lets garbage collection close
    their sockets; after a reset, the exception's traceback holds the pool in a reference
    cycle, so its later keep-alive socket would stay open (and an emulator thread waiting
    on it) until the next cyclic collection. Runs after the ``api`` fixture's teardown.
    """
    yield
    gc.collect()


def info_code(api: Any) -> int:
    return int(api.get("/api/v1/user/info")["code"])


def outcome(api: Any, path: str = "/api/v1/user/info") -> Outcome:
    """(HTTP status, body code), or ``drop`` when the connection was reset."""
    try:
        r = api.http.get(f"{api.emu.api_url}{path}", headers=api.headers(), timeout=10)
    except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError):
        return "drop"
    env = r.json()
    assert set(env) == ENVELOPE_KEYS
    return (r.status_code, int(env["code"]))


def admin(
    emu: Emulator, method: str, action: str, body: Any = None, host: str | None = None
) -> requests.Response:
    return requests.request(
        method,
        f"{host or emu.api_url}/__emulator/{action}",
        json=body,
        headers=emu.admin_headers(),
        timeout=10,
    )


# -- Python API ------------------------------------------------------------------------------


def test_fail_next_with_a_code_then_normal(api: Any) -> None:
    api.login()
    api.emu.fail_next("api/v1/user/info", times=2, code=429)
    first = api.get("/api/v1/user/info")
    assert (first["code"], first["data"]) == (429, None)
    assert first["message"]
    assert [info_code(api) for _ in range(3)] == [429, 0, 0]
    # other endpoints were never affected
    api.emu.fail_next("api/v1/user/info", code=20103)
    assert api.get("/upload/v2/file/domain")["code"] == 0
    assert info_code(api) == 20103
    assert api.emu.activity()["faults_injected"] == 3


def test_fail_next_leading_slash_and_message(api: Any) -> None:
    api.login()
    api.emu.fail_next("/api/v1/user/info", code=1, message="boom")
    env = api.get("/api/v1/user/info")
    assert (env["code"], env["message"]) == (1, "boom")
    assert info_code(api) == 0


def test_fail_next_with_an_http_status(api: Any) -> None:
    api.login()
    api.emu.fail_next("api/v1/user/info", http_status=500)
    r = api.http.get(f"{api.emu.api_url}/api/v1/user/info", headers=api.headers(), timeout=10)
    assert r.status_code == 500
    assert r.headers["Content-Type"].startswith("application/json")
    env = r.json()
    assert set(env) == ENVELOPE_KEYS
    assert env["code"] == 500
    assert env["data"] is None
    assert info_code(api) == 0  # once only, and the connection still works


def test_fail_next_needs_exactly_one_of_code_and_status(emulator: Emulator) -> None:
    with pytest.raises(ValueError):
        emulator.fail_next("api/v1/user/info")
    with pytest.raises(ValueError):
        emulator.fail_next("api/v1/user/info", code=1, http_status=500)


def test_star_matches_every_endpoint(api: Any) -> None:
    api.login()
    api.emu.fail_next("*", times=3, code=1)
    assert api.get("/api/v1/user/info")["code"] == 1
    assert api.get("/upload/v2/file/domain")["code"] == 1
    assert api.post("/upload/v1/file/mkdir", {"name": "x", "parentID": 0})["code"] == 1
    assert api.post("/upload/v1/file/mkdir", {"name": "x", "parentID": 0})["code"] == 0
    assert [i["filename"] for i in api.listing()] == ["x"]


def test_unlimited_fault_until_cleared(api: Any) -> None:
    api.login()
    api.emu.fail_next("api/v1/user/info", times=None, code=429)
    assert [info_code(api) for _ in range(5)] == [429] * 5
    api.emu.clear_faults()
    assert info_code(api) == 0


def test_drop_next_slice_resets_the_connection(api: Any) -> None:
    data = bytes(range(256)) * 1024  # 256 KiB, one slice
    created = api.ok(api.create("dropped.bin", data))
    server = created["servers"][0]
    api.emu.drop_next("upload/v2/file/slice")
    with pytest.raises(
        (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
    ):
        api.send_slice(created["preuploadID"], 1, data, server=server)
    assert api.emu.activity()["slices"].get(created["preuploadID"], []) == []
    api.ok(api.send_slice(created["preuploadID"], 1, data, server=server))
    done = api.ok(api.complete(created["preuploadID"]))
    assert done["completed"] is True
    assert api.download(done["fileID"]) == data


def test_drop_next_on_a_json_call(api: Any) -> None:
    api.login()
    api.emu.drop_next("upload/v1/file/mkdir")
    with pytest.raises(
        (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
    ):
        api.post("/upload/v1/file/mkdir", {"name": "never", "parentID": 0})
    assert api.listing() == []
    api.ok(api.post("/upload/v1/file/mkdir", {"name": "later", "parentID": 0}))


def test_add_latency_once(api: Any) -> None:
    api.login()
    api.emu.add_latency("api/v1/user/info", 0.3, times=1)
    start = time.monotonic()
    assert info_code(api) == 0
    slow = time.monotonic() - start
    start = time.monotonic()
    assert info_code(api) == 0
    fast = time.monotonic() - start
    assert slow >= 0.3
    assert fast < 0.25


def test_expire_tokens_from_python(api: Any) -> None:
    api.login()
    assert info_code(api) == 0
    assert api.emu.expire_tokens() == 1
    assert info_code(api) == 401
    api.login()
    assert info_code(api) == 0


class Plain:
    """Just enough of conftest's ``Api`` for :func:`outcome`, on any emulator."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.http = requests.Session()
        self.token = ""

    def login(self) -> None:
        env = self.http.post(
            f"{self.emu.api_url}/api/v1/access_token",
            json={"clientID": self.emu.client_id, "clientSecret": self.emu.client_secret},
            headers={"Platform": "open_platform"},
            timeout=10,
        ).json()
        assert env["code"] == 0, env
        self.token = env["data"]["accessToken"]

    def headers(self) -> dict[str, str]:
        return {"Platform": "open_platform", "Authorization": f"Bearer {self.token}"}

    def close(self) -> None:
        self.http.close()


def _random_run(emu: Emulator, seed: int, via_http: bool = False) -> list[Outcome]:
    api = Plain(emu)
    try:
        api.login()  # before the profile: the token call would draw from it too
        if via_http:
            r = admin(emu, "POST", "faults/random", {"seed": seed, "probability": 0.5})
            assert r.json()["code"] == 0
        else:
            emu.random_faults(seed=seed, probability=0.5)
        return [outcome(api) for _ in range(30)]
    finally:
        api.close()
        gc.collect()


def test_random_faults_are_reproducible() -> None:
    runs = []
    for seed, via_http in ((7, False), (7, False), (7, True), (8, False)):
        with Emulator.temporary(rate_limits="off") as emu:
            runs.append(_random_run(emu, seed, via_http))
    first = runs[0]
    assert runs[1] == first
    assert runs[2] == first  # the admin endpoint builds the same profile
    assert runs[3] != first
    kinds = {o if isinstance(o, str) else ("ok" if o == (200, 0) else "fault") for o in first}
    assert kinds == {"ok", "fault", "drop"}, first
    assert sum(o != (200, 0) for o in first) >= 5


def test_random_faults_limited_to_endpoints(api: Any) -> None:
    api.login()
    api.emu.random_faults(
        seed=1, probability=1.0, kinds=("code",), endpoints=("upload/v2/file/domain",)
    )
    assert [info_code(api) for _ in range(5)] == [0] * 5
    codes = [api.get("/upload/v2/file/domain")["code"] for _ in range(5)]
    assert all(c in (429, 1) for c in codes), codes
    api.emu.clear_faults()
    assert api.get("/upload/v2/file/domain")["code"] == 0


def preset(emu: Emulator) -> str:
    return str(emu.settings.rate_limits)


# -- admin HTTP endpoint -----------------------------------------------------------------------


def test_admin_fault_code(api: Any) -> None:
    api.login()
    r = admin(
        api.emu,
        "POST",
        "faults",
        {"endpoint": "api/v1/user/info", "kind": "code", "times": 2, "code": 429},
    )
    assert r.status_code == 200
    env = r.json()
    assert set(env) == ENVELOPE_KEYS and env["code"] == 0
    assert env["data"] == [{"endpoint": "api/v1/user/info", "kind": "code", "remaining": 2}]
    assert [info_code(api) for _ in range(3)] == [429, 429, 0]


def test_admin_fault_http_and_clear(api: Any) -> None:
    api.login()
    admin(
        api.emu,
        "POST",
        "faults",
        {"endpoint": "api/v1/user/info", "kind": "http", "http_status": 503, "times": None},
    )
    assert outcome(api) == (503, 503)
    assert outcome(api) == (503, 503)
    r = admin(api.emu, "POST", "faults/clear")
    assert r.json()["code"] == 0
    assert outcome(api) == (200, 0)
    state = admin(api.emu, "GET", "state").json()["data"]
    assert state["pending_faults"] == []


def test_admin_fault_drop_and_delay(api: Any) -> None:
    api.login()
    admin(api.emu, "POST", "faults", {"endpoint": "api/v1/user/info", "kind": "drop"})
    assert outcome(api) == "drop"
    admin(
        api.emu, "POST", "faults", {"endpoint": "api/v1/user/info", "kind": "delay", "seconds": 0.3}
    )
    start = time.monotonic()
    assert outcome(api) == (200, 0)
    assert time.monotonic() - start >= 0.3


@pytest.mark.parametrize(
    "body", [{"endpoint": "x"}, {"kind": "explode"}, {"kind": "code", "code": "many"}, [1, 2]]
)
def test_admin_bad_fault_is_an_error_envelope(emulator: Emulator, body: Any) -> None:
    r = admin(emulator, "POST", "faults", body)
    env = r.json()
    assert set(env) == ENVELOPE_KEYS
    assert env["code"] != 0
    assert env["data"] is None
    assert admin(emulator, "GET", "state").json()["data"]["pending_faults"] == []


def test_admin_expire_tokens(api: Any) -> None:
    api.login()
    assert info_code(api) == 0
    env = admin(api.emu, "POST", "tokens/expire").json()
    assert env["code"] == 0
    assert env["data"] == {"expired": 1}
    assert info_code(api) == 401


def test_admin_settings(emulator: Emulator) -> None:
    env = admin(emulator, "POST", "settings", {"rate_limits": "free"}).json()
    assert env["code"] == 0
    assert env["data"]["rate_limits"] == "free"
    assert preset(emulator) == "free"
    assert admin(emulator, "GET", "state").json()["data"]["rate_limits"]["api/v1/access_token"] == 8
    env = admin(emulator, "POST", "settings", {"rate_limits": "off"}).json()
    assert env["data"]["rate_limits"] == "off"
    assert preset(emulator) == "off"


def test_admin_bad_settings_list_the_wrong_keys(emulator: Emulator) -> None:
    r = admin(
        emulator,
        "POST",
        "settings",
        {"rate_limits": "platinum", "bogus": 1, "max_tokens": "3", "slice_size": -1},
    )
    env = r.json()
    assert set(env) == ENVELOPE_KEYS
    assert env["code"] != 0
    assert env["data"] is None
    for key in ("rate_limits", "bogus", "max_tokens", "slice_size"):
        assert key in env["message"], env["message"]
    assert emulator.settings.rate_limits == "off"  # nothing applied
    assert emulator.settings.max_tokens == 3


def test_admin_state(api: Any) -> None:
    api.login()
    api.get("/api/v1/user/info")
    r = admin(api.emu, "GET", "state")
    assert r.status_code == 200
    env = r.json()
    assert set(env) == ENVELOPE_KEYS and env["code"] == 0
    state = env["data"]
    assert state["api_url"] == api.emu.api_url
    assert state["upload_url"] == api.emu.upload_url
    assert state["activity"]["endpoints"]["api/v1/user/info"]["calls"] == 1
    assert state["activity"]["counts"]["tokens_minted"] == 1
    assert state["settings"]["rate_limits"] == "off"
    assert api.emu.client_secret not in r.text


def test_admin_is_only_on_the_api_host(emulator: Emulator) -> None:
    r = admin(emulator, "GET", "state", host=emulator.upload_url)
    assert r.status_code == 404
    assert set(r.json()) == ENVELOPE_KEYS
    r = admin(emulator, "GET", "no-such-action")
    assert r.json()["code"] == 404
    r = admin(emulator, "POST", "state")
    assert r.json()["code"] == 404


# -- the admin door ----------------------------------------------------------------------------


def _settings_and_faults(emu: Emulator) -> tuple[Any, Any]:
    state = admin(emu, "GET", "state").json()["data"]
    return state["settings"], state["pending_faults"]


HOSTILE = {"overwrite_old": "trash", "max_tokens": 0}


@pytest.mark.parametrize(
    "headers, status",
    [
        ({}, 401),  # no token
        ({"X-Emulator-Admin": "guessed"}, 401),  # a wrong one
        ("token", 403),  # the right token from a web page of another origin
        ("token+text", 415),  # text/plain: what a page can POST without a preflight
        ("token+host", 403),  # a rebound DNS name pointing at loopback
    ],
)
def test_refused_admin_requests_change_nothing(
    emulator: Emulator, headers: Any, status: int
) -> None:
    before = _settings_and_faults(emulator)
    if isinstance(headers, str):
        sent = dict(emulator.admin_headers())
        if headers == "token":
            sent["Origin"] = "http://evil.example"
        elif headers == "token+text":
            sent["Content-Type"] = "text/plain"
        else:
            sent["Host"] = "evil.example"
        headers = sent
    for action, body in [
        ("settings", HOSTILE),
        ("faults", {"endpoint": "*", "kind": "delay", "seconds": 3600, "times": None}),
        ("tokens/expire", None),
    ]:
        r = requests.post(
            f"{emulator.api_url}/__emulator/{action}",
            data=json.dumps(body),
            headers=headers,
            timeout=10,
        )
        assert r.status_code == status, (action, r.status_code, r.text)
        assert r.json()["data"] is None
    if headers.get("X-Emulator-Admin") is None or headers.get("X-Emulator-Admin") == "guessed":
        r = requests.get(f"{emulator.api_url}/__emulator/state", headers=headers, timeout=10)
        assert r.status_code == 401
    assert _settings_and_faults(emulator) == before
    assert emulator.settings.overwrite_old == "destroy"


def test_the_admin_token_changes_on_every_start(tmp_path: Any) -> None:
    tokens = []
    for _ in range(2):
        with Emulator(EmulatorSettings(data_dir=tmp_path)) as emu:
            tokens.append(emu.admin_token)
            assert admin(emu, "GET", "state").status_code == 200
            # the same origin (a page served by the emulator itself) is fine
            same = requests.post(
                f"{emu.api_url}/__emulator/faults/clear",
                headers={**emu.admin_headers(), "Origin": emu.api_url},
                timeout=10,
            )
            assert same.status_code == 200, same.text
    assert tokens[0] != tokens[1] and len(tokens[0]) >= 24


def _until(cond: Any, deadline: float = 30.0) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_open_connections_counts_a_request_in_flight_until_its_client_is_gone(
    emulator: Emulator,
) -> None:
    """What the chaos suite waits on before it reads the cloud: a request delayed at the
    emulator is counted while it is handled, and nothing once the client has gone."""
    import socket
    from urllib.parse import urlsplit

    assert emulator.open_connections() == 0
    emulator.add_latency("api/v1/user/info", 1.0, times=1)
    url = urlsplit(emulator.api_url)
    conn = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=30)
    try:
        conn.sendall(
            b"GET /api/v1/user/info HTTP/1.1\r\nHost: x\r\nPlatform: open_platform\r\n\r\n"
        )
        assert _until(lambda: emulator.open_connections() == 1)
    finally:
        conn.close()  # gone mid-request, as a SIGKILLed client is
    assert _until(lambda: emulator.open_connections() == 0)
