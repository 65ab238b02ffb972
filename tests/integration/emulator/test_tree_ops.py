"""Tree operations of the emulator over plain HTTP: mkdir, list, detail, infos, trash, delete,
recover, move, rename, download_info and user/info.

Reference: ``/work/shared/reference/123pan-api.md`` section 5 and checklist item 9.12.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
import requests

MKDIR_CLASH = "该目录下已经有同名文件夹,无法进行创建"
NAME_RULES = "文件名要小于256个字符且不能包含以下任何字符"
LIST_FIELDS = {
    "fileId",
    "filename",
    "type",
    "size",
    "etag",
    "status",
    "parentFileId",
    "category",
    "trashed",
    "punishFlag",
    "s3KeyFlag",
    "storageNode",
    "createAt",
    "updateAt",
}
STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def mkdir(api: Any, name: str, parent: int = 0) -> int:
    return int(
        api.ok(api.post("/upload/v1/file/mkdir", {"name": name, "parentID": parent}))["dirID"]
    )


def upload(api: Any, name: str, data: bytes, parent: int = 0) -> int:
    done = api.ok(api.single(name, data, parent))
    assert done["completed"] is True and done["fileID"] != 0
    return int(done["fileID"])


def names(api: Any, parent: int = 0, trashed: int | None = 0) -> list[str]:
    return sorted(
        i["filename"] for i in api.listing(parent) if trashed is None or i["trashed"] == trashed
    )


def detail(api: Any, file_id: int) -> dict[str, Any]:
    return dict(api.ok(api.get("/api/v1/file/detail", fileID=file_id)))


def space_used(api: Any) -> int:
    return int(api.ok(api.get("/api/v1/user/info"))["spaceUsed"])


# -- mkdir -----------------------------------------------------------------------------------


def test_mkdir_returns_dir_id_and_refuses_the_same_name(api: Any) -> None:
    dir_id = mkdir(api, "photos")
    assert dir_id > 0
    env = api.post("/upload/v1/file/mkdir", {"name": "photos", "parentID": 0})
    assert env["code"] == 1
    assert env["message"] == MKDIR_CLASH
    assert env["data"] is None
    [item] = api.listing()
    assert (item["fileId"], item["filename"], item["type"]) == (dir_id, "photos", 1)
    # the same name in another folder is fine
    inner = mkdir(api, "photos", dir_id)
    assert inner != dir_id


@pytest.mark.parametrize(
    "name", ["a/b", "a\\b", 'q"', "c:d", "e*", "f?", "g|h", "i>", "<j", "   ", "", "x" * 256]
)
def test_mkdir_refuses_invalid_names(api: Any, name: str) -> None:
    env = api.post("/upload/v1/file/mkdir", {"name": name, "parentID": 0})
    assert env["code"] != 0
    assert env["data"] is None
    if name.strip() and len(name) <= 255:
        assert env["message"].startswith(NAME_RULES)
    assert api.listing() == []


def test_mkdir_accepts_a_255_character_name(api: Any) -> None:
    name = "长" * 255
    dir_id = mkdir(api, name)
    assert detail(api, dir_id)["filename"] == name


def test_mkdir_under_a_missing_parent_is_refused(api: Any) -> None:
    env = api.post("/upload/v1/file/mkdir", {"name": "x", "parentID": 987654321})
    assert env["code"] != 0
    assert api.listing() == []


# -- list ------------------------------------------------------------------------------------


def test_list_pages_250_items_in_ascending_order(api: Any) -> None:
    parent = mkdir(api, "many")
    made = [mkdir(api, f"d{n:03}", parent) for n in range(250)]
    seen: list[int] = []
    cursors = []
    last = 0
    while True:
        page = api.ok(api.get("/api/v2/file/list", parentFileId=parent, limit=100, lastFileId=last))
        ids = [i["fileId"] for i in page["fileList"]]
        assert len(ids) <= 100
        seen.extend(ids)
        cursors.append(page["lastFileId"])
        if page["lastFileId"] == -1:
            break
        assert page["lastFileId"] == ids[-1]
        last = page["lastFileId"]
    assert len(cursors) == 3
    assert cursors[-1] == -1
    assert seen == sorted(made)
    assert len(set(seen)) == 250


def test_list_first_page_without_cursor_and_exact_boundary(api: Any) -> None:
    parent = mkdir(api, "p")
    made = [mkdir(api, f"d{n}", parent) for n in range(5)]
    page = api.ok(api.get("/api/v2/file/list", parentFileId=parent, limit=5))
    assert [i["fileId"] for i in page["fileList"]] == made
    assert page["lastFileId"] == -1  # exactly one full page: no further page
    page = api.ok(api.get("/api/v2/file/list", parentFileId=parent, limit=2))
    assert page["lastFileId"] == made[1]


@pytest.mark.parametrize("limit", [0, 101, -1])
def test_list_limit_out_of_range_is_refused(api: Any, limit: int) -> None:
    env = api.get("/api/v2/file/list", parentFileId=0, limit=limit)
    assert env["code"] != 0
    assert env["data"] is None


def test_list_requires_limit(api: Any) -> None:
    env = api.get("/api/v2/file/list", parentFileId=0)
    assert env["code"] != 0


def test_list_items_have_every_field_and_trashed_ones_stay(api: Any) -> None:
    folder = mkdir(api, "folder")
    song = upload(api, "song.mp3", b"la la la")
    gone = upload(api, "gone.txt", b"bye")
    api.ok(api.post("/api/v1/file/trash", {"fileIDs": [gone]}))
    items = {i["fileId"]: i for i in api.listing()}
    assert set(items) == {folder, song, gone}
    for item in items.values():
        assert set(item) >= LIST_FIELDS, set(LIST_FIELDS) - set(item)
        assert STAMP.fullmatch(item["createAt"]), item["createAt"]
        assert STAMP.fullmatch(item["updateAt"]), item["updateAt"]
        assert item["parentFileId"] == 0
    assert items[gone]["trashed"] == 1
    assert items[song]["trashed"] == 0
    f, s = items[folder], items[song]
    assert (f["type"], f["etag"], f["size"]) == (1, "", 0)
    assert (s["type"], s["etag"], s["size"], s["category"]) == (0, md5(b"la la la"), 8, 1)


def test_list_of_a_missing_folder_is_refused(api: Any) -> None:
    env = api.get("/api/v2/file/list", parentFileId=424242, limit=10)
    assert env["code"] != 0


def test_search_finds_by_name_across_folders(api: Any) -> None:
    a = mkdir(api, "a")
    b = mkdir(api, "b", a)
    top = upload(api, "report-2024.txt", b"1")
    deep = upload(api, "old report.txt", b"2", b)
    upload(api, "notes.txt", b"3", a)
    page = api.ok(api.get("/api/v2/file/list", parentFileId=a, limit=100, searchData="report"))
    assert sorted(i["fileId"] for i in page["fileList"]) == sorted([top, deep])
    exact = api.ok(
        api.get(
            "/api/v2/file/list",
            parentFileId=0,
            limit=100,
            searchData="old report.txt",
            searchMode=1,
        )
    )
    assert [i["fileId"] for i in exact["fileList"]] == [deep]
    assert exact["fileList"][0]["parentFileId"] == b
    none = api.ok(
        api.get("/api/v2/file/list", parentFileId=0, limit=100, searchData="report", searchMode=1)
    )
    assert none["fileList"] == []


# -- detail / infos --------------------------------------------------------------------------


def test_detail_of_file_and_folder(api: Any) -> None:
    top = mkdir(api, "top")
    sub = mkdir(api, "sub", top)
    f1 = upload(api, "one.bin", b"x" * 100, top)
    upload(api, "two.bin", b"y" * 250, sub)
    d = detail(api, top)
    assert {
        "fileID",
        "filename",
        "type",
        "size",
        "etag",
        "status",
        "parentFileID",
        "createAt",
        "trashed",
    } <= set(d)
    assert "fileId" not in d and "parentFileId" not in d
    assert (d["fileID"], d["filename"], d["type"], d["parentFileID"]) == (top, "top", 1, 0)
    assert d["size"] == 350
    assert STAMP.fullmatch(d["createAt"])
    assert detail(api, sub)["size"] == 250
    fd = detail(api, f1)
    assert (
        fd["fileID"],
        fd["type"],
        fd["size"],
        fd["etag"],
        fd["parentFileID"],
        fd["trashed"],
    ) == (f1, 0, 100, md5(b"x" * 100), top, 0)


def test_detail_of_a_missing_id_is_5066(api: Any) -> None:
    env = api.get("/api/v1/file/detail", fileID=55555555)
    assert env["code"] == 5066
    assert env["data"] is None


def test_infos_answers_with_list(api: Any) -> None:
    d = mkdir(api, "d")
    f = upload(api, "f.txt", b"hello")
    data = api.ok(api.post("/api/v1/file/infos", {"fileIds": [f, d, 77777777]}))
    assert set(data) == {"list"}
    by_id = {i["fileId"]: i for i in data["list"]}
    assert set(by_id) == {f, d}
    assert set(by_id[f]) >= LIST_FIELDS
    assert (by_id[f]["filename"], by_id[f]["size"], by_id[f]["etag"]) == ("f.txt", 5, md5(b"hello"))


# -- trash / delete / recover ------------------------------------------------------------------


def test_trash_then_delete(api: Any) -> None:
    keep = upload(api, "keep.txt", b"keep")
    drop = upload(api, "drop.txt", b"drop")
    env = api.post("/api/v1/file/delete", {"fileIDs": [drop]})
    assert env["code"] != 0  # not in the recycle bin yet
    assert names(api) == ["drop.txt", "keep.txt"]
    api.ok(api.post("/api/v1/file/trash", {"fileIDs": [drop]}))
    assert names(api) == ["keep.txt"]
    assert names(api, trashed=1) == ["drop.txt"]
    assert api.post("/api/v1/file/delete", {"fileIDs": [drop]})["code"] == 0
    assert [i["fileId"] for i in api.listing()] == [keep]
    assert api.get("/api/v1/file/detail", fileID=drop)["code"] == 5066


def test_trash_allows_the_name_again(api: Any) -> None:
    old = mkdir(api, "again")
    api.ok(api.post("/api/v1/file/trash", {"fileIDs": [old]}))
    new = mkdir(api, "again")
    assert new != old
    assert sorted((i["fileId"], i["trashed"]) for i in api.listing()) == [(old, 1), (new, 0)]


def test_id_lists_over_100_are_refused(api: Any) -> None:
    f = upload(api, "f.txt", b"f")
    ids = [f, *range(90_000_000, 90_000_100)]
    for path in (
        "/api/v1/file/trash",
        "/api/v1/file/delete",
        "/api/v1/file/recover",
        "/api/v1/file/move",
    ):
        env = api.post(path, {"fileIDs": ids, "toParentFileID": 0})
        assert env["code"] != 0, path
    assert [i["trashed"] for i in api.listing()] == [0]
    env = api.post("/api/v1/file/infos", {"fileIds": ids})
    assert env["code"] != 0


def test_trash_and_delete_of_100_ids_pass(api: Any) -> None:
    parent = mkdir(api, "bulk")
    ids = [mkdir(api, f"d{n}", parent) for n in range(100)]
    api.ok(api.post("/api/v1/file/trash", {"fileIDs": ids}))
    api.ok(api.post("/api/v1/file/delete", {"fileIDs": ids}))
    assert api.listing(parent) == []


def test_recover_reports_items_whose_parent_is_trashed(api: Any) -> None:
    folder = mkdir(api, "folder")
    inner = upload(api, "inner.txt", b"inner", folder)
    loose = upload(api, "loose.txt", b"loose")
    api.ok(api.post("/api/v1/file/trash", {"fileIDs": [inner, loose, folder]}))
    data = api.ok(api.post("/api/v1/file/recover", {"fileIDs": [inner, loose]}))
    assert data == {"abnormalFileIDs": [inner]}
    states = {i["fileId"]: i["trashed"] for i in api.listing()}
    assert states == {folder: 1, loose: 0}
    assert detail(api, inner)["trashed"] == 1
    # once the parent is back, the inner file can come back too
    assert api.ok(api.post("/api/v1/file/recover", {"fileIDs": [folder]})) == {
        "abnormalFileIDs": []
    }
    assert api.ok(api.post("/api/v1/file/recover", {"fileIDs": [inner]})) == {"abnormalFileIDs": []}
    assert [(i["fileId"], i["trashed"]) for i in api.listing(folder)] == [(inner, 0)]


# -- move ------------------------------------------------------------------------------------


def test_move_into_a_folder(api: Any) -> None:
    target = mkdir(api, "target")
    a = upload(api, "a.txt", b"a")
    b = mkdir(api, "b")
    api.ok(api.post("/api/v1/file/move", {"fileIDs": [a, b], "toParentFileID": target}))
    assert names(api) == ["target"]
    assert names(api, target) == ["a.txt", "b"]
    assert detail(api, a)["parentFileID"] == target
    api.ok(api.post("/api/v1/file/move", {"fileIDs": [a], "toParentFileID": 0}))
    assert names(api) == ["a.txt", "target"]


def test_move_into_itself_or_a_descendant_is_refused(api: Any) -> None:
    top = mkdir(api, "top")
    mid = mkdir(api, "mid", top)
    low = mkdir(api, "low", mid)
    for dest in (top, mid, low):
        env = api.post("/api/v1/file/move", {"fileIDs": [top], "toParentFileID": dest})
        assert env["code"] != 0, dest
    assert detail(api, top)["parentFileID"] == 0
    assert detail(api, mid)["parentFileID"] == top


def test_move_with_a_name_clash_is_refused(api: Any) -> None:
    dest = mkdir(api, "dest")
    upload(api, "same.txt", b"in dest", dest)
    mine = upload(api, "same.txt", b"at root")
    env = api.post("/api/v1/file/move", {"fileIDs": [mine], "toParentFileID": dest})
    assert env["code"] != 0
    assert detail(api, mine)["parentFileID"] == 0
    assert names(api, dest) == ["same.txt"]


def test_move_to_a_missing_folder_is_refused(api: Any) -> None:
    f = upload(api, "f.txt", b"f")
    env = api.post("/api/v1/file/move", {"fileIDs": [f], "toParentFileID": 31313131})
    assert env["code"] != 0
    assert detail(api, f)["parentFileID"] == 0


# -- rename ----------------------------------------------------------------------------------


def rename_one(api: Any, file_id: int, name: str) -> dict[str, Any]:
    return dict(api.post("/api/v1/file/name", {"fileId": file_id, "fileName": name}, method="PUT"))


def test_rename_one(api: Any) -> None:
    f = upload(api, "before.txt", b"content")
    env = rename_one(api, f, "after.txt")
    assert env["code"] == 0 and env["data"] is None
    assert names(api) == ["after.txt"]
    assert detail(api, f)["filename"] == "after.txt"


def test_rename_one_refuses_bad_names_and_clashes(api: Any) -> None:
    f = upload(api, "f.txt", b"f")
    upload(api, "taken.txt", b"t")
    assert rename_one(api, f, "bad|name")["code"] != 0
    assert rename_one(api, f, "   ")["code"] != 0
    assert rename_one(api, f, "taken.txt")["code"] != 0
    assert rename_one(api, 12121212, "x.txt")["code"] != 0
    assert names(api) == ["f.txt", "taken.txt"]
    # POST is not how the single rename is called
    r = api.http.post(
        f"{api.emu.api_url}/api/v1/file/name",
        json={"fileId": f, "fileName": "z"},
        headers=api.headers(),
        timeout=10,
    )
    assert r.json()["code"] != 0
    assert names(api) == ["f.txt", "taken.txt"]


def test_rename_many(api: Any) -> None:
    a = upload(api, "a.txt", b"a")
    b = upload(api, "b.txt", b"b")
    c = upload(api, "c.txt", b"c")
    data = api.ok(
        api.post(
            "/api/v1/file/rename",
            {"renameList": [f"{a}|a2.txt", f"{b}|bad*name", f"{c}|a2.txt", "40404040|x.txt"]},
        )
    )
    assert [s["fileID"] for s in data["successList"]] == [a]
    assert STAMP.fullmatch(data["successList"][0]["updateAt"])
    assert sorted(f["fileID"] for f in data["failList"]) == sorted([b, c, 40404040])
    assert all(f["message"] for f in data["failList"])
    assert names(api) == ["a2.txt", "b.txt", "c.txt"]


def test_rename_many_limits(api: Any) -> None:
    f = upload(api, "f.txt", b"f")
    env = api.post("/api/v1/file/rename", {"renameList": [f"{f}|n{i}.txt" for i in range(31)]})
    assert env["code"] != 0
    assert names(api) == ["f.txt"]
    env = api.post("/api/v1/file/rename", {"renameList": [f"{f}-no-separator"]})
    assert env["code"] != 0
    data = api.ok(
        api.post("/api/v1/file/rename", {"renameList": [f"{f}|n{i}.txt" for i in range(30)]})
    )
    assert len(data["successList"]) == 30
    assert names(api) == ["n29.txt"]


# -- download / user info ----------------------------------------------------------------------


def test_download_info_serves_the_uploaded_bytes(api: Any) -> None:
    data = bytes(range(256)) * 40
    f = upload(api, "bytes 名.bin", data)
    url = api.ok(api.get("/api/v1/file/download_info", fileId=f))["downloadUrl"]
    assert url.startswith(api.emu.upload_url + "/")
    r = requests.get(url, timeout=10)  # no headers needed: the URL is signed
    assert r.status_code == 200
    assert r.content == data
    forged = url.replace("sign=", "sign=0")
    assert requests.get(forged, timeout=10).status_code == 403


def test_download_info_of_trashed_missing_or_folder_is_5066(api: Any) -> None:
    f = upload(api, "t.txt", b"t")
    d = mkdir(api, "d")
    api.ok(api.post("/api/v1/file/trash", {"fileIDs": [f]}))
    for file_id in (f, d, 60606060):
        env = api.get("/api/v1/file/download_info", fileId=file_id)
        assert env["code"] == 5066, file_id
        assert env["data"] is None


def test_user_info_fields_and_space_used(api: Any) -> None:
    info = api.ok(api.get("/api/v1/user/info"))
    assert {"uid", "nickname", "spaceUsed", "spacePermanent", "vip", "vipInfo"} <= set(info)
    assert info["uid"] == api.emu.settings.uid
    assert info["vip"] is False
    assert info["vipInfo"] is None
    assert info["spaceUsed"] == 0
    assert info["spacePermanent"] == api.emu.settings.space_permanent
    folder = mkdir(api, "f")
    a = upload(api, "a.bin", b"a" * 1000)
    upload(api, "b.bin", b"b" * 234, folder)
    assert space_used(api) == 1234
    api.ok(api.post("/api/v1/file/trash", {"fileIDs": [a]}))
    assert space_used(api) == 1234  # the recycle bin still takes space
    api.ok(api.post("/api/v1/file/delete", {"fileIDs": [a]}))
    assert space_used(api) == 234
    api.ok(api.post("/api/v1/file/trash", {"fileIDs": [folder]}))
    api.ok(api.post("/api/v1/file/delete", {"fileIDs": [folder]}))
    assert space_used(api) == 0  # deleting a folder deletes what it holds


def test_folder_below_a_trashed_folder_takes_no_new_items(api: Any) -> None:
    top = api.ok(api.post("/upload/v1/file/mkdir", {"name": "top", "parentID": 0}))["dirID"]
    inner = api.ok(api.post("/upload/v1/file/mkdir", {"name": "inner", "parentID": top}))["dirID"]
    api.ok(api.post("/api/v1/file/trash", {"fileIDs": [top]}))
    refused = api.single("late.txt", b"late", parent=inner)
    assert refused["code"] == 5066
    assert api.post("/upload/v1/file/mkdir", {"name": "x", "parentID": inner})["code"] == 5066
    # once the folder is back, the same upload lands
    api.ok(api.post("/api/v1/file/recover", {"fileIDs": [top]}))
    assert api.single("late.txt", b"late", parent=inner)["code"] == 0
