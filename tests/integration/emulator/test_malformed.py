"""Malformed requests: each gets a well-formed JSON error envelope (or a clean close), never
HTML, a traceback or a hung connection. Raw sockets where ``requests`` would not send the
broken thing; every socket read has a timeout.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from syncagent.emulator import Emulator

ENVELOPE_KEYS = {"code", "message", "data", "x-traceID"}
TIMEOUT = 5.0


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def envelope(self) -> dict[str, Any]:
        assert self.headers.get("content-type", "").startswith("application/json"), self.headers
        env = json.loads(self.body)
        assert isinstance(env, dict) and set(env) == ENVELOPE_KEYS, env
        assert env["data"] is None
        assert isinstance(env["message"], str) and env["message"]
        assert "Traceback" not in env["message"]
        return env


def connect(base_url: str) -> socket.socket:
    url = urlsplit(base_url)
    assert url.hostname is not None and url.port is not None
    sock = socket.create_connection((url.hostname, url.port), timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


def read_reply(sock: socket.socket) -> Reply | None:
    """One HTTP response from ``sock``; None if the server closed without answering."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            piece = b""
        if not piece:
            assert buf == b"", f"connection closed inside the response head: {buf!r}"
            return None
        buf += piece
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    assert parts[0] == "HTTP/1.1", lines[0]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])
    while len(rest) < length:
        piece = sock.recv(65536)
        assert piece, "connection closed inside the response body"
        rest += piece
    return Reply(int(parts[1]), headers, rest[:length])


def exchange(base_url: str, raw: bytes, *, shut_write: bool = False) -> tuple[Reply | None, float]:
    start = time.monotonic()
    with connect(base_url) as sock:
        sock.sendall(raw)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        reply = read_reply(sock)
    return reply, time.monotonic() - start


def request_head(method: str, path: str, token: str | None, *extra: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Platform: open_platform"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture
def token(api: Any) -> str:
    api.login()
    return str(api.token)


def post_raw(
    api: Any,
    path: str,
    data: bytes | Iterator[bytes],
    content_type: str = "application/json",
    host: str | None = None,
) -> requests.Response:
    r: requests.Response = api.http.post(
        f"{host or api.emu.api_url}{path}",
        data=data,
        headers={**api.headers(), "Content-Type": content_type},
        timeout=TIMEOUT,
    )
    return r


def assert_error(r: requests.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    env = r.json()
    assert set(env) == ENVELOPE_KEYS
    assert env["code"] != 0
    assert env["data"] is None
    assert "Traceback" not in r.text and "<html" not in r.text.lower()
    return dict(env)


# -- bodies ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"name": ',
        b"\xff\xfe\x00garbage",
        b"[1, 2]",
        b'"a string"',
        b"42",
        b"null",
        b"[" * 100_000,
    ],
)
def test_bad_json_bodies(api: Any, raw: bytes) -> None:
    r = post_raw(api, "/upload/v1/file/mkdir", raw)
    env = assert_error(r)
    assert env["code"] == 1
    assert env["message"].startswith("参数错误"), env["message"]  # not an internal error
    assert r.headers.get("Connection", "").lower() != "close"
    assert api.listing() == []


def test_oversized_json_body(api: Any) -> None:
    raw = json.dumps({"name": "x", "parentID": 0, "pad": "y" * (2 << 20)}).encode()
    r = post_raw(api, "/upload/v1/file/mkdir", raw)
    assert r.status_code == 413
    assert_error(r, 413)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/upload/v1/file/mkdir", {"parentID": 0}, "name"),
        ("/upload/v1/file/mkdir", {"name": "x"}, "parentID"),
        ("/upload/v2/file/create", {"parentFileID": 0, "filename": "a", "size": 3}, "etag"),
        (
            "/upload/v2/file/create",
            {"parentFileID": "abc", "filename": "a", "size": 3, "etag": "0" * 32},
            "parentFileID",
        ),
        (
            "/upload/v2/file/create",
            {"parentFileID": 0, "filename": "a", "size": [1], "etag": "0" * 32},
            "size",
        ),
        (
            "/upload/v2/file/create",
            {"parentFileID": 0, "filename": 7, "size": 3, "etag": "0" * 32},
            "filename",
        ),
        (
            "/upload/v2/file/create",
            {"parentFileID": True, "filename": "a", "size": 3, "etag": "0" * 32},
            "parentFileID",
        ),
        (
            "/upload/v2/file/create",
            {"parentFileID": 0, "filename": "a", "size": 1.5, "etag": "0" * 32},
            "size",
        ),
        (
            "/upload/v2/file/create",
            {"parentFileID": 0, "filename": "a", "size": 10**30, "etag": "0" * 32},
            "size",
        ),
        ("/api/v1/file/trash", {"fileIDs": "x"}, "fileIDs"),
        ("/api/v1/file/trash", {"fileIDs": []}, "fileIDs"),
        ("/api/v1/file/trash", {"fileIDs": ["abc"]}, "id"),
        ("/api/v1/file/move", {"fileIDs": {"a": 1}, "toParentFileID": 0}, "fileIDs"),
        ("/api/v1/file/rename", {"renameList": "1|a"}, "renameList"),
        ("/api/v1/file/rename", {"renameList": [1]}, "renameList"),
        ("/api/v1/file/infos", {"fileIds": None}, "fileIds"),
    ],
)
def test_missing_and_mistyped_fields(api: Any, path: str, body: dict[str, Any], field: str) -> None:
    env = assert_error(
        api.http.post(f"{api.emu.api_url}{path}", json=body, headers=api.headers(), timeout=TIMEOUT)
    )
    assert env["code"] == 1
    assert field in env["message"], env["message"]


def test_mistyped_query_parameters(api: Any) -> None:
    for params in (
        {"parentFileId": "abc", "limit": 10},
        {"parentFileId": 0, "limit": "ten"},
        {"parentFileId": 0, "limit": 10, "lastFileId": "1.5e3"},
    ):
        r = api.http.get(
            f"{api.emu.api_url}/api/v2/file/list",
            params=params,
            headers=api.headers(),
            timeout=TIMEOUT,
        )
        assert_error(r)
    r = api.http.get(
        f"{api.emu.api_url}/api/v1/file/detail",
        params={"fileID": "x"},
        headers=api.headers(),
        timeout=TIMEOUT,
    )
    assert_error(r)


def test_unknown_preupload_id(api: Any) -> None:
    env = assert_error(
        api.http.post(
            f"{api.emu.api_url}/upload/v2/file/upload_complete",
            json={"preuploadID": "no-such-upload"},
            headers=api.headers(),
            timeout=TIMEOUT,
        )
    )
    assert env["code"] == 1
    env = api.send_slice("no-such-upload", 1, b"piece")
    assert env["code"] != 0 and env["data"] is None


# -- multipart -------------------------------------------------------------------------------


def _multipart(boundary: str, close: bool = True) -> bytes:
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="preuploadID"\r\n\r\nabc\r\n'
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="slice"; filename="s"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + b"x" * 1000
    if close:
        body += f"\r\n--{boundary}--\r\n".encode()
    return body


def test_multipart_without_boundary(api: Any) -> None:
    for content_type in (
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "application/json",
        "text/plain",
    ):
        r = post_raw(
            api, "/upload/v2/file/slice", _multipart("BB"), content_type, host=api.emu.upload_url
        )
        env = assert_error(r)
        assert env["code"] == 1, content_type


def test_multipart_with_garbage_instead_of_parts(api: Any) -> None:
    r = post_raw(
        api,
        "/upload/v2/file/slice",
        b"no delimiter anywhere" * 100,
        "multipart/form-data; boundary=BB",
        host=api.emu.upload_url,
    )
    assert_error(r)


def test_truncated_multipart_with_exact_length(emulator: Emulator, token: str) -> None:
    body = _multipart("BB", close=False)
    raw = (
        request_head(
            "POST",
            "/upload/v2/file/slice",
            token,
            "Content-Type: multipart/form-data; boundary=BB",
            f"Content-Length: {len(body)}",
        )
        + body
    )
    reply, took = exchange(emulator.upload_url, raw)
    assert took < TIMEOUT
    assert reply is not None
    assert reply.status == 200
    assert reply.envelope()["code"] == 1


def test_truncated_multipart_chunked(api: Any) -> None:
    def pieces() -> Iterator[bytes]:
        body = _multipart("BB", close=False)
        yield body[:100]
        yield body[100:]

    start = time.monotonic()
    r = post_raw(
        api,
        "/upload/v2/file/slice",
        pieces(),
        "multipart/form-data; boundary=BB",
        host=api.emu.upload_url,
    )
    assert time.monotonic() - start < TIMEOUT
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert_error(r)


@pytest.mark.parametrize("kind", ["json", "multipart"])
def test_content_length_longer_than_the_body(emulator: Emulator, token: str, kind: str) -> None:
    if kind == "json":
        path, host = "/upload/v1/file/mkdir", emulator.api_url
        content_type, body = "application/json", b'{"name": "half", "parentID": 0'
    else:
        path, host = "/upload/v2/file/slice", emulator.upload_url
        content_type, body = "multipart/form-data; boundary=BB", _multipart("BB")
    raw = (
        request_head(
            "POST",
            path,
            token,
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body) + 5000}",
        )
        + body
    )
    reply, took = exchange(host, raw, shut_write=True)
    assert took < TIMEOUT
    if reply is not None:  # an error envelope, or a clean close
        assert reply.envelope()["code"] != 0


def test_client_gone_silent_does_not_block_others(emulator: Emulator, token: str) -> None:
    """A request whose body never comes holds its own connection only."""
    with connect(emulator.api_url) as stalled:
        stalled.sendall(
            request_head(
                "POST",
                "/upload/v1/file/mkdir",
                token,
                "Content-Type: application/json",
                "Content-Length: 100",
            )
        )
        r = requests.get(
            f"{emulator.api_url}/api/v1/user/info",
            headers={"Platform": "open_platform", "Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
        )
        assert r.json()["code"] == 0


def test_client_leaving_mid_body_leaves_no_traceback(
    emulator: Emulator, token: str, capfd: pytest.CaptureFixture[str]
) -> None:
    for _ in range(5):
        with connect(emulator.api_url) as sock:
            sock.sendall(
                request_head(
                    "POST",
                    "/upload/v1/file/mkdir",
                    token,
                    "Content-Type: application/json",
                    "Content-Length: 100",
                )
                + b'{"na'
            )
    time.sleep(0.3)  # the emulator notices, tries to answer, finds the client gone
    r = requests.get(
        f"{emulator.api_url}/api/v1/user/info",
        headers={"Platform": "open_platform", "Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert r.json()["code"] == 0
    err = capfd.readouterr().err
    assert "Traceback" not in err, err


@pytest.mark.parametrize("bad", ["abc", "-5", "1, 2"])
def test_invalid_content_length(emulator: Emulator, token: str, bad: str) -> None:
    raw = (
        request_head(
            "POST",
            "/upload/v1/file/mkdir",
            token,
            "Content-Type: application/json",
            f"Content-Length: {bad}",
        )
        + b"{}"
    )
    reply, _ = exchange(emulator.api_url, raw, shut_write=True)
    assert reply is not None
    assert reply.status == 400
    assert reply.envelope()["code"] != 0


def test_broken_chunked_encoding(emulator: Emulator, token: str) -> None:
    raw = (
        request_head(
            "POST",
            "/upload/v1/file/mkdir",
            token,
            "Content-Type: application/json",
            "Transfer-Encoding: chunked",
        )
        + b"zz\r\n{}\r\n0\r\n\r\n"
    )
    reply, took = exchange(emulator.api_url, raw, shut_write=True)
    assert took < TIMEOUT
    assert reply is not None
    assert reply.envelope()["code"] != 0


# -- request line and headers ------------------------------------------------------------------


def test_huge_header_line(emulator: Emulator) -> None:
    raw = request_head("GET", "/api/v1/user/info", None, "X-Big: " + "a" * 70_000)
    reply, _ = exchange(emulator.api_url, raw)
    assert reply is not None
    assert reply.status == 431
    assert reply.envelope()["code"] == 431


def test_too_many_headers(emulator: Emulator) -> None:
    raw = request_head("GET", "/api/v1/user/info", None, *[f"X-H{i}: v" for i in range(150)])
    reply, _ = exchange(emulator.api_url, raw)
    assert reply is not None
    assert reply.status == 431
    assert reply.envelope()["code"] == 431


def test_huge_request_line(emulator: Emulator) -> None:
    raw = request_head("GET", "/api/v1/user/info?x=" + "a" * 70_000, None)
    reply, _ = exchange(emulator.api_url, raw)
    assert reply is not None
    assert reply.status == 414
    assert reply.envelope()["code"] == 414


@pytest.mark.parametrize(
    "line",
    [
        b"GARBAGE",
        b"HELLO WORLD FOO BAR",
        b"GET / HTTP/9.9",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ],
)
def test_garbage_request_line(emulator: Emulator, line: bytes) -> None:
    reply, took = exchange(emulator.api_url, line + b"\r\n\r\n")
    assert took < TIMEOUT
    assert reply is not None
    assert reply.status == 400
    assert reply.envelope()["code"] == 400


def test_header_without_colon(emulator: Emulator) -> None:
    raw = b"GET /api/v1/user/info HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n"
    reply, _ = exchange(emulator.api_url, raw)
    assert reply is not None
    assert reply.status == 400
    assert reply.envelope()["code"] == 400


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/api/v1/file/name"),
        ("DELETE", "/upload/v1/file/mkdir"),
        ("GET", "/api/v1/file/trash"),
        ("POST", "/api/v2/file/list"),
    ],
)
def test_unsupported_method(api: Any, method: str, path: str) -> None:
    r = api.http.request(
        method, f"{api.emu.api_url}{path}", json={}, headers=api.headers(), timeout=TIMEOUT
    )
    env = assert_error(r, 405)
    assert env["code"] == 405


def test_unknown_method(emulator: Emulator) -> None:
    reply, _ = exchange(emulator.api_url, request_head("BREW", "/api/v1/user/info", None))
    assert reply is not None
    assert reply.status == 501
    assert reply.envelope()["code"] == 501


# -- what works ------------------------------------------------------------------------------


def test_chunked_json_body_works(api: Any) -> None:
    def pieces() -> Iterator[bytes]:
        yield b'{"name": "chu'
        yield b'nked", '
        yield b'"parentID": 0}'

    r = post_raw(api, "/upload/v1/file/mkdir", pieces())
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.json()["code"] == 0, r.text
    assert [i["filename"] for i in api.listing()] == ["chunked"]


def test_keep_alive_survives_error_envelopes(api: Any) -> None:
    api.login()
    emu = api.emu
    h = api.headers()
    answers = [
        api.http.post(
            f"{emu.api_url}/upload/v1/file/mkdir",
            data=b"not json",
            headers={**h, "Content-Type": "application/json"},
            timeout=TIMEOUT,
        ),
        api.http.post(f"{emu.api_url}/upload/v1/file/mkdir", json=[1], headers=h, timeout=TIMEOUT),
        api.http.get(f"{emu.api_url}/no/such/path", headers=h, timeout=TIMEOUT),
        api.http.get(
            f"{emu.api_url}/api/v1/user/info",
            headers={**h, "Authorization": "Bearer bad"},
            timeout=TIMEOUT,
        ),
        api.http.post(
            f"{emu.api_url}/api/v1/file/trash", json={"fileIDs": "x"}, headers=h, timeout=TIMEOUT
        ),
        api.http.request(
            "PATCH", f"{emu.api_url}/api/v1/file/name", json={}, headers=h, timeout=TIMEOUT
        ),
        api.http.post(
            f"{emu.api_url}/upload/v1/file/mkdir",
            json={"name": "ok", "parentID": 0},
            headers=h,
            timeout=TIMEOUT,
        ),
    ]
    assert [r.json()["code"] for r in answers] == [1, 1, 404, 401, 1, 405, 0]
    assert all(r.headers.get("Connection", "").lower() != "close" for r in answers)
    pools = {id(r.raw._pool) for r in answers}
    assert len(pools) == 1
    pool = answers[0].raw._pool
    assert pool.num_connections == 1  # every request went over the same connection


def test_raw_keep_alive_after_an_error(emulator: Emulator, token: str) -> None:
    with connect(emulator.api_url) as sock:
        body = b"{broken"
        sock.sendall(
            request_head(
                "POST",
                "/upload/v1/file/mkdir",
                token,
                "Content-Type: application/json",
                f"Content-Length: {len(body)}",
            )
            + body
        )
        first = read_reply(sock)
        assert first is not None and first.envelope()["code"] == 1
        sock.sendall(request_head("GET", "/api/v1/user/info", token))
        second = read_reply(sock)
        assert second is not None
        assert json.loads(second.body)["code"] == 0
