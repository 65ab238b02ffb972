"""Upload endpoints: single-step create, V2 create / slice / upload_complete.

The single-step body and each slice are streamed from the request straight to disk (a slice
lands at its offset in the upload's file), hashed on the way, and checked against the declared
``size``/``etag``/``sliceMD5``. 秒传 happens when the blob store already holds the (MD5, size).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from syncagent.emulator.blobs import TooLong
from syncagent.emulator.catalog import Catalog, Preupload
from syncagent.emulator.core import Core
from syncagent.emulator.fields import Fields
from syncagent.emulator.multipart import MultipartReader, Part
from syncagent.errors import EmulatorRejection

__all__ = ["create_v2", "single_create", "slice_upload", "upload_complete"]

VERIFYING = EmulatorRejection(20103, "文件正在校验中,请间隔1秒后再试")


def _declared(
    core: Core, p: Fields, limit: int, limit_text: str
) -> tuple[int, str, str, int, int, bool]:
    """(parent, filename, etag, size, duplicate, containDir) of an upload, checked."""
    parent = p.number("parentFileID")
    filename = p.text("filename")
    etag = core.check_md5(p.text("etag"))
    size = p.number("size")
    duplicate = core.duplicate_of(p.number("duplicate", 0))
    contain = p.flag("containDir")
    if size < 0:
        raise core.reject("bad_request", "参数错误: size 不能为负数")
    if size == 0 and core.settings.reject_zero_byte:
        raise core.reject("zero_byte", "不支持上传空文件")
    if size > limit:
        raise core.reject("size_limit", limit_text)
    return parent, filename, etag, size, duplicate, contain


OnFile = Callable[[Part, dict[str, object]], None]


def _form_fields(
    core: Core, form: MultipartReader, file_field: str, on_file: OnFile
) -> dict[str, object]:
    """Read every part; plain fields are collected, ``file_field`` goes to ``on_file``."""
    values: dict[str, object] = {}
    seen_file = False
    while (part := form.next_part()) is not None:
        if part.name == file_field:
            if seen_file:
                raise core.reject("bad_request", f"参数错误: {file_field} 出现多次")
            seen_file = True
            on_file(part, values)
        else:
            raw = part.read_all(core.settings.max_body_field)
            values[part.name] = raw.decode("utf-8", errors="replace")
    if not seen_file:
        raise core.reject("bad_request", f"参数错误: {file_field} is required")
    return values


def single_create(core: Core, form: MultipartReader) -> object:
    """``POST {upload host}/upload/v2/file/single/create``."""
    limit = core.settings.single_max
    received: list[tuple[Path, str, int]] = []

    def on_file(part: Part, _values: dict[str, object]) -> None:
        try:
            received.append(core.blobs.receive(part.read, limit))
        except TooLong:
            raise core.reject("size_limit", "此接口限制开发者上传单文件大小为1GB") from None

    try:
        p = Fields(_form_fields(core, form, "file", on_file), core.settings.error_codes.bad_request)
        parent, filename, etag, size, duplicate, contain = _declared(
            core, p, limit, "此接口限制开发者上传单文件大小为1GB"
        )
        tmp, md5, length = received[0]
        if length != size:
            raise core.reject("bad_etag", f"文件大小与size不一致: 收到{length}字节, size为{size}")
        if md5 != etag:
            raise core.reject("bad_etag", "文件md5与etag不一致")
        segments, leaf = core.split(filename, contain)
        core.blobs.adopt(tmp, md5, size)
        with core.catalog.transaction() as db:
            folder = core.resolve_dirs(db, parent, segments)
            file_id = core.place_file(db, folder, leaf, size, md5, duplicate)
    finally:
        for tmp, _, _ in received:
            core.blobs.discard(tmp)
    core.count("single_uploads")
    core.count("bytes_received", size)
    return {"fileID": file_id, "completed": True}


def create_v2(core: Core, p: Fields) -> object:
    """``POST /upload/v2/file/create``: 秒传, or a new chunked upload session."""
    parent, filename, etag, size, duplicate, contain = _declared(
        core, p, core.settings.chunked_max, "开发者上传单文件大小限制10GB"
    )
    segments, leaf = core.split(filename, contain)
    if core.blobs.has(etag, size):
        with core.catalog.transaction() as db:
            folder = core.resolve_dirs(db, parent, segments)
            file_id = core.place_file(db, folder, leaf, size, etag, duplicate)
        core.count("reuse")
        return {"fileID": file_id, "reuse": True}
    with core.catalog.transaction() as db:
        folder = core.resolve_dirs(db, parent, segments)
        core.check_clash(db, folder, leaf, duplicate)
    slice_size = core.settings.slice_size
    pre = Preupload(
        secrets.token_urlsafe(48), folder, leaf, size, etag, slice_size, duplicate, 0, 0
    )
    core.blobs.start_upload(pre.id, size)
    core.running.open(pre.id, size, slice_size)
    core.catalog.add_preupload(pre)
    core.count("preuploads")
    return {
        "fileID": 0,
        "reuse": False,
        "preuploadID": pre.id,
        "sliceSize": slice_size,
        "servers": [core.upload_base],
    }


def _slice_target(core: Core, values: dict[str, object]) -> tuple[Preupload, int, int, int]:
    """(session, slice number, offset, expected length) from the slice's form fields."""
    p = Fields(values, core.settings.error_codes.bad_request)
    pre = core.catalog.preupload(p.text("preuploadID"))
    if pre is None or pre.file_id:
        raise core.reject("unknown_preupload", "preuploadID不存在或上传已完成")
    slice_no = p.number("sliceNo")
    if not 1 <= slice_no <= pre.slice_count:
        raise core.reject("bad_slice", f"sliceNo须在1到{pre.slice_count}之间")
    offset = (slice_no - 1) * pre.slice_size
    return pre, slice_no, offset, min(pre.slice_size, pre.size - offset)


def slice_upload(core: Core, form: MultipartReader) -> object:
    """``POST {server}/upload/v2/file/slice``: one piece, written at its offset."""
    written: list[tuple[str, int]] = []
    spooled: list[tuple[Path, str, int]] = []

    def on_file(part: Part, values: dict[str, object]) -> None:
        read = part.read
        known = {k.lower() for k in values}
        if "preuploadid" in known and "sliceno" in known:
            pre, slice_no, offset, expected = _slice_target(core, values)
            core.running.writing(pre.id, slice_no)
            try:
                written.append(core.blobs.write_slice(pre.id, offset, read, expected))
            except TooLong:
                # part of it may already be written over the slice's range: no longer counted
                core.catalog.mark_slice(pre.id, slice_no, done=False)
                raise core.reject("bad_slice", "分片大小与sliceSize不符") from None
        else:  # the fields come after the data: keep it aside, place it once they are known
            try:
                spooled.append(core.blobs.receive(read, core.settings.slice_size))
            except TooLong:
                raise core.reject("bad_slice", "分片大小超过sliceSize") from None

    try:
        values = _form_fields(core, form, "slice", on_file)
        pre, slice_no, offset, expected = _slice_target(core, values)
        declared = core.check_md5(Fields(values, 0).text("sliceMD5"), "sliceMD5")
        if spooled:
            tmp, md5, length = spooled[0]
            if length == expected and md5 == declared:
                core.running.writing(pre.id, slice_no)
                with open(tmp, "rb") as f:
                    written.append(core.blobs.write_slice(pre.id, offset, f.read, expected))
            else:
                written.append((md5, length))
        md5, length = written[0]
        if length != expected:
            core.catalog.mark_slice(pre.id, slice_no, done=False)
            raise core.reject("bad_slice", f"分片{slice_no}大小应为{expected}字节, 收到{length}")
        if md5 != declared:
            core.catalog.mark_slice(pre.id, slice_no, done=False)
            raise core.reject("bad_slice", f"分片{slice_no}的MD5与sliceMD5不一致")
    finally:
        for tmp, _, _ in spooled:
            core.blobs.discard(tmp)
    core.catalog.mark_slice(pre.id, slice_no, done=True)
    core.running.stored(pre.id, slice_no)
    core.record_slice(pre.id, slice_no)
    core.count("bytes_received", length)
    return None


def upload_complete(core: Core, p: Fields) -> object:
    """``POST /upload/v2/file/upload_complete``: 20103 while "verifying", then the fileID."""
    preupload_id = p.text("preuploadID")
    with core.lock_for(preupload_id):
        pre = core.catalog.preupload(preupload_id)
        if pre is None:
            raise core.reject("unknown_preupload", "preuploadID不存在")
        if pre.file_id:
            return {"completed": True, "fileID": pre.file_id}
        missing = set(range(1, pre.slice_count + 1)) - core.catalog.done_slices(pre.id)
        if missing:
            first = sorted(missing)[:10]
            raise core.reject("slices_missing", f"分片不完整, 缺少分片: {first}")
        if core.catalog.count_poll(pre.id) < core.settings.complete_pending_polls:
            raise VERIFYING
        # the running digest when the slices came in order; a mismatch is confirmed whole
        if core.running.result(pre.id) != pre.md5 and core.blobs.upload_md5(pre.id) != pre.md5:
            core.catalog.clear_slices(pre.id)
            core.running.open(pre.id, pre.size, pre.slice_size)
            raise core.reject("verify_failed", "文件上传失败")
        with core.catalog.transaction() as db:
            file_id = core.place_file(db, pre.parent_id, pre.name, pre.size, pre.md5, pre.duplicate)
            Catalog.finish_preupload(db, pre.id, file_id)
            # Only once the file is placed: a refused completion (name clash) keeps the
            # received data, so the same preuploadID can be completed later.
            core.blobs.finish_upload(pre.id, pre.md5, pre.size)
        core.running.forget(pre.id)
    core.count("chunked_uploads")
    return {"completed": True, "fileID": file_id}
