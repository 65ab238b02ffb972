"""Single-step upload (``POST {upload host}/upload/v2/file/single/create``) against the emulator.

Plain HTTP only (the ``api`` fixture from conftest wraps ``requests``); every test checks the
answer's code and then what the drive holds afterwards: listing entries and downloaded bytes.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from syncagent.emulator import Emulator

FORBIDDEN = '"\\/:*?|><'
NAME_MESSAGE = '文件名要小于256个字符且不能包含以下任何字符："\\/:*?|><'


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def live(api: Any, parent: int = 0) -> list[dict[str, Any]]:
    return [item for item in api.listing(parent) if item["trashed"] == 0]


def names_in(api: Any, parent: int = 0) -> list[str]:
    return sorted(item["filename"] for item in live(api, parent))


def only(api: Any, parent: int, name: str) -> dict[str, Any]:
    found = [item for item in live(api, parent) if item["filename"] == name]
    assert len(found) == 1, (name, api.listing(parent))
    return found[0]


def refused(env: dict[str, Any], code: int | None = None) -> None:
    assert env["code"] != 0, env
    if code is not None:
        assert env["code"] == code, env
    assert env["data"] is None, env


def mkdir(api: Any, name: str, parent: int = 0) -> int:
    return int(
        api.ok(api.post("/upload/v1/file/mkdir", {"name": name, "parentID": parent}))["dirID"]
    )


def space_used(api: Any) -> int:
    return int(api.ok(api.get("/api/v1/user/info"))["spaceUsed"])


# -- basic ---------------------------------------------------------------------------------


def test_basic_upload_lists_and_downloads_same_bytes(api: Any) -> None:
    data = b"hello 123pan\n" * 100
    env = api.single("hello.txt", data)
    assert env["code"] == 0 and env["message"] == "ok", env
    assert env["data"]["completed"] is True
    file_id = env["data"]["fileID"]
    assert isinstance(file_id, int) and file_id > 0
    item = only(api, 0, "hello.txt")
    assert item["fileId"] == file_id
    assert item["type"] == 0
    assert item["size"] == len(data)
    assert item["etag"] == md5(data)
    assert item["parentFileId"] == 0
    assert api.download(file_id) == data


# -- containDir ----------------------------------------------------------------------------


def test_contain_dir_creates_and_reuses_folders_under_root(api: Any) -> None:
    c, d = b"content of c", b"content of d, a bit longer"
    c_id = api.ok(api.single("a/b/c.txt", c, containDir=True))["fileID"]
    d_id = api.ok(api.single("/a/b/d.txt", d, containDir=True))["fileID"]

    root = live(api, 0)
    assert [(i["filename"], i["type"]) for i in root] == [("a", 1)]
    a_items = live(api, root[0]["fileId"])
    assert [(i["filename"], i["type"]) for i in a_items] == [("b", 1)]
    b_id = a_items[0]["fileId"]
    assert names_in(api, b_id) == ["c.txt", "d.txt"]
    assert only(api, b_id, "c.txt")["fileId"] == c_id
    assert only(api, b_id, "d.txt")["fileId"] == d_id
    assert api.download(c_id) == c
    assert api.download(d_id) == d


def test_contain_dir_resolves_under_non_root_parent(api: Any) -> None:
    parent = mkdir(api, "p")
    data = b"nested under p"
    fid = api.ok(api.single("x/y/z.bin", data, parent, containDir=True))["fileID"]
    api.ok(api.single("/x/w.bin", b"second", parent, containDir=True))

    assert names_in(api, 0) == ["p"]  # nothing leaked to the root
    x = only(api, parent, "x")
    assert x["type"] == 1 and x["parentFileId"] == parent
    assert names_in(api, parent) == ["x"]
    assert names_in(api, x["fileId"]) == ["w.bin", "y"]
    y = only(api, x["fileId"], "y")
    assert only(api, y["fileId"], "z.bin")["fileId"] == fid
    assert api.download(fid) == data


def test_contain_dir_reuses_folder_made_by_mkdir(api: Any) -> None:
    a = mkdir(api, "a")
    b = mkdir(api, "b", a)
    api.ok(api.single("a/b/f.txt", b"f", containDir=True))
    api.ok(api.single("a/g.txt", b"g", containDir=True))
    assert [i["fileId"] for i in live(api, 0)] == [a]
    assert names_in(api, a) == ["b", "g.txt"]
    assert only(api, a, "b")["fileId"] == b
    assert names_in(api, b) == ["f.txt"]


def test_contain_dir_false_takes_path_literally_and_refuses_it(api: Any) -> None:
    refused(api.single("a/b.txt", b"x"), 1)
    assert api.listing(0) == []


# -- name validation -------------------------------------------------------------------------


@pytest.mark.parametrize("ch", list(FORBIDDEN))
def test_forbidden_character_in_leaf_refused(api: Any, ch: str) -> None:
    env = api.single(f"bad{ch}name.txt", b"data")
    refused(env, 1)
    assert env["message"] == NAME_MESSAGE
    assert api.listing(0) == []


@pytest.mark.parametrize("ch", [c for c in FORBIDDEN if c != "/"])
def test_forbidden_character_in_contain_dir_leaf_refused(api: Any, ch: str) -> None:
    env = api.single(f"dir/bad{ch}name.txt", b"data", containDir=True)
    refused(env, 1)
    assert env["message"] == NAME_MESSAGE
    assert api.listing(0) == []  # the valid folder segment was not created either


@pytest.mark.parametrize("ch", [c for c in FORBIDDEN if c != "/"])
def test_forbidden_character_in_contain_dir_folder_refused(api: Any, ch: str) -> None:
    for path in (f"ok/ba{ch}d/f.txt", f"/ba{ch}d/f.txt"):
        env = api.single(path, b"data", containDir=True)
        refused(env, 1)
        assert env["message"] == NAME_MESSAGE
    assert api.listing(0) == []


def test_slash_is_a_separator_with_contain_dir(api: Any) -> None:
    api.ok(api.single("s1/s2.txt", b"x", containDir=True))
    assert names_in(api, 0) == ["s1"]


@pytest.mark.parametrize("name", [" ", "   ", "dir/   ", "   /f.txt", "a/  /f.txt"])
def test_all_spaces_name_refused(api: Any, name: str) -> None:
    refused(api.single(name, b"data", containDir="/" in name), 1)
    assert api.listing(0) == []


def test_name_with_spaces_inside_accepted(api: Any) -> None:
    api.ok(api.single(" a b .txt", b"data"))
    assert names_in(api, 0) == [" a b .txt"]


def test_name_length_255_accepted_256_refused(api: Any) -> None:
    ok_name = "n" * 251 + ".txt"
    long_name = "n" * 252 + ".txt"
    assert len(ok_name) == 255 and len(long_name) == 256
    env = api.single(long_name, b"data")
    refused(env, 1)
    assert env["message"] == NAME_MESSAGE
    fid = api.ok(api.single(ok_name, b"data"))["fileID"]
    assert only(api, 0, ok_name)["fileId"] == fid
    # multi-byte characters count as characters, not bytes
    cjk = "测" * 255
    api.ok(api.single(cjk, b"cjk"))
    refused(api.single("测" * 256, b"cjk"), 1)
    assert names_in(api, 0) == sorted([ok_name, cjk])


def test_name_length_checked_per_contain_dir_segment(api: Any) -> None:
    seg255, seg256 = "d" * 255, "d" * 256
    refused(api.single(f"{seg256}/f.txt", b"x", containDir=True), 1)
    refused(api.single(f"ok/{'f' * 256}", b"x", containDir=True), 1)
    assert api.listing(0) == []
    fid = api.ok(api.single(f"{seg255}/{'f' * 255}", b"x", containDir=True))["fileID"]
    folder = only(api, 0, seg255)
    assert only(api, folder["fileId"], "f" * 255)["fileId"] == fid


# -- body checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("delta", [1, -1])
def test_body_length_different_from_size_refused(api: Any, delta: int) -> None:
    data = b"0123456789"
    refused(api.single("len.txt", data, size=len(data) + delta), 1)
    assert api.listing(0) == []


def test_body_md5_different_from_etag_refused(api: Any) -> None:
    data = b"the real content"
    refused(api.single("md5.txt", data, etag=md5(b"other content")), 1)
    assert api.listing(0) == []


@pytest.mark.parametrize("etag", ["", "abc", "z" * 32, "0" * 31, "0" * 33])
def test_malformed_etag_refused(api: Any, etag: str) -> None:
    refused(api.single("e.txt", b"x", etag=etag))
    assert api.listing(0) == []


def test_upper_case_etag_refused_by_default_accepted_when_configured(
    api: Any, emulator: Emulator
) -> None:
    data = b"case matters"
    refused(api.single("upper.txt", data, etag=md5(data).upper()), 1)
    assert api.listing(0) == []
    emulator.configure(accept_uppercase_etag=True)
    fid = api.ok(api.single("upper.txt", data, etag=md5(data).upper()))["fileID"]
    item = only(api, 0, "upper.txt")
    assert item["fileId"] == fid
    assert item["etag"] == md5(data)  # stored lower-case
    assert api.download(fid) == data


def test_zero_byte_file_refused(api: Any) -> None:
    refused(api.single("empty.txt", b""), 1)
    assert api.listing(0) == []


def test_size_over_single_limit_refused(api: Any, emulator: Emulator) -> None:
    emulator.configure(single_max=1000)
    refused(api.single("big.bin", b"b" * 1001), 1)
    # declared size over the limit although the body is small
    refused(api.single("liar.bin", b"b" * 10, size=2000), 1)
    assert api.listing(0) == []
    fid = api.ok(api.single("max.bin", b"m" * 1000))["fileID"]
    assert api.download(fid) == b"m" * 1000


def test_huge_content_length_answered_quickly_with_envelope(api: Any, emulator: Emulator) -> None:
    emulator.configure(single_max=1000)
    token = api.login()["accessToken"]
    url = urlsplit(emulator.upload_url)
    declared = 50 * 1024 * 1024  # far above the limit; only a few bytes are ever sent
    head = (
        "POST /upload/v2/file/single/create HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Platform: open_platform\r\n"
        "Content-Type: multipart/form-data; boundary=XyZ\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    start = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head + b'--XyZ\r\nContent-Disposition: form-data; name="file"\r\n\r\n')
        raw = b""
        while True:
            try:
                piece = sock.recv(65536)
            except ConnectionResetError:
                break
            if not piece:
                break
            raw += piece
            if b"\r\n\r\n" in raw:
                head_part, _, rest = raw.partition(b"\r\n\r\n")
                length = [
                    int(line.split(b":", 1)[1])
                    for line in head_part.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                if length and len(rest) >= length[0]:
                    break
    elapsed = time.monotonic() - start
    assert elapsed < 3, elapsed
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 "), raw
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"connection: close" in headers.lower()
    env = json.loads(body)
    assert set(env) == {"code", "message", "data", "x-traceID"}
    assert env["code"] != 0 and env["data"] is None
    assert api.listing(0) == []


# -- duplicate policies ------------------------------------------------------------------------


def test_duplicate_1_keeps_both_with_numbered_suffix(api: Any) -> None:
    v0, v1, v2 = b"version zero", b"version one", b"version two"
    id0 = api.ok(api.single("name.ext", v0))["fileID"]
    id1 = api.ok(api.single("name.ext", v1, duplicate=1))["fileID"]
    id2 = api.ok(api.single("name.ext", v2, duplicate=1))["fileID"]
    assert len({id0, id1, id2}) == 3
    assert names_in(api, 0) == ["name(1).ext", "name(2).ext", "name.ext"]
    assert only(api, 0, "name.ext")["fileId"] == id0
    assert only(api, 0, "name(1).ext")["fileId"] == id1
    assert only(api, 0, "name(2).ext")["fileId"] == id2
    assert [api.download(i) for i in (id0, id1, id2)] == [v0, v1, v2]


def test_duplicate_2_overwrites_and_trashes_old_when_configured(
    api: Any, emulator: Emulator
) -> None:
    emulator.configure(overwrite_old="trash")
    old, new = b"old content", b"new content!"
    old_id = api.ok(api.single("doc.txt", old))["fileID"]
    new_id = api.ok(api.single("doc.txt", new, duplicate=2))["fileID"]
    assert new_id != old_id
    item = only(api, 0, "doc.txt")
    assert item["fileId"] == new_id and item["etag"] == md5(new) and item["size"] == len(new)
    everything = {i["fileId"]: i for i in api.listing(0)}
    assert set(everything) == {old_id, new_id}
    assert everything[old_id]["trashed"] == 1
    assert everything[old_id]["filename"] == "doc.txt"
    assert everything[new_id]["trashed"] == 0
    assert api.download(new_id) == new


def test_duplicate_2_destroys_old_by_default(api: Any, emulator: Emulator) -> None:
    assert emulator.settings.overwrite_old == "destroy"  # the strict choice
    old_id = api.ok(api.single("doc.txt", b"old"))["fileID"]
    new_id = api.ok(api.single("doc.txt", b"new", duplicate=2))["fileID"]
    assert new_id != old_id
    assert [(i["fileId"], i["filename"], i["trashed"]) for i in api.listing(0)] == [
        (new_id, "doc.txt", 0)
    ]
    assert api.download(new_id) == b"new"


def test_duplicate_omitted_on_clash_is_an_error_by_default(api: Any) -> None:
    first = api.ok(api.single("same.txt", b"first"))["fileID"]
    for extra in ({}, {"duplicate": 0}):
        env = api.single("same.txt", b"second", **extra)
        refused(env, 1)
    assert [(i["fileId"], i["filename"]) for i in api.listing(0)] == [(first, "same.txt")]
    assert api.download(first) == b"first"


def test_duplicate_omitted_keeps_both_when_configured(api: Any, emulator: Emulator) -> None:
    emulator.configure(duplicate_default="keep_both")
    first = api.ok(api.single("same.txt", b"first"))["fileID"]
    second = api.ok(api.single("same.txt", b"second"))["fileID"]
    assert names_in(api, 0) == ["same(1).txt", "same.txt"]
    assert only(api, 0, "same(1).txt")["fileId"] == second
    assert api.download(first) == b"first" and api.download(second) == b"second"


def test_invalid_duplicate_value_refused(api: Any) -> None:
    refused(api.single("d.txt", b"x", duplicate=3))
    assert api.listing(0) == []


def test_trashed_item_never_clashes(api: Any) -> None:
    old = api.ok(api.single("t.txt", b"old"))["fileID"]
    api.ok(api.post("/api/v1/file/trash", {"fileIDs": [old]}))
    new = api.ok(api.single("t.txt", b"new"))["fileID"]  # duplicate omitted: no clash
    assert only(api, 0, "t.txt")["fileId"] == new
    assert {i["fileId"]: i["trashed"] for i in api.listing(0)} == {old: 1, new: 0}


def test_duplicate_policy_applies_to_contain_dir_leaf(api: Any) -> None:
    api.ok(api.single("a/f.txt", b"one", containDir=True))
    refused(api.single("a/f.txt", b"two", containDir=True), 1)
    api.ok(api.single("a/f.txt", b"two", containDir=True, duplicate=1))
    a = only(api, 0, "a")
    assert names_in(api, a["fileId"]) == ["f(1).txt", "f.txt"]


# -- 秒传, parents, space ------------------------------------------------------------------------


def test_rapid_upload_same_content_under_other_name(api: Any, emulator: Emulator) -> None:
    data = b"deduplicated content " * 50
    first = api.ok(api.single("one.bin", data))
    second = api.ok(api.single("two.bin", data))
    assert first["completed"] is True and second["completed"] is True
    assert first["fileID"] != second["fileID"]
    assert names_in(api, 0) == ["one.bin", "two.bin"]
    for fid in (first["fileID"], second["fileID"]):
        assert api.download(fid) == data
    assert emulator.activity()["counts"]["single_uploads"] == 2


def test_missing_parent_refused(api: Any) -> None:
    refused(api.single("f.txt", b"x", 987654321))
    refused(api.single("a/f.txt", b"x", 987654321, containDir=True))
    assert api.listing(0) == []


def test_trashed_parent_refused(api: Any) -> None:
    folder = mkdir(api, "gone")
    api.ok(api.post("/api/v1/file/trash", {"fileIDs": [folder]}))
    refused(api.single("f.txt", b"x", folder))
    refused(api.single("sub/f.txt", b"x", folder, containDir=True))
    assert api.listing(folder) == []


def test_file_as_parent_refused(api: Any) -> None:
    fid = api.ok(api.single("plain.txt", b"x"))["fileID"]
    refused(api.single("f.txt", b"y", fid))
    assert [i["fileId"] for i in api.listing(0)] == [fid]


def test_contain_dir_path_through_existing_file_refused(api: Any) -> None:
    fid = api.ok(api.single("a.txt", b"i am a file"))["fileID"]
    refused(api.single("a.txt/b.txt", b"x", containDir=True))
    refused(api.single("a.txt/deeper/b.txt", b"x", containDir=True))
    assert [(i["fileId"], i["type"]) for i in api.listing(0)] == [(fid, 0)]


def test_space_used_grows_by_uploaded_size(api: Any) -> None:
    before = space_used(api)
    api.ok(api.single("s1.bin", b"a" * 1234))
    assert space_used(api) == before + 1234
    api.ok(api.single("dir/s2.bin", b"b" * 4321, containDir=True))
    assert space_used(api) == before + 1234 + 4321


def test_single_create_answers_on_upload_host_only(api: Any, emulator: Emulator) -> None:
    # The same call on the API host is a 404 with an envelope (strict hosts, the default).
    r = api.http.post(
        f"{emulator.api_url}/upload/v2/file/single/create",
        data={"parentFileID": "0", "filename": "x.txt", "etag": md5(b"x"), "size": "1"},
        files={"file": ("blob", b"x")},
        headers=api.headers(),
        timeout=10,
    )
    assert r.status_code == 404
    assert r.json()["code"] == 404 and r.json()["data"] is None
    assert api.listing(0) == []
