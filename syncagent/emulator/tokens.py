"""Access tokens shaped like the real ones: HS256 JWTs with an RFC 3339 ``expiredAt``.

Minting and checking the signature are pure functions of a key; which tokens are live (the
three-per-client cap, eviction, expiry) is recorded by the catalog.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = ["BEIJING", "Minted", "beijing_time", "mint", "read_jti", "rfc3339"]

BEIJING = timezone(timedelta(hours=8))
# base64url of {"alg":"HS256","typ":"JWT"}: exactly the prefix the real tokens start with.
_HEADER = b'{"alg":"HS256","typ":"JWT"}'


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Minted:
    token: str
    jti: str
    expires_at: float


def rfc3339(ts: float) -> str:
    """``2025-03-23T15:48:37+08:00``: the format of ``expiredAt``."""
    return datetime.fromtimestamp(ts, BEIJING).isoformat(timespec="seconds")


def beijing_time(ts: float) -> str:
    """``2025-03-23 15:48:37``: the zone-less Beijing time of ``createAt``/``updateAt``."""
    return datetime.fromtimestamp(ts, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def mint(key: bytes, uid: int, client_id: str, now: float, lifetime: float) -> Minted:
    """A new signed token for ``uid``, valid ``lifetime`` seconds from ``now``."""
    jti = uuid.uuid4().hex
    expires_at = now + lifetime
    payload = {
        "exp": int(expires_at),
        "iat": int(now),
        "id": uid,
        "client_id": client_id,
        "jti": jti,
    }
    signing_input = _b64(_HEADER) + "." + _b64(json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return Minted(signing_input + "." + _b64(sig), jti, expires_at)


def read_jti(key: bytes, token: str) -> str | None:
    """The token's id if it was signed with ``key``, else None (never raises)."""
    try:
        head, body, sig = token.split(".")
        expected = hmac.new(key, f"{head}.{body}".encode("ascii"), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(sig)):
            return None
        jti = json.loads(_unb64(body))["jti"]
    except (ValueError, KeyError, TypeError, UnicodeError):
        return None
    return jti if isinstance(jti, str) else None
