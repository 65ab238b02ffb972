"""Envelope, headers, access tokens, hosts and lenient decoding of the emulator, over plain HTTP.

Reference: ``/work/shared/reference/123pan-api.md`` sections 1-3 and 9.1-9.3, 9.11, 9.13.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from syncagent.emulator import Emulator

PLATFORM = {"Platform": "open_platform"}
ENVELOPE_KEYS = {"code", "message", "data", "x-traceID"}
JWT_HEADER = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
EVICTED = "tokens number has exceeded the limit"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def mint(
    emu: Emulator, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> requests.Response:
    if body is None:
        body = {"clientID": emu.client_id, "clientSecret": emu.client_secret}
    return requests.post(
        f"{emu.api_url}/api/v1/access_token",
        json=body,
        headers=PLATFORM if headers is None else headers,
        timeout=10,
    )


def token_of(emu: Emulator) -> str:
    env = mint(emu).json()
    assert env["code"] == 0, env
    return str(env["data"]["accessToken"])


def user_info(emu: Emulator, authorization: str | None, platform: bool = True) -> requests.Response:
    headers = dict(PLATFORM) if platform else {}
    if authorization is not None:
        headers["Authorization"] = authorization
    return requests.get(f"{emu.api_url}/api/v1/user/info", headers=headers, timeout=10)


def code_with(emu: Emulator, token: str) -> int:
    r = user_info(emu, f"Bearer {token}")
    assert r.status_code == 200
    return int(r.json()["code"])


def b64url_json(part: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def assert_envelope(r: requests.Response) -> dict[str, Any]:
    assert r.headers["Content-Type"].startswith("application/json")
    env = r.json()
    assert isinstance(env, dict)
    assert set(env) == ENVELOPE_KEYS, env
    assert isinstance(env["code"], int)
    assert isinstance(env["message"], str)
    assert isinstance(env["x-traceID"], str)
    return env


# -- envelope ------------------------------------------------------------------------------


def test_every_answer_is_an_envelope_with_a_fresh_trace_id(api: Any) -> None:
    emu = api.emu
    h = api.headers()
    answers = [
        api.http.get(f"{emu.api_url}/api/v1/user/info", headers=h, timeout=10),
        api.http.get(f"{emu.api_url}/api/v1/user/info", headers=h, timeout=10),
        api.http.get(f"{emu.api_url}/upload/v2/file/domain", headers=h, timeout=10),
        api.http.post(
            f"{emu.api_url}/upload/v1/file/mkdir",
            json={"name": "e", "parentID": 0},
            headers=h,
            timeout=10,
        ),
        api.http.post(
            f"{emu.api_url}/upload/v1/file/mkdir",
            json={"name": "e", "parentID": 0},
            headers=h,
            timeout=10,
        ),  # name clash: business error
        api.http.get(f"{emu.api_url}/no/such/path", headers=h, timeout=10),
        mint(emu),
    ]
    envs = [assert_envelope(r) for r in answers]
    assert [e["code"] for e in envs] == [0, 0, 0, 0, 1, 404, 0]
    traces = [e["x-traceID"] for e in envs]
    assert all(traces), traces
    assert len(set(traces)) == len(traces), traces
    assert envs[0]["message"] == "ok"


def test_business_errors_come_on_http_200_with_null_data(api: Any) -> None:
    emu = api.emu
    h = api.headers()
    clash = [
        api.http.post(
            f"{emu.api_url}/upload/v1/file/mkdir",
            json={"name": "dup", "parentID": 0},
            headers=h,
            timeout=10,
        )
        for _ in range(2)
    ][1]
    missing = api.http.get(
        f"{emu.api_url}/api/v1/file/detail", params={"fileID": 999}, headers=h, timeout=10
    )
    unauth = user_info(emu, "Bearer nope")
    for r, code in ((clash, 1), (missing, 5066), (unauth, 401)):
        assert r.status_code == 200
        env = assert_envelope(r)
        assert env["code"] == code
        assert env["data"] is None
        assert env["message"] and env["message"] != "ok"


def test_void_call_has_null_data(api: Any) -> None:
    dir_id = api.ok(api.post("/upload/v1/file/mkdir", {"name": "t", "parentID": 0}))["dirID"]
    env = api.post("/api/v1/file/trash", {"fileIDs": [dir_id]})
    assert env["code"] == 0
    assert env["message"] == "ok"
    assert "data" in env and env["data"] is None


# -- access token --------------------------------------------------------------------------


def test_token_is_an_hs256_jwt_with_id_and_exp(emulator: Emulator) -> None:
    before = time.time()
    env = assert_envelope(mint(emulator))
    assert env["code"] == 0
    data = env["data"]
    assert set(data) >= {"accessToken", "expiredAt"}
    token = data["accessToken"]
    parts = token.split(".")
    assert len(parts) == 3
    assert token.startswith(JWT_HEADER + ".")
    assert b64url_json(parts[0]) == {"alg": "HS256", "typ": "JWT"}
    payload = b64url_json(parts[1])
    assert payload["id"] == emulator.settings.uid
    assert isinstance(payload["exp"], int)
    assert abs(payload["exp"] - (before + 30 * 86400)) < 60


def test_expired_at_is_rfc3339_beijing_30_days_ahead(emulator: Emulator) -> None:
    expired_at = mint(emulator).json()["data"]["expiredAt"]
    assert isinstance(expired_at, str)
    assert expired_at.endswith("+08:00")
    assert "T" in expired_at
    when = datetime.fromisoformat(expired_at)
    assert when.utcoffset() == timedelta(hours=8)
    ahead = when - datetime.now(UTC)
    assert timedelta(days=30) - timedelta(minutes=1) < ahead <= timedelta(days=30)


def test_short_lived_token_expires() -> None:
    with Emulator.temporary(rate_limits="off", token_lifetime=1) as emu:
        token = token_of(emu)
        assert code_with(emu, token) == 0
        time.sleep(1.5)
        r = user_info(emu, f"Bearer {token}")
        assert r.status_code == 200
        env = assert_envelope(r)
        assert env["code"] == 401
        assert env["data"] is None
        assert code_with(emu, token_of(emu)) == 0  # a new one works


def test_token_request_keys_are_case_insensitive(emulator: Emulator) -> None:
    env = mint(
        emulator, {"clientid": emulator.client_id, "CLIENTSECRET": emulator.client_secret}
    ).json()
    assert env["code"] == 0, env
    assert code_with(emulator, env["data"]["accessToken"]) == 0


@pytest.mark.parametrize("which", ["secret", "id", "missing"])
def test_wrong_credentials_get_no_token(emulator: Emulator, which: str) -> None:
    body = {"clientID": emulator.client_id, "clientSecret": emulator.client_secret}
    if which == "secret":
        body["clientSecret"] += "x"
    elif which == "id":
        body["clientID"] = "someone-else"
    else:
        del body["clientSecret"]
    r = mint(emulator, body)
    assert r.status_code == 200
    env = assert_envelope(r)
    assert env["code"] != 0
    assert env["data"] is None
    assert emulator.activity()["counts"].get("tokens_minted", 0) == 0


def test_fourth_token_evicts_the_first(emulator: Emulator) -> None:
    tokens = [token_of(emulator) for _ in range(4)]
    assert len(set(tokens)) == 4
    env = user_info(emulator, f"Bearer {tokens[0]}").json()
    assert env["code"] == 401
    assert env["message"] == EVICTED
    assert env["data"] is None
    assert [code_with(emulator, t) for t in tokens[1:]] == [0, 0, 0]
    # a fifth evicts the second, no more
    tokens.append(token_of(emulator))
    assert [code_with(emulator, t) for t in tokens] == [401, 401, 0, 0, 0]


def test_refuse_overflow_keeps_the_first_three() -> None:
    with Emulator.temporary(rate_limits="off", token_overflow="refuse") as emu:
        tokens = [token_of(emu) for _ in range(3)]
        env = assert_envelope(mint(emu))
        assert env["code"] != 0
        assert env["data"] is None
        assert [code_with(emu, t) for t in tokens] == [0, 0, 0]


def test_expire_tokens_invalidates_every_token(emulator: Emulator) -> None:
    tokens = [token_of(emulator) for _ in range(3)]
    assert emulator.expire_tokens() == 3
    assert [code_with(emulator, t) for t in tokens] == [401, 401, 401]
    fresh = token_of(emulator)
    assert code_with(emulator, fresh) == 0
    assert [code_with(emulator, t) for t in tokens] == [401, 401, 401]


# -- headers ---------------------------------------------------------------------------------


def test_missing_platform_is_refused(emulator: Emulator) -> None:
    env = assert_envelope(mint(emulator, headers={}))
    assert env["code"] != 0
    assert env["data"] is None
    token = token_of(emulator)
    env = assert_envelope(user_info(emulator, f"Bearer {token}", platform=False))
    assert env["code"] != 0
    assert env["data"] is None
    wrong = requests.get(
        f"{emulator.api_url}/api/v1/user/info",
        headers={"Platform": "web", "Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    assert wrong["code"] != 0


def test_missing_platform_accepted_when_not_required() -> None:
    with Emulator.temporary(rate_limits="off", require_platform=False) as emu:
        env = mint(emu, headers={}).json()
        assert env["code"] == 0, env
        r = user_info(emu, f"Bearer {env['data']['accessToken']}", platform=False)
        assert r.json()["code"] == 0


def _tamper_signature(token: str) -> str:
    head, body, sig = token.split(".")
    # change the first character: the last one may only carry padding bits
    first = "B" if sig[0] != "B" else "C"
    return f"{head}.{body}.{first}{sig[1:]}"


def _tamper_payload(token: str) -> str:
    head, body, sig = token.split(".")
    payload = b64url_json(body)
    payload["id"] += 1
    raw = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
    return f"{head}.{raw.rstrip(b'=').decode()}.{sig}"


@pytest.mark.parametrize(
    "shape",
    ["missing", "garbage", "signature", "payload", "no-bearer", "lowercase-bearer", "empty-bearer"],
)
def test_bad_authorization_answers_401(emulator: Emulator, shape: str) -> None:
    token = token_of(emulator)
    assert code_with(emulator, token) == 0
    authorization = {
        "missing": None,
        "garbage": "Bearer garbage",
        "signature": f"Bearer {_tamper_signature(token)}",
        "payload": f"Bearer {_tamper_payload(token)}",
        "no-bearer": token,
        "lowercase-bearer": f"bearer{token}",
        "empty-bearer": "Bearer ",
    }[shape]
    r = user_info(emulator, authorization)
    assert r.status_code == 200
    env = assert_envelope(r)
    assert env["code"] == 401
    assert env["data"] is None


# -- hosts -----------------------------------------------------------------------------------


def test_upload_domain_is_the_upload_host(api: Any) -> None:
    domains = api.ok(api.get("/upload/v2/file/domain"))
    assert domains == [api.emu.upload_url]
    api_port = urlsplit(api.emu.api_url).port
    upload_port = urlsplit(domains[0]).port
    assert upload_port is not None and upload_port != api_port
    assert urlsplit(domains[0]).scheme == "http"


def test_unknown_path_is_404_envelope(api: Any) -> None:
    for host in (api.emu.api_url, api.emu.upload_url):
        r = api.http.get(f"{host}/api/v9/nothing", headers=api.headers(), timeout=10)
        assert r.status_code == 404
        env = assert_envelope(r)
        assert env["code"] == 404
        assert env["data"] is None


def test_hosts_are_strict(api: Any) -> None:
    h = api.headers()
    r = api.http.get(f"{api.emu.upload_url}/api/v1/user/info", headers=h, timeout=10)
    assert r.status_code == 404
    assert assert_envelope(r)["code"] == 404
    r = api.http.post(
        f"{api.emu.upload_url}/upload/v1/file/mkdir",
        json={"name": "x", "parentID": 0},
        headers=h,
        timeout=10,
    )
    assert r.status_code == 404
    r = api.http.post(
        f"{api.emu.api_url}/upload/v2/file/slice",
        files={"slice": ("s", b"x")},
        headers=h,
        timeout=10,
    )
    assert r.status_code == 404
    assert assert_envelope(r)["code"] == 404
    assert api.listing() == []  # the refused mkdir created nothing


# -- lenient decoding ------------------------------------------------------------------------


def test_numeric_strings_are_numbers(api: Any) -> None:
    outer = api.ok(api.post("/upload/v1/file/mkdir", {"name": "outer", "parentID": "0"}))["dirID"]
    inner = api.ok(api.post("/upload/v1/file/mkdir", {"name": "inner", "parentID": str(outer)}))
    [item] = api.listing(outer)
    assert item["fileId"] == inner["dirID"]
    assert item["parentFileId"] == outer


def test_empty_query_parameters_are_ignored(api: Any) -> None:
    a = api.ok(api.post("/upload/v1/file/mkdir", {"name": "a", "parentID": 0}))["dirID"]
    api.ok(api.post("/upload/v1/file/mkdir", {"name": "b", "parentID": a}))
    page = api.ok(
        api.get(
            "/api/v2/file/list",
            parentFileId=0,
            limit=100,
            searchData="",
            searchMode="",
            trashed="",
            lastFileId="",
        )
    )
    assert [i["filename"] for i in page["fileList"]] == ["a"]  # not a (global) search
    assert page["lastFileId"] == -1


def test_mixed_case_json_keys(api: Any) -> None:
    env = api.post("/upload/v1/file/mkdir", {"NAME": "shout", "parentid": 0})
    dir_id = api.ok(env)["dirID"]
    assert api.ok(api.get("/api/v1/file/detail", fileID=dir_id))["filename"] == "shout"


def test_null_duplicate_is_tolerated(api: Any) -> None:
    data = b"null duplicate"
    env = api.post(
        "/upload/v2/file/create",
        {
            "parentFileID": 0,
            "filename": "n.txt",
            "etag": md5(data),
            "size": len(data),
            "duplicate": None,
        },
    )
    created = api.ok(env)
    assert created["reuse"] is False
    assert created["preuploadID"]
