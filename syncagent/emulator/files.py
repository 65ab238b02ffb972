"""Endpoints that are not uploads: token, user info, upload domain, folders and file management.

Each function takes the :class:`~syncagent.emulator.core.Core` and the request's parameters and
returns the envelope's ``data`` (``None`` for calls without a result), or raises
:class:`~syncagent.errors.EmulatorRejection`.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import time
from urllib.parse import quote

from syncagent.emulator import tokens
from syncagent.emulator.catalog import FILE, FOLDER, ROOT_ID, Catalog, Entry
from syncagent.emulator.core import Core
from syncagent.emulator.fields import Fields
from syncagent.errors import EmulatorRejection

__all__ = [
    "access_token",
    "delete",
    "detail",
    "download_info",
    "download_sign",
    "infos",
    "list_v2",
    "mkdir",
    "move",
    "recover",
    "recover_by_path",
    "rename_many",
    "rename_one",
    "trash",
    "upload_domain",
    "user_info",
]

MAX_IDS = 100
MAX_RENAMES = 30
LIST_MAX = 100


def access_token(core: Core, p: Fields) -> object:
    return core.mint_token(p.text("clientID"), p.text("clientSecret"))


def user_info(core: Core, p: Fields) -> object:
    s = core.settings
    vip = s.rate_limits == "vip"
    # null for free users; VIP users get the documented array (clients read the tier from it)
    vip_info = (
        [
            {
                "vipLevel": 1,
                "vipLabel": "VIP",
                "startTime": "2025-01-01 00:00:00",
                "endTime": "2099-12-31 23:59:59",
            }
        ]
        if vip
        else None
    )
    return {
        "uid": s.uid,
        "nickname": s.nickname,
        "headImage": "",
        "passport": "",
        "mail": "",
        "spaceUsed": core.catalog.space_used(),
        "spacePermanent": s.space_permanent,
        "spaceTemp": 0,
        "spaceTempExpr": "0",
        "vip": vip,
        "directTraffic": 0,
        "isHideUID": False,
        "httpsCount": 0,
        "vipInfo": vip_info,
        "developerInfo": {"startTime": "2025-01-01 00:00:00", "endTime": "2099-12-31 23:59:59"},
    }


def upload_domain(core: Core, p: Fields) -> object:
    return [core.upload_base]


def mkdir(core: Core, p: Fields) -> object:
    name = core.check_name(p.text("name"))
    parent_id = p.number("parentID")
    with core.catalog.transaction() as db:
        core.live_folder(db, parent_id)
        if Catalog.find_live(db, parent_id, name) is not None:
            raise core.reject("name_exists", "该目录下已经有同名文件夹,无法进行创建")
        dir_id = Catalog.insert(db, parent_id, name, FOLDER)
    core.count("folders_created")
    return {"dirID": dir_id}


def list_v2(core: Core, p: Fields) -> object:
    parent_id = p.number("parentFileId")
    limit = p.number("limit")
    if not 1 <= limit <= LIST_MAX:
        raise core.reject("bad_request", f"参数错误: limit 须在1到{LIST_MAX}之间")
    after = max(0, p.number("lastFileId", 0))
    search = p.text("searchData", required=False)
    if search:
        items = core.catalog.search(search, p.number("searchMode", 0) == 1, after, limit + 1)
    else:
        if parent_id != ROOT_ID:
            folder = core.catalog.get(parent_id)
            if folder is None or folder.type != FOLDER:
                raise core.reject("not_found", "文件不存在，检查传入fileId是否正确")
        items = core.catalog.children(parent_id, after, limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return {
        "lastFileId": items[-1].id if more else -1,
        "fileList": [core.list_item(e) for e in items],
    }


def _existing(core: Core, file_id: int) -> Entry:
    entry = core.catalog.get(file_id)
    if entry is None:
        raise core.reject("not_found", "文件不存在，检查传入fileId是否正确")
    return entry


def detail(core: Core, p: Fields) -> object:
    e = _existing(core, p.number("fileID"))
    return {
        "fileID": e.id,
        "filename": e.name,
        "type": e.type,
        "size": core.catalog.tree_size(e.id) if e.type == FOLDER else e.size,
        "etag": e.md5,
        "status": 0,
        "parentFileID": e.parent_id,
        "createAt": tokens.beijing_time(e.created_at),
        "trashed": int(e.trashed),
    }


def infos(core: Core, p: Fields) -> object:
    ids = p.id_list("fileIds", MAX_IDS)
    found = [core.catalog.get(i) for i in ids]
    return {"list": [core.list_item(e) for e in found if e is not None]}


def trash(core: Core, p: Fields) -> object:
    ids = p.id_list("fileIDs", MAX_IDS)
    with core.catalog.transaction() as db:
        for i in ids:
            if Catalog.get_in(db, i) is None:
                raise core.reject("not_found", f"文件不存在: {i}")
            Catalog.set_trashed(db, i, True)
    return None


def delete(core: Core, p: Fields) -> object:
    ids = p.id_list("fileIDs", MAX_IDS)
    with core.catalog.transaction() as db:
        for i in ids:
            entry = Catalog.get_in(db, i)
            if entry is None:
                raise core.reject("not_found", f"文件不存在: {i}")
            if not entry.trashed:
                raise core.reject("not_in_trash", f"文件不在回收站,无法彻底删除: {i}")
            Catalog.destroy(db, i)
    return None


def _restorable(db: sqlite3.Connection, entry: Entry, parent_id: int) -> bool:
    """Whether ``entry`` can come back into ``parent_id`` (a live folder, no name clash)."""
    if parent_id != ROOT_ID:
        parent = Catalog.get_in(db, parent_id)
        if parent is None or parent.trashed or parent.type != FOLDER:
            return False
    return Catalog.find_live(db, parent_id, entry.name) is None


def recover(core: Core, p: Fields) -> object:
    ids = p.id_list("fileIDs", MAX_IDS)
    abnormal: list[int] = []
    with core.catalog.transaction() as db:
        for i in ids:
            entry = Catalog.get_in(db, i)
            if entry is None:
                abnormal.append(i)
            elif entry.trashed:
                if _restorable(db, entry, entry.parent_id):
                    Catalog.set_trashed(db, i, False)
                else:
                    abnormal.append(i)
    return {"abnormalFileIDs": abnormal}


def recover_by_path(core: Core, p: Fields) -> object:
    ids = p.id_list("fileIDs", MAX_IDS)
    target = p.number("parentFileID")
    with core.catalog.transaction() as db:
        core.live_folder(db, target)
        for i in ids:
            entry = Catalog.get_in(db, i)
            if entry is None:
                raise core.reject("not_found", f"文件不存在: {i}")
            if entry.trashed:
                if not _restorable(db, entry, target):
                    raise core.reject("name_exists", "目标目录中已有同名文件")
                Catalog.update(db, i, parent_id=target)
                Catalog.set_trashed(db, i, False)
    return None


def move(core: Core, p: Fields) -> object:
    ids = p.id_list("fileIDs", MAX_IDS)
    target = p.number("toParentFileID")
    with core.catalog.transaction() as db:
        core.live_folder(db, target)
        for i in ids:
            entry = Catalog.get_in(db, i)
            if entry is None or entry.trashed:
                raise core.reject("not_found", f"文件不存在: {i}")
            if entry.type == FOLDER and core.catalog.is_under(target, i):
                raise core.reject("bad_request", "不能将文件夹移动到自身或其子目录下")
            clash = Catalog.find_live(db, target, entry.name)
            if clash is not None and clash.id != i:
                raise core.reject("name_exists", f"目标目录中已有同名文件: {entry.name}")
            Catalog.update(db, i, parent_id=target)
    return None


def _rename(core: Core, db: sqlite3.Connection, file_id: int, new_name: str) -> None:
    entry = Catalog.get_in(db, file_id)
    if entry is None or entry.trashed:
        raise core.reject("not_found", "文件不存在，检查传入fileId是否正确")
    name = core.check_name(new_name)
    clash = Catalog.find_live(db, entry.parent_id, name)
    if clash is not None and clash.id != file_id:
        raise core.reject("name_exists", "该目录下已经有同名文件")
    Catalog.update(db, file_id, name=name)


def rename_one(core: Core, p: Fields) -> object:
    with core.catalog.transaction() as db:
        _rename(core, db, p.number("fileId"), p.text("fileName"))
    return None


def rename_many(core: Core, p: Fields) -> object:
    pairs = p.text_list("renameList", MAX_RENAMES)
    success: list[dict[str, object]] = []
    fail: list[dict[str, object]] = []
    for pair in pairs:
        raw_id, sep, new_name = pair.partition("|")
        if not sep or not raw_id.strip().isdigit():
            raise core.reject("bad_request", f"参数错误: renameList 项须为 id|新名称: {pair!r}")
        file_id = int(raw_id)
        try:
            with core.catalog.transaction() as db:
                _rename(core, db, file_id, new_name)
        except EmulatorRejection as exc:
            fail.append({"fileID": file_id, "message": exc.message})
        else:
            success.append({"fileID": file_id, "updateAt": tokens.beijing_time(time.time())})
    return {"successList": success, "failList": fail}


def download_sign(key: bytes, file_id: int, expires: int) -> str:
    return hmac.new(key, f"{file_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def download_info(core: Core, p: Fields) -> object:
    entry = core.catalog.get(p.number("fileId"))
    if entry is None or entry.trashed or entry.type != FILE:
        raise core.reject("not_found", "文件不存在，检查传入fileId是否正确")
    expires = int(time.time() + core.settings.download_ttl)
    sign = download_sign(core.download_key, entry.id, expires)
    return {
        "downloadUrl": f"{core.upload_base}/download/{entry.id}/{quote(entry.name)}"
        f"?expires={expires}&sign={sign}"
    }
