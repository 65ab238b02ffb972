"""The engine re-checks its ledger against the cloud, in-process with a real emulator and a
real ledger: a ledger from before account binding, and the rotating remote check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from engine_support import ledger_and_client
from sqlalchemy import inspect

from syncagent.adopt import remote_tree
from syncagent.config import validate
from syncagent.emulator import Emulator
from syncagent.engine import SyncEngine
from syncagent.ledger import Ledger, migrations_dir
from syncagent.pan123 import Pan123Client


@pytest.fixture
def setup(emulator: Emulator, tmp_path: Path, ledger_url: str) -> Iterator[Any]:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    for name in ("a.txt", "sub/b.txt", "sub/c.txt"):
        (root / name).write_text(f"content of {name}")
    config = validate(
        {
            "roots": [{"local": str(root), "remote": "/backup/docs"}],
            "state_dir": str(tmp_path / "state"),
            "ledger": {"url": ledger_url},
            "stability": {"quiet": "0s"},
            "limits": {"qps": "off"},
            "remote_check": {"files": 2},
            "upload": {"workers": 1},  # rows (and so the sample's order) in path order
        },
        {},
    )
    state = tmp_path / "state"
    with ledger_and_client(emulator, state, config.ledger_url) as (ledger, client):
        yield config, ledger, client, root


def test_a_ledger_from_before_account_binding_is_checked_once_and_nothing_is_sent(
    setup: Any, emulator: Emulator
) -> None:
    config, ledger, client, _root = setup
    assert SyncEngine(config, ledger, client).run_once().uploaded == 3
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", ledger.url)
    command.downgrade(cfg, "0001")  # the ledger of an older syncagent, rows done
    assert "client_id" not in {c["name"] for c in inspect(ledger.engine).get_columns("roots")}
    ledger.migrate()
    emulator.reset_activity()

    report = SyncEngine(config, ledger, client).run_once()
    assert (report.uploaded, report.adopted, report.hashed) == (0, 3, 0), report
    assert "older syncagent" in report.notices[0]
    assert emulator.activity()["counts"].get("bytes_received", 0) == 0
    again = SyncEngine(config, ledger, client).run_once()
    assert (again.uploaded, again.adopted, again.unchanged, again.notices) == (0, 0, 3, [])


def test_the_remote_check_walks_a_rotating_sample_and_resends_what_is_gone(
    setup: Any, emulator: Emulator
) -> None:
    config, ledger, client, _root = setup
    engine = SyncEngine(config, ledger, client)
    assert engine.run_once().uploaded == 3
    docs = client.ensure_dir(0, "backup/docs")
    sub = next(i for i in client.list_folder(docs) if i.name == "sub")
    client.trash([sub.file_id])  # b.txt and c.txt are in it: their own flags stay clear
    emulator.reset_activity()

    first = engine.run_once(check_remote=True)  # sample: a.txt and sub/b.txt
    assert (first.uploaded, first.unchanged) == (1, 2), first
    second = engine.run_once(check_remote=True)  # sample: sub/c.txt, then a.txt again
    assert (second.uploaded, second.unchanged) == (1, 2), second
    third = engine.run_once(check_remote=True)
    assert third.uploaded == 0
    assert sorted(remote_tree(client, docs)) == ["a.txt", "sub/b.txt", "sub/c.txt"]


def test_another_123pan_user_behind_the_same_address_and_client_is_noticed_by_the_check(
    tmp_path: Path, ledger_url: str
) -> None:
    """Same API base, same client ID, another account (uid): a plain pass cannot tell (it
    makes no request for it), the remote check reads the uid and re-checks the root."""
    root = tmp_path / "docs"
    root.mkdir()
    for name in ("a.txt", "b.txt"):
        (root / name).write_text(f"content of {name}")
    config = validate(
        {
            "roots": [{"local": str(root), "remote": "/backup"}],
            "state_dir": str(tmp_path / "state"),
            "ledger": {"url": ledger_url},
            "stability": {"quiet": "0s"},
            "limits": {"qps": "off"},
        },
        {},
    )
    ledger = Ledger(config.ledger_url)
    ledger.migrate()
    same = {"client_id": "one-client", "client_secret": "its-secret"}
    try:
        with Emulator.temporary(rate_limits="off", complete_pending_polls=0, **same) as first:
            port = int(first.api_url.rsplit(":", 1)[1])
            with Pan123Client("one-client", "its-secret", api_base=first.api_url) as client:
                assert SyncEngine(config, ledger, client).run_once().uploaded == 2
        with (
            Emulator.temporary(
                rate_limits="off", complete_pending_polls=0, api_port=port, uid=42, **same
            ) as second,
            Pan123Client("one-client", "its-secret", api_base=second.api_url) as client,
        ):
            assert SyncEngine(config, ledger, client).run_once().unchanged == 2
            report = SyncEngine(config, ledger, client).run_once(check_remote=True)
            assert report.uploaded == 2, report
            assert "and this account is user 42" in report.notices[0], report.notices
    finally:
        ledger.close()
