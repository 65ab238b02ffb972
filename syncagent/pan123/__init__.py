"""The 123pan client: the only part of syncagent that talks to 123pan.

Layers (each module one reason to change): ``http`` (requests, envelope, retries) →
``api`` (one method per endpoint, token + 401 replay) → ``upload`` / ``download`` /
``dircache`` →
``client`` (the facade). ``auth`` keeps the token, ``ratelimit`` paces calls, ``endpoints``
holds the QPS table, ``errors`` maps codes to the error tree, ``models`` reads answers.
It imports nothing from the rest of syncagent except ``syncagent.errors``, and nothing from
the emulator.
"""

from __future__ import annotations

from syncagent.pan123.client import DEFAULT_API_BASE, Pan123Client
from syncagent.pan123.download import DownloadResult
from syncagent.pan123.http import RetryPolicy
from syncagent.pan123.models import RemoteFile
from syncagent.pan123.upload import (
    MemoryUploadState,
    UploadResult,
    UploadSession,
    UploadSettings,
    UploadStateStore,
)

__all__ = [
    "DEFAULT_API_BASE",
    "DownloadResult",
    "MemoryUploadState",
    "Pan123Client",
    "RemoteFile",
    "RetryPolicy",
    "UploadResult",
    "UploadSession",
    "UploadSettings",
    "UploadStateStore",
]
