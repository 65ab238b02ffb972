"""Unit tests of reading 123pan answers into models (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from syncagent.errors import ServerError
from syncagent.pan123.models import CreateResult, RemoteFile

FILE: dict[str, Any] = {
    "fileId": 12,
    "filename": "photo.JPG",
    "type": 0,
    "size": 2048,
    "etag": "D41D8CD98F00B204E9800998ECF8427E",
    "parentFileId": 3,
    "trashed": 0,
    "status": 0,
}


def test_remote_file_from_list_spelling() -> None:
    f = RemoteFile.from_json(FILE)
    assert f == RemoteFile(
        12, "photo.JPG", False, 2048, "d41d8cd98f00b204e9800998ecf8427e", 3, False
    )


def test_remote_file_from_detail_spelling() -> None:
    data = {
        "fileID": "77",
        "filename": "dir",
        "type": 1,
        "size": 0,
        "etag": "",
        "parentFileID": "5",
        "trashed": 1,
    }
    f = RemoteFile.from_json(data)
    assert (f.file_id, f.parent_id, f.is_folder, f.trashed, f.etag) == (77, 5, True, True, "")


def test_remote_file_without_etag_or_trashed() -> None:
    data = {k: v for k, v in FILE.items() if k not in {"etag", "trashed"}}
    f = RemoteFile.from_json(data)
    assert f.etag == ""
    assert f.trashed is False
    assert RemoteFile.from_json({**FILE, "etag": None}).etag == ""


@pytest.mark.parametrize("missing", ["fileId", "filename", "type", "size", "parentFileId"])
def test_remote_file_missing_key_is_a_server_error(missing: str) -> None:
    data = {k: v for k, v in FILE.items() if k != missing}
    with pytest.raises(ServerError) as info:
        RemoteFile.from_json(data)
    assert missing in info.value.message
    assert info.value.retryable is True


@pytest.mark.parametrize("data", [None, [], "x", 5])
def test_remote_file_from_something_that_is_not_an_object(data: Any) -> None:
    with pytest.raises(ServerError):
        RemoteFile.from_json(data)


@pytest.mark.parametrize(("key", "value"), [("size", "big"), ("fileId", None), ("type", [1])])
def test_remote_file_bad_number_is_a_server_error(key: str, value: Any) -> None:
    with pytest.raises(ServerError) as info:
        RemoteFile.from_json({**FILE, key: value})
    assert "bad" in info.value.message


def test_create_result_reuse() -> None:
    got = CreateResult.from_json({"reuse": True, "fileID": 901, "preuploadID": "", "sliceSize": 0})
    assert got == CreateResult(True, 901, "", 0, ())


@pytest.mark.parametrize("data", [{"reuse": True}, {"reuse": True, "fileID": 0}])
def test_create_result_reuse_needs_a_file_id(data: dict[str, Any]) -> None:
    with pytest.raises(ServerError):
        CreateResult.from_json(data)


CHUNKED: dict[str, Any] = {
    "reuse": False,
    "fileID": 0,
    "preuploadID": "pre-1",
    "sliceSize": 16777216,
    "servers": ["http://upload-1.test", "http://upload-2.test"],
}


def test_create_result_chunked() -> None:
    got = CreateResult.from_json(CHUNKED)
    assert got == CreateResult(
        False, 0, "pre-1", 16 << 20, ("http://upload-1.test", "http://upload-2.test")
    )
    assert CreateResult.from_json({**CHUNKED, "sliceSize": "1024"}).slice_size == 1024


@pytest.mark.parametrize(
    "change",
    [
        {"preuploadID": None},
        {"sliceSize": None},
        {"sliceSize": 0},
        {"sliceSize": -5},
        {"sliceSize": "lots"},
        {"servers": []},
        {"servers": None},
    ],
    ids=repr,
)
def test_create_result_chunked_needs_preupload_id_slice_size_and_servers(
    change: dict[str, Any],
) -> None:
    data = {**CHUNKED}
    for key, value in change.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    with pytest.raises(ServerError):
        CreateResult.from_json(data)


@pytest.mark.parametrize("data", [None, {}, {"fileID": 5}, []])
def test_create_result_without_reuse_is_a_server_error(data: Any) -> None:
    with pytest.raises(ServerError):
        CreateResult.from_json(data)
