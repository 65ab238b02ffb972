"""A backed-up link that points outside the restore folder, through the installed CLI: by
default it is reported (``refused``, exit 1) and not created, everything else is
restored; with ``--symlinks-outside`` it is created with its exact target (exit 0)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from test_restore_cli import REMOTE, restore, restore_cli
from test_sync_cli import make_cli


def test_a_link_outside_is_reported_and_made_only_when_asked(tmp_path: Path, emulator: Any) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "data.txt").write_bytes(b"data\n")
    (root / "abs").symlink_to("/etc/hostname")
    (root / "sub" / "up").symlink_to("../../elsewhere/x")
    (root / "sub" / "inside").symlink_to("../sub/data.txt")
    assert make_cli(tmp_path, emulator, [(root, REMOTE)]).sync().returncode == 0

    cli = restore_cli(tmp_path, emulator)
    target = tmp_path / "restored"
    r = restore(cli, "--root", REMOTE, "--to", str(target))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "refused abs:" in r.stderr and "refused sub/up:" in r.stderr
    assert "2 refused" in r.stdout
    assert not os.path.lexists(target / "abs") and not os.path.lexists(target / "sub" / "up")
    assert (target / "sub" / "data.txt").read_bytes() == b"data\n"
    assert os.readlink(target / "sub" / "inside") == "../sub/data.txt"

    asked = restore(cli, "--root", REMOTE, "--to", str(target), "--symlinks-outside")
    assert asked.returncode == 0, asked.stdout + asked.stderr
    assert os.readlink(target / "abs") == "/etc/hostname"
    assert os.readlink(target / "sub" / "up") == "../../elsewhere/x"
    assert not (tmp_path / "elsewhere").exists()  # made as a link, never written through
