"""The 123pan endpoints the client uses, and their documented request limits.

One row per endpoint: method, path, which host serves it (the API host, or an upload host
learnt from ``upload/v2/file/domain`` / V2 create's ``servers``) and the QPS of the free and
VIP tiers. The free column is the developer notes' table (2025-10), completed with the upload
values 123pan support gave rclone's authors; ``None`` means no documented limit.

Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ENDPOINTS", "Endpoint", "qps_table"]


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: Literal["GET", "POST", "PUT"]
    host: Literal["api", "upload"]
    free_qps: float | None
    vip_qps: float | None

    @property
    def path(self) -> str:
        return "/" + self.name


_ROWS = [
    Endpoint("api/v1/access_token", "POST", "api", 8, 10),
    Endpoint("api/v1/user/info", "GET", "api", 10, 10),
    Endpoint("upload/v2/file/domain", "GET", "api", None, None),
    Endpoint("upload/v2/file/single/create", "POST", "upload", None, None),
    Endpoint("upload/v2/file/create", "POST", "api", 1, 20),
    Endpoint("upload/v2/file/slice", "POST", "upload", None, None),
    Endpoint("upload/v2/file/upload_complete", "POST", "api", 5, 20),
    Endpoint("upload/v1/file/mkdir", "POST", "api", 5, 20),
    Endpoint("api/v2/file/list", "GET", "api", 5, 10),
    Endpoint("api/v1/file/detail", "GET", "api", None, None),
    Endpoint("api/v1/file/infos", "POST", "api", 10, 10),
    Endpoint("api/v1/file/trash", "POST", "api", 5, None),
    Endpoint("api/v1/file/move", "POST", "api", 3, 10),
    Endpoint("api/v1/file/name", "PUT", "api", None, None),
    Endpoint("api/v1/file/download_info", "GET", "api", 2, None),
]

ENDPOINTS: dict[str, Endpoint] = {e.name: e for e in _ROWS}


def qps_table(
    profile: Literal["free", "vip", "off"], overrides: dict[str, float] | None = None
) -> dict[str, float]:
    """Endpoint name -> QPS for a tier, with per-endpoint overrides applied."""
    table: dict[str, float] = {}
    if profile != "off":
        for e in _ROWS:
            qps = e.free_qps if profile == "free" else e.vip_qps
            if qps is not None:
                table[e.name] = qps
    table.update(overrides or {})
    return table
