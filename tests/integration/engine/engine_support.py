"""What the engine's integration tests share: a migrated ledger and a client of the emulator."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from syncagent.emulator import Emulator
from syncagent.ledger import Ledger
from syncagent.ledger.repo import LedgerUploadState
from syncagent.pan123 import Pan123Client, UploadSettings


@contextlib.contextmanager
def ledger_and_client(
    emulator: Emulator, state_dir: Path, ledger_url: str
) -> Iterator[tuple[Ledger, Pan123Client]]:
    """A migrated ledger at ``ledger_url`` and a client of ``emulator`` (no rate limits, a
    quick upload_complete poll) that keeps its resumable uploads in that ledger."""
    ledger = Ledger(ledger_url)
    ledger.migrate()
    client = Pan123Client(
        emulator.client_id,
        emulator.client_secret,
        api_base=emulator.api_url,
        state_dir=state_dir,
        qps="off",
        upload=UploadSettings(complete_delay=0.01),
        upload_state=LedgerUploadState(ledger),
    )
    try:
        yield ledger, client
    finally:
        client.close()
        ledger.close()
