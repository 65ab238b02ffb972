"""Helpers shared by the live client tests in this folder (imported as ``pan123_support``).

A client aimed at the emulator, test data, and what the emulator itself recorded or stored:
its activity counters, and the files read back over plain HTTP with ``conftest.Api`` (never
through the client under test, so a misunderstanding of the API cannot hide on both sides).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from conftest import Api, md5

from syncagent.emulator import Emulator
from syncagent.pan123 import Pan123Client, RetryPolicy, UploadSettings, UploadStateStore

__all__ = [
    "SLICE",
    "THRESHOLD",
    "activity",
    "blob",
    "calls",
    "counts",
    "endpoint_stats",
    "live_items",
    "live_names",
    "make_client",
    "md5",
    "mint_plain",
    "minted",
    "plain",
    "slices",
    "slices_received",
    "stored",
    "stored_token",
]

SLICE = 64 * 1024  # the slice size the tests configure the emulator with
THRESHOLD = 128 * 1024  # the client's single-step limit: single-step up to here, chunked above


def blob(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def make_client(
    emu: Emulator,
    state_dir: Path,
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
    attempts: int = 4,
    qps: Literal["free", "vip", "off"] = "off",
    slice_workers: int = UploadSettings.slice_workers,
    contain_dir: bool = UploadSettings.contain_dir,
    complete_delay: float = 0.01,
    complete_deadline: float = UploadSettings.complete_deadline,
    upload_state: UploadStateStore | None = None,
    wall_clock: Callable[[], float] = time.time,
    budget: float = 2.0,
    upload_rate: Callable[[], int] | None = None,
    download_rate: Callable[[], int] | None = None,
) -> Pan123Client:
    """A client of the emulator keeping its token in ``state_dir``; short retry backoff.

    ``client_id`` and ``client_secret`` default to the emulator's own; the upload settings not
    given keep ``UploadSettings``' defaults.
    """
    return Pan123Client(
        emu.client_id if client_id is None else client_id,
        emu.client_secret if client_secret is None else client_secret,
        api_base=emu.api_url,
        state_dir=state_dir,
        qps=qps,
        upload=UploadSettings(
            single_threshold=THRESHOLD,
            slice_workers=slice_workers,
            contain_dir=contain_dir,
            complete_delay=complete_delay,
            complete_deadline=complete_deadline,
        ),
        upload_state=upload_state,
        retry=RetryPolicy(attempts=attempts, base=0.01, cap=0.05, budget=budget),
        wall_clock=wall_clock,
        upload_rate=upload_rate,
        download_rate=download_rate,
    )


def stored_token(state_dir: Path) -> str:
    """The access token a client keeps in ``state_dir``."""
    return str(json.loads((state_dir / "token.json").read_text())["access_token"])


# -- plain HTTP: another program on the same drive ------------------------------------------


@contextmanager
def plain(emu: Emulator, token: str | None = None) -> Iterator[Api]:
    """Plain ``requests`` access to the emulator, with ``token`` if given; its sockets are
    closed on exit, so no emulator thread is left waiting on a keep-alive connection."""
    api = Api(emu)
    api.token = token
    try:
        yield api
    finally:
        api.close()


def mint_plain(emu: Emulator, n: int = 1) -> None:
    """Fetch ``n`` tokens as another program using the same client ID would."""
    with plain(emu) as api:
        for _ in range(n):
            api.login()


def stored(emu: Emulator, client: Pan123Client, file_id: int) -> bytes:
    """The bytes the emulator stored for ``file_id``, downloaded back."""
    with plain(emu, client.tokens.token()) as api:
        return api.download(file_id)


def live_items(emu: Emulator, client: Pan123Client, parent: int) -> list[dict[str, Any]]:
    """The items of a folder that are not in the trash."""
    with plain(emu, client.tokens.token()) as api:
        return [i for i in api.listing(parent) if not i["trashed"]]


def live_names(emu: Emulator, client: Pan123Client, parent: int) -> list[str]:
    return sorted(i["filename"] for i in live_items(emu, client, parent))


# -- the emulator's own record --------------------------------------------------------------


def activity(emu: Emulator) -> dict[str, Any]:
    return emu.activity()


def counts(emu: Emulator) -> dict[str, int]:
    return dict(emu.activity()["counts"])


def minted(emu: Emulator) -> int:
    """Access tokens the emulator handed out."""
    return int(counts(emu).get("tokens_minted", 0))


def endpoint_stats(emu: Emulator) -> dict[str, dict[str, int]]:
    return dict(emu.activity()["endpoints"])


def calls(emu: Emulator, endpoint: str) -> int:
    return int(endpoint_stats(emu).get(endpoint, {}).get("calls", 0))


def slices(emu: Emulator) -> dict[str, list[int]]:
    """preuploadID -> the slice numbers the emulator accepted for it, in arrival order."""
    return dict(emu.activity()["slices"])


def slices_received(emu: Emulator) -> list[list[int]]:
    """Slice numbers each chunked upload received, in arrival order."""
    return list(slices(emu).values())


def put(emulator: Emulator, name: str, data: bytes) -> int:
    """Upload ``data`` as ``name`` with a plain caller; its fileID."""
    with plain(emulator) as api:
        return int(api.ok(api.single(name, data))["fileID"])
