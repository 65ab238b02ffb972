"""What 123pan answers, as frozen dataclasses read leniently from the envelope's ``data``.

Each ``from_json`` accepts both key spellings the API uses (``fileId``/``fileID``,
``parentFileId``/``parentFileID``) and raises :class:`~syncagent.errors.ServerError` for an
answer that lacks what the client needs. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from syncagent.errors import ServerError

__all__ = ["CreateResult", "RemoteFile"]


def _get(data: Any, *keys: str) -> Any:
    if isinstance(data, dict):
        for key in keys:
            if key in data:
                return data[key]
    raise ServerError(f"123pan's answer lacks {keys[0]!r}")


def _int(data: Any, *keys: str) -> int:
    value = _get(data, *keys)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ServerError(f"123pan's answer has a bad {keys[0]!r}: {value!r}") from None


@dataclass(frozen=True)
class RemoteFile:
    """A file or folder on 123pan."""

    file_id: int
    name: str
    is_folder: bool
    size: int
    etag: str
    parent_id: int
    trashed: bool

    @classmethod
    def from_json(cls, data: Any) -> RemoteFile:
        return cls(
            file_id=_int(data, "fileId", "fileID"),
            name=str(_get(data, "filename")),
            is_folder=_int(data, "type") == 1,
            size=_int(data, "size"),
            etag=str(data.get("etag") or "").lower(),
            parent_id=_int(data, "parentFileId", "parentFileID"),
            trashed=bool(data.get("trashed", 0)),
        )


@dataclass(frozen=True)
class CreateResult:
    """The answer of V2 create: 秒传 done (``reuse``), or a chunked upload to perform."""

    reuse: bool
    file_id: int
    preupload_id: str
    slice_size: int
    servers: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Any) -> CreateResult:
        reuse = bool(_get(data, "reuse"))
        file_id = int(data.get("fileID") or 0)
        if reuse:
            if not file_id:
                raise ServerError("123pan answered reuse without a fileID")
            return cls(True, file_id, "", 0, ())
        servers = tuple(str(s) for s in (data.get("servers") or ()))
        slice_size = _int(data, "sliceSize")
        if not servers or slice_size <= 0:
            raise ServerError("123pan's create answer has no servers or sliceSize")
        return cls(False, 0, str(_get(data, "preuploadID")), slice_size, servers)
