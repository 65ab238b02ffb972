"""Shared fixtures: a real emulator on loopback and a thin plain-``requests`` caller for it.

The caller is deliberately not syncagent's client: emulator tests speak raw HTTP so that a
misunderstanding of the API cannot hide on both sides.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from pg_support import PgServer, find_pg_bin

from syncagent.emulator import Emulator

PLATFORM = {"Platform": "open_platform"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos-seeds",
        type=int,
        default=0,
        help="run the chaos suite (tests/chaos) over seeds 1..N instead of its CI seeds",
    )


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy or PAN123_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.upper().endswith("_PROXY") or name.startswith("PAN123_"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for t in leaked:
        t.join(timeout=5)
    still = [t.name for t in leaked if t.is_alive() and not t.daemon]
    assert not still, f"threads left running: {still}"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class Api:
    """Plain-HTTP access to an emulator: every call returns the decoded envelope."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.http = requests.Session()
        self.token: str | None = None

    def close(self) -> None:
        # Session.close() leaves pooled sockets to the garbage collector with urllib3 2.x;
        # clear the pools so no connection outlives the test.
        for adapter in self.http.adapters.values():
            adapter.poolmanager.clear()  # type: ignore[attr-defined]
        self.http.close()

    def headers(self, auth: bool = True) -> dict[str, str]:
        h = dict(PLATFORM)
        if auth:
            if self.token is None:
                self.login()
            h["Authorization"] = f"Bearer {self.token}"
        return h

    def login(self) -> dict[str, Any]:
        env = self.http.post(
            f"{self.emu.api_url}/api/v1/access_token",
            json={"clientID": self.emu.client_id, "clientSecret": self.emu.client_secret},
            headers=PLATFORM,
            timeout=10,
        ).json()
        assert env["code"] == 0, env
        self.token = env["data"]["accessToken"]
        return dict(env["data"])

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        r = self.http.get(
            f"{self.emu.api_url}{path}", params=params, headers=self.headers(), timeout=30
        )
        return dict(r.json())

    def post(
        self, path: str, body: Any = None, *, host: str | None = None, method: str = "POST"
    ) -> dict[str, Any]:
        r = self.http.request(
            method,
            f"{host or self.emu.api_url}{path}",
            json=body,
            headers=self.headers(),
            timeout=30,
        )
        return dict(r.json())

    def ok(self, env: dict[str, Any]) -> Any:
        assert env["code"] == 0, env
        return env["data"]

    def single(
        self,
        filename: str,
        data: bytes,
        parent: int = 0,
        *,
        etag: str | None = None,
        size: int | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Single-step upload through the upload host."""
        fields = {
            "parentFileID": str(parent),
            "filename": filename,
            "etag": etag if etag is not None else md5(data),
            "size": str(len(data) if size is None else size),
        }
        fields.update(
            {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in extra.items()}
        )
        r = self.http.post(
            f"{self.emu.upload_url}/upload/v2/file/single/create",
            data=fields,
            files={"file": ("blob", data)},
            headers=self.headers(),
            timeout=60,
        )
        return dict(r.json())

    def create(self, filename: str, data: bytes, parent: int = 0, **extra: Any) -> dict[str, Any]:
        body = {
            "parentFileID": parent,
            "filename": filename,
            "etag": md5(data),
            "size": len(data),
            **extra,
        }
        return self.post("/upload/v2/file/create", body)

    def send_slice(
        self,
        preupload_id: str,
        slice_no: int,
        piece: bytes,
        slice_md5: str | None = None,
        server: str | None = None,
    ) -> dict[str, Any]:
        r = self.http.post(
            f"{server or self.emu.upload_url}/upload/v2/file/slice",
            data={
                "preuploadID": preupload_id,
                "sliceNo": str(slice_no),
                "sliceMD5": slice_md5 if slice_md5 is not None else md5(piece),
            },
            files={"slice": ("slice", piece)},
            headers=self.headers(),
            timeout=60,
        )
        return dict(r.json())

    def complete(self, preupload_id: str) -> dict[str, Any]:
        return self.post("/upload/v2/file/upload_complete", {"preuploadID": preupload_id})

    def chunked(self, filename: str, data: bytes, parent: int = 0, **extra: Any) -> int:
        """The whole V2 flow (slices in order, completion polled); returns the fileID."""
        created = self.ok(self.create(filename, data, parent, **extra))
        if created["reuse"]:
            return int(created["fileID"])
        size = created["sliceSize"]
        for no, start in enumerate(range(0, len(data), size), start=1):
            self.ok(
                self.send_slice(
                    created["preuploadID"],
                    no,
                    data[start : start + size],
                    server=created["servers"][0],
                )
            )
        for _ in range(20):
            env = self.complete(created["preuploadID"])
            if env["code"] == 20103:
                continue
            done = self.ok(env)
            assert done["completed"] is True
            return int(done["fileID"])
        raise AssertionError("upload_complete never finished")

    def listing(self, parent: int = 0) -> list[dict[str, Any]]:
        """Every item of a folder (all pages), trashed ones included."""
        items: list[dict[str, Any]] = []
        last = 0
        while True:
            page = self.ok(
                self.get("/api/v2/file/list", parentFileId=parent, limit=100, lastFileId=last)
            )
            items.extend(page["fileList"])
            if page["lastFileId"] == -1:
                return items
            last = page["lastFileId"]

    def download(self, file_id: int) -> bytes:
        url = self.ok(self.get("/api/v1/file/download_info", fileId=file_id))["downloadUrl"]
        r = self.http.get(url, timeout=60)
        r.raise_for_status()
        return r.content


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator: rate limits off and completion on the first poll, unless a test
    turns them on with ``emulator.configure(...)``."""
    with Emulator.temporary(rate_limits="off", complete_pending_polls=0) as emu:
        yield emu


@pytest.fixture
def api(emulator: Emulator) -> Iterator[Api]:
    client = Api(emulator)
    yield client
    client.close()


# -- PostgreSQL (tests/pg_support.py) ---------------------------------------------------------

_pg_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throw-away PostgreSQL server for the whole session (started on first use)."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.fail(
            "PostgreSQL is not installed (no pg_ctl): apt-get install postgresql "
            "(.ci/run does), or set SYNCAGENT_PG_BIN"
        )
    server = PgServer(bin_dir)
    server.start()
    yield server
    server.close()


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """The name of a new, empty database on ``pg_server``, dropped after the test
    (URLs: ``pg_server.url(pg_database, driver=..., socket=...)``)."""
    name = f"t{os.getpid()}_{next(_pg_names)}"
    pg_server.create_database(name)
    yield name
    if pg_server.running:
        pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A ledger URL of an empty database, once per backend: an SQLite file, and a new
    database on the session's PostgreSQL server (psycopg)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    name: str = request.getfixturevalue("pg_database")
    server: PgServer = request.getfixturevalue("pg_server")
    return server.url(name)
