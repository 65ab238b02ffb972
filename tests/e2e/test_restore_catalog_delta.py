"""Restore after catalog deltas: the installed CLI backs up a tree whose catalog counts as
large (``SYNCAGENT_CATALOG_DELTA_MIN_BYTES`` lowered), several passes change a few files
each and publish deltas beside the full catalog, then a new HOME (no ledger, no state)
restores: the tree equals the original entry by entry, from base + newest delta.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from test_restore_cli import (
    REMOTE,
    assert_same_entries,
    build_hostile_tree,
    restore,
    restore_cli,
)
from test_sync_cli import SLICE, make_cli

from syncagent.catalog.keeper import MIN_BYTES_ENV
from syncagent.catalog.remote import NAME


def live_objects(emulator: Any) -> list[str]:
    """The catalog objects not in the recycle bin, read from the emulator's own store."""
    found = [
        e
        for text in ("catalog-", "delta-")
        for e in emulator.core.catalog.search(text, False, 0, 1_000_000)
    ]
    return sorted(e.name for e in found if e.type == 0 and not e.trashed and NAME.fullmatch(e.name))


def test_restore_after_several_delta_passes_gives_the_exact_tree(
    tmp_path: Path, emulator: Any
) -> None:
    emulator.configure(slice_size=SLICE)
    root = tmp_path / "root"
    root.mkdir()
    build_hostile_tree(root)
    for i in range(400):  # bulk for the catalog, nothing to upload
        (root / "bulk" / f"{i // 100}").mkdir(parents=True, exist_ok=True)
        (root / "bulk" / f"{i // 100}" / f"e{i:03d}").write_bytes(b"")
    backup = make_cli(tmp_path, emulator, [(root, REMOTE)])
    backup.env[MIN_BYTES_ENV] = "1000"
    first = backup.sync()
    assert first.returncode == 0, first.stderr[-3000:]
    [base] = live_objects(emulator)
    assert base.startswith("catalog-")

    def change(n: int) -> None:
        if n == 0:
            (root / "run.sh").write_bytes(b"#!/bin/sh\necho changed\n")
        elif n == 1:
            (root / "empty.txt").unlink()
        elif n == 2:
            (root / "报告 2024年.txt").rename(root / "报告 2025年.txt")
        else:
            (root / "new dir").mkdir()
            (root / "new dir" / "n?.txt").write_text("n")

    for n in range(4):
        change(n)
        os.utime(root, (1_000_000_000 + n, 1_000_000_000 + n))
        result = backup.sync()
        assert result.returncode == 0, result.stderr[-3000:]
        objects = live_objects(emulator)
        assert objects[0] == base and len(objects) == 2, objects
        assert objects[1].startswith("delta-")

    cli = restore_cli(tmp_path, emulator)
    ls = cli.run("ls", "--config", str(cli.config), "--root", REMOTE, "--json")
    assert ls.returncode == 0, ls.stderr
    listed = json.loads(ls.stdout)
    names = {e["path"] for e in listed["entries"]}
    assert listed["origin"] == "catalog"
    assert {"报告 2025年.txt", "new dir"} <= names  # from the newest delta
    assert not {"报告 2024年.txt", "empty.txt"} & names  # removed by deltas
    target = tmp_path / "restored"
    r = restore(cli, "--root", REMOTE, "--to", str(target))
    assert r.returncode == 0, r.stdout + r.stderr
    assert_same_entries(root, target)
