"""`sync -v` logs each decision with its reason (upload new/changed, a retry with what went wrong
last time, skip, move, unchanged);
without -v none of those lines is written."""

from __future__ import annotations

import time
from pathlib import Path

from test_sync_cli import make_cli

from syncagent.emulator import Emulator


def test_v_logs_why_each_file_is_uploaded_skipped_or_moved(
    tmp_path: Path, emulator: Emulator
) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "edited.txt").write_text("first")
    (root / "old-name.txt").write_text("renamed later")
    cli = make_cli(tmp_path, emulator, [(root, "/backup/docs")])
    first = cli.sync()
    assert first.returncode == 0
    assert "decision:" not in first.stderr  # not without -v

    time.sleep(0.01)
    (root / "edited.txt").write_text("second, longer")
    (root / "new.txt").write_text("new")
    (root / "empty.txt").write_text("")
    (root / "old-name.txt").rename(root / "new-name.txt")
    result = cli.sync("-v")
    assert result.returncode == 0, result.stderr
    log = result.stderr
    assert f"decision: upload {root}/new.txt: new: not backed up before" in log, log
    assert f"decision: upload {root}/edited.txt: changed: its size or modification" in log
    assert f"decision: skip {root}/empty.txt: 0-byte file" in log
    assert f"decision: move {root}/old-name.txt -> new-name.txt: same content" in log
    assert f"decision: {root}: 0 unchanged" in log

    again = cli.sync("-v")  # nothing to decide: the no-op pass says so (syncagent/noop.py)
    assert again.returncode == 0
    said = again.stderr
    assert (
        f"decision: {root}: 4 unchanged (not sent)" in said or "nothing changed in 4 files" in said
    )


def test_v_says_why_a_file_is_retried(tmp_path: Path, emulator: Emulator) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "refused.txt").write_text("refused the first time")
    cli = make_cli(tmp_path, emulator, [(root, "/backup/docs")])
    emulator.fail_next("upload/v2/file/single/create", 1, code=2, message="文件名非法")
    first = cli.sync()
    assert first.returncode != 0 and "refused.txt" in first.stderr, first.stderr
    again = cli.sync("-v")  # an explicit sync retries failed files at once
    assert again.returncode == 0, again.stderr
    assert (
        f"decision: upload {root}/refused.txt: retry: an earlier upload failed or did not "
        "finish (last time: 文件名非法" in again.stderr
    ), again.stderr
