"""The routing table: which method and path reach which endpoint, on which host, how.

``name`` is the endpoint's key for rate limits, fault injection and statistics: the path
without its leading slash, as the API reference writes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from syncagent.emulator import files, uploads
from syncagent.emulator.core import Core
from syncagent.emulator.fields import Fields
from syncagent.emulator.multipart import MultipartReader

__all__ = ["ROUTES", "Route"]

Host = Literal["api", "upload"]
Body = Literal["json", "query", "multipart"]


@dataclass(frozen=True)
class Route:
    """One endpoint.

    :param host: the listener that serves it (in strict mode the other one answers 404).
    :param body: where its parameters come from.
    :param auth: whether it needs ``Authorization: Bearer``.
    :param handler: ``(core, Fields)`` for json/query, ``(core, MultipartReader)`` for multipart.
    """

    method: str
    path: str
    host: Host
    body: Body
    handler: Callable[[Core, Fields], object] | Callable[[Core, MultipartReader], object]
    auth: bool = True

    @property
    def name(self) -> str:
        return self.path.lstrip("/")


_TABLE = [
    Route("POST", "/api/v1/access_token", "api", "json", files.access_token, auth=False),
    Route("GET", "/api/v1/user/info", "api", "query", files.user_info),
    Route("GET", "/upload/v2/file/domain", "api", "query", files.upload_domain),
    Route("POST", "/upload/v2/file/single/create", "upload", "multipart", uploads.single_create),
    Route("POST", "/upload/v2/file/create", "api", "json", uploads.create_v2),
    Route("POST", "/upload/v2/file/slice", "upload", "multipart", uploads.slice_upload),
    Route("POST", "/upload/v2/file/upload_complete", "api", "json", uploads.upload_complete),
    Route("POST", "/upload/v1/file/mkdir", "api", "json", files.mkdir),
    Route("GET", "/api/v2/file/list", "api", "query", files.list_v2),
    Route("GET", "/api/v1/file/detail", "api", "query", files.detail),
    Route("POST", "/api/v1/file/infos", "api", "json", files.infos),
    Route("POST", "/api/v1/file/trash", "api", "json", files.trash),
    Route("POST", "/api/v1/file/delete", "api", "json", files.delete),
    Route("POST", "/api/v1/file/recover", "api", "json", files.recover),
    Route("POST", "/api/v1/file/recover/by_path", "api", "json", files.recover_by_path),
    Route("POST", "/api/v1/file/move", "api", "json", files.move),
    Route("PUT", "/api/v1/file/name", "api", "json", files.rename_one),
    Route("POST", "/api/v1/file/rename", "api", "json", files.rename_many),
    Route("GET", "/api/v1/file/download_info", "api", "query", files.download_info),
]

ROUTES: dict[tuple[str, str], Route] = {(r.method, r.path): r for r in _TABLE}
PATHS = frozenset(r.path for r in _TABLE)
