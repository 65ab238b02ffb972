"""The fleet's one 123pan access token, kept in the shared ledger, encrypted.

123pan keeps three live tokens per client ID: a fourth agent fetching its own evicts the
first. When hosts share the ledger, :class:`LedgerTokenStore` (a
:class:`~syncagent.pan123.auth.TokenStore`) keeps the token in the ``kv`` table instead of
each state dir, and the fetch runs under a lock every host takes (a PostgreSQL advisory lock;
beside an SQLite ledger a file lock next to it), so the first host fetches it and the
others read it: a fleet mints one token, not one per host.

At rest the token is AES-256-GCM encrypted with a key derived (HKDF-SHA256) from the client
secret, the client ID bound in as associated data: the ledger (or a dump of it) alone does
not give the token away. A value that does not decrypt (another secret, a torn write) reads
as no token, so a new one is fetched over it. A host that kept a token in its state dir
before the ledger was shared brings it along (the first such host's becomes the fleet's).
Only the expiry is stored in clear (``status`` shows it). Neither the token nor the key
appears in a repr, a log or an error.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from syncagent.ledger import Ledger, repo
from syncagent.pan123.auth import FileTokenStore, StoredToken, fingerprint

__all__ = ["KEY_PREFIX", "LedgerTokenStore", "stored_expiry"]

log = logging.getLogger("syncagent")

KEY_PREFIX = "token:"  # kv key prefix, + the client ID's fingerprint
_SALT = b"syncagent ledger token store v1"


def _derive_key(client_id: str, client_secret: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=_SALT,
        info=b"access-token:" + client_id.encode("utf-8"),
    ).derive(client_secret.encode("utf-8"))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def stored_expiry(ledger: Ledger, client_id: str) -> float | None:
    """When the token the ledger holds for ``client_id`` expires (no secret needed)."""
    raw = repo.get_value(ledger, KEY_PREFIX + fingerprint(client_id))
    try:
        return None if raw is None else float(json.loads(raw)["expires_at"]) or None
    except (ValueError, KeyError, TypeError):
        return None


class LedgerTokenStore:
    """The access token in the ledger's ``kv``, encrypted; fetches serialised fleet-wide.

    :param state_dir: where the lock file is when the database has no advisory locks.
    """

    def __init__(self, ledger: Ledger, client_id: str, client_secret: str, state_dir: Path) -> None:
        self._ledger = ledger
        self._client = fingerprint(client_id)  # names the kv key: readable without the secret
        # what a token is bound to (see auth.fingerprint): one that decrypts was sealed with
        # this secret, so it is this secret's token
        self._bound = fingerprint(client_id, client_secret)
        self._key_name = KEY_PREFIX + self._client
        self._aad = client_id.encode("utf-8")
        self._aead = AESGCM(_derive_key(client_id, client_secret))
        # Without advisory locks: a file lock beside an SQLite ledger, else in the state dir
        sqlite_file = ledger.engine.url.database if ledger.engine.dialect.name == "sqlite" else None
        lock_dir = Path(sqlite_file).parent if sqlite_file and sqlite_file != ":memory:" else None
        self._files = FileTokenStore(lock_dir or state_dir)  # its lock only
        self._own = FileTokenStore(state_dir)  # the token this host kept before sharing
        # One advisory lock key per client ID (a signed 64-bit number)
        digest = hashlib.sha256(b"syncagent token " + self._client.encode()).digest()
        self._lock_key = int.from_bytes(digest[:8], "big", signed=True)

    def __repr__(self) -> str:
        return f"<LedgerTokenStore {self._ledger.url} client={self._client}>"

    def load(self) -> StoredToken | None:
        raw = repo.get_value(self._ledger, self._key_name)
        if raw is None:
            return self._adopt_own()
        try:
            value = json.loads(raw)
            plain = self._aead.decrypt(
                base64.b64decode(value["nonce"]), base64.b64decode(value["sealed"]), self._aad
            )
            token = json.loads(plain)
            return StoredToken(
                str(token["access_token"]),
                float(token["expires_at"]),
                self._bound,
                float(token.get("issued_at", 0.0)),
                float(token.get("valid_until", 0.0)),
            )
        except InvalidTag:
            log.warning(
                "the access token in the ledger %s was not sealed with this client secret; "
                "a new one is fetched",
                self._ledger.url,
            )
            return None
        except (ValueError, KeyError, TypeError):
            return None

    def _adopt_own(self) -> StoredToken | None:
        """No token in the ledger yet: the one this host kept in its state dir before the
        ledger was shared, if it has one, becomes the fleet's (one token fewer minted)."""
        own = self._own.load()
        if own is None or own.client != self._bound or not own.access_token:
            return None
        self.save(own)
        log.info(
            "the access token kept in %s is now the fleet's (kept in the ledger)", self._own.path
        )
        return own

    def save(self, token: StoredToken) -> None:
        plain = json.dumps(
            {
                "access_token": token.access_token,
                "expires_at": token.expires_at,
                "issued_at": token.issued_at,
                "valid_until": token.valid_until,
            }
        ).encode("utf-8")
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plain, self._aad)
        repo.set_value(
            self._ledger,
            self._key_name,
            json.dumps(
                {
                    "v": 1,
                    "expires_at": token.expires_at,
                    "nonce": _b64(nonce),
                    "sealed": _b64(sealed),
                }
            ),
        )

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Held while a host decides whether to fetch, and fetches: the whole fleet's."""
        if self._ledger.engine.dialect.name != "postgresql":
            with self._files.lock():
                yield
            return
        with self._ledger.translated("lock"), self._ledger.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self._lock_key})
            conn.commit()
            try:
                yield
            finally:
                # A connection lost meanwhile (a database restart) dropped the lock with it.
                with contextlib.suppress(SQLAlchemyError):
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._lock_key})
                    conn.commit()
