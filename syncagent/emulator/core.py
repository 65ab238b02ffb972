"""The emulator's shared state and the rules common to every endpoint.

:class:`Core` bundles the settings, the catalog (metadata), the blob store (content), the rate
limiter, the fault plan and the activity counters that tests read. It also owns the rules used
by several endpoints: authentication, parent-folder checks, ``containDir`` path resolution and
the ``duplicate`` policy, and how an entry is rendered in list/detail answers.

No HTTP here: endpoints get parsed parameters and return the envelope's ``data``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import secrets
import sqlite3
import stat
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from syncagent.emulator import names, tokens
from syncagent.emulator.blobs import BlobStore
from syncagent.emulator.catalog import FILE, FOLDER, ROOT_ID, Catalog, Entry
from syncagent.emulator.faults import FaultPlan
from syncagent.emulator.ratelimit import PRESETS, RateLimiter
from syncagent.emulator.running_md5 import RunningDigests
from syncagent.emulator.settings import EmulatorSettings
from syncagent.emulator.shaping import Shaper
from syncagent.errors import EmulatorRejection

__all__ = ["CATALOG_FILE", "Core"]

log = logging.getLogger("syncagent.emulator")

CATALOG_FILE = "emulator.sqlite3"

_MD5 = re.compile(r"[0-9a-f]{32}")
_MD5_ANY_CASE = re.compile(r"[0-9a-fA-F]{32}")
_AUDIO = {"mp3", "flac", "wav", "aac", "ogg", "m4a", "ape", "wma"}
_VIDEO = {"mp4", "mkv", "avi", "mov", "wmv", "flv", "ts", "webm", "m4v", "rmvb"}
_IMAGE = {"jpg", "jpeg", "png", "gif", "bmp", "webp", "heic", "tif", "tiff", "svg"}


def _category(name: str) -> int:
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return 1 if ext in _AUDIO else 2 if ext in _VIDEO else 3 if ext in _IMAGE else 0


def _private(data_dir: Path) -> None:
    """Create the data dir 0700, or make an existing one private (logged): its catalog holds
    the client secret and the signing key, its blobs are copies of the user's files. The
    catalog file is made 0600 too (SQLite gives its journals the same mode)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    catalog = data_dir / CATALOG_FILE
    if not catalog.exists():
        os.close(os.open(catalog, os.O_CREAT | os.O_WRONLY, 0o600))
    for path in (data_dir, catalog, *data_dir.glob(CATALOG_FILE + "-*")):
        st = path.lstat()
        if st.st_mode & 0o077 and st.st_uid == os.geteuid() and not stat.S_ISLNK(st.st_mode):
            path.chmod(stat.S_IMODE(st.st_mode) & 0o700)
            log.warning(
                "made %s private (mode %04o -> %04o)",
                path,
                stat.S_IMODE(st.st_mode),
                stat.S_IMODE(st.st_mode) & 0o700,
            )


class Core:
    """Everything the endpoints share.

    :param settings: initial settings; ``data_dir`` must exist or be creatable.
    """

    def __init__(self, settings: EmulatorSettings) -> None:
        _private(settings.data_dir)
        self.catalog = Catalog(settings.data_dir / CATALOG_FILE)
        self.blobs = BlobStore(settings.data_dir)
        self.running = RunningDigests(self.blobs.read_upload)  # chunked uploads' MD5 so far
        self.settings = self._with_credentials(settings)
        self.faults = FaultPlan()
        self.limiter = RateLimiter(PRESETS[settings.rate_limits])
        self.shaper = Shaper(lambda: self.settings)  # latency and bandwidth caps, read live
        self.upload_base = ""  # set by the server once the upload listener is bound
        self.api_base = ""
        # The admin endpoint's key: new on every start, never stored (see admin.check_request).
        self.admin_token = secrets.token_urlsafe(24)
        self._signing_key = self._persistent("signing_key", lambda: secrets.token_hex(32)).encode()
        self._counts: Counter[str] = Counter()
        self._slices: defaultdict[str, list[int]] = defaultdict(list)
        self._stats_lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        # jti -> expiry of tokens known live; saves a catalog query per request. Cleared
        # whenever tokens are evicted or expired.
        self._live_tokens: dict[str, float] = {}

    # -- settings and credentials ---------------------------------------------------------

    def _persistent(self, key: str, make: object) -> str:
        value = self.catalog.meta(key)
        if value is None:
            assert callable(make)
            value = str(make())
            self.catalog.set_meta(key, value)
        return value

    def _with_credentials(self, settings: EmulatorSettings) -> EmulatorSettings:
        """Fill in the client ID/secret: given ones are stored, missing ones generated once."""
        client_id = settings.client_id or self.catalog.meta("client_id") or secrets.token_hex(16)
        secret = (
            settings.client_secret or self.catalog.meta("client_secret") or secrets.token_hex(16)
        )
        self.catalog.set_meta("client_id", client_id)
        self.catalog.set_meta("client_secret", secret)
        return dataclasses.replace(settings, client_id=client_id, client_secret=secret)

    def update(self, **changes: object) -> EmulatorSettings:
        """Change settings at run time (rate-limit preset, polls, slice size...)."""
        self.settings = dataclasses.replace(self.settings, **changes)  # type: ignore[arg-type]
        if "rate_limits" in changes:
            self.limiter.set_limits(PRESETS[self.settings.rate_limits])
        return self.settings

    @property
    def download_key(self) -> bytes:
        """Key that signs download URLs (the token signing key; never sent anywhere)."""
        return self._signing_key

    def reject(self, field: str, message: str) -> EmulatorRejection:
        """A rejection whose code is the configured ``error_codes.<field>``."""
        return EmulatorRejection(int(getattr(self.settings.error_codes, field)), message)

    def lock_for(self, key: str) -> threading.Lock:
        """A lock per key (e.g. per preuploadID), so one upload is completed only once."""
        with self._stats_lock:
            return self._key_locks.setdefault(key, threading.Lock())

    # -- activity counters (read by tests and the admin endpoint) ---------------------------

    def count(self, what: str, n: int = 1) -> None:
        with self._stats_lock:
            self._counts[what] += n

    def record_slice(self, preupload_id: str, slice_no: int) -> None:
        with self._stats_lock:
            self._slices[preupload_id].append(slice_no)

    def activity(self) -> dict[str, object]:
        with self._stats_lock:
            counts = dict(self._counts)
            slices = {k: list(v) for k, v in self._slices.items()}
        rates = {name: dataclasses.asdict(s) for name, s in self.limiter.stats().items()}
        return {
            "counts": counts,
            "slices": slices,
            "endpoints": rates,
            "faults_injected": self.faults.injected,
        }

    def reset_activity(self) -> None:
        with self._stats_lock:
            self._counts.clear()
            self._slices.clear()
        self.limiter.reset_stats()

    # -- auth ----------------------------------------------------------------------------

    def mint_token(self, client_id: str, client_secret: str) -> dict[str, object]:
        s = self.settings
        if not (
            secrets.compare_digest(client_id, s.client_id or "")
            and secrets.compare_digest(client_secret, s.client_secret or "")
        ):
            raise self.reject("bad_credentials", "clientID或clientSecret错误")
        now = time.time()
        minted = tokens.mint(self._signing_key, s.uid, client_id, now, s.token_lifetime)
        added = self.catalog.add_token(
            minted.jti, now, minted.expires_at, s.max_tokens, evict=s.token_overflow == "evict"
        )
        with self._stats_lock:
            self._live_tokens.clear()  # the oldest may just have been evicted
        if not added:
            raise EmulatorRejection(401, s.evicted_message)
        self.count("tokens_minted")
        return {"accessToken": minted.token, "expiredAt": tokens.rfc3339(minted.expires_at)}

    def authenticate(self, authorization: str | None) -> None:
        """Raise a 401 rejection unless ``authorization`` is ``Bearer <live token>``."""
        if not authorization or not authorization.startswith("Bearer "):
            raise EmulatorRejection(401, "access_token无效")
        jti = tokens.read_jti(self._signing_key, authorization[len("Bearer ") :].strip())
        now = time.time()
        if jti is None:
            raise EmulatorRejection(401, "access_token无效")
        if self._live_tokens.get(jti, 0.0) > now:
            return
        state, expires_at = self.catalog.token_state(jti, now)
        if state == "live":
            with self._stats_lock:
                self._live_tokens[jti] = expires_at
            return
        if state == "evicted":
            raise EmulatorRejection(401, self.settings.evicted_message)
        raise EmulatorRejection(401, "access_token无效")

    def expire_tokens(self) -> int:
        """Make every issued token answer 401; returns how many were live."""
        with self._stats_lock:
            self._live_tokens.clear()
        return self.catalog.expire_tokens()

    # -- shared checks -------------------------------------------------------------------

    def check_md5(self, value: str, field: str = "etag") -> str:
        """Accept an MD5 hex (upper case only if configured); returns it lower-cased."""
        pattern = _MD5_ANY_CASE if self.settings.accept_uppercase_etag else _MD5
        if not pattern.fullmatch(value):
            raise self.reject("bad_etag", f"{field}不合法: 须为32位小写十六进制MD5")
        return value.lower()

    def check_name(self, name: str) -> str:
        try:
            return names.check_name(name)
        except names.NameProblem as exc:
            raise self.reject("name_invalid", str(exc)) from None

    def split(self, path: str, contain_dir: bool) -> tuple[list[str], str]:
        """(folder segments, leaf name) of an upload's ``filename``."""
        if not contain_dir:
            return [], self.check_name(path)
        try:
            segments = names.split_path(path)
        except names.NameProblem as exc:
            raise self.reject("name_invalid", str(exc)) from None
        return segments[:-1], segments[-1]

    def live_folder(self, db: sqlite3.Connection, folder_id: int) -> None:
        """Raise unless ``folder_id`` is the root or a folder outside the recycle bin.

        A folder below a trashed folder is in the recycle bin too (the trash keeps a folder
        with its contents), so every ancestor is checked.
        """
        current = folder_id
        while current != ROOT_ID:
            entry = Catalog.get_in(db, current)
            if entry is None or entry.type != FOLDER or entry.trashed:
                raise self.reject("not_found", "父目录不存在")
            current = entry.parent_id

    def resolve_dirs(self, db: sqlite3.Connection, parent_id: int, segments: list[str]) -> int:
        """Walk/create ``segments`` under ``parent_id``; existing live folders are reused."""
        self.live_folder(db, parent_id)
        current = parent_id
        for seg in segments:
            found = Catalog.find_live(db, current, seg)
            if found is None:
                current = Catalog.insert(db, current, seg, FOLDER)
                self.count("folders_created")
            elif found.type == FOLDER:
                current = found.id
            else:
                raise self.reject("name_exists", f"路径中的 {seg} 是一个文件,无法作为目录")
        return current

    def check_clash(
        self, db: sqlite3.Connection, parent_id: int, name: str, duplicate: int
    ) -> None:
        """Refuse early (at V2 create) what :meth:`place_file` would refuse at the end."""
        existing = Catalog.find_live(db, parent_id, name)
        if existing is None:
            return
        if existing.type == FOLDER and duplicate != 1:
            raise self.reject("name_exists", "该目录下已经有同名文件夹")
        if duplicate == 0 and self.settings.duplicate_default == "error":
            raise self.reject("name_exists", "该目录下已经有同名文件")

    def place_file(
        self, db: sqlite3.Connection, parent_id: int, name: str, size: int, md5: str, duplicate: int
    ) -> int:
        """Insert a file, applying the ``duplicate`` policy to a name clash; returns its id."""
        self.check_clash(db, parent_id, name, duplicate)
        existing = Catalog.find_live(db, parent_id, name)
        if existing is not None:
            if duplicate == 2:
                if self.settings.overwrite_old == "trash":
                    Catalog.set_trashed(db, existing.id, True)
                else:
                    Catalog.destroy(db, existing.id)
            else:  # 1, or omitted with duplicate_default == keep_both
                n = 1
                while Catalog.find_live(db, parent_id, names.suffixed(name, n)) is not None:
                    n += 1
                name = names.suffixed(name, n)
        return Catalog.insert(db, parent_id, name, FILE, size, md5)

    def duplicate_of(self, value: int) -> int:
        if value not in (0, 1, 2):
            raise self.reject("bad_request", "参数错误: duplicate 只能是1或2")
        return value

    # -- rendering -----------------------------------------------------------------------

    def list_item(self, e: Entry) -> dict[str, object]:
        """An item as the v2 list and infos endpoints render it."""
        return {
            "fileId": e.id,
            "filename": e.name,
            "type": e.type,
            "size": e.size,
            "etag": e.md5,
            "status": 0,
            "parentFileId": e.parent_id,
            "category": _category(e.name) if e.type == FILE else 0,
            "trashed": int(e.trashed),
            "punishFlag": 0,
            "s3KeyFlag": f"{self.settings.uid}-0" if e.type == FILE else "",
            "storageNode": "m0",
            "createAt": tokens.beijing_time(e.created_at),
            "updateAt": tokens.beijing_time(e.updated_at),
        }

    def close(self) -> None:
        self.running.close()
        self.catalog.close()


def data_dir_default() -> Path:
    """Where the emulator keeps its data when no ``--data-dir`` is given."""
    import platformdirs

    return Path(platformdirs.user_data_dir("syncagent")) / "emulator"
