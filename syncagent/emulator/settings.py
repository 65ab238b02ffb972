"""Settings of the local 123pan emulator: every behaviour the reference leaves open.

Where the real service's behaviour is unknown (the ``[?]`` marks of the API reference), the
emulator does not guess silently: each choice is a field here, with the default documented in
``docs/emulator.md``. Defaults lean strict, so a client that works against the emulator also
works against whichever way the real service turns out to behave.

Pure data: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["GB", "GIB", "EmulatorSettings", "ErrorCodes"]

GB = 1_000_000_000
GIB = 1 << 30
MIB = 1 << 20

DAY = 86_400.0


@dataclass(frozen=True)
class ErrorCodes:
    """Business codes for failures whose real code is not documented (all ``[?]``)."""

    bad_credentials: int = 1
    missing_platform: int = 1
    bad_request: int = 1
    name_invalid: int = 1
    name_exists: int = 1
    size_limit: int = 1
    zero_byte: int = 1
    bad_etag: int = 1
    bad_slice: int = 1
    unknown_preupload: int = 1
    slices_missing: int = 1
    verify_failed: int = 1
    not_found: int = 5066
    not_in_trash: int = 1


@dataclass(frozen=True)
class EmulatorSettings:
    """Everything that shapes the emulator's behaviour.

    :param data_dir: where content (``blobs/``, ``uploads/``) and ``emulator.sqlite3`` live.
    :param host: address both listeners bind to; loopback only by default.
    :param api_port: port of the API host (0 = pick a free one).
    :param upload_port: port of the upload host (0 = pick a free one).
    :param client_id: the one developer client the emulator accepts (None = generated, kept in
        the data dir).
    :param client_secret: its secret (None = generated, kept in the data dir).
    :param rate_limits: ``free``, ``vip`` or ``off``.
    :param strict_hosts: upload-data endpoints answer 404 on the API host and API endpoints
        answer 404 on the upload host.
    :param require_platform: refuse calls without ``Platform: open_platform`` [?].
    :param token_lifetime: seconds an access token lives (30 days, as documented).
    :param max_tokens: live tokens per client (3, as documented).
    :param token_overflow: ``evict`` the oldest token when a new one is issued beyond
        ``max_tokens`` (documented "can kick older ones offline"), or ``refuse`` the new one.
    :param evicted_message: the 401 message an evicted token gets.
    :param single_max: single-step size limit in bytes; "1 GB" read as 10**9 [?].
    :param chunked_max: V2 create size limit; "10 GB" read as 10**10 [?].
    :param slice_size: ``sliceSize`` answered by V2 create (16 MiB as seen in production).
    :param complete_pending_polls: how many ``upload_complete`` calls answer 20103 before
        ``completed: true``.
    :param duplicate_default: what an omitted ``duplicate`` does on a name clash [?]:
        ``error`` (code ``name_exists``) or ``keep_both``.
    :param overwrite_old: what ``duplicate=2`` does with the replaced file [?]: ``trash`` or
        ``destroy``.
    :param accept_uppercase_etag: accept ``etag``/``sliceMD5`` in upper case [?]; production
        clients lower-case them, so the default refuses upper case.
    :param reject_zero_byte: refuse 0-byte uploads [?] (rclone reports the service refuses them).
    :param error_codes: codes for the undocumented failures.
    :param space_permanent: ``spacePermanent`` reported by user/info (bytes).
    :param max_body_field: largest plain form field accepted (bytes).
    :param download_bps: bytes per second each download is served at (0: as fast as it can);
        slow downloads let tests stop a restore mid-file.
    :param download_ttl: seconds a ``download_info`` URL stays valid [?] (the documentation
        gives no lifetime; an hour, as commonly seen for signed object-store URLs).
    :param tls: serve HTTPS with a certificate of the emulator's own CA (``<data_dir>/tls/``).
    :param clock_offset: seconds added to the time in the ``Date`` header of every answer (a
        server whose clock is off, for ``syncagent doctor``'s clock check).
    :param rtt: network round-trip time in seconds, paid on each new connection and each
        answer (see :mod:`~syncagent.emulator.shaping`; 0: loopback as it is).
    :param rtt_jitter: up to this many seconds more on each of those waits, at random.
    :param conn_bps: bytes per second each connection may read and write (0: no cap).
    :param server_bps: bytes per second all connections together may read and write (0: no cap).
    """

    data_dir: Path
    host: str = "127.0.0.1"
    api_port: int = 0
    upload_port: int = 0
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    rate_limits: Literal["free", "vip", "off"] = "free"
    strict_hosts: bool = True
    require_platform: bool = True
    token_lifetime: float = 30 * DAY
    max_tokens: int = 3
    token_overflow: Literal["evict", "refuse"] = "evict"
    evicted_message: str = "tokens number has exceeded the limit"
    single_max: int = GB
    chunked_max: int = 10 * GB
    slice_size: int = 16 * MIB
    complete_pending_polls: int = 1
    duplicate_default: Literal["error", "keep_both"] = "error"
    overwrite_old: Literal["trash", "destroy"] = "destroy"
    accept_uppercase_etag: bool = False
    reject_zero_byte: bool = True
    error_codes: ErrorCodes = field(default_factory=ErrorCodes)
    space_permanent: int = 2 * 1024 * GIB
    max_body_field: int = 64 * 1024
    download_ttl: float = 3600.0
    download_bps: int = 0
    uid: int = 1_800_000_001
    nickname: str = "emulator"
    tls: bool = False
    clock_offset: float = 0.0
    rtt: float = 0.0
    rtt_jitter: float = 0.0
    conn_bps: int = 0
    server_bps: int = 0
