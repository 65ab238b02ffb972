"""Catalog deltas in-process, against the emulator: a large root's first catalog is full,
later passes that change a few files publish a small delta beside it (never trashing its
base), a reader gets the exact tree by merging, compaction writes a new full catalog, and a
delta whose base is gone, or a torn one, never gives a wrong tree.

"Large" is lowered through ``SYNCAGENT_CATALOG_DELTA_MIN_BYTES`` (a documented setting) so
that a tree of ~1,000 empty files (nothing to upload) stands for 100,000 files.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_support import ledger_and_client

from syncagent.catalog import CATALOG_DIR
from syncagent.catalog.keeper import MIN_BYTES_ENV
from syncagent.catalog.remote import fetch, find_folder
from syncagent.config import validate
from syncagent.emulator import Emulator
from syncagent.engine import SyncEngine
from syncagent.pan123 import Pan123Client

EMPTIES = 1000


@pytest.fixture
def setup(
    emulator: Emulator, tmp_path: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    monkeypatch.setenv(MIN_BYTES_ENV, "2000")
    root = tmp_path / "docs"
    for i in range(EMPTIES):
        sub = root / f"group{i // 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"empty-{i:04d}").write_bytes(b"")
    (root / "a.txt").write_text("alpha")
    (root / "b:c.txt").write_text("mapped")
    (root / "link").symlink_to("a.txt")
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
    with ledger_and_client(emulator, tmp_path / "state", config.ledger_url) as (ledger, client):
        yield SyncEngine(config, ledger, client), client, root


def objects(client: Pan123Client) -> list[str]:
    folder = find_folder(client, f"/backup/docs/{CATALOG_DIR}")
    if folder is None:
        return []
    return sorted(f.name for f in client.list_folder(folder) if not f.is_folder)


def local_tree(root: Path) -> dict[str, tuple[Any, ...]]:
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = os.lstat(path)
            kind = "symlink" if stat.S_ISLNK(st.st_mode) else "dir" if path.is_dir() else "file"
            size = st.st_size if kind == "file" else 0
            out[path.relative_to(root).as_posix()] = (kind, size, st.st_mtime_ns)
    return out


def fetched_tree(client: Pan123Client) -> tuple[str, dict[str, tuple[Any, ...]]]:
    docs = find_folder(client, "/backup/docs")
    assert docs is not None
    got = fetch(client, docs)
    assert got is not None
    return got.name, {e.path: (e.kind, e.size, e.mtime_ns) for e in got.entries}


def test_deltas_follow_a_full_catalog_and_merge_to_the_exact_tree(setup: Any) -> None:
    engine, client, root = setup
    engine.run_once()
    [base] = objects(client)
    assert base.startswith("catalog-")
    for step in range(3):  # a few passes that change one or two files each
        (root / "a.txt").write_text(f"alpha {step}")
        (root / f"new-{step}.txt").write_text(f"new {step}")
        if step == 1:
            (root / "b:c.txt").unlink()
        report = engine.run_once()
        assert report.ok
        names = objects(client)
        assert names[0] == base and len(names) == 2, names  # base kept, one live delta
        assert names[1].startswith("delta-")
        name, tree = fetched_tree(client)
        assert name == names[1]
        assert tree == local_tree(root)
    # many changes: the delta would pass the fraction, so a new full catalog replaces all
    for i in range(0, EMPTIES, 2):
        os.utime(root / f"group{i // 100:02d}" / f"empty-{i:04d}", ns=(i, i))
    engine.run_once()
    [compacted] = objects(client)
    assert compacted.startswith("catalog-") and compacted != base
    assert fetched_tree(client) == (compacted, local_tree(root))
    (root / "a.txt").write_text("after compaction")
    engine.run_once()
    assert [n[:6] for n in objects(client)] == ["catalo", "delta-"]
    assert objects(client)[0] == compacted
    assert fetched_tree(client)[1] == local_tree(root)


def test_a_delta_whose_base_is_gone_or_that_is_torn_never_gives_a_wrong_tree(
    setup: Any, tmp_path: Path
) -> None:
    engine, client, root = setup
    engine.run_once()
    (root / "a.txt").write_text("changed once")
    engine.run_once()
    base, delta = objects(client)
    good = local_tree(root)
    docs = find_folder(client, "/backup/docs")
    folder = find_folder(client, f"/backup/docs/{CATALOG_DIR}")
    assert docs is not None and folder is not None

    # a torn newer delta: passed over for the good one
    torn = tmp_path / "delta-29991231T000000000000-0000000a.jsonl.gz"
    torn.write_bytes((tmp_path / "state").joinpath("nothing").as_posix().encode())
    client.upload(torn, docs, f"{CATALOG_DIR}/{torn.name}")
    assert fetched_tree(client) == (delta, good)
    ids = {f.name: f.file_id for f in client.list_folder(folder)}
    client.trash([ids[torn.name]])

    # the base vanishes (trashed in the web app): the delta alone is never read as a tree
    client.trash([ids[base]])
    assert objects(client) == [delta]
    assert fetch(client, docs) is None  # restore falls back to the listing, never a wrong tree

    # the next pass that changes something notices, and publishes a full catalog again
    (root / "a.txt").write_text("changed twice")
    engine.run_once()
    [full] = objects(client)
    assert full.startswith("catalog-")
    assert fetched_tree(client) == (full, local_tree(root))
