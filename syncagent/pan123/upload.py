"""Uploading one local file to 123pan, by the path its size calls for, streamed from disk.

- Up to ``single_threshold`` (never above the 1 GB single-step limit): one single-step request
  to the upload domain (cached), the file streamed as the multipart body.
- Above it: V2 create (秒传 when 123pan already has the content), then the missing slices of the
  server's ``sliceSize``, several in parallel, each streamed from its range of the file and
  retried alone. ``slice_workers`` bounds the slice bodies being written at once; a slice whose
  body is written awaits its answer (a round trip) outside that bound, on its own connection,
  while the next slice is written: on a slow round trip the links never idle between slices.
  So up to twice ``slice_workers`` slice requests are open at once. Then ``upload_complete``
  is polled with a delay until a deadline. The session (preuploadID, slice size, server,
  done slices) is handed to an :class:`UploadStateStore`, so a restart sends only the slices
  still missing.
- 0-byte files and files over 10 GB are refused before any request.
- Every call says ``duplicate`` explicitly, so a retried upload never creates ``name(1)``.
- Afterwards the remote size and etag are checked against the local file, and the local file
  must not have changed while it was read.
- The file is read through one descriptor, with ``pread``: the hash, the single-step body and
  every slice range. A file that goes up in slices is hashed in one read: the whole-file MD5
  and every slice's MD5 together (:mod:`syncagent.pan123.hashing`); a caller that hashed it already
  passes that :class:`~syncagent.pan123.hashing.FileDigest`, and the slices are not read again
  until they are sent. A caller that opened and checked the file itself passes that descriptor
  (``fd``); otherwise the path is opened here with ``O_NOFOLLOW | O_NONBLOCK`` and must be a
  regular file (a link is never followed, a FIFO never blocks).

Memory: one read buffer of at most 256 KiB per stream; never a whole file or slice in memory.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import posixpath
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, Protocol

from syncagent.errors import (
    ApiError,
    FileChangedError,
    IntegrityError,
    Interrupted,
    RemoteError,
    RemoteNotFoundError,
    UnsupportedFileError,
    VerifyingError,
)
from syncagent.pan123.api import Pan123Api
from syncagent.pan123.dircache import DirCache
from syncagent.pan123.hashing import SLICE_HINT, FileDigest, digest_fd
from syncagent.pan123.http import FormFile

__all__ = [
    "CHUNKED_MAX",
    "SINGLE_MAX",
    "MemoryUploadState",
    "UploadResult",
    "UploadSession",
    "UploadSettings",
    "UploadStateStore",
    "Uploader",
    "file_md5",
]

log = logging.getLogger("syncagent.pan123")

SINGLE_MAX = 1_000_000_000  # "1 GB": the decimal reading is the stricter one
CHUNKED_MAX = 10_000_000_000  # "10 GB"
READ_PIECE = 1 << 18  # 256 KiB: 1 MiB pieces cost ~2 MiB RSS per slice worker
SLICE_ATTEMPTS = 3
_STOPPED = "the upload was interrupted; it resumes where it stopped"
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY

Progress = Callable[[int, int], None]


def _open_regular(path: Path) -> int:
    """A descriptor of the regular file at ``path``: no link followed, no blocking open.

    :raises UnsupportedFileError: a link, FIFO, socket, device or folder.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):
            raise UnsupportedFileError(
                "not a regular file (a link or a socket)", str(path)
            ) from exc
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsupportedFileError("not a regular file: only regular files are sent", str(path))
    return fd


def file_md5(path: Path) -> str:
    """Lower-case hex MD5 of a regular file, read in 256 KiB pieces."""
    fd = _open_regular(path)
    try:
        return _md5_of(_Range(fd, 0, os.fstat(fd).st_size))
    finally:
        os.close(fd)


def _md5_of(stream: _Range) -> str:
    digest = hashlib.md5()
    while piece := stream.read(READ_PIECE):
        digest.update(piece)
    return digest.hexdigest()


@dataclass(frozen=True)
class UploadSettings:
    """How uploads are done.

    :param single_threshold: files up to this size use single-step upload.
    :param slice_workers: slices sent in parallel for one chunked upload.
    :param duplicate: 2 = overwrite a same-named remote file (1 = keep both).
    :param contain_dir: send the relative path with ``containDir=true`` (folders created by
        the upload itself); False = create folders with mkdir and upload into the leaf folder.
    :param complete_delay: seconds between ``upload_complete`` polls.
    :param complete_deadline: give up polling after this many seconds.
    :param verify: check the remote size and etag after each upload.
    """

    single_threshold: int = 16 << 20
    slice_workers: int = 4
    duplicate: Literal[1, 2] = 2
    contain_dir: bool = True
    complete_delay: float = 1.0
    complete_deadline: float = 300.0
    verify: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.single_threshold <= SINGLE_MAX:
            raise ValueError(f"single_threshold must be in 1..{SINGLE_MAX}")
        if self.slice_workers < 1:
            raise ValueError("slice_workers must be at least 1")


@dataclass(frozen=True)
class UploadSession:
    """A chunked upload in progress, as kept for resuming."""

    preupload_id: str
    slice_size: int
    server: str
    md5: str
    size: int
    done: frozenset[int] = field(default_factory=frozenset)


class UploadStateStore(Protocol):
    """Where resumable chunked uploads are remembered (the ledger implements this)."""

    def load(self, key: str) -> UploadSession | None: ...

    def save(self, key: str, session: UploadSession) -> None: ...

    def mark_slice(self, key: str, slice_no: int) -> None: ...

    def clear(self, key: str) -> None: ...


class MemoryUploadState:
    """An :class:`UploadStateStore` in memory (lives as long as the object)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, UploadSession] = {}

    def load(self, key: str) -> UploadSession | None:
        with self._lock:
            return self._sessions.get(key)

    def save(self, key: str, session: UploadSession) -> None:
        with self._lock:
            self._sessions[key] = session

    def mark_slice(self, key: str, slice_no: int) -> None:
        with self._lock:
            s = self._sessions.get(key)
            if s is not None:
                self._sessions[key] = replace(s, done=s.done | {slice_no})

    def clear(self, key: str) -> None:
        with self._lock:
            self._sessions.pop(key, None)


@dataclass(frozen=True)
class UploadResult:
    file_id: int
    md5: str
    size: int
    method: Literal["single", "chunked", "reuse"]
    slices_sent: int = 0


class _Range:
    """A read-only window ``[offset, offset + length)`` of an open file, counting what is read.

    Reads with ``pread``: ranges of one descriptor are read by several threads at once, and
    none of them moves the descriptor's offset. Closing a range leaves the descriptor open.

    :param on_end: called once, when the last byte has been read or at close, whichever
        comes first.
    """

    def __init__(
        self,
        fd: int,
        offset: int,
        length: int,
        on_read: Callable[[int], None] | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self._fd = fd
        self._offset = offset
        self._left = length
        self._on_read = on_read
        self._on_end = on_end

    def __len__(self) -> int:
        # What is left to read: the multipart body's length is taken from it.
        return self._left

    def read(self, n: int = -1) -> bytes:
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = os.pread(self._fd, want, self._offset) if want else b""
        if want and not data:
            # The file shrank while it was read (a log truncated by copytruncate): sending
            # less than the declared length would leave the request waiting for its timeout.
            raise FileChangedError("the file shrank while it was being sent")
        self._offset += len(data)
        self._left -= len(data)
        if self._on_read is not None and data:
            self._on_read(len(data))
        if not self._left:
            self._ended()
        return data

    def close(self) -> None:
        self._left = 0
        self._ended()

    def _ended(self) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()

    def __enter__(self) -> _Range:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _range_md5(fd: int, offset: int, length: int) -> str:
    return _md5_of(_Range(fd, offset, length))


@dataclass(frozen=True)
class _Source:
    """The file being sent: its descriptor (read from) and its path (named in messages)."""

    path: Path
    fd: int
    digest: FileDigest | None = None  # slice MD5s hashed with the file's own MD5


class _Counter:
    """Thread-safe progress accounting."""

    def __init__(self, total: int, callback: Progress | None) -> None:
        self._lock = threading.Lock()
        self.done = 0
        self.total = total
        self._callback = callback

    def add(self, n: int) -> None:
        if self._callback is None:
            return
        with self._lock:
            self.done += n
            done = self.done
        self._callback(done, self.total)


class Uploader:
    """Uploads files through a :class:`Pan123Api`; safe to use from several threads.

    :param state: resumable-upload store (default: in memory).
    :param sleep: injectable for tests (upload_complete polling).
    """

    def __init__(
        self,
        api: Pan123Api,
        dircache: DirCache,
        settings: UploadSettings | None = None,
        *,
        state: UploadStateStore | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._dirs = dircache
        self.settings = settings or UploadSettings()
        self._state = state or MemoryUploadState()
        self._sleep = sleep
        self._clock = clock
        self._domain: str | None = None
        self._domain_lock = threading.Lock()
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop chunked uploads between slices (shutdown); their sessions stay resumable."""
        self._cancelled.set()

    def slice_hint(self, size: int) -> int:
        """The slice size to hash a file of ``size`` bytes at, with its MD5 (0: the file goes
        up in one request, no slices)."""
        return SLICE_HINT if size > self.settings.single_threshold else 0

    def upload_domain(self) -> str:
        """The single-step upload host (asked once, then cached)."""
        with self._domain_lock:
            if self._domain is None:
                self._domain = self._api.upload_domains()[0]
            return self._domain

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
        """Upload ``local_path`` to ``<parent_id>/<rel_path>`` (folders created as needed).

        :param rel_path: POSIX relative path under ``parent_id``, e.g. ``a/b/c.txt``.
        :param md5: the file's MD5 when the caller already knows it (never re-hashed then).
        :param verify: check the stored size/etag now (default: ``settings.verify``); a
            caller that verifies many uploads at once with ``infos`` passes False.
        :param fd: a descriptor of the regular file, already opened and checked by the
            caller: everything is read from it (``local_path`` then only names it in
            messages). It stays open. Without it, ``local_path`` is opened here.
        :param digest: the file's MD5 and slice MD5s from one read (see :meth:`slice_hint`);
            its slice MD5s are used when 123pan's slice size is the one they were cut at.
        :raises UnsupportedFileError: 0 bytes, over 10 GB, or not a regular file.
        :raises FileChangedError: the file changed while it was read.
        :raises IntegrityError: the stored file does not match.
        """
        if digest is not None and md5 is not None and digest.md5 != md5.lower():
            digest = None  # not this content's
        if fd is not None:
            return self._upload(
                local_path, fd, parent_id, rel_path, md5, on_progress, verify, digest
            )
        own = _open_regular(local_path)
        try:
            return self._upload(
                local_path, own, parent_id, rel_path, md5, on_progress, verify, digest
            )
        finally:
            os.close(own)

    def _upload(
        self,
        local_path: Path,
        fd: int,
        parent_id: int,
        rel_path: str,
        md5: str | None,
        on_progress: Progress | None,
        verify: bool | None,
        digest: FileDigest | None,
    ) -> UploadResult:
        before = os.fstat(fd)
        size = before.st_size
        if size == 0:
            raise UnsupportedFileError("123pan cannot store empty (0-byte) files", str(local_path))
        if size > CHUNKED_MAX:
            raise UnsupportedFileError(
                f"file is over 123pan's 10 GB limit ({size} bytes)", str(local_path)
            )
        if md5 is None and digest is None:  # one read for the file's and its slices' MD5s
            digest = digest_fd(fd, self.slice_hint(size))
        etag = (md5 or (digest.md5 if digest is not None else "")).lower()
        source = _Source(local_path, fd, digest)
        try:
            result = self._send(source, parent_id, rel_path, etag, size, on_progress)
        except RemoteNotFoundError:
            folder = posixpath.dirname(rel_path.strip("/"))
            if self.settings.contain_dir or not folder:
                raise
            # mkdir mode: a cached folder ID is gone (deleted elsewhere); resolve it again, once
            log.info("a folder of %s is gone on 123pan; creating it again", rel_path)
            self._dirs.flush(parent_id, folder.split("/", 1)[0])
            result = self._send(source, parent_id, rel_path, etag, size, on_progress)
        after = os.fstat(fd)
        if (after.st_size, after.st_mtime_ns) != (size, before.st_mtime_ns):
            raise FileChangedError("the file changed while it was being uploaded", str(local_path))
        if self.settings.verify if verify is None else verify:
            self._verify(result)
        return result

    def _send(
        self,
        source: _Source,
        parent_id: int,
        rel_path: str,
        etag: str,
        size: int,
        on_progress: Progress | None,
    ) -> UploadResult:
        """Upload by the path the size calls for."""
        parent, filename, contain = self._target(parent_id, rel_path)
        progress = _Counter(size, on_progress)
        if size <= self.settings.single_threshold:
            return self._single(source, parent, filename, contain, etag, size, progress)
        key = f"{parent}:{filename}:{etag}:{size}"
        return self._chunked(source, parent, filename, contain, etag, size, key, progress)

    def _target(self, parent_id: int, rel_path: str) -> tuple[int, str, bool]:
        """(parentFileID, filename, containDir) for a relative path."""
        rel = rel_path.strip("/")
        folder, name = posixpath.split(rel)
        if not folder:
            return parent_id, name, False
        if self.settings.contain_dir:
            return parent_id, rel, True
        return self._dirs.ensure(parent_id, folder), name, False

    def _fields(
        self, parent: int, filename: str, contain: bool, etag: str, size: int
    ) -> dict[str, str]:
        fields = {
            "parentFileID": str(parent),
            "filename": filename,
            "etag": etag,
            "size": str(size),
            "duplicate": str(self.settings.duplicate),
        }
        if contain:
            fields["containDir"] = "true"
        return fields

    def _single(
        self,
        source: _Source,
        parent: int,
        filename: str,
        contain: bool,
        etag: str,
        size: int,
        progress: _Counter,
    ) -> UploadResult:
        def opener() -> IO[bytes]:
            return _Range(source.fd, 0, size, progress.add)  # type: ignore[return-value]

        name = posixpath.basename(filename)
        file_id = self._api.single_create(
            self.upload_domain(),
            self._fields(parent, filename, contain, etag, size),
            FormFile("file", name, opener),
        )
        return UploadResult(file_id, etag, size, "single")

    def _chunked(
        self,
        source: _Source,
        parent: int,
        filename: str,
        contain: bool,
        etag: str,
        size: int,
        key: str,
        progress: _Counter,
    ) -> UploadResult:
        session = self._state.load(key)
        if session is not None and (session.md5, session.size) != (etag, size):
            session = None
        if session is not None:
            try:
                return self._finish(source, session, key, progress)
            except ApiError as err:  # e.g. the session expired on 123pan's side
                log.info("cannot resume the upload of %s (%s); starting it again", source.path, err)
                self._state.clear(key)
                progress.done = 0
        body: dict[str, object] = {
            "parentFileID": parent,
            "filename": filename,
            "etag": etag,
            "size": size,
            "duplicate": self.settings.duplicate,
        }
        if contain:
            body["containDir"] = True
        created = self._api.create(body)
        if created.reuse:
            return UploadResult(created.file_id, etag, size, "reuse")
        session = UploadSession(
            created.preupload_id, created.slice_size, created.servers[0], etag, size
        )
        self._state.save(key, session)
        return self._finish(source, session, key, progress)

    def _finish(
        self, source: _Source, session: UploadSession, key: str, progress: _Counter
    ) -> UploadResult:
        """Send the missing slices and complete; the session is forgotten when done."""
        if session.done:
            log.info(
                "resuming upload of %s: %d slice(s) already sent", source.path, len(session.done)
            )
        try:
            sent = self._send_slices(source, session, key, progress)
            file_id = self._complete(session.preupload_id)
        except IntegrityError:
            self._state.clear(key)  # verification failed: start over next time
            raise
        self._state.clear(key)
        return UploadResult(file_id, session.md5, session.size, "chunked", sent)

    def _send_slices(
        self, source: _Source, session: UploadSession, key: str, progress: _Counter
    ) -> int:
        count = max(1, -(-session.size // session.slice_size))
        missing = [n for n in range(1, count + 1) if n not in session.done]
        for n in session.done:
            progress.add(min(session.slice_size, session.size - (n - 1) * session.slice_size))

        def send(slice_no: int) -> None:
            offset = (slice_no - 1) * session.slice_size
            length = min(session.slice_size, session.size - offset)
            known = None
            if source.digest is not None and source.digest.md5 == session.md5:
                known = source.digest.slice_md5(slice_no, session.slice_size)
            for attempt in range(SLICE_ATTEMPTS):
                # hashed again on a retry: a slice refused because the file changed under
                # it is sent as it is now, and the whole-file check then tells
                slice_md5 = (
                    known
                    if attempt == 0 and known is not None
                    else _range_md5(source.fd, offset, length)
                )

                def opener() -> IO[bytes]:
                    window.acquire()  # let go when the body is written (or the send fails)
                    if self._cancelled.is_set():  # a shutdown came while this slice waited
                        window.release()
                        raise Interrupted(_STOPPED)
                    return _Range(source.fd, offset, length, progress.add, window.release)  # type: ignore[return-value]

                try:
                    self._api.upload_slice(
                        session.server,
                        session.preupload_id,
                        slice_no,
                        slice_md5,
                        FormFile("slice", "slice", opener),
                    )
                    break
                except ApiError as err:  # e.g. a slice refused for its MD5: send it again
                    if attempt == SLICE_ATTEMPTS - 1:
                        raise
                    log.info("slice %d refused (%s); sending it again", slice_no, err)
            self._state.mark_slice(key, slice_no)

        failed = threading.Event()

        def send_unless_failed(slice_no: int) -> None:
            if failed.is_set():  # another slice failed for good: the upload stops
                return
            if self._cancelled.is_set():
                failed.set()
                raise Interrupted(_STOPPED)
            try:
                send(slice_no)
            except BaseException:
                failed.set()
                raise

        # At most slice_workers bodies are written at once; a slice whose body is written
        # waits out its answer (a round trip) without its place, which the next slice takes
        # meanwhile: the connections stay busy sending instead of idling one RTT per slice.
        window = threading.BoundedSemaphore(self.settings.slice_workers)
        workers = min(2 * self.settings.slice_workers, len(missing)) or 1
        with ThreadPoolExecutor(workers, thread_name_prefix="slice") as pool:
            futures = [pool.submit(send_unless_failed, n) for n in missing]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return len(missing)

    def _complete(self, preupload_id: str) -> int:
        deadline = self._clock() + self.settings.complete_deadline
        while True:
            failure: RemoteError | None = None
            try:
                file_id = self._api.upload_complete(preupload_id)
                if file_id:
                    return file_id
            except VerifyingError:
                pass
            except RemoteError as err:
                # 429, 5xx, a lost answer: the HTTP layer does not retry upload_complete (20103
                # is polled here instead), so these are asked again here too, until the deadline.
                if not err.retryable or isinstance(err, IntegrityError):
                    raise
                failure = err
                log.info("upload_complete failed (%s); asking again", err)
            if self._clock() >= deadline:
                if failure is not None:
                    raise failure
                raise VerifyingError(
                    f"123pan was still verifying the upload after "
                    f"{self.settings.complete_deadline:.0f} s",
                    endpoint="upload/v2/file/upload_complete",
                )
            self._sleep(self.settings.complete_delay)

    def _verify(self, result: UploadResult) -> None:
        remote = self._api.detail(result.file_id)
        if remote.size != result.size or remote.etag != result.md5:
            raise IntegrityError(
                f"123pan stored {remote.size} bytes with etag {remote.etag!r}, but the local "
                f"file has {result.size} bytes with MD5 {result.md5}",
                endpoint="api/v1/file/detail",
            )
