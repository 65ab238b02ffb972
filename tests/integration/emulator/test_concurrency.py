"""Upload rules under concurrent clients: containDir folder reuse, mkdir races, duplicate
policies and completion racing with itself. Each worker thread has its own requests.Session.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import requests

from syncagent.emulator import Emulator

T = TypeVar("T")

WORKERS = 32
MKDIR_CLASH = "该目录下已经有同名文件夹,无法进行创建"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def content(i: int) -> bytes:
    return (f"file number {i}\n" * (i % 17 + 1)).encode()


@contextmanager
def sessions() -> Iterator[Callable[[], requests.Session]]:
    """A per-thread ``requests.Session`` factory; every session is closed at the end."""
    local = threading.local()
    made: list[requests.Session] = []
    lock = threading.Lock()

    def get() -> requests.Session:
        s = getattr(local, "session", None)
        if s is None:
            s = local.session = requests.Session()
            with lock:
                made.append(s)
        return s

    try:
        yield get
    finally:
        for s in made:
            s.close()


def run_all(fn: Callable[[int], T], n: int, workers: int = WORKERS) -> list[T]:
    barrier = threading.Barrier(min(n, workers))

    def wrapped(i: int) -> T:
        if i < min(n, workers):
            barrier.wait(timeout=30)  # the first wave starts together
        return fn(i)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(wrapped, range(n)))


def single(
    session: requests.Session,
    emu: Emulator,
    headers: dict[str, str],
    filename: str,
    data: bytes,
    **extra: str,
) -> dict[str, Any]:
    fields = {
        "parentFileID": "0",
        "filename": filename,
        "etag": md5(data),
        "size": str(len(data)),
        **extra,
    }
    r = session.post(
        f"{emu.upload_url}/upload/v2/file/single/create",
        data=fields,
        files={"file": ("blob", data)},
        headers=headers,
        timeout=60,
    )
    return dict(r.json())


def walk(api: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every live item of the drive as (path, item), breadth first."""
    out: list[tuple[str, dict[str, Any]]] = []
    queue: list[tuple[int, str]] = [(0, "")]
    while queue:
        folder, prefix = queue.pop(0)
        for item in api.listing(folder):
            if item["trashed"]:
                continue
            path = f"{prefix}{item['filename']}"
            out.append((path, item))
            if item["type"] == 1:
                queue.append((item["fileId"], path + "/"))
    return out


def test_concurrent_contain_dir_uploads_share_folders(api: Any, emulator: Emulator) -> None:
    headers = api.headers()
    n = 100

    with sessions() as session:

        def upload(i: int) -> dict[str, Any]:
            return single(
                session(),
                emulator,
                headers,
                f"d{i % 5}/e{i % 3}/f{i}.txt",
                content(i),
                containDir="true",
            )

        answers = run_all(upload, n)

    for env in answers:
        assert env["code"] == 0, env
        assert env["data"]["completed"] is True
    file_ids = [env["data"]["fileID"] for env in answers]
    assert len(set(file_ids)) == n

    tree = walk(api)
    pairs = Counter((item["parentFileId"], item["filename"]) for _, item in tree)
    assert [p for p, k in pairs.items() if k > 1] == []  # every (parent, name) unique
    folders = sorted(path for path, item in tree if item["type"] == 1)
    assert folders == sorted(
        [f"d{a}" for a in range(5)] + [f"d{a}/e{b}" for a in range(5) for b in range(3)]
    )
    files = {path: item for path, item in tree if item["type"] == 0}
    assert sorted(files) == sorted(f"d{i % 5}/e{i % 3}/f{i}.txt" for i in range(n))
    for i in range(n):
        item = files[f"d{i % 5}/e{i % 3}/f{i}.txt"]
        assert item["fileId"] == file_ids[i]
        assert item["size"] == len(content(i))
        assert item["etag"] == md5(content(i))
    assert emulator.activity()["counts"]["folders_created"] == 5 + 15
    for i in (0, 37, 99):
        assert api.download(file_ids[i]) == content(i)


def test_concurrent_mkdir_same_name_one_wins(api: Any, emulator: Emulator) -> None:
    headers = {**api.headers(), "Content-Type": "application/json"}
    n = 24

    with sessions() as session:

        def mkdir(_: int) -> dict[str, Any]:
            r = session().post(
                f"{emulator.api_url}/upload/v1/file/mkdir",
                json={"name": "shared", "parentID": 0},
                headers=headers,
                timeout=30,
            )
            return dict(r.json())

        answers = run_all(mkdir, n)

    winners = [env for env in answers if env["code"] == 0]
    losers = [env for env in answers if env["code"] != 0]
    assert len(winners) == 1, answers
    assert len(losers) == n - 1
    for env in losers:
        assert env["code"] == 1
        assert env["message"] == MKDIR_CLASH
        assert env["data"] is None
    listed = api.listing(0)
    assert [(i["fileId"], i["filename"], i["type"]) for i in listed] == [
        (winners[0]["data"]["dirID"], "shared", 1)
    ]


def test_concurrent_keep_both_gives_distinct_names(api: Any, emulator: Emulator) -> None:
    headers = api.headers()
    n = 20

    with sessions() as session:
        answers = run_all(
            lambda i: single(session(), emulator, headers, "same.txt", content(i), duplicate="1"),
            n,
        )

    assert all(env["code"] == 0 for env in answers), answers
    listed = api.listing(0)
    assert sorted(i["filename"] for i in listed) == sorted(
        ["same.txt"] + [f"same({k}).txt" for k in range(1, n)]
    )
    by_id = {i["fileId"]: i for i in listed}
    for i, env in enumerate(answers):
        assert by_id[env["data"]["fileID"]]["etag"] == md5(content(i))


def test_concurrent_overwrite_leaves_one_live_file(api: Any, emulator: Emulator) -> None:
    emulator.configure(overwrite_old="trash")  # to count what was replaced
    headers = api.headers()
    n = 20

    with sessions() as session:
        answers = run_all(
            lambda i: single(session(), emulator, headers, "over.txt", content(i), duplicate="2"),
            n,
        )

    assert all(env["code"] == 0 for env in answers), answers
    listed = api.listing(0)
    assert len(listed) == n  # overwritten ones are in the recycle bin
    live = [i for i in listed if i["trashed"] == 0]
    assert len(live) == 1 and live[0]["filename"] == "over.txt"
    assert {i["fileId"] for i in listed} == {env["data"]["fileID"] for env in answers}
    # the survivor is the last one placed: the highest id
    assert live[0]["fileId"] == max(i["fileId"] for i in listed)


def test_concurrent_complete_calls_place_one_file(api: Any, emulator: Emulator) -> None:
    emulator.configure(slice_size=1024)
    data = b"".join(hashlib.sha256(str(k).encode()).digest() for k in range(100))
    created = api.ok(api.create("once.bin", data))
    for no, start in enumerate(range(0, len(data), 1024), start=1):
        api.ok(api.send_slice(created["preuploadID"], no, data[start : start + 1024]))
    headers = {**api.headers(), "Content-Type": "application/json"}

    with sessions() as session:

        def complete(_: int) -> dict[str, Any]:
            r = session().post(
                f"{emulator.api_url}/upload/v2/file/upload_complete",
                json={"preuploadID": created["preuploadID"]},
                headers=headers,
                timeout=30,
            )
            return dict(r.json())

        answers = run_all(complete, 16)

    assert all(env["code"] == 0 for env in answers), answers
    ids = {env["data"]["fileID"] for env in answers}
    assert len(ids) == 1 and all(env["data"]["completed"] is True for env in answers)
    listed = api.listing(0)
    assert [(i["fileId"], i["filename"]) for i in listed] == [(ids.pop(), "once.bin")]
    assert api.download(listed[0]["fileId"]) == data


def test_concurrent_chunked_creates_share_contain_dir_folders(api: Any, emulator: Emulator) -> None:
    headers = {**api.headers(), "Content-Type": "application/json"}
    n = 24

    with sessions() as session:

        def create(i: int) -> dict[str, Any]:
            data = content(1000 + i)
            r = session().post(
                f"{emulator.api_url}/upload/v2/file/create",
                json={
                    "parentFileID": 0,
                    "filename": f"/c{i % 2}/g{i % 3}/h{i}.bin",
                    "etag": md5(data),
                    "size": len(data),
                    "containDir": True,
                },
                headers=headers,
                timeout=30,
            )
            return dict(r.json())

        answers = run_all(create, n)

    assert all(env["code"] == 0 and env["data"]["reuse"] is False for env in answers), answers
    tree = walk(api)
    pairs = Counter((item["parentFileId"], item["filename"]) for _, item in tree)
    assert [p for p, k in pairs.items() if k > 1] == []
    assert sorted(path for path, _ in tree) == sorted(
        ["c0", "c1"] + [f"c{a}/g{b}" for a in range(2) for b in range(3)]
    )
