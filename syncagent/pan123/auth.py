"""The access token's lifecycle: fetched once, kept on disk, shared, refreshed ahead of expiry.

123pan allows three live tokens per client ID, so a token is a scarce thing: it is stored in
the state directory (``token.json``, mode 0600) and reused across restarts and by every thread;
only one fetch runs at a time (a thread lock, plus a file lock across processes sharing the
state dir); it is refreshed five minutes before ``expiredAt``; a 401 drops it once so the call
can be replayed with a new one. Neither the token nor the secret appears in a repr or a log.
A local clock far ahead of 123pan's is noticed (a new token looks expired at once) and does not
turn every call into a fetch. A state dir where the token cannot be kept is a
:class:`~syncagent.errors.StateError` naming it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from syncagent.errors import StateError

__all__ = ["FileTokenStore", "StoredToken", "TokenManager", "TokenStore"]

log = logging.getLogger("syncagent.pan123")

REFRESH_AHEAD = 300.0
ASSUMED_LIFETIME = 30 * 86400.0  # 123pan's documented token lifetime (when the clock is off)


@dataclass(frozen=True)
class StoredToken:
    access_token: str = field(repr=False)
    expires_at: float
    client: str  # fingerprint of the client ID it belongs to (never the ID's secret)
    issued_at: float = 0.0  # when it was fetched (0: unknown)
    # Local clock time until which it is used, when the local clock disagrees with 123pan's
    # (a new token whose expiredAt is already past here); 0: expires_at applies.
    valid_until: float = 0.0

    @property
    def local_expiry(self) -> float:
        """When it expires by this machine's clock."""
        return self.valid_until or self.expires_at


class TokenStore(Protocol):
    def load(self) -> StoredToken | None: ...

    def save(self, token: StoredToken) -> None: ...

    def lock(self) -> contextlib.AbstractContextManager[None]: ...


def fingerprint(client_id: str, secret: str = "") -> str:
    """What a stored token is bound to: the client ID and the secret it was fetched with,
    hashed. A token fetched with another secret is not used, so a wrong secret put in the
    config is noticed at once (its fetch is refused) instead of once the cached token ends."""
    material = client_id if not secret else f"{client_id}\n{secret}"
    return hashlib.sha256(material.encode()).hexdigest()[:16]


class FileTokenStore:
    """``<state_dir>/token.json`` (0600) and ``token.lock`` for fetches across processes."""

    def __init__(self, state_dir: Path) -> None:
        self._dir = state_dir
        self.path = state_dir / "token.json"

    def load(self) -> StoredToken | None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return StoredToken(
                str(raw["access_token"]),
                float(raw["expires_at"]),
                str(raw["client"]),
                float(raw.get("issued_at", 0.0)),
                float(raw.get("valid_until", 0.0)),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _unusable(self, path: Path, exc: OSError) -> StateError:
        return StateError(
            f"cannot keep the 123pan access token in {self._dir}: {path}: {exc.strerror or exc}"
        )

    def save(self, token: StoredToken) -> None:
        tmp = self.path.with_suffix(".tmp")
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(
                    {
                        "access_token": token.access_token,
                        "expires_at": token.expires_at,
                        "client": token.client,
                        "issued_at": token.issued_at,
                        "valid_until": token.valid_until,
                    },
                    f,
                )
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise self._unusable(self.path, exc) from exc

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        path = self._dir / "token.lock"
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            f = open(path, "a")  # noqa: SIM115 - closed below, after the yield
        except OSError as exc:
            raise self._unusable(path, exc) from exc
        with f:
            try:
                import fcntl

                fcntl.flock(f, fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - not on POSIX: one process is assumed
                pass
            yield


class MemoryTokenStore:
    """A store that forgets on exit (no state dir given)."""

    def __init__(self) -> None:
        self._token: StoredToken | None = None

    def load(self) -> StoredToken | None:
        return self._token

    def save(self, token: StoredToken) -> None:
        self._token = token

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


Fetch = Callable[[str, str], tuple[str, float]]


class TokenManager:
    """Hands out a valid access token; fetches one only when needed.

    :param fetch: ``(client_id, client_secret) -> (token, expires_at epoch seconds)``.
    :param store: where the token persists.
    :param clock: wall-clock seconds (``expiredAt`` is absolute time).
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        fetch: Fetch,
        store: TokenStore,
        *,
        clock: Callable[[], float] = time.time,
        refresh_ahead: float = REFRESH_AHEAD,
    ) -> None:
        self._client_id = client_id
        self._secret = client_secret
        self._fetch = fetch
        self._store = store
        self._clock = clock
        self._ahead = refresh_ahead
        self._lock = threading.Lock()
        self._current: StoredToken | None = None
        # checked on every call: hashed once
        self._fingerprint = fingerprint(client_id, client_secret)
        self.fetches = 0

    def __repr__(self) -> str:
        state = "none" if self._current is None else f"expires {self._current.expires_at:.0f}"
        return f"<TokenManager client={self._fingerprint} token={state}>"

    @property
    def expires_at(self) -> float | None:
        return None if self._current is None else self._current.expires_at

    def _usable(self, token: StoredToken | None) -> bool:
        if token is None or token.client != self._fingerprint:
            return False
        ahead = self._ahead
        expiry = token.local_expiry
        if token.issued_at:
            # A token that lives less than twice the margin (a test emulator's short
            # lifetime) is refreshed at half its life, not on every call.
            ahead = min(ahead, (expiry - token.issued_at) / 2)
        return expiry - ahead > self._clock()

    def _stored(self, access: str, expires_at: float) -> StoredToken:
        """A token just fetched. If its ``expiredAt`` is already past by the local clock, the
        clock is wrong (123pan does not hand out expired tokens; a clock 40 days ahead made
        every call fetch a new one and evict the ones in use): it is used for 123pan's
        documented lifetime from now, or until 123pan refuses it (a 401 fetches another)."""
        now = self._clock()
        valid_until = 0.0
        if expires_at <= now:
            valid_until = now + ASSUMED_LIFETIME
            log.warning(
                "this machine's clock is at least %.1f days ahead of 123pan's (a new access "
                "token already looks expired): the token is used for %.0f days from now, or "
                "until 123pan refuses it; set the clock right",
                (now - expires_at) / 86400,
                ASSUMED_LIFETIME / 86400,
            )
        return StoredToken(access, expires_at, self._fingerprint, now, valid_until)

    def token(self) -> str:
        """A token valid for at least ``refresh_ahead`` seconds."""
        current = self._current
        if self._usable(current):
            assert current is not None
            return current.access_token
        with self._lock:
            if self._usable(self._current):
                assert self._current is not None
                return self._current.access_token
            with self._store.lock():
                stored = self._store.load()  # another process may have fetched one
                if not self._usable(stored):
                    access, expires_at = self._fetch(self._client_id, self._secret)
                    self.fetches += 1
                    stored = self._stored(access, expires_at)
                    self._store.save(stored)
                    log.info(
                        "fetched a new 123pan access token (valid until %s)",
                        time.strftime("%Y-%m-%d %H:%M", time.localtime(expires_at)),
                    )
            self._current = stored
            assert stored is not None
            return stored.access_token

    def invalidate(self, rejected: str) -> None:
        """The server refused ``rejected`` (401): forget it, unless already replaced."""
        with self._lock:
            if self._current is not None and self._current.access_token == rejected:
                self._current = None
                with self._store.lock():
                    stored = self._store.load()
                    if stored is not None and stored.access_token == rejected:
                        self._store.save(StoredToken("", 0.0, stored.client))
