"""One thin method per 123pan endpoint, with the token attached and the 401 replay.

No loops and no decisions beyond the auth layer: on a 401 the token is dropped and the call
replayed once with a fresh one (layer 2 of the retries; the HTTP layer below retries transport
errors, 5xx, 429 and 20103).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from syncagent.errors import ServerError, TokenExpiredError
from syncagent.pan123.auth import TokenManager
from syncagent.pan123.endpoints import ENDPOINTS
from syncagent.pan123.http import FormFile, HttpTransport
from syncagent.pan123.models import CreateResult, RemoteFile

__all__ = ["Pan123Api", "fetch_token"]


def fetch_token(transport: HttpTransport, client_id: str, client_secret: str) -> tuple[str, float]:
    """Exchange the client credentials for ``(accessToken, expiredAt as epoch seconds)``."""
    data = transport.call(
        ENDPOINTS["api/v1/access_token"],
        body={"clientID": client_id, "clientSecret": client_secret},
    )
    try:
        token = str(data["accessToken"])
        expires = datetime.fromisoformat(str(data["expiredAt"])).timestamp()
    except (TypeError, KeyError, ValueError):
        raise ServerError(
            "the token answer lacks accessToken/expiredAt", endpoint="api/v1/access_token"
        ) from None
    return token, expires


class Pan123Api:
    """Typed calls; see the API reference for each endpoint's meaning."""

    def __init__(self, transport: HttpTransport, tokens: TokenManager) -> None:
        self.transport = transport
        self.tokens = tokens

    def call(self, name: str, **kwargs: Any) -> Any:
        """Call an endpoint with the token; on 401 refresh once and replay."""
        used: list[str] = []

        def headers() -> Mapping[str, str]:
            token = self.tokens.token()
            used.append(token)
            return {"Authorization": f"Bearer {token}"}

        endpoint = ENDPOINTS[name]
        try:
            return self.transport.call(endpoint, headers=headers, **kwargs)
        except TokenExpiredError:
            self.tokens.invalidate(used[-1])
            return self.transport.call(endpoint, headers=headers, **kwargs)

    # -- account and hosts ------------------------------------------------------------------

    def user_info(self) -> dict[str, Any]:
        return dict(self.call("api/v1/user/info"))

    def upload_domains(self) -> list[str]:
        data = self.call("upload/v2/file/domain")
        if not isinstance(data, list) or not data:
            raise ServerError("no upload domain in the answer", endpoint="upload/v2/file/domain")
        return [str(d) for d in data]

    # -- uploads ---------------------------------------------------------------------------

    def single_create(self, base: str, fields: Mapping[str, str], file: FormFile) -> int:
        data = self.call("upload/v2/file/single/create", base=base, form=fields, file=file)
        if not isinstance(data, dict) or not data.get("completed") or not data.get("fileID"):
            raise ServerError(
                "single-step upload did not complete", endpoint="upload/v2/file/single/create"
            )
        return int(data["fileID"])

    def create(self, body: Mapping[str, Any]) -> CreateResult:
        return CreateResult.from_json(self.call("upload/v2/file/create", body=body))

    def upload_slice(
        self, server: str, preupload_id: str, slice_no: int, slice_md5: str, file: FormFile
    ) -> None:
        self.call(
            "upload/v2/file/slice",
            base=server,
            file=file,
            form={"preuploadID": preupload_id, "sliceNo": str(slice_no), "sliceMD5": slice_md5},
        )

    def upload_complete(self, preupload_id: str) -> int:
        """The fileID once complete; raises VerifyingError (20103) while 123pan verifies."""
        data = self.call(
            "upload/v2/file/upload_complete", body={"preuploadID": preupload_id}, retry=False
        )
        if isinstance(data, dict) and data.get("completed") and data.get("fileID"):
            return int(data["fileID"])
        return 0

    # -- folders and files ------------------------------------------------------------------

    def mkdir(self, name: str, parent_id: int) -> int:
        data = self.call("upload/v1/file/mkdir", body={"name": name, "parentID": parent_id})
        return int(data["dirID"])

    def list_page(
        self, parent_id: int, last_file_id: int = 0, limit: int = 100
    ) -> tuple[list[RemoteFile], int]:
        params = {"parentFileId": parent_id, "limit": limit}
        if last_file_id:
            params["lastFileId"] = last_file_id
        data = self.call("api/v2/file/list", params=params)
        items = [RemoteFile.from_json(i) for i in (data or {}).get("fileList") or []]
        return items, int((data or {}).get("lastFileId", -1))

    def detail(self, file_id: int) -> RemoteFile:
        data = self.call("api/v1/file/detail", params={"fileID": file_id})
        return RemoteFile.from_json(data)

    def infos(self, file_ids: list[int]) -> list[RemoteFile]:
        """Details of up to 100 files in one call (the answer's key is ``list``; the
        documentation's field table says ``fileList``: both are read)."""
        data = self.call("api/v1/file/infos", body={"fileIds": file_ids}) or {}
        items = data.get("list") or data.get("fileList") or []
        return [RemoteFile.from_json(i) for i in items]

    def trash(self, file_ids: list[int]) -> None:
        self.call("api/v1/file/trash", body={"fileIDs": file_ids})

    def move(self, file_ids: list[int], to_parent: int) -> None:
        self.call("api/v1/file/move", body={"fileIDs": file_ids, "toParentFileID": to_parent})

    def download_url(self, file_id: int) -> str:
        """A URL the file's content can be fetched from (it expires after a while)."""
        data = self.call("api/v1/file/download_info", params={"fileId": file_id})
        if not isinstance(data, dict) or not data.get("downloadUrl"):
            raise ServerError("no downloadUrl in the answer", endpoint="api/v1/file/download_info")
        return str(data["downloadUrl"])

    def rename(self, file_id: int, name: str) -> None:
        self.call("api/v1/file/name", body={"fileId": file_id, "fileName": name})
