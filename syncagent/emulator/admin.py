"""The emulator's admin endpoint (``/__emulator/...`` on the API host): faults, settings, stats.

Lets a test or a person driving the emulator from another process do over HTTP what the Python
API (:class:`~syncagent.emulator.server.Emulator`) offers: inject faults, expire tokens, change
the rate-limit preset or the number of 20103 answers, and read what clients did.

===========================  ==================================================================
``GET  state``               URLs, current settings (no secrets), activity counters
``POST faults``              ``{endpoint, kind: code|http|drop|delay|corrupt, times, code,
                             http_status, message, after_bytes, seconds}``; endpoint
                             ``download`` (or ``download/<fileID>``) for download URLs
``POST faults/random``       ``{seed, probability, kinds, endpoints, max_delay}``
``POST faults/clear``        remove every pending fault and the random profile
``POST tokens/expire``       every issued token answers 401 from now on
``POST settings``            ``{rate_limits, complete_pending_polls, slice_size, ...}``;
                             network shaping: ``{rtt, rtt_jitter, conn_bps, server_bps}``
``POST activity/reset``      zero the counters
===========================  ==================================================================

The door is locked (:func:`check_request`): every call carries the emulator's per-run admin
token in ``X-Emulator-Admin`` (printed by ``syncagent emulator``, ``Emulator.admin_token`` in
Python); a browser's cross-origin request (an ``Origin`` that is not the API host's own, or a
``Host`` that is not the address it listens on, as after DNS rebinding) and a POST whose
``Content-Type`` is not ``application/json`` (what a web page can send without asking) are
refused before anything is read or changed.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlsplit

from syncagent.emulator.core import Core
from syncagent.emulator.faults import Fault, RandomProfile
from syncagent.errors import EmulatorRejection

__all__ = ["RUNTIME_SETTINGS", "TOKEN_HEADER", "check_request", "handle", "public_settings"]

TOKEN_HEADER = "X-Emulator-Admin"
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")

# Settings that may change while the emulator runs, with the type each must have.
RUNTIME_SETTINGS: dict[str, type | tuple[type, ...]] = {
    "rate_limits": str,
    "complete_pending_polls": int,
    "slice_size": int,
    "token_lifetime": (int, float),
    "clock_offset": (int, float),
    "max_tokens": int,
    "token_overflow": str,
    "duplicate_default": str,
    "overwrite_old": str,
    "require_platform": bool,
    "strict_hosts": bool,
    "accept_uppercase_etag": bool,
    "reject_zero_byte": bool,
    "single_max": int,
    "chunked_max": int,
    "download_ttl": (int, float),
    "download_bps": int,
    "rtt": (int, float),
    "rtt_jitter": (int, float),
    "conn_bps": int,
    "server_bps": int,
}
_CHOICES = {
    "rate_limits": ("free", "vip", "off"),
    "token_overflow": ("evict", "refuse"),
    "duplicate_default": ("error", "keep_both"),
    "overwrite_old": ("trash", "destroy"),
}


def _bad(message: str) -> EmulatorRejection:
    return EmulatorRejection(400, message)


def public_settings(core: Core) -> dict[str, object]:
    s = core.settings
    return {name: getattr(s, name) for name in RUNTIME_SETTINGS}


def check_settings(changes: dict[str, Any]) -> dict[str, Any]:
    """Validate run-time setting changes; every problem is reported at once."""
    problems = []
    for key, value in changes.items():
        expected = RUNTIME_SETTINGS.get(key)
        if expected is None:
            problems.append(f"{key}: not a run-time setting")
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            problems.append(f"{key}: wrong type {type(value).__name__}")
        elif key in _CHOICES and value not in _CHOICES[key]:
            problems.append(f"{key}: must be one of {', '.join(_CHOICES[key])}")
        elif (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and value < 0
            and key != "clock_offset"  # a clock may be behind
        ):
            problems.append(f"{key}: must not be negative")
        elif key == "slice_size" and value == 0:
            problems.append(f"{key}: must be at least 1")
    if problems:
        raise _bad("; ".join(problems))
    return changes


def _host_name(value: str) -> str:
    """The host part of a ``Host`` header value (``[::1]:80`` -> ``::1``)."""
    return (urlsplit(f"//{value}").hostname or "").lower()


def check_request(core: Core, method: str, headers: Any) -> None:
    """Refuse an admin request that lacks the token, comes from another origin or host, or
    is a POST that is not JSON. Raises :class:`EmulatorRejection`; changes nothing.

    :param headers: the request's headers (anything with a case-insensitive ``get``).
    """
    origin = headers.get("Origin")
    if origin is not None and origin.rstrip("/").lower() != core.api_base.lower():
        raise EmulatorRejection(403, "cross-origin admin requests are refused", http_status=403)
    listening = _host_name(urlsplit(core.api_base).netloc)
    host = _host_name(headers.get("Host") or "")
    if (
        host
        and host != listening
        and not (listening in _LOOPBACK_NAMES and host in _LOOPBACK_NAMES)
    ):
        raise EmulatorRejection(403, f"admin requests must be sent to {listening}", http_status=403)
    given = (headers.get(TOKEN_HEADER) or "").encode()
    if not hmac.compare_digest(given, core.admin_token.encode()):
        raise EmulatorRejection(
            401, f"the admin endpoint needs the {TOKEN_HEADER} header", http_status=401
        )
    content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if method != "GET" and content_type != "application/json":
        raise EmulatorRejection(
            415, "admin requests must be Content-Type: application/json", http_status=415
        )


def _fault(body: dict[str, Any]) -> tuple[str, Fault, int | None]:
    try:
        endpoint = str(body.get("endpoint", "*"))
        kind = body["kind"]
        if kind not in ("code", "http", "drop", "delay", "corrupt"):
            raise _bad("kind must be code, http, drop, delay or corrupt")
        fault = Fault(
            kind=kind,
            code=int(body.get("code", 0)),
            message=str(body.get("message", "")),
            http_status=int(body.get("http_status", 500)),
            after_bytes=None if body.get("after_bytes") is None else int(body["after_bytes"]),
            seconds=float(body.get("seconds", 0.0)),
        )
        times = body.get("times", 1)
        return endpoint, fault, None if times is None else int(times)
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(f"bad fault: {exc}") from None


def handle(core: Core, method: str, action: str, body: dict[str, Any]) -> object:
    """Run one admin action; returns the envelope's data."""
    if method == "GET" and action == "state":
        return {
            "api_url": core.api_base,
            "upload_url": core.upload_base,
            "settings": public_settings(core),
            "rate_limits": core.limiter.limits(),
            "pending_faults": core.faults.pending(),
            "activity": core.activity(),
        }
    if method != "POST":
        raise EmulatorRejection(404, "Not Found", http_status=404)
    if action == "faults":
        endpoint, fault, times = _fault(body)
        core.faults.add(endpoint, fault, times)
        return core.faults.pending()
    if action == "faults/random":
        try:
            profile = RandomProfile(
                seed=int(body["seed"]),
                probability=float(body.get("probability", 0.05)),
                kinds=tuple(body.get("kinds", ("code", "http", "drop", "delay"))),
                max_delay=float(body.get("max_delay", 0.2)),
                endpoints=tuple(body.get("endpoints", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad(f"bad random profile: {exc}") from None
        core.faults.set_random(profile)
        return None
    if action == "faults/clear":
        core.faults.clear()
        return None
    if action == "tokens/expire":
        return {"expired": core.expire_tokens()}
    if action == "settings":
        core.update(**check_settings(body))
        return public_settings(core)
    if action == "activity/reset":
        core.reset_activity()
        return None
    raise EmulatorRejection(404, "Not Found", http_status=404)
