"""Token minting and signature checking."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

from syncagent.emulator.tokens import beijing_time, mint, read_jti, rfc3339

KEY = b"k" * 32


def _payload(token: str) -> dict[str, object]:
    body = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def test_token_is_an_hs256_jwt_with_id_and_exp() -> None:
    minted = mint(KEY, 42, "cid", now=1_700_000_000, lifetime=60)
    assert minted.token.startswith("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.")
    payload = _payload(minted.token)
    assert payload["id"] == 42
    assert payload["exp"] == 1_700_000_060
    assert read_jti(KEY, minted.token) == minted.jti


def test_tampered_or_foreign_tokens_are_not_read() -> None:
    token = mint(KEY, 1, "cid", 0, 60).token
    head, body, sig = token.split(".")
    assert read_jti(b"other" * 8, token) is None
    assert read_jti(KEY, f"{head}.{body}x.{sig}") is None
    for garbage in ["", "a.b", "a.b.c", "...", token + "."]:
        assert read_jti(KEY, garbage) is None


def test_time_formats() -> None:
    stamp = rfc3339(0)
    assert stamp == "1970-01-01T08:00:00+08:00"
    assert datetime.fromisoformat(stamp).utcoffset() == timedelta(hours=8)
    assert beijing_time(0) == "1970-01-01 08:00:00"
