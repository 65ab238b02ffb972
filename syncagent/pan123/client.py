"""``Pan123Client``: the one object the rest of syncagent uses to talk to 123pan.

Composition root of the package: builds the pacer, the HTTP transport, the token manager, the
typed API, the directory cache, the uploader and the downloader, and offers the folder and file
operations.
Its repr shows neither the client secret nor the token.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from syncagent.pan123.api import Pan123Api, fetch_token
from syncagent.pan123.auth import FileTokenStore, MemoryTokenStore, TokenManager, TokenStore
from syncagent.pan123.bandwidth import Throttle
from syncagent.pan123.dircache import DirCache
from syncagent.pan123.download import Downloader, DownloadResult
from syncagent.pan123.endpoints import qps_table
from syncagent.pan123.hashing import FileDigest
from syncagent.pan123.http import HttpTransport, RetryPolicy
from syncagent.pan123.models import RemoteFile
from syncagent.pan123.ratelimit import Pacer
from syncagent.pan123.upload import (
    Progress,
    Uploader,
    UploadResult,
    UploadSettings,
    UploadStateStore,
)

__all__ = ["DEFAULT_API_BASE", "Pan123Client"]

DEFAULT_API_BASE = "https://open-api.123pan.com"


class Pan123Client:
    """A 123pan account, ready for uploads.

    :param client_id: developer client ID.
    :param client_secret: its secret (kept only in memory).
    :param api_base: the API host; a local emulator's URL in tests.
    :param state_dir: where the token is kept (``token.json``, 0600); None = memory only.
    :param qps: ``free``/``vip``/``off`` limits, and per-endpoint ``qps_overrides``.
    :param upload_state: resumable-upload store (the ledger in the agent).
    :param wall_clock: the token's expiry is wall-clock time (injectable for tests).
    :param use_environment: honour HTTPS_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE (False for
        the embedded emulator, which no proxy should see).
    :param sleep: injectable: retries, pacing and polling all wait through it (by default
        a wait that :meth:`cancel` cuts short).
    :param pool_size: keep-alive connections per host; enough for every request that can be
        in flight at once (upload workers × parallel slices), or connections are opened and
        dropped again, each paying a handshake round trip. Default: 16, or twice the slices
        (a chunked upload writes ``slice_workers`` bodies while as many await their answer).
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        api_base: str = DEFAULT_API_BASE,
        state_dir: Path | None = None,
        qps: Literal["free", "vip", "off"] = "free",
        qps_overrides: Mapping[str, float] | None = None,
        upload: UploadSettings | None = None,
        upload_state: UploadStateStore | None = None,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = (10.0, 120.0),
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        token_store: TokenStore | None = None,
        wall_clock: Callable[[], float] = time.time,
        use_environment: bool = True,
        pool_size: int | None = None,
        upload_rate: Callable[[], int] | None = None,
        download_rate: Callable[[], int] | None = None,
    ) -> None:
        self.client_id = client_id  # not a secret: which developer client this is
        self._cancelled = threading.Event()
        if sleep is None:  # a wait that cancel() cuts short
            sleep = self._cancellable_wait
        self.pacer = Pacer(
            qps_table(qps, dict(qps_overrides or {})),
            clock=clock,
            sleep=sleep,
            cancelled=self._cancelled,
        )
        settings = upload or UploadSettings()
        self.transport = HttpTransport(
            api_base,
            self.pacer,
            retry=retry,
            timeout=timeout,
            pool_size=pool_size or max(16, settings.slice_workers * 2),
            sleep=sleep,
            rng=rng,
            cancelled=self._cancelled,
            clock=clock,
            use_environment=use_environment,
        )
        # Bandwidth limits: bytes per second now (0: none), asked before each piece.
        if upload_rate is not None:
            self.transport.upload_throttle = Throttle(upload_rate, cancelled=self._cancelled)
        if download_rate is not None:
            self.transport.download_throttle = Throttle(download_rate, cancelled=self._cancelled)
        store = token_store or (FileTokenStore(state_dir) if state_dir else MemoryTokenStore())
        self.tokens = TokenManager(
            client_id,
            client_secret,
            lambda cid, secret: fetch_token(self.transport, cid, secret),
            store,
            clock=wall_clock,
        )
        self.api = Pan123Api(self.transport, self.tokens)
        self.dirs = DirCache(self.api.mkdir, self.list_folder)
        self.uploader = Uploader(
            self.api, self.dirs, settings, state=upload_state, sleep=sleep, clock=clock
        )
        self.downloader = Downloader(
            self.api, self.transport, sleep=sleep, cancelled=self._cancelled, rng=rng
        )

    def __repr__(self) -> str:
        return f"<Pan123Client {self.transport.api_base} {self.tokens!r}>"

    def __enter__(self) -> Pan123Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    # -- uploads ---------------------------------------------------------------------------

    def upload(
        self,
        local_path: Path,
        parent_id: int,
        rel_path: str,
        *,
        md5: str | None = None,
        on_progress: Progress | None = None,
        verify: bool | None = None,
        fd: int | None = None,
        digest: FileDigest | None = None,
    ) -> UploadResult:
        """Upload a file to ``<parent_id>/<rel_path>``; see :meth:`Uploader.upload` (``fd``:
        an open descriptor of the checked file, read instead of opening the path; ``digest``:
        its MD5 and slice MD5s from one read)."""
        return self.uploader.upload(
            local_path,
            parent_id,
            rel_path,
            md5=md5,
            on_progress=on_progress,
            verify=verify,
            fd=fd,
            digest=digest,
        )

    def slice_hint(self, size: int) -> int:
        """The slice size to hash a file of ``size`` bytes at along with its MD5 (0: none)."""
        return self.uploader.slice_hint(size)

    # -- downloads -------------------------------------------------------------------------

    def download(
        self,
        file_id: int,
        target: Path,
        *,
        size: int,
        md5: str,
        mode: int | None = None,
        mtime_ns: int | None = None,
        on_progress: Callable[[int], None] | None = None,
        fsync: bool = True,
        place: Callable[[Path, Path], None] | None = None,
    ) -> DownloadResult:
        """Fetch a file to ``target``, checked against ``md5``; see :meth:`Downloader.download`."""
        return self.downloader.download(
            file_id,
            target,
            size=size,
            md5=md5,
            mode=mode,
            mtime_ns=mtime_ns,
            on_progress=on_progress,
            fsync=fsync,
            place=place,
        )

    def _cancellable_wait(self, seconds: float) -> None:
        self._cancelled.wait(seconds)

    def cancel(self) -> None:
        """Shutdown: chunked uploads stop after the slices in flight, and stay resumable;
        downloads stop between pieces and keep their partial file;
        no failed call is retried and no call waits for the rate limit or the bandwidth
        limit: they raise :class:`~syncagent.errors.Interrupted`. Calls already on the wire
        finish, unless the bandwidth limit holds them back."""
        self._cancelled.set()
        self.uploader.cancel()

    # -- folders and files -----------------------------------------------------------------

    def user_info(self) -> dict[str, Any]:
        return self.api.user_info()

    def mkdir(self, name: str, parent_id: int) -> int:
        """Create a folder, or return the existing folder of that name."""
        return self.dirs.ensure(parent_id, name)

    def ensure_dir(self, parent_id: int, rel_dir: str) -> int:
        """The ID of ``rel_dir`` (``a/b/c``) under ``parent_id``, created as needed."""
        return self.dirs.ensure(parent_id, rel_dir)

    def list_folder(self, parent_id: int) -> list[RemoteFile]:
        """Every item of a folder (all pages), recycle-bin items left out."""
        items: list[RemoteFile] = []
        last = 0
        while True:
            page, last = self.api.list_page(parent_id, last)
            items.extend(i for i in page if not i.trashed)
            if last == -1 or not page:
                return items

    def detail(self, file_id: int) -> RemoteFile:
        return self.api.detail(file_id)

    def infos(self, file_ids: list[int]) -> list[RemoteFile]:
        """Details of many files, 100 per request."""
        return [f for batch in _batches(file_ids) for f in self.api.infos(batch)]

    def trash(self, file_ids: list[int]) -> None:
        for batch in _batches(file_ids):
            self.api.trash(batch)

    def move(self, file_ids: list[int], to_parent: int) -> None:
        for batch in _batches(file_ids):
            self.api.move(batch, to_parent)

    def rename(self, file_id: int, name: str) -> None:
        self.api.rename(file_id, name)


def _batches(ids: list[int], size: int = 100) -> Iterator[list[int]]:
    """``ids`` in lists of at most ``size``: the most one infos/trash/move request takes."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
