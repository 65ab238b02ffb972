"""The pass engine and verify, in-process, against the real emulator and a real ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from engine_support import ledger_and_client

from syncagent.config import validate
from syncagent.emulator import Emulator
from syncagent.engine import SyncEngine
from syncagent.verify import verify


@pytest.fixture
def setup(emulator: Emulator, tmp_path: Path, ledger_url: str) -> Any:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.txt").write_text("bravo")
    (root / "sub" / "c:d.txt").write_text("mapped")
    config = validate(
        {
            "roots": [{"local": str(root), "remote": "/backup/docs"}],
            "state_dir": str(tmp_path / "state"),
            "ledger": {"url": ledger_url},
            "stability": {"quiet": "0s"},
            "limits": {"qps": "off"},
        },
        {},
    )
    state = tmp_path / "state"
    with ledger_and_client(emulator, state, config.ledger_url) as (ledger, client):
        yield config, ledger, client, root


def test_pass_then_verify_then_repair(setup: Any, api: Any) -> None:
    config, ledger, client, _root = setup
    engine = SyncEngine(config, ledger, client)
    first = engine.run_once()
    assert (first.uploaded, first.failed, first.hashed) == (3, [], 3)
    second = engine.run_once()
    assert (second.uploaded, second.unchanged, second.hashed) == (0, 3, 0)

    checked, problems = verify(config, ledger, client)
    assert (checked, problems) == (3, [])

    # Someone trashes a file on 123pan: verify sees it, --repair re-queues it.
    docs = client.ensure_dir(0, "backup/docs")
    sub = next(i for i in client.list_folder(docs) if i.name == "sub")
    mapped = next(i for i in client.list_folder(sub.file_id) if i.name == "c：d.txt")
    client.trash([mapped.file_id])
    checked, problems = verify(config, ledger, client, repair=True)
    [problem] = problems
    assert problem.rel_path == "sub/c:d.txt"  # named, and said what it means and what to do
    assert problem.problem.startswith("NOT on 123pan: ")
    assert "/backup/docs/sub/c：d.txt" in problem.problem and "verify --repair" in problem.problem
    third = engine.run_once()
    assert third.uploaded == 1
    assert third.hashed == 0  # the content is unchanged: its stored MD5 is reused
    assert verify(config, ledger, client)[1] == []
    names = {i.name for i in client.list_folder(sub.file_id)}
    assert names == {"b.txt", "c：d.txt"}
    assert (
        api.download(
            next(i for i in client.list_folder(sub.file_id) if i.name == "c：d.txt").file_id
        )
        == b"mapped"
    )


def test_changed_file_is_sent_again_and_unchanged_ones_are_not(setup: Any) -> None:
    config, ledger, client, root = setup
    engine = SyncEngine(config, ledger, client)
    engine.run_once()
    (root / "a.txt").write_text("alpha, edited")
    (root / "new.txt").write_text("new")
    report = engine.run_once()
    assert report.uploaded == 2
    assert report.unchanged == 2
    assert report.hashed == 2


def test_min_age_holds_a_fresh_file_back(setup: Any) -> None:
    config, ledger, client, root = setup
    import dataclasses

    waited: list[float] = []
    aged = dataclasses.replace(config, min_age=30.0)
    engine = SyncEngine(aged, ledger, client, sleep=waited.append)
    (root / "fresh.txt").write_text("just written")
    report = engine.run_once()
    # every file was younger than 30 s: the engine waited out the rest of min_age first
    assert waited and all(25.0 < w <= 30.0 for w in waited)
    # and, since the (fake) clock never moved, no file was old enough to send
    assert report.uploaded == 0 and len(report.failed) == 4, report
