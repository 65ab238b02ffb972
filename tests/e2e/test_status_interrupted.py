"""``status`` after a pass that did not finish: the installed CLI is killed (SIGKILL) or
stopped (SIGINT) mid-pass against a slowed emulator, then a separate ``status`` must say the
pass was interrupted and count as pending exactly the files (and bytes) not yet sent.

What was sent is read from the ledger the killed process left (plain ``sqlite3``) and checked
against what the emulator holds; status must count everything else.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from conftest import Api
from test_sync_cli import Cli, make_cli, remote_files

from syncagent.emulator import Emulator

FILES = 40
DEADLINE = 120.0


def _sent(cli: Cli, pass_id: int) -> set[str]:
    """Files the ledger records as accepted by 123pan (uploaded or done) by that pass."""
    db = cli.config.parent / "state" / "ledger.sqlite3"
    if not db.exists():
        return set()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute(
            "SELECT rel_path FROM files WHERE state IN ('done', 'uploaded') AND seen_pass = ?",
            (pass_id,),
        ).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return set()
    finally:
        conn.close()
    return {str(r[0]) for r in rows}


def _wait(condition: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert proc.poll() is None, "the pass finished before it could be interrupted"
        assert time.monotonic() < deadline, "the pass never got going"
        time.sleep(0.05)


def _write(root: Path, tag: str) -> dict[str, int]:
    sizes = {}
    for i in range(FILES):
        data = f"{tag} {i} ".encode() * (200 + 37 * i)
        (root / f"f{i:02d}.txt").write_bytes(data)
        sizes[f"f{i:02d}.txt"] = len(data)
    return sizes


def test_status_after_sigkill_counts_the_unsent_new_files(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    sizes = _write(root, "first")
    cli = make_cli(tmp_path, emulator, [(root, "/backup/killed")], workers=1)
    emulator.add_latency("upload/v2/file/single/create", 0.3)
    proc = cli.popen_sync()
    try:
        _wait(lambda: len(_sent(cli, 1)) >= 3, proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    sent = _sent(cli, 1)
    assert 3 <= len(sent) < FILES
    assert sent <= set(remote_files(api, "/backup/killed"))

    status = cli.status()
    assert status["last_pass"]["state"] == "interrupted"
    [r] = status["roots"]
    left = set(sizes) - sent
    assert r["files_pending"] == len(left)
    assert r["bytes_pending"] == sum(sizes[rel] for rel in left)
    text = cli.status_text()
    assert "INTERRUPTED pass" in text and f"{len(left)} files" in text

    emulator.clear_faults()  # the next pass sends the rest; nothing is left pending
    assert cli.sync().returncode == 0
    after = cli.status()
    assert after["last_pass"]["state"] == "ok"
    assert after["roots"][0]["files_pending"] == 0
    assert after["roots"][0]["bytes_pending"] == 0


def test_status_after_ctrl_c_counts_the_unsent_replacements(
    tmp_path: Path, emulator: Emulator
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    _write(root, "first")
    cli = make_cli(tmp_path, emulator, [(root, "/backup/stopped")], workers=1)
    with cli.config.open("a", encoding="utf-8") as f:
        f.write("guard: {enabled: false}\n")  # every file changes on purpose
    assert cli.sync().returncode == 0
    time.sleep(0.01)  # (mtime granularity) the rewritten files must look changed
    sizes = _write(root, "second, longer")  # every file changes: each replaces a done copy
    emulator.add_latency("upload/v2/file/single/create", 0.3)
    proc = cli.popen_sync()
    try:
        _wait(lambda: len(_sent(cli, 2)) >= 3, proc)  # pass 2 is the one stopped
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGINT
    sent = _sent(cli, 2)
    assert 3 <= len(sent) < FILES

    status = cli.status()
    assert status["last_pass"]["state"] == "interrupted"
    [r] = status["roots"]
    left = set(sizes) - sent
    assert r["files_pending"] == len(left)
    assert r["bytes_pending"] == sum(sizes[rel] for rel in left)
    assert "INTERRUPTED pass: stopped" in cli.status_text()


def test_status_from_another_process_follows_a_running_sync(
    tmp_path: Path, emulator: Emulator
) -> None:
    """While `sync` runs, `status` shows its counts, bytes and the large file in flight
    (written by the pass's flusher, not only when a batch is verified)."""
    root = tmp_path / "root"
    root.mkdir()
    big = root / "a-big.bin"  # sent first (sorted), slowly: 24 slices of 1 MiB
    big.write_bytes(bytes(range(256)) * (24 * 4096))
    for i in range(20):
        (root / f"s{i:02d}.txt").write_text(f"small {i}\n" * 50)
    cli = make_cli(tmp_path, emulator, [(root, "/backup/live")], workers=2)
    emulator.configure(slice_size=1 << 20)
    emulator.add_latency("upload/v2/file/slice", 3.0)
    proc = cli.popen_sync()
    seen: dict[str, object] = {}
    try:

        def in_flight() -> bool:
            agent = cli.status()["agent"]
            if agent and agent.get("phase") == "uploading" and agent.get("in_flight"):
                done, total = agent["in_flight"]["a-big.bin"]
                if 0 < done < total and agent["bytes_done"] > 0:
                    seen.update(agent)
                    return True
            return False

        _wait(in_flight, proc)
        _wait(lambda: "% (" in cli.status_text(), proc)  # the text says it too
        text = cli.status_text()
        assert "agent: pid" in text and "sending a-big.bin" in text, text
        proc.communicate(timeout=DEADLINE)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert seen["files"] == 21
    assert seen["bytes"] == sum(f.stat().st_size for f in root.iterdir())
    assert cli.status()["agent"] is None  # done: nothing claims to be running
