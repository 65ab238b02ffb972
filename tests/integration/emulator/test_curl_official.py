"""The official single-step upload example, run with the real ``curl`` binary.

The command is the one on the 单步上传 page (``/work/shared/reference/000_1af097a5774a2d40.txt``):
same flags, same order, same quoting; only the host, token, parent, etag, size (and the local
path of ``测试.exe``) differ.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from syncagent.emulator import Emulator

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl binary")

NAME = "测试.exe"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def official_command(
    emu: Emulator, token: str, local: Path, parent: int, etag: str, size: int
) -> list[str]:
    return [
        "curl",
        "--request",
        "POST",
        "--url",
        f"{emu.upload_url}/upload/v2/file/single/create",
        "--header",
        f"Authorization: Bearer {token}",
        "--header",
        "Platform: open_platform",
        "--header",
        "content-type: multipart/form-data",
        "--form",
        f"file=@{local}",
        "--form",
        f"parentFileID={parent}",
        "--form",
        f"filename={NAME}",
        "--form",
        f"etag={etag}",
        "--form",
        f"size={size}",
    ]


def run_curl(cmd: list[str], home: Path) -> subprocess.CompletedProcess[bytes]:
    # CURL_HOME keeps a developer's ~/.curlrc out of the command; proxies are already unset.
    env = {**os.environ, "CURL_HOME": str(home), "HOME": str(home)}
    return subprocess.run(cmd, capture_output=True, timeout=60, env=env, check=False)


def check_uploaded(api: Any, parent: int, answer: dict[str, Any], data: bytes) -> None:
    assert answer["code"] == 0, answer
    assert answer["message"] == "ok"
    assert set(answer) == {"code", "message", "data", "x-traceID"}
    assert answer["data"]["completed"] is True
    file_id = answer["data"]["fileID"]
    assert isinstance(file_id, int) and file_id > 0
    listed = [i for i in api.listing(parent) if i["filename"] == NAME]
    assert len(listed) == 1, api.listing(parent)
    item = listed[0]
    assert item["fileId"] == file_id
    assert item["size"] == len(data)
    assert item["etag"] == md5(data)
    assert item["trashed"] == 0 and item["type"] == 0
    assert api.download(file_id) == data


def test_official_curl_example(api: Any, emulator: Emulator, tmp_path: Path) -> None:
    parent = api.ok(api.post("/upload/v1/file/mkdir", {"name": "目标", "parentID": 0}))["dirID"]
    data = os.urandom(35_763) + b"MZ"
    local = tmp_path / NAME
    local.write_bytes(data)
    token = api.login()["accessToken"]
    done = run_curl(
        official_command(emulator, token, local, parent, md5(data), len(data)), tmp_path
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    check_uploaded(api, parent, json.loads(done.stdout), data)


def test_official_curl_example_over_one_mib_with_expect_100_continue(
    api: Any, emulator: Emulator, tmp_path: Path
) -> None:
    """Over 1 MiB curl sends ``Expect: 100-continue`` and waits for ``100 Continue``.

    ``--verbose`` is added (it changes nothing on the wire) to see the exchange.
    """
    data = os.urandom(3 * 1024 * 1024 + 123)
    local = tmp_path / NAME
    local.write_bytes(data)
    token = api.login()["accessToken"]
    cmd = [*official_command(emulator, token, local, 0, md5(data), len(data)), "--verbose"]
    done = run_curl(cmd, tmp_path)
    trace = done.stderr.decode(errors="replace")
    assert done.returncode == 0, trace
    assert "> Expect: 100-continue" in trace
    assert "< HTTP/1.1 100 Continue" in trace  # answered, not waited out
    check_uploaded(api, 0, json.loads(done.stdout), data)


def test_official_curl_example_refused_when_etag_wrong(
    api: Any, emulator: Emulator, tmp_path: Path
) -> None:
    data = b"payload of the exe" * 100
    local = tmp_path / NAME
    local.write_bytes(data)
    token = api.login()["accessToken"]
    done = run_curl(official_command(emulator, token, local, 0, md5(b"other"), len(data)), tmp_path)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    answer = json.loads(done.stdout)
    assert answer["code"] != 0 and answer["data"] is None
    assert api.listing(0) == []
