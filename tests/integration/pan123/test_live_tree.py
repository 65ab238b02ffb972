"""Trees of files through the client: many threads under the free-tier limits, and folder
operations (mkdir mode, listing, trash, move, rename, detail, the directory cache's flush).

The rate test reads the emulator's own record of each endpoint: calls refused with 429 and the
most calls it saw in any one second, against the documented QPS table.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pan123_support
import pytest
from pan123_support import SLICE, blob, calls, endpoint_stats, md5, plain

from syncagent.emulator import Emulator
from syncagent.errors import RemoteConflictError, RemoteNotFoundError
from syncagent.pan123 import Pan123Client, RemoteFile
from syncagent.pan123.endpoints import qps_table

make_client = partial(pan123_support.make_client, complete_delay=0.05)


def delete_elsewhere(emu: Emulator, client: Pan123Client, file_id: int) -> None:
    """Another program trashes ``file_id`` and empties the recycle bin."""
    with plain(emu, client.tokens.token()) as other:
        other.ok(other.post("/api/v1/file/trash", {"fileIDs": [file_id]}))
        other.ok(other.post("/api/v1/file/delete", {"fileIDs": [file_id]}))


def walk(client: Pan123Client, folder: int, prefix: str = "") -> dict[str, RemoteFile]:
    """rel path -> file, for every live file below ``folder``; asserts no name appears twice."""
    out: dict[str, RemoteFile] = {}
    items = client.list_folder(folder)
    names = [i.name for i in items]
    assert len(names) == len(set(names)), f"duplicate names in {prefix or '/'}: {names}"
    for item in items:
        path = f"{prefix}{item.name}"
        if item.is_folder:
            out.update(walk(client, item.file_id, path + "/"))
        else:
            out[path] = item
    return out


# -- 40 files, 8 threads, free tier --------------------------------------------------------


def test_40_files_by_8_threads_stay_under_the_free_tier_limits(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.configure(rate_limits="free", slice_size=SLICE)
    src = tmp_path / "src"
    src.mkdir()
    expected: dict[str, bytes] = {}
    for i in range(40):
        chunked = i % 10 == 0  # 4 chunked files (create is 1 per second on the free tier)
        data = blob(3 * SLICE + i if chunked else 1000 + 137 * i, 100 + i)
        rel = f"d{i % 4}/sub{i % 3}/file{i:02d}.bin"
        (src / f"{i:02d}").write_bytes(data)
        expected[rel] = data

    with make_client(emulator, tmp_path / "state", qps="free") as client:

        def one(item: tuple[int, str]) -> str:
            i, rel = item
            return client.upload(src / f"{i:02d}", 0, rel).method

        with ThreadPoolExecutor(8) as pool:
            methods = list(pool.map(one, enumerate(expected)))
        stats = endpoint_stats(emulator)  # before anything else is sent

    assert sorted(methods).count("chunked") == 4
    assert sorted(methods).count("single") == 36
    assert {name: s["limited"] for name, s in stats.items() if s["limited"]} == {}
    limits = qps_table("free")
    checked = 0
    for name, qps in limits.items():
        if name in stats:
            checked += 1
            allowed = max(1, math.floor(qps))
            assert stats[name]["peak_per_second"] <= allowed, (name, stats[name], qps)
    assert checked >= 2  # at least create and upload_complete were exercised
    assert stats["upload/v2/file/create"]["calls"] == 4
    assert stats["api/v1/access_token"]["calls"] == 1
    assert stats["upload/v2/file/domain"]["calls"] == 1

    emulator.configure(rate_limits="off")
    with make_client(emulator, tmp_path / "state") as reader:
        found = walk(reader, 0)
    assert sorted(found) == sorted(expected)
    for rel, data in expected.items():
        assert (found[rel].size, found[rel].etag) == (len(data), md5(data)), rel
    counts = emulator.activity()["counts"]
    assert (counts["single_uploads"], counts["chunked_uploads"]) == (36, 4)
    assert counts["folders_created"] == 4 + 12


def test_mkdir_mode_under_the_free_tier_limits(emulator: Emulator, tmp_path: Path) -> None:
    """mkdir and list (5 per second each on the free tier) from 8 threads: never a 429."""
    emulator.configure(rate_limits="free")
    with make_client(emulator, tmp_path / "state", qps="off") as setup:  # a folder already there
        setup.ensure_dir(0, "t0/x")
    emulator.reset_activity()
    for i in range(24):
        (tmp_path / f"f{i}").write_bytes(blob(300 + i, 400 + i))
    with make_client(emulator, tmp_path / "state", qps="free", contain_dir=False) as client:
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda i: client.upload(tmp_path / f"f{i}", 0, f"t{i % 6}/x/f{i}.bin"),
                    range(24),
                )
            )
        stats = endpoint_stats(emulator)
    assert {name: s["limited"] for name, s in stats.items() if s["limited"]} == {}
    assert stats["upload/v1/file/mkdir"]["calls"] == 12  # t0..t5 and their x; t0, t0/x exist
    assert stats["api/v2/file/list"]["calls"] == 2  # finding t0 and t0/x
    for name in ("upload/v1/file/mkdir", "api/v2/file/list"):
        assert stats[name]["peak_per_second"] <= 5, (name, stats[name])
    assert emulator.activity()["counts"]["folders_created"] == 10


# -- mkdir mode ----------------------------------------------------------------------------


def test_mkdir_mode_creates_folders_once_and_uploads_into_them(
    emulator: Emulator, tmp_path: Path
) -> None:
    (tmp_path / "f").write_bytes(b"first")
    (tmp_path / "g").write_bytes(b"second")
    with make_client(emulator, tmp_path / "state", contain_dir=False) as client:
        one = client.upload(tmp_path / "f", 0, "m1/m2/m3/f.txt")
        two = client.upload(tmp_path / "g", 0, "m1/m2/g.txt")
        assert calls(emulator, "upload/v1/file/mkdir") == 3  # m1, m2, m3; m2 again from cache
        m3 = client.detail(client.detail(one.file_id).parent_id)
        m2 = client.detail(client.detail(two.file_id).parent_id)
        assert (m3.name, m2.name, m3.parent_id) == ("m3", "m2", m2.file_id)
        assert client.ensure_dir(0, "m1/m2") == m2.file_id
        assert client.ensure_dir(0, "m1/m2/m3") == m3.file_id
    assert calls(emulator, "upload/v1/file/mkdir") == 3
    assert emulator.activity()["counts"]["folders_created"] == 3


def test_mkdir_mode_finds_folders_made_by_someone_else(emulator: Emulator, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"content")
    with make_client(emulator, tmp_path / "state", contain_dir=False) as first:
        inner = first.ensure_dir(0, "pre/inner")
    with make_client(emulator, tmp_path / "state", contain_dir=False) as second:  # empty cache
        result = second.upload(tmp_path / "f", 0, "pre/inner/f.txt")
        assert second.detail(result.file_id).parent_id == inner
        assert second.mkdir("pre", 0) == second.ensure_dir(0, "pre")
        assert [i.name for i in second.list_folder(0)] == ["pre"]
    assert emulator.activity()["counts"]["folders_created"] == 2


def test_mkdir_mode_refuses_a_file_in_the_way(emulator: Emulator, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"content")
    with make_client(emulator, tmp_path / "state", contain_dir=False) as client:
        client.upload(tmp_path / "f", 0, "blocker")
        with pytest.raises(RemoteConflictError) as info:
            client.upload(tmp_path / "f", 0, "blocker/f.txt")
        assert "blocker" in str(info.value)


def test_parallel_uploads_into_one_new_folder_create_it_once(
    emulator: Emulator, tmp_path: Path
) -> None:
    for i in range(16):
        (tmp_path / f"f{i}").write_bytes(blob(500 + i, 200 + i))
    with make_client(emulator, tmp_path / "state", contain_dir=False) as client:
        with ThreadPoolExecutor(8) as pool:
            results = list(
                pool.map(
                    lambda i: client.upload(tmp_path / f"f{i}", 0, f"par/new/f{i}.bin"),
                    range(16),
                )
            )
        parents = {client.detail(r.file_id).parent_id for r in results}
        assert len(parents) == 1
        assert len(client.list_folder(parents.pop())) == 16
    assert calls(emulator, "upload/v1/file/mkdir") == 2
    assert emulator.activity()["counts"]["folders_created"] == 2


# -- listing and file operations -----------------------------------------------------------


def test_list_folder_reads_every_page_and_leaves_out_the_trash(
    emulator: Emulator, tmp_path: Path
) -> None:
    with make_client(emulator, tmp_path / "state") as client:
        box = client.mkdir("box", 0)
        ids = [client.mkdir(f"item{i:03d}", box) for i in range(230)]
        client.trash(ids[:5] + ids[150:160])
        emulator.reset_activity()
        items = client.list_folder(box)
    assert calls(emulator, "api/v2/file/list") == 3  # 100 + 100 + 30 (trashed ones included)
    kept = set(ids) - set(ids[:5] + ids[150:160])
    assert {i.file_id for i in items} == kept
    assert len(items) == 215
    assert all(i.is_folder and not i.trashed and i.parent_id == box for i in items)


def test_detail_rename_move_and_trash(emulator: Emulator, tmp_path: Path) -> None:
    data = blob(777, 300)
    (tmp_path / "f").write_bytes(data)
    with make_client(emulator, tmp_path / "state") as client:
        result = client.upload(tmp_path / "f", 0, "ops/f.txt")
        f = client.detail(result.file_id)
        assert (f.name, f.size, f.etag, f.is_folder, f.trashed) == (
            "f.txt",
            777,
            md5(data),
            False,
            False,
        )
        ops = client.detail(f.parent_id)
        assert (ops.name, ops.is_folder, ops.parent_id) == ("ops", True, 0)

        client.rename(f.file_id, "renamed.txt")
        assert client.detail(f.file_id).name == "renamed.txt"

        target = client.mkdir("target", 0)
        client.move([f.file_id], target)
        assert client.detail(f.file_id).parent_id == target
        assert [i.name for i in client.list_folder(target)] == ["renamed.txt"]
        assert client.list_folder(ops.file_id) == []

        client.trash([f.file_id])
        assert client.detail(f.file_id).trashed
        assert client.list_folder(target) == []
        with pytest.raises(RemoteNotFoundError):
            client.detail(987_654_321)


def test_ensure_dir_recreates_a_tree_deleted_elsewhere(emulator: Emulator, tmp_path: Path) -> None:
    with make_client(emulator, tmp_path / "state", contain_dir=False) as client:
        old_leaf = client.ensure_dir(0, "gone/a/b")
        old_top = client.ensure_dir(0, "gone")
        delete_elsewhere(emulator, client, old_top)
        new_c = client.ensure_dir(0, "gone/a/b/c")
        c = client.detail(new_c)
        b = client.detail(c.parent_id)
        a = client.detail(b.parent_id)
        top = client.detail(a.parent_id)
        assert [c.name, b.name, a.name, top.name] == ["c", "b", "a", "gone"]
        assert top.parent_id == 0
        assert b.file_id != old_leaf and top.file_id != old_top
        assert client.ensure_dir(0, "gone/a/b") == b.file_id  # the cache now holds the new IDs


def test_upload_in_mkdir_mode_after_the_folder_was_deleted_elsewhere(
    emulator: Emulator, tmp_path: Path
) -> None:
    (tmp_path / "f").write_bytes(b"content")
    with make_client(emulator, tmp_path / "state", contain_dir=False) as client:
        first = client.upload(tmp_path / "f", 0, "lost/dir/f.txt")
        top = client.ensure_dir(0, "lost")
        delete_elsewhere(emulator, client, top)
        again = client.upload(tmp_path / "f", 0, "lost/dir/f.txt")
        parent = client.detail(client.detail(again.file_id).parent_id)
        assert parent.name == "dir"
        assert client.detail(parent.parent_id).name == "lost"
        assert again.file_id != first.file_id
