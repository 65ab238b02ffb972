"""One access token for a fleet, against the real emulator and a real ledger (SQLite and
PostgreSQL): five clients (as five hosts would hold) sharing a ledger mint one token between
them, and when 123pan stops accepting it, one new one, not one per host."""

from __future__ import annotations

import threading
from pathlib import Path

from syncagent.emulator import Emulator
from syncagent.ledger import Ledger
from syncagent.ledger.token_store import LedgerTokenStore
from syncagent.pan123 import Pan123Client


def _minted(emulator: Emulator) -> int:
    return int(emulator.activity()["counts"].get("tokens_minted", 0))


def _all_at_once(clients: list[Pan123Client]) -> None:
    errors: list[BaseException] = []

    def call(client: Pan123Client) -> None:
        try:
            client.user_info()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_five_clients_share_one_token_and_one_refresh(
    ledger_url: str, emulator: Emulator, tmp_path: Path
) -> None:
    ledgers = [Ledger(ledger_url) for _ in range(5)]  # each host opens its own
    ledgers[0].migrate()
    clients = [
        Pan123Client(
            emulator.client_id,
            emulator.client_secret,
            api_base=emulator.api_url,
            qps="off",
            use_environment=False,
            token_store=LedgerTokenStore(
                ledger, emulator.client_id, emulator.client_secret, tmp_path / f"state{i}"
            ),
        )
        for i, ledger in enumerate(ledgers)
    ]
    try:
        _all_at_once(clients)
        assert _minted(emulator) == 1
        assert emulator.core.expire_tokens() == 1  # 123pan stops accepting it (a 401)
        _all_at_once(clients)
        assert _minted(emulator) == 2  # one refresh for the fleet
        assert len({c.tokens.expires_at for c in clients}) == 1
    finally:
        for c in clients:
            c.close()
        for ledger in ledgers:
            ledger.close()
