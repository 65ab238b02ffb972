"""The cloud catalog, in-process: written after a pass that changed something, not after a
no-op pass, replaced new-object-first, readable whole, and never taken for a user file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_support import ledger_and_client

from syncagent.catalog import CATALOG_DIR
from syncagent.catalog.format import EMPTY_MD5, Entry, Header, decode, encode
from syncagent.catalog.remote import fetch, find_folder
from syncagent.config import validate
from syncagent.emulator import Emulator
from syncagent.engine import SyncEngine
from syncagent.errors import CatalogError
from syncagent.pan123 import Pan123Client
from syncagent.verify import verify

OLD = 1_000_000_000_000_000_000  # 2001-09-09, in ns


@pytest.fixture
def setup(emulator: Emulator, tmp_path: Path, ledger_url: str) -> Iterator[Any]:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "c:d.txt").write_text("mapped")
    (root / "sub" / "zero").write_bytes(b"")
    (root / "link").symlink_to("sub/c:d.txt")
    os.chmod(root / "a.txt", 0o600)
    os.utime(root / "a.txt", ns=(OLD, OLD))
    config = validate(
        {
            "roots": [{"local": str(root), "remote": "/backup/docs", "mode": "mirror"}],
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


def catalog_objects(client: Pan123Client) -> list[str]:
    docs = find_folder(client, "/backup/docs")
    assert docs is not None
    folder = find_folder(client, f"/backup/docs/{CATALOG_DIR}")
    return [] if folder is None else sorted(f.name for f in client.list_folder(folder))


def test_a_pass_that_changed_something_publishes_a_catalog_and_a_no_op_pass_does_not(
    setup: Any, emulator: Emulator
) -> None:
    config, ledger, client, root = setup
    engine = SyncEngine(config, ledger, client)
    engine.run_once()
    first = catalog_objects(client)
    assert len(first) == 1
    docs = find_folder(client, "/backup/docs")
    assert docs is not None
    got = fetch(client, docs)
    assert got is not None
    by_path = {e.path: e for e in got.entries}
    assert sorted(by_path) == ["a.txt", "empty-dir", "link", "sub", "sub/c:d.txt", "sub/zero"]
    a = by_path["a.txt"]
    assert (a.kind, a.size, a.mode, a.mtime_ns, a.state) == ("file", 5, 0o600, OLD, "done")
    assert a.file_id is not None and a.md5 == "2c1743a391305fbf367df8e4f069f9f9"
    assert by_path["sub/c:d.txt"].remote == "sub/c：d.txt"
    assert (by_path["sub/zero"].size, by_path["sub/zero"].md5) == (0, EMPTY_MD5)
    assert (by_path["link"].kind, by_path["link"].target) == ("symlink", b"sub/c:d.txt")
    assert by_path["empty-dir"].kind == "dir"
    assert got.header.root == str(root) and got.header.remote == "/backup/docs"

    emulator.reset_activity()
    engine.run_once()  # no-op: no upload of any kind, the catalog untouched
    calls = emulator.activity()["endpoints"]
    assert not any("upload" in name for name in calls), calls
    assert catalog_objects(client) == first

    (root / "new.txt").write_text("new")
    engine.run_once()
    second = catalog_objects(client)
    assert len(second) == 1 and second != first  # the old object went to the recycle bin
    got = fetch(client, docs)
    assert got is not None and "new.txt" in {e.path for e in got.entries}

    # mirror deletes (kept as versions) and verify leave one catalog
    (root / "new.txt").unlink()
    report = engine.run_once()
    assert (report.kept_deleted, report.trashed) == (1, 0)  # kept as a version, not binned
    assert [n for n in catalog_objects(client) if n.startswith("catalog-")] != second
    assert len([n for n in catalog_objects(client) if n.startswith("catalog-")]) == 1
    assert verify(config, ledger, client)[1] == []


def test_a_local_top_level_syncagent_folder_is_skipped_with_a_reason(setup: Any) -> None:
    config, ledger, client, root = setup
    (root / CATALOG_DIR).mkdir()
    (root / CATALOG_DIR / "mine.txt").write_text("not the catalog")
    report = SyncEngine(config, ledger, client).run_once()
    reasons = {Path(p).name: r for p, r in report.skipped}
    assert reasons["mine.txt"].startswith(f"{CATALOG_DIR}/ at the top of a root is where")
    assert report.uploaded == 2  # a.txt and c:d.txt; nothing went into the catalog folder


def test_a_torn_catalog_is_refused_and_an_older_one_is_used(setup: Any, tmp_path: Path) -> None:
    config, ledger, client, _root = setup
    SyncEngine(config, ledger, client).run_once()
    docs = find_folder(client, "/backup/docs")
    assert docs is not None
    good = catalog_objects(client)[0]
    # a newer object that is torn (as if written by a crashed, non-atomic writer)
    whole = encode(Header("h", "/r", "/backup/docs", 0.0), [Entry("x", "dir")])
    torn = tmp_path / "catalog-29991231T000000000000-0000000a.jsonl.gz"
    torn.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CatalogError):
        decode(torn.read_bytes())
    client.upload(torn, docs, f"{CATALOG_DIR}/{torn.name}")
    got = fetch(client, docs)
    assert got is not None and got.name == good


def test_a_catalog_that_failed_to_publish_is_published_by_the_next_pass(
    setup: Any, emulator: Emulator
) -> None:
    config, ledger, client, root = setup
    engine = SyncEngine(config, ledger, client)
    engine.run_once()
    first = catalog_objects(client)
    (root / "a.txt").rename(root / "renamed.txt")  # a move: the catalog is the only upload
    # A failure that is not retried ("内部错误" is retried for a time budget since the robust
    # branch, and would be ridden out here).
    emulator.fail_next("upload/v2/file/single/create", code=1, message="参数错误")
    report = engine.run_once()
    assert report.moved == 1 and report.ok  # the pass itself is fine
    assert catalog_objects(client) == first
    emulator.reset_activity()
    engine.run_once()  # nothing changed locally, but the catalog is behind: published now
    assert emulator.activity()["endpoints"]["upload/v2/file/single/create"]["calls"] == 1
    docs = find_folder(client, "/backup/docs")
    assert docs is not None
    got = fetch(client, docs)
    assert got is not None and "renamed.txt" in {e.path for e in got.entries}
    emulator.reset_activity()
    engine.run_once()  # and then a no-op pass is a no-op again
    assert "upload/v2/file/single/create" not in emulator.activity()["endpoints"]


def test_a_file_deleted_locally_in_archive_mode_stays_in_the_catalog(
    setup: Any, tmp_path: Path
) -> None:
    """Archive mode keeps the cloud copy of a file deleted here (a 'gone' row): the catalog
    still lists it, so a restore brings it back."""
    config, ledger, client, root = setup
    import dataclasses

    archive = dataclasses.replace(
        config, roots=(dataclasses.replace(config.roots[0], mode="archive"),)
    )
    engine = SyncEngine(archive, ledger, client)
    engine.run_once()
    (root / "a.txt").unlink()
    (root / "b.txt").write_text("a change, so a new catalog is published")
    engine.run_once()
    docs = find_folder(client, "/backup/docs")
    assert docs is not None
    got = fetch(client, docs)
    assert got is not None
    by_path = {e.path: e for e in got.entries}
    assert "b.txt" in by_path
    kept = by_path["a.txt"]
    assert (kept.size, kept.md5, kept.state) == (5, "2c1743a391305fbf367df8e4f069f9f9", "done")
    assert kept.file_id is not None
