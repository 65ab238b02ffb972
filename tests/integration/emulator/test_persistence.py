"""An emulator on a data dir keeps its credentials, tokens, files and folders across restarts."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import requests

from syncagent.emulator import Emulator, EmulatorSettings

PLATFORM = {"Platform": "open_platform"}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class Client:
    """Plain-HTTP calls against whichever emulator is running now (ports change on restart)."""

    def __init__(self, emu: Emulator, token: str | None = None) -> None:
        self.emu = emu
        self.token = token

    def mint(self, client_id: str | None = None, secret: str | None = None) -> dict[str, Any]:
        r = requests.post(
            f"{self.emu.api_url}/api/v1/access_token",
            json={
                "clientID": client_id or self.emu.client_id,
                "clientSecret": secret or self.emu.client_secret,
            },
            headers=PLATFORM,
            timeout=10,
        )
        return dict(r.json())

    def login(self) -> str:
        env = self.mint()
        assert env["code"] == 0, env
        self.token = str(env["data"]["accessToken"])
        return self.token

    def headers(self) -> dict[str, str]:
        return {**PLATFORM, "Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        r = requests.get(
            f"{self.emu.api_url}{path}", params=params, headers=self.headers(), timeout=10
        )
        return dict(r.json())

    def post(self, path: str, body: Any) -> dict[str, Any]:
        r = requests.post(
            f"{self.emu.api_url}{path}", json=body, headers=self.headers(), timeout=10
        )
        return dict(r.json())

    def ok(self, env: dict[str, Any]) -> Any:
        assert env["code"] == 0, env
        return env["data"]

    def mkdir(self, name: str, parent: int = 0) -> int:
        return int(
            self.ok(self.post("/upload/v1/file/mkdir", {"name": name, "parentID": parent}))["dirID"]
        )

    def upload(self, name: str, data: bytes, parent: int = 0) -> int:
        r = requests.post(
            f"{self.emu.upload_url}/upload/v2/file/single/create",
            data={
                "parentFileID": str(parent),
                "filename": name,
                "etag": md5(data),
                "size": str(len(data)),
            },
            files={"file": ("blob", data)},
            headers=self.headers(),
            timeout=30,
        )
        return int(self.ok(r.json())["fileID"])

    def listing(self, parent: int = 0) -> list[dict[str, Any]]:
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

    def tree(self, parent: int = 0, prefix: str = "") -> dict[str, tuple[Any, ...]]:
        """path -> (id, type, size, etag, trashed) of everything below ``parent``."""
        out: dict[str, tuple[Any, ...]] = {}
        for item in self.listing(parent):
            path = f"{prefix}/{item['filename']}"
            out[path] = (
                item["fileId"],
                item["type"],
                item["size"],
                item["etag"],
                item["trashed"],
                item["createAt"],
            )
            if item["type"] == 1:
                out.update(self.tree(item["fileId"], path))
        return out

    def download(self, file_id: int) -> bytes:
        url = self.ok(self.get("/api/v1/file/download_info", fileId=file_id))["downloadUrl"]
        r = requests.get(url, timeout=30)
        r.raise_for_status()
        return r.content


def started(data_dir: Path, **settings: Any) -> Emulator:
    return Emulator(EmulatorSettings(data_dir=data_dir, rate_limits="off", **settings)).start()


def test_credentials_are_generated_once(tmp_path: Path) -> None:
    emu = started(tmp_path)
    try:
        client_id, secret = emu.client_id, emu.client_secret
        assert len(client_id) >= 16 and len(secret) >= 16
        assert client_id != secret
    finally:
        emu.stop()
    emu = started(tmp_path)
    try:
        assert (emu.client_id, emu.client_secret) == (client_id, secret)
        assert Client(emu).mint(client_id, secret)["code"] == 0
    finally:
        emu.stop()
    other = started(tmp_path / "elsewhere")
    try:
        assert other.client_secret != secret  # generated per data dir
    finally:
        other.stop()


def test_given_credentials_override_and_are_kept(tmp_path: Path) -> None:
    emu = started(tmp_path)
    generated = (emu.client_id, emu.client_secret)
    emu.stop()
    emu = started(tmp_path, client_id="my-client", client_secret="my-secret")
    try:
        assert (emu.client_id, emu.client_secret) == ("my-client", "my-secret")
        c = Client(emu)
        assert c.mint("my-client", "my-secret")["code"] == 0
        assert c.mint(*generated)["code"] != 0
    finally:
        emu.stop()
    emu = started(tmp_path)  # given ones are stored in the data dir
    try:
        assert (emu.client_id, emu.client_secret) == ("my-client", "my-secret")
    finally:
        emu.stop()


def test_secret_is_not_in_the_repr(tmp_path: Path) -> None:
    emu = started(tmp_path)
    try:
        assert emu.client_secret not in repr(emu)
    finally:
        emu.stop()


def test_tokens_files_and_folders_survive_a_restart(tmp_path: Path) -> None:
    emu = started(tmp_path)
    contents = {
        "top.txt": b"top level " * 50,
        "deep.bin": bytes(range(256)) * 64,
        "名字 with spaces.txt": "数据".encode() * 100,
    }
    try:
        c = Client(emu)
        token = c.login()
        a = c.mkdir("a")
        b = c.mkdir("b", a)
        ids = {
            "top.txt": c.upload("top.txt", contents["top.txt"]),
            "deep.bin": c.upload("deep.bin", contents["deep.bin"], b),
            "名字 with spaces.txt": c.upload(
                "名字 with spaces.txt", contents["名字 with spaces.txt"], a
            ),
        }
        gone = c.upload("gone.txt", b"to the bin")
        c.ok(c.post("/api/v1/file/trash", {"fileIDs": [gone]}))
        tree_before = c.tree()
        used_before = c.ok(c.get("/api/v1/user/info"))["spaceUsed"]
    finally:
        emu.stop()

    emu = started(tmp_path)
    try:
        c = Client(emu, token)
        # the token minted before the restart still works
        assert c.get("/api/v1/user/info")["code"] == 0
        assert c.tree() == tree_before
        assert set(tree_before) == {
            "/a",
            "/a/b",
            "/a/b/deep.bin",
            "/a/名字 with spaces.txt",
            "/top.txt",
            "/gone.txt",
        }
        assert tree_before["/gone.txt"][4] == 1
        for name, file_id in ids.items():
            assert c.download(file_id) == contents[name]
        assert c.ok(c.get("/api/v1/user/info"))["spaceUsed"] == used_before
        # new ids continue after the old ones; names stay taken
        assert c.post("/upload/v1/file/mkdir", {"name": "a", "parentID": 0})["code"] == 1
        new = c.mkdir("c")
        assert new > max(v[0] for v in tree_before.values())
    finally:
        emu.stop()


def test_token_limits_and_revocations_survive_a_restart(tmp_path: Path) -> None:
    emu = started(tmp_path)
    try:
        c = Client(emu)
        tokens = [c.login() for _ in range(4)]  # the first one is evicted
    finally:
        emu.stop()
    emu = started(tmp_path)
    try:
        codes = [Client(emu, t).get("/api/v1/user/info")["code"] for t in tokens]
        assert codes == [401, 0, 0, 0]
        assert emu.expire_tokens() == 3
    finally:
        emu.stop()
    emu = started(tmp_path)
    try:
        codes = [Client(emu, t).get("/api/v1/user/info")["code"] for t in tokens]
        assert codes == [401, 401, 401, 401]
        fresh = Client(emu)
        fresh.login()
        assert fresh.get("/api/v1/user/info")["code"] == 0
    finally:
        emu.stop()


def test_a_token_from_another_data_dir_is_refused(tmp_path: Path) -> None:
    first = started(tmp_path / "one", client_id="same", client_secret="same-secret")
    try:
        token = Client(first).login()
    finally:
        first.stop()
    second = started(tmp_path / "two", client_id="same", client_secret="same-secret")
    try:
        assert Client(second, token).get("/api/v1/user/info")["code"] == 401
    finally:
        second.stop()


def test_stop_is_idempotent_and_restart_in_place(tmp_path: Path) -> None:
    emu = started(tmp_path)
    emu.stop()
    emu.stop()
    emu.start()
    try:
        c = Client(emu)
        c.login()
        assert c.mkdir("again") > 0
    finally:
        emu.stop()


def test_a_stopped_emulator_cuts_keep_alive_connections(tmp_path: Path) -> None:
    """A service that goes down answers nobody, not even a client whose connection is open."""
    emu = Emulator(EmulatorSettings(data_dir=tmp_path, rate_limits="off")).start()
    session = requests.Session()
    try:
        url = f"{emu.api_url}/api/v1/access_token"
        body = {"clientID": emu.client_id, "clientSecret": emu.client_secret}
        first = session.post(url, json=body, headers={"Platform": "open_platform"}, timeout=5)
        assert first.json()["code"] == 0  # the connection is now pooled and kept alive
        emu.stop()
        with pytest.raises(requests.ConnectionError):
            session.post(url, json=body, headers={"Platform": "open_platform"}, timeout=5)
    finally:
        session.close()
        emu.stop()
