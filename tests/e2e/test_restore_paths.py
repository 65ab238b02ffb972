"""``syncagent restore``'s fast paths, through the installed CLI against the emulator: a file
big enough to be fsynced on its own (written with O_DIRECT), one big enough for the writer
thread but placed in a batch, and many small files placed in syncfs-then-rename batches all
come back exactly; and neither ``restore`` nor ``ls`` imports SQLAlchemy (they open no
ledger, and its import is a large part of a small restore's start-up)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from test_restore_cli import REMOTE, assert_same_entries, restore, restore_cli
from test_sync_cli import make_cli

from syncagent.pan123.download import PART_SUFFIX, THREADED
from syncagent.restore.execute import FSYNC_EACH


def _imported(stderr: str) -> set[str]:
    """Top-level packages named in ``PYTHONPROFILEIMPORTTIME`` lines."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_large_and_small_files_come_back_and_restore_never_imports_sqlalchemy(
    tmp_path: Path, emulator: Any
) -> None:
    root = tmp_path / "root"
    (root / "many").mkdir(parents=True)
    (root / "big.bin").write_bytes(os.urandom(FSYNC_EACH + 12345))
    (root / "middle.bin").write_bytes(os.urandom(THREADED + 4096 * 3 + 7))
    for i in range(80):
        (root / "many" / f"f{i:02d}.txt").write_bytes(os.urandom(i * 97))
    os.utime(root / "big.bin", (1_000_000_000, 1_000_000_000))
    os.chmod(root / "middle.bin", 0o640)
    assert make_cli(tmp_path, emulator, [(root, REMOTE)]).sync(timeout=300).returncode == 0

    cli = restore_cli(tmp_path, emulator)
    cli.env["PYTHONPROFILEIMPORTTIME"] = "1"
    target = tmp_path / "restored"
    r = restore(cli, "--root", REMOTE, "--to", str(target), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    imported = _imported(r.stderr)
    assert "syncagent" in imported and "requests" in imported  # the lines were read
    assert "sqlalchemy" not in imported
    assert "81 restored" in r.stdout and "1 empty files" in r.stdout  # f00 is empty
    assert_same_entries(root, target)
    assert not list(target.rglob(f"*{PART_SUFFIX}"))

    ls = cli.run("ls", "--config", str(cli.config), "--root", REMOTE, "--long")
    assert ls.returncode == 0, ls.stderr[-3000:]
    assert "big.bin" in ls.stdout
    assert "sqlalchemy" not in _imported(ls.stderr)
