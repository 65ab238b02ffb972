"""A pass over roots that cannot be read as the user means them: a folder gone since the
configuration was loaded, a ``.syncignore`` broken while the agent runs. The pass must not
report success for them, and the other roots carry on (in-process, real emulator)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_support import ledger_and_client

from syncagent.config import validate
from syncagent.emulator import Emulator
from syncagent.engine import SyncEngine
from syncagent.ledger.repo import last_pass, root_status


@pytest.fixture
def two_roots(emulator: Emulator, tmp_path: Path, ledger_url: str) -> Iterator[Any]:
    roots = [tmp_path / "one", tmp_path / "two"]
    for root in roots:
        (root / "secrets").mkdir(parents=True)
        (root / "secrets" / "key").write_text(f"key of {root.name}")
        (root / "a.txt").write_text(root.name)
    config = validate(
        {
            "roots": [{"local": str(r), "remote": f"/backup/{r.name}"} for r in roots],
            "state_dir": str(tmp_path / "state"),
            "ledger": {"url": ledger_url},
            "stability": {"quiet": "0s"},
            "limits": {"qps": "off"},
        },
        {},
    )
    state = tmp_path / "state"
    with ledger_and_client(emulator, state, config.ledger_url) as (ledger, client):
        yield SyncEngine(config, ledger, client), ledger, roots


def test_a_root_gone_since_the_config_was_loaded_fails_the_pass(two_roots: Any) -> None:
    engine, ledger, (one, _two) = two_roots
    shutil.rmtree(one)
    report = engine.run_once()
    assert not report.ok
    assert report.not_read == [
        f"{one} cannot be read (No such file or directory): nothing of it was backed up"
    ]
    assert report.uploaded == 2  # the other root's two files
    last = last_pass(ledger)
    assert last is not None and last.result == "failed"
    # status says so, until a pass reads the root again
    assert {r.local_path: r.not_read for r in root_status(ledger)} == {
        str(one): report.not_read[0],
        str(_two): None,
    }
    one.mkdir()
    (one / "back.txt").write_text("back")
    again = engine.run_once()
    assert (again.ok, again.uploaded) == (True, 1)
    assert [r.not_read for r in root_status(ledger)] == [None, None]


def test_a_syncignore_broken_while_the_agent_runs_stops_only_its_root(two_roots: Any) -> None:
    engine, _, (one, two) = two_roots
    (one / ".syncignore").write_text("secrets/\n")
    (two / ".syncignore").write_text("secrets/\n")
    first = engine.run_once()
    assert (first.uploaded, first.not_read) == (2, [])
    (one / ".syncignore").write_bytes(b"secrets/\n\xff\n")  # saved in another encoding
    (one / "b.txt").write_text("new")
    (two / "b.txt").write_text("new")
    second = engine.run_once()
    assert second.not_read == [
        f"{one} was not backed up: {one / '.syncignore'}: line 2: not UTF-8 (byte 0xff in "
        "'\\\\xff')"
    ]
    assert not second.ok
    assert second.uploaded == 1  # two/b.txt; nothing of "one", and never its secrets/
