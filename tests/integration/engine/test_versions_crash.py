"""Keeping a version aside survives a crash at each step: the ledger record is written
before the first remote call, and a rerun finishes the step from where 123pan holds the
file, with exactly one remote copy of the version and no ``name(1)`` names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_support import ledger_and_client

from syncagent.emulator import Emulator
from syncagent.ledger import repo
from syncagent.pan123 import Pan123Client
from syncagent.versions import KEY_PREFIX, Kept, keep_aside, load, version_name


@pytest.fixture
def setup(emulator: Emulator, tmp_path: Path, ledger_url: str) -> Iterator[Any]:
    with ledger_and_client(emulator, tmp_path / "state", ledger_url) as (
        ledger,
        client,
    ):
        src = tmp_path / "a.txt"
        src.write_bytes(b"old content\n")
        root_id = repo.ensure_root(ledger, str(tmp_path), "/r", "archive")[0]
        remote_root = client.ensure_dir(0, "r")
        up = client.upload(src, remote_root, "sub/a.txt")
        yield client, ledger, root_id, remote_root, up


def _everything(client: Pan123Client, folder: int) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for item in client.list_folder(folder):
        if item.is_folder:
            out += [(f"{item.name}/{n}", i) for n, i in _everything(client, item.file_id)]
        else:
            out.append((item.name, item.file_id))
    return out


@pytest.mark.parametrize("crash", ["recorded", "renamed", "moved"])
def test_a_rerun_after_a_crash_finishes_with_one_copy(setup: Any, crash: str) -> None:
    client, ledger, root_id, remote_root, up = setup
    now = 1_800_000_000.0
    kept = Kept(
        root_id, up.file_id, "sub/a.txt", "sub/a.txt", version_name(now, "sub/a.txt"), 12,
        up.md5, 1, now,
    )  # fmt: skip
    # what the first run did before it died
    value = {k: v for k, v in kept.__dict__.items() if k not in ("root_id", "file_id")}
    repo.set_value(ledger, kept.key, json.dumps(value))
    if crash in ("renamed", "moved"):
        client.rename(up.file_id, kept.name)
    if crash == "moved":
        client.move([up.file_id], client.ensure_dir(remote_root, kept.folder))

    again = keep_aside(
        client, ledger, remote_root, root_id, up.file_id, "sub/a.txt", "sub/a.txt", 12, up.md5, 1
    )
    assert again is not None and again.done  # the first run's record, finished
    assert again.name == kept.name
    files = _everything(client, remote_root)
    assert files == [(f".syncagent/versions/sub/a.txt/{kept.name}", up.file_id)]
    assert [k.file_id for k in load(ledger, root_id)] == [up.file_id]
    # once more: nothing is repeated
    keep_aside(
        client, ledger, remote_root, root_id, up.file_id, "sub/a.txt", "sub/a.txt", 12, up.md5, 1
    )
    assert _everything(client, remote_root) == files
    assert list(repo.get_values(ledger, KEY_PREFIX)) == [kept.key]


def test_a_previous_copy_deleted_in_the_web_app_is_not_kept_and_the_upload_goes_on(
    setup: Any,
) -> None:
    client, ledger, root_id, remote_root, up = setup
    client.trash([up.file_id])  # the user put it in the recycle bin
    got = keep_aside(
        client, ledger, remote_root, root_id, up.file_id, "sub/a.txt", "sub/a.txt", 12, up.md5, 1
    )
    assert got is None
    assert load(ledger, root_id) == []


@pytest.mark.parametrize("crash", ["recorded", "renamed", "moved"])
def test_a_copy_left_half_kept_aside_goes_back_when_its_file_is_not_sent(
    emulator: Emulator, tmp_path: Path, crash: str
) -> None:
    """Chaos seed 4: a pass was SIGKILLed while it kept a changed file's copy aside (the
    record still pending), then the file could no longer be sent (here: a FIFO took its
    place; in the seed its folder became unreadable). The next pass puts the copy back at its
    path, whichever step the kill interrupted, instead of leaving the path empty on 123pan
    while the ledger says done."""
    import os

    from syncagent.config import validate
    from syncagent.engine import SyncEngine
    from syncagent.verify import verify

    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_bytes(b"old content\n")
    config = validate(
        {
            "roots": [{"local": str(root), "remote": "/r"}],
            "state_dir": str(tmp_path / "state"),
            "stability": {"quiet": "0s"},
            "limits": {"qps": "off"},
        },
        {},
    )
    with ledger_and_client(emulator, tmp_path / "state", config.ledger_url) as (ledger, client):
        engine = SyncEngine(config, ledger, client)
        assert engine.run_once().uploaded == 1
        root_id, remote_root = repo.ensure_root(ledger, str(root), "/r", "archive")
        assert remote_root is not None
        file_id = repo.load_facts(ledger, root_id)["sub/a.txt"].remote_id
        assert file_id is not None
        # what a pass killed while keeping the copy aside left behind
        now = 1_800_000_000.0
        kept = Kept(
            root_id, file_id, "sub/a.txt", "sub/a.txt", version_name(now, "sub/a.txt"), 12,
            "0" * 32, 1, now,
        )  # fmt: skip
        value = {k: v for k, v in kept.__dict__.items() if k not in ("root_id", "file_id")}
        repo.set_value(ledger, kept.key, json.dumps(value))
        if crash in ("renamed", "moved"):
            client.rename(file_id, kept.name)
        if crash == "moved":
            client.move([file_id], client.ensure_dir(remote_root, kept.folder))
        (root / "sub" / "a.txt").unlink()
        os.mkfifo(root / "sub" / "a.txt")  # it cannot be sent now

        report = engine.run_once()

        assert report.uploaded == 0
        files = [p for p in _everything(client, remote_root) if not p[0].startswith(".syncagent")]
        assert files == [("sub/a.txt", file_id)]
        assert load(ledger, root_id) == []
        assert verify(config, ledger, client)[1] == []


def test_putting_back_a_copy_trashed_in_the_web_app_drops_its_record(setup: Any) -> None:
    from syncagent.versions import put_back

    client, ledger, root_id, remote_root, up = setup
    now = 1_800_000_000.0
    kept = Kept(
        root_id, up.file_id, "sub/a.txt", "sub/a.txt", version_name(now, "sub/a.txt"), 12,
        up.md5, 1, now,
    )  # fmt: skip
    value = {k: v for k, v in kept.__dict__.items() if k not in ("root_id", "file_id")}
    repo.set_value(ledger, kept.key, json.dumps(value))
    client.rename(up.file_id, kept.name)
    client.trash([up.file_id])  # the user binned it meanwhile

    put_back(client, ledger, remote_root, kept)

    assert load(ledger, root_id) == []
    assert _everything(client, remote_root) == []
