"""V2 chunked upload (create → slice → upload_complete) against the emulator, over plain HTTP.

``sliceSize`` is configured down to 1 KiB so that files of a few KiB have several slices.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from syncagent.emulator import Emulator

SLICE = 1024
VERIFYING = "文件正在校验中,请间隔1秒后再试"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def blob(n: int, seed: int = 0) -> bytes:
    """``n`` bytes that differ per seed (so no two tests share content by accident)."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}-{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


def pieces(data: bytes, size: int = SLICE) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def live(api: Any, parent: int = 0) -> list[dict[str, Any]]:
    return [item for item in api.listing(parent) if item["trashed"] == 0]


def only(api: Any, parent: int, name: str) -> dict[str, Any]:
    found = [item for item in live(api, parent) if item["filename"] == name]
    assert len(found) == 1, (name, api.listing(parent))
    return found[0]


def refused(env: dict[str, Any], code: int | None = None) -> None:
    assert env["code"] != 0, env
    if code is not None:
        assert env["code"] == code, env
    assert env["data"] is None, env


def accepted_void(env: dict[str, Any]) -> None:
    assert env["code"] == 0 and env["message"] == "ok", env
    assert env["data"] is None, env


def finish(api: Any, preupload_id: str) -> int:
    done = api.ok(api.complete(preupload_id))
    assert done["completed"] is True
    assert isinstance(done["fileID"], int) and done["fileID"] > 0
    return int(done["fileID"])


@pytest.fixture
def small(emulator: Emulator) -> Emulator:
    emulator.configure(slice_size=SLICE)
    return emulator


def start(api: Any, name: str, data: bytes, parent: int = 0, **extra: Any) -> dict[str, Any]:
    created = api.ok(api.create(name, data, parent, **extra))
    assert created["reuse"] is False, created
    return dict(created)


def send_all(api: Any, created: dict[str, Any], data: bytes) -> None:
    for no, piece in enumerate(pieces(data, created["sliceSize"]), start=1):
        accepted_void(
            api.send_slice(created["preuploadID"], no, piece, server=created["servers"][0])
        )


# -- create ----------------------------------------------------------------------------------


def test_create_answer_points_slices_at_upload_host(api: Any, small: Emulator) -> None:
    data = blob(3 * SLICE - 100, seed=1)
    env = api.create("file.bin", data)
    assert env["code"] == 0 and env["message"] == "ok", env
    created = env["data"]
    assert created["reuse"] is False
    assert created["fileID"] == 0
    assert isinstance(created["preuploadID"], str) and created["preuploadID"]
    assert created["sliceSize"] == SLICE
    assert created["servers"] == [small.upload_url]
    assert small.upload_url != small.api_url
    assert api.ok(api.get("/upload/v2/file/domain")) == [small.upload_url]
    # nothing is listed before completion
    assert api.listing(0) == []


def test_default_slice_size_is_16_mib(api: Any) -> None:
    created = start(api, "f.bin", blob(100, seed=2))
    assert created["sliceSize"] == 16 * 1024 * 1024


def test_whole_flow_downloads_identical(api: Any, small: Emulator) -> None:
    data = blob(5 * SLICE + 7, seed=3)
    created = start(api, "whole.bin", data)
    send_all(api, created, data)
    fid = finish(api, created["preuploadID"])
    item = only(api, 0, "whole.bin")
    assert item["fileId"] == fid and item["size"] == len(data) and item["etag"] == md5(data)
    assert api.download(fid) == data


def test_exact_multiple_of_slice_size(api: Any, small: Emulator) -> None:
    data = blob(2 * SLICE, seed=4)
    created = start(api, "exact.bin", data)
    refused(api.send_slice(created["preuploadID"], 3, b"x"), 1)  # there is no third slice
    send_all(api, created, data)
    assert api.download(finish(api, created["preuploadID"])) == data


# -- slices ----------------------------------------------------------------------------------


def test_slices_out_of_order_and_repeated(api: Any, small: Emulator) -> None:
    data = blob(3 * SLICE - 100, seed=5)
    p = pieces(data)
    created = start(api, "ooo.bin", data)
    pid, server = created["preuploadID"], created["servers"][0]
    for no in (3, 1, 2, 2):
        accepted_void(api.send_slice(pid, no, p[no - 1], server=server))
    fid = finish(api, pid)
    assert api.download(fid) == data
    assert small.activity()["slices"][pid] == [3, 1, 2, 2]


def test_slice_fields_after_the_data_accepted(api: Any, small: Emulator) -> None:
    """The slice part may come before the plain fields in the form."""
    data = blob(2 * SLICE + 10, seed=6)
    created = start(api, "late-fields.bin", data)
    pid = created["preuploadID"]
    for no, piece in enumerate(pieces(data), start=1):
        r = api.http.post(
            f"{created['servers'][0]}/upload/v2/file/slice",
            files=[
                ("slice", ("slice", piece)),
                ("preuploadID", (None, pid)),
                ("sliceNo", (None, str(no))),
                ("sliceMD5", (None, md5(piece))),
            ],
            headers=api.headers(),
            timeout=30,
        )
        accepted_void(r.json())
    assert api.download(finish(api, pid)) == data


def test_slice_with_wrong_md5_refused_and_not_counted(api: Any, small: Emulator) -> None:
    data = blob(2 * SLICE + 1, seed=7)
    p = pieces(data)
    created = start(api, "md5.bin", data)
    pid = created["preuploadID"]
    refused(api.send_slice(pid, 1, p[0], slice_md5=md5(b"something else")), 1)
    accepted_void(api.send_slice(pid, 2, p[1]))
    accepted_void(api.send_slice(pid, 3, p[2]))
    env = api.complete(pid)
    refused(env, 1)
    assert env["message"] != "文件上传失败"  # missing slices, not a failed verification
    accepted_void(api.send_slice(pid, 1, p[0]))
    assert api.download(finish(api, pid)) == data


def test_upper_case_slice_md5_refused_by_default(api: Any, small: Emulator) -> None:
    data = blob(SLICE + 5, seed=8)
    p = pieces(data)
    created = start(api, "upper.bin", data)
    pid = created["preuploadID"]
    refused(api.send_slice(pid, 1, p[0], slice_md5=md5(p[0]).upper()), 1)
    small.configure(accept_uppercase_etag=True)
    accepted_void(api.send_slice(pid, 1, p[0], slice_md5=md5(p[0]).upper()))
    accepted_void(api.send_slice(pid, 2, p[1]))
    assert api.download(finish(api, pid)) == data


def test_good_slice_resent_with_wrong_md5_no_longer_counts(api: Any, small: Emulator) -> None:
    data = blob(2 * SLICE, seed=9)
    p = pieces(data)
    created = start(api, "resend.bin", data)
    pid = created["preuploadID"]
    accepted_void(api.send_slice(pid, 1, p[0]))
    accepted_void(api.send_slice(pid, 2, p[1]))
    garbage = blob(SLICE, seed=99)
    refused(api.send_slice(pid, 1, garbage, slice_md5=md5(b"not it")), 1)
    env = api.complete(pid)
    refused(env, 1)
    assert env["message"] != "文件上传失败"
    accepted_void(api.send_slice(pid, 1, p[0]))
    assert api.download(finish(api, pid)) == data


def test_slice_with_wrong_length_refused(api: Any, small: Emulator) -> None:
    data = blob(3 * SLICE - 100, seed=10)  # slices of 1024, 1024, 924
    p = pieces(data)
    created = start(api, "len.bin", data)
    pid = created["preuploadID"]
    short = p[0][:1000]  # a non-last slice shorter than sliceSize
    refused(api.send_slice(pid, 1, short), 1)
    long_mid = p[1] + b"extra"  # a non-last slice longer than sliceSize
    refused(api.send_slice(pid, 2, long_mid), 1)
    long_last = p[2] + b"x" * 50  # the last slice longer than the remainder
    refused(api.send_slice(pid, 3, long_last), 1)
    full_last = blob(SLICE, seed=11)  # a full-size slice where the remainder is 924
    refused(api.send_slice(pid, 3, full_last), 1)
    refused(api.send_slice(pid, 3, p[2][:-1]), 1)  # a last slice one byte short
    env = api.complete(pid)
    refused(env, 1)  # none of them counted
    assert env["message"] != "文件上传失败"
    send_all(api, created, data)
    assert api.download(finish(api, pid)) == data


def test_refused_overlong_slice_does_not_corrupt_a_counted_one(
    api: Any, emulator: Emulator
) -> None:
    """A refused slice either leaves the stored bytes alone or stops counting as received.

    Slices of 2 MiB so that the too-long piece spans more than one read of the server.
    """
    size = 2 * 1024 * 1024
    emulator.configure(slice_size=size)
    data = blob(size + 1536 * 1024, seed=12)
    p = pieces(data, size)
    created = start(api, "overlong.bin", data)
    pid = created["preuploadID"]
    accepted_void(api.send_slice(pid, 1, p[0]))
    accepted_void(api.send_slice(pid, 2, p[1]))
    refused(api.send_slice(pid, 2, blob(size, seed=13)), 1)  # longer than the remainder
    env = api.complete(pid)
    if env["code"] == 0:
        assert api.download(env["data"]["fileID"]) == data
    else:
        refused(env, 1)
        assert env["message"] != "文件上传失败"
        accepted_void(api.send_slice(pid, 2, p[1]))
        assert api.download(finish(api, pid)) == data


@pytest.mark.parametrize("slice_no", ["0", "4", "-1", "abc"])
def test_slice_number_out_of_range_refused(api: Any, small: Emulator, slice_no: str) -> None:
    data = blob(3 * SLICE - 100, seed=14)
    created = start(api, "range.bin", data)
    r = api.http.post(
        f"{small.upload_url}/upload/v2/file/slice",
        data={"preuploadID": created["preuploadID"], "sliceNo": slice_no, "sliceMD5": md5(b"x")},
        files={"slice": ("slice", b"x")},
        headers=api.headers(),
        timeout=30,
    )
    assert r.status_code == 200
    refused(r.json(), 1)
    assert small.activity()["slices"].get(created["preuploadID"], []) == []


def test_unknown_preupload_id_refused(api: Any, small: Emulator) -> None:
    refused(api.send_slice("no-such-upload", 1, b"abc"), 1)
    refused(api.complete("no-such-upload"), 1)
    # a real but different session's id still works afterwards
    data = blob(100, seed=15)
    created = start(api, "after.bin", data)
    send_all(api, created, data)
    assert api.download(finish(api, created["preuploadID"])) == data


def test_complete_with_missing_slices_refused(api: Any, small: Emulator) -> None:
    data = blob(3 * SLICE, seed=16)
    p = pieces(data)
    created = start(api, "missing.bin", data)
    pid = created["preuploadID"]
    refused(api.complete(pid), 1)  # nothing sent
    accepted_void(api.send_slice(pid, 1, p[0]))
    accepted_void(api.send_slice(pid, 3, p[2]))
    env = api.complete(pid)
    refused(env, 1)
    assert env["message"] != "文件上传失败"
    assert api.listing(0) == []
    accepted_void(api.send_slice(pid, 2, p[1]))
    assert api.download(finish(api, pid)) == data


def test_slice_after_completion_refused(api: Any, small: Emulator) -> None:
    data = blob(SLICE + 1, seed=17)
    created = start(api, "done.bin", data)
    send_all(api, created, data)
    finish(api, created["preuploadID"])
    refused(api.send_slice(created["preuploadID"], 1, pieces(data)[0]), 1)


# -- completion -------------------------------------------------------------------------------


def test_complete_answers_verifying_then_completed(api: Any, small: Emulator) -> None:
    small.configure(complete_pending_polls=3)
    data = blob(2 * SLICE + 3, seed=18)
    created = start(api, "poll.bin", data)
    send_all(api, created, data)
    pid = created["preuploadID"]
    for _ in range(3):
        env = api.complete(pid)
        assert env["code"] == 20103, env
        assert env["message"] == VERIFYING
        assert env["data"] is None
    fid = finish(api, pid)
    assert finish(api, pid) == fid  # again after success: the same fileID
    assert finish(api, pid) == fid
    assert [i["fileId"] for i in live(api, 0)] == [fid]
    assert api.download(fid) == data


def test_complete_verifying_counts_start_after_all_slices(api: Any, small: Emulator) -> None:
    small.configure(complete_pending_polls=1)
    data = blob(2 * SLICE, seed=19)
    p = pieces(data)
    created = start(api, "poll2.bin", data)
    pid = created["preuploadID"]
    accepted_void(api.send_slice(pid, 1, p[0]))
    refused(api.complete(pid), 1)  # missing slice, not 20103
    accepted_void(api.send_slice(pid, 2, p[1]))
    assert api.complete(pid)["code"] == 20103
    assert api.download(finish(api, pid)) == data


def test_whole_file_etag_mismatch_fails_completion(api: Any, small: Emulator) -> None:
    data = blob(2 * SLICE + 50, seed=20)
    wrong = md5(blob(2 * SLICE + 50, seed=21))
    created = start(api, "wrong.bin", data, etag=wrong)
    send_all(api, created, data)  # every slice MD5 is right
    env = api.complete(created["preuploadID"])
    refused(env, 1)
    assert env["message"] == "文件上传失败"
    assert api.listing(0) == []


def _hashed_so_far(emulator: Emulator, preupload_id: str, end: int) -> None:
    """Wait until the emulator's running MD5 of the upload covers ``end`` bytes."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        up = emulator.core.running._uploads.get(preupload_id)  # a test looks at the progress
        if up is not None and up.end >= end:
            return
        time.sleep(0.01)
    raise AssertionError(f"the running MD5 never reached {end} bytes")


@pytest.mark.parametrize("first_right", [True, False])
def test_a_slice_rewritten_after_the_running_md5_passed_it_is_verified_as_it_is_now(
    api: Any, small: Emulator, first_right: bool
) -> None:
    """The running whole-file MD5 is spoiled by a slice written again below it: completion
    then answers for the bytes stored now, right or wrong, never for the bytes hashed before."""
    data = blob(3 * SLICE, seed=30)
    other = blob(SLICE, seed=31)
    p = pieces(data)
    created = start(api, "again.bin", data)
    pid, server = created["preuploadID"], created["servers"][0]
    accepted_void(api.send_slice(pid, 1, p[0] if first_right else other, server=server))
    _hashed_so_far(small, pid, SLICE)
    accepted_void(api.send_slice(pid, 1, other if first_right else p[0], server=server))
    for no in (2, 3):
        accepted_void(api.send_slice(pid, no, p[no - 1], server=server))
    env = api.complete(pid)
    if first_right:  # the right bytes were hashed, then overwritten with other ones
        refused(env, 1)
        assert env["message"] == "文件上传失败"
    else:  # the wrong bytes were hashed, then put right
        fid = finish(api, pid) if env["code"] != 0 else int(env["data"]["fileID"])
        assert api.download(fid) == data


# -- 秒传 --------------------------------------------------------------------------------------


def test_rapid_upload_via_create(api: Any, small: Emulator) -> None:
    data = blob(3 * SLICE + 1, seed=22)
    first = api.chunked("first.bin", data)
    slices_before = small.activity()["slices"]
    env = api.create("second.bin", data)
    assert env["code"] == 0, env
    created = env["data"]
    assert created["reuse"] is True
    assert isinstance(created["fileID"], int) and created["fileID"] > 0
    assert created["fileID"] != first
    assert "preuploadID" not in created
    assert small.activity()["slices"] == slices_before  # no slice received for it
    assert only(api, 0, "second.bin")["fileId"] == created["fileID"]
    assert api.download(created["fileID"]) == data
    assert api.download(first) == data


def test_rapid_upload_via_create_of_single_step_content(api: Any, small: Emulator) -> None:
    data = blob(700, seed=23)
    api.ok(api.single("single.bin", data))
    created = api.ok(api.create("dir/chunk.bin", data, containDir=True))
    assert created["reuse"] is True and created["fileID"] > 0
    assert "preuploadID" not in created
    folder = only(api, 0, "dir")
    assert only(api, folder["fileId"], "chunk.bin")["fileId"] == created["fileID"]
    assert small.activity()["slices"] == {}


def test_rapid_upload_needs_same_size(api: Any, small: Emulator) -> None:
    data = blob(700, seed=24)
    api.ok(api.single("a.bin", data))
    env = api.ok(api.create("b.bin", data, size=701))  # same MD5 claimed, other size
    assert env["reuse"] is False and env["preuploadID"]


# -- limits and names ---------------------------------------------------------------------------


def test_size_over_chunked_limit_refused(api: Any, small: Emulator) -> None:
    small.configure(chunked_max=2000)
    refused(api.create("big.bin", blob(2001, seed=25)), 1)
    assert api.create("max.bin", blob(2000, seed=26))["code"] == 0
    refused(api.create("huge.bin", b"x", size=10 * 10**9 + 1), 1)


def test_default_chunked_limit_is_10_gb(api: Any) -> None:
    refused(api.create("huge.bin", b"x", size=10 * 10**9 + 1), 1)
    env = api.create("max.bin", b"x", size=10 * 10**9)
    assert env["code"] == 0 and env["data"]["reuse"] is False


def test_zero_bytes_refused_on_create(api: Any, small: Emulator) -> None:
    refused(api.create("empty.bin", b""), 1)
    assert api.listing(0) == []


@pytest.mark.parametrize("name", ["a:b.bin", "   ", "n" * 256, "dir/x.bin"])
def test_bad_names_refused_on_create(api: Any, small: Emulator, name: str) -> None:
    refused(api.create(name, blob(10, seed=27)), 1)
    assert api.listing(0) == []


def test_contain_dir_on_create_creates_folders(api: Any, small: Emulator) -> None:
    data = blob(2 * SLICE + 9, seed=28)
    created = start(api, "/x/y/z.bin", data, containDir=True)
    x = only(api, 0, "x")
    y = only(api, x["fileId"], "y")
    assert y["type"] == 1
    send_all(api, created, data)
    fid = finish(api, created["preuploadID"])
    assert [i["fileId"] for i in live(api, y["fileId"])] == [fid]
    # a second upload into the same path reuses the folders
    api.chunked("x/y/w.bin", blob(10, seed=29), containDir=True)
    assert [i["filename"] for i in live(api, 0)] == ["x"]
    assert [i["filename"] for i in live(api, x["fileId"])] == ["y"]
    assert sorted(i["filename"] for i in live(api, y["fileId"])) == ["w.bin", "z.bin"]


def test_create_refused_for_missing_parent(api: Any, small: Emulator) -> None:
    refused(api.create("f.bin", blob(10, seed=30), 123456789))


# -- duplicate policy --------------------------------------------------------------------------


def test_duplicate_2_applied_at_completion(api: Any, small: Emulator) -> None:
    small.configure(overwrite_old="trash")  # to see what was replaced
    data = blob(2 * SLICE + 2, seed=31)
    created = start(api, "f.txt", data, duplicate=2)
    send_all(api, created, data)
    single_id = api.ok(api.single("f.txt", b"arrived in between"))["fileID"]
    fid = finish(api, created["preuploadID"])
    assert fid != single_id
    assert only(api, 0, "f.txt")["fileId"] == fid
    assert {i["fileId"]: i["trashed"] for i in api.listing(0)} == {single_id: 1, fid: 0}
    assert api.download(fid) == data


def test_duplicate_1_applied_at_completion(api: Any, small: Emulator) -> None:
    data = blob(SLICE + 2, seed=32)
    created = start(api, "f.txt", data, duplicate=1)
    single_id = api.ok(api.single("f.txt", b"arrived in between"))["fileID"]
    send_all(api, created, data)
    fid = finish(api, created["preuploadID"])
    assert only(api, 0, "f.txt")["fileId"] == single_id
    assert only(api, 0, "f(1).txt")["fileId"] == fid
    assert api.download(fid) == data


def test_duplicate_omitted_clash_at_create_refused(api: Any, small: Emulator) -> None:
    api.ok(api.single("f.txt", b"already here"))
    refused(api.create("f.txt", blob(SLICE, seed=33)), 1)
    env = api.ok(api.create("f.txt", blob(SLICE, seed=33), duplicate=1))
    assert env["reuse"] is False


def test_duplicate_omitted_clash_at_completion_refused_then_recoverable(
    api: Any, small: Emulator
) -> None:
    data = blob(SLICE + 20, seed=34)
    created = start(api, "f.txt", data)
    send_all(api, created, data)
    single_id = api.ok(api.single("f.txt", b"arrived in between"))["fileID"]
    refused(api.complete(created["preuploadID"]), 1)
    assert [i["fileId"] for i in api.listing(0)] == [single_id]
    # once the clashing file is gone, the same upload can still be completed
    api.ok(api.post("/api/v1/file/trash", {"fileIDs": [single_id]}))
    fid = finish(api, created["preuploadID"])
    assert only(api, 0, "f.txt")["fileId"] == fid
    assert api.download(fid) == data


# -- hosts ---------------------------------------------------------------------------------


def _raw_slice(api: Any, host: str, pid: str, no: int, piece: bytes) -> requests.Response:
    r: requests.Response = api.http.post(
        f"{host}/upload/v2/file/slice",
        data={"preuploadID": pid, "sliceNo": str(no), "sliceMD5": md5(piece)},
        files={"slice": ("slice", piece)},
        headers=api.headers(),
        timeout=30,
    )
    return r


def _raw_single(api: Any, host: str, name: str, data: bytes) -> requests.Response:
    r: requests.Response = api.http.post(
        f"{host}/upload/v2/file/single/create",
        data={"parentFileID": "0", "filename": name, "etag": md5(data), "size": str(len(data))},
        files={"file": ("blob", data)},
        headers=api.headers(),
        timeout=30,
    )
    return r


def _is_404_envelope(r: requests.Response) -> None:
    assert r.status_code == 404, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    env = r.json()
    assert set(env) == {"code", "message", "data", "x-traceID"}
    assert env["code"] == 404 and env["data"] is None


def test_strict_hosts_upload_data_endpoints_404_on_api_host(api: Any, small: Emulator) -> None:
    data = blob(SLICE + 1, seed=35)
    created = start(api, "strict.bin", data)
    pid = created["preuploadID"]
    _is_404_envelope(_raw_slice(api, small.api_url, pid, 1, pieces(data)[0]))
    _is_404_envelope(_raw_single(api, small.api_url, "s.bin", b"single"))
    # and the API endpoints are not served by the upload host
    r = api.http.post(
        f"{small.upload_url}/upload/v2/file/create",
        json={"parentFileID": 0, "filename": "c.bin", "etag": md5(b"c"), "size": 1},
        headers=api.headers(),
        timeout=30,
    )
    _is_404_envelope(r)
    r = api.http.post(
        f"{small.upload_url}/upload/v2/file/upload_complete",
        json={"preuploadID": pid},
        headers=api.headers(),
        timeout=30,
    )
    _is_404_envelope(r)
    assert small.activity()["slices"].get(pid, []) == []
    assert api.listing(0) == []


def test_lenient_hosts_serve_everything_everywhere(api: Any, small: Emulator) -> None:
    small.configure(strict_hosts=False)
    data = blob(SLICE + 1, seed=36)
    created = start(api, "lenient.bin", data)
    pid = created["preuploadID"]
    for no, piece in enumerate(pieces(data), start=1):
        accepted_void(_raw_slice(api, small.api_url, pid, no, piece).json())
    fid = finish(api, pid)
    assert api.download(fid) == data
    single = _raw_single(api, small.api_url, "s.bin", b"single")
    assert single.status_code == 200
    sid = api.ok(single.json())["fileID"]
    assert api.download(sid) == b"single"
    r = api.http.post(
        f"{small.upload_url}/upload/v2/file/create",
        json={"parentFileID": 0, "filename": "c.bin", "etag": md5(b"c"), "size": 1},
        headers=api.headers(),
        timeout=30,
    )
    assert r.json()["code"] == 0


# -- concurrency ------------------------------------------------------------------------------


def test_two_slices_sent_concurrently(api: Any, small: Emulator) -> None:
    data = blob(2 * SLICE - 17, seed=37)
    p = pieces(data)
    created = start(api, "parallel.bin", data)
    pid, server = created["preuploadID"], created["servers"][0]
    headers = api.headers()
    barrier = threading.Barrier(2)
    answers: dict[int, Any] = {}

    def send(no: int) -> None:
        with requests.Session() as s:
            barrier.wait(timeout=10)
            r = s.post(
                f"{server}/upload/v2/file/slice",
                data={"preuploadID": pid, "sliceNo": str(no), "sliceMD5": md5(p[no - 1])},
                files={"slice": ("slice", p[no - 1])},
                headers=headers,
                timeout=30,
            )
            answers[no] = r.json()

    threads = [threading.Thread(target=send, args=(no,)) for no in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert set(answers) == {1, 2}
    for env in answers.values():
        accepted_void(env)
    assert sorted(small.activity()["slices"][pid]) == [1, 2]
    fid = finish(api, pid)
    assert api.download(fid) == data


def test_larger_file_many_slices_concurrently(api: Any, small: Emulator) -> None:
    """Twenty 1 KiB slices sent by 8 threads in scrambled order, each on a new connection."""
    data = os.urandom(20 * SLICE - 333)
    p = pieces(data)
    created = start(api, "many.bin", data)
    pid, server = created["preuploadID"], created["servers"][0]
    headers = api.headers()

    def send(no: int) -> dict[str, Any]:
        with requests.Session() as s:
            r = s.post(
                f"{server}/upload/v2/file/slice",
                data={"preuploadID": pid, "sliceNo": str(no), "sliceMD5": md5(p[no - 1])},
                files={"slice": ("slice", p[no - 1])},
                headers=headers,
                timeout=30,
            )
            return dict(r.json())

    order = list(range(1, len(p) + 1))
    random.Random(7).shuffle(order)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, order))
    for env in results:
        accepted_void(env)
    assert sorted(small.activity()["slices"][pid]) == list(range(1, len(p) + 1))
    assert api.download(finish(api, pid)) == data
