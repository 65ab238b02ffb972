"""The ledger never believes a file is safe when it is not (issue 9, points 1, 2, 3 and 6).

Run as a user runs them: the installed CLI in a subprocess against real emulators. "Another
account" is a second emulator started by the test and reached through PAN123_CLIENT_ID,
PAN123_CLIENT_SECRET and PAN123_API_BASE, as real credentials would be.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Api
from test_sync_cli import (
    BIN,
    assert_same_tree,
    catalog_objects,
    cli_env,
    file_uploads,
    folder_id,
    local_files,
    make_cli,
    remote_files,
    summary,
)

from syncagent.emulator import Emulator

CJK = re.compile(r"[\u4e00-\u9fff]")


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def _tree(root: Path, files: dict[str, bytes]) -> dict[str, bytes]:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return local_files(root)


def _put(api: Api, remote_path: str, data: bytes) -> None:
    """A file placed on 123pan by other means (the web app, another tool)."""
    api.ok(api.single(remote_path.lstrip("/"), data, 0, containDir=True, duplicate=2))


def _received(emulator: Emulator) -> int:
    """File bytes the emulator took since its counters were reset (the root catalogs that
    syncagent publishes after a pass, see syncagent.catalog, left out)."""
    received = int(emulator.activity()["counts"].get("bytes_received", 0))
    return received - sum(e.size for e in catalog_objects(emulator) if e.id not in _OLD)


_OLD: set[int] = set()  # catalog objects made before the counters were reset


def _reset(emulator: Emulator) -> None:
    _OLD.clear()
    _OLD.update(e.id for e in catalog_objects(emulator))
    emulator.reset_activity()


def _trash(api: Api, file_id: int) -> None:
    api.ok(api.post("/api/v1/file/trash", {"fileIDs": [file_id]}))


def test_switching_from_the_embedded_emulator_to_a_real_account_sends_everything_there(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    """README: try syncagent on the embedded emulator, then set real credentials. Everything
    must arrive in the real account; files already there with the same content are adopted
    (no byte sent), the rest uploaded; the change is said on the first line."""
    root = tmp_path / "docs"
    local = _tree(
        root,
        {
            "a.txt": b"alpha " * 100,
            "b/c.txt": b"charlie " * 50,
            "d.txt": b"delta " * 70,
            "x:y.txt": b"mapped name " * 30,  # 123pan holds it as x\uff1ay.txt
        },
    )
    cli = make_cli(tmp_path, emulator, [(root, "/backup/docs")])
    cli.env = cli_env(tmp_path, None)  # no credentials: the embedded emulator
    first = cli.sync()
    assert first.returncode == 0, first.stderr[-3000:]
    assert summary(first).startswith("4 uploaded"), summary(first)

    # The real account already holds two of the files (same content) and another at the
    # path of b/c.txt with the same size but other bytes.
    _put(api, "/backup/docs/a.txt", local["a.txt"])
    _put(api, "/backup/docs/x\uff1ay.txt", local["x:y.txt"])
    _put(api, "/backup/docs/b/c.txt", b"CHARLIE " * 50)
    _reset(emulator)

    cli.env = cli_env(tmp_path, emulator)  # PAN123_CLIENT_ID/SECRET/API_BASE set
    second = cli.sync()
    assert second.returncode == 0, second.stderr[-3000:]
    first_line = second.stderr.splitlines()[0]
    assert "ledger was made for the embedded local emulator" in first_line, second.stderr
    assert emulator.api_url in first_line, first_line
    assert summary(second).startswith("2 uploaded"), summary(second)
    assert "2 files were already on 123pan with the same size and MD5: adopted" in second.stdout
    assert _received(emulator) == len(local["b/c.txt"]) + len(local["d.txt"])
    remote = assert_same_tree(
        api, "/backup/docs", {k.replace(":", "\uff1a"): v for k, v in local.items()}
    )
    assert len(remote) == 4

    third = cli.sync()
    assert summary(third).startswith("0 uploaded"), summary(third)
    assert "4 unchanged" in summary(third), summary(third)
    assert cli.status()["roots"][0]["counts"] == {"done": 4}
    verify = cli.run("verify", "--config", str(cli.config))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_first_run_adopts_what_was_uploaded_earlier_by_other_means(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    root = tmp_path / "root"
    local = _tree(root, {f"d/f{i}.txt": f"file {i}\n".encode() * 40 for i in range(10)})
    for i in range(6):
        _put(api, f"/old/d/f{i}.txt", local[f"d/f{i}.txt"])
    _reset(emulator)
    cli = make_cli(tmp_path, emulator, [(root, "/old")])
    result = cli.sync()
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary(result).startswith("4 uploaded"), summary(result)
    assert "6 files were already on 123pan" in result.stdout
    assert _received(emulator) == sum(len(local[f"d/f{i}.txt"]) for i in range(6, 10))
    assert_same_tree(api, "/old", local)
    assert cli.status()["roots"][0]["counts"] == {"done": 10}


def test_verify_against_another_account_says_so_in_plain_english(
    tmp_path: Path, emulator: Emulator
) -> None:
    root = tmp_path / "root"
    _tree(root, {"a.txt": b"a" * 10, "b.txt": b"b" * 20})
    cli = make_cli(tmp_path, emulator, [(root, "/v")])
    assert cli.sync().returncode == 0
    with Emulator.temporary(rate_limits="off", complete_pending_polls=0) as other:
        cli.env = cli_env(tmp_path, other)
        result = cli.run("verify", "--config", str(cli.config))
    assert result.returncode == 1, result.stdout + result.stderr
    assert not CJK.search(result.stdout + result.stderr), result.stdout + result.stderr
    assert "not checked: its ledger was made for the 123pan account at" in result.stdout
    assert "`syncagent sync` checks its files against this account" in result.stdout


def test_changing_a_roots_remote_folder_sends_the_files_there(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    root = tmp_path / "root"
    local = _tree(root, {"a.txt": b"1" * 10, "s/b.txt": b"2" * 20, "c.txt": b"3" * 30})
    cli = make_cli(tmp_path, emulator, [(root, "/first")])
    assert summary(cli.sync()).startswith("3 uploaded")
    cli.config.write_text(cli.config.read_text().replace('"/first"', '"/second"'))
    dry = cli.sync("--dry-run")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "remote folder changed from /first to /second" in dry.stderr
    assert "  upload (retry) s/b.txt -> s/b.txt" in dry.stdout, dry.stdout
    assert "  0 unchanged" in dry.stdout, dry.stdout
    result = cli.sync()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "remote folder changed from /first to /second" in result.stderr.splitlines()[0]
    assert summary(result).startswith("3 uploaded"), summary(result)
    assert_same_tree(api, "/second", local)
    assert_same_tree(api, "/first", local)  # the old copy is left alone


def test_a_remote_root_trashed_or_deleted_in_the_web_app_is_created_again(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    root = tmp_path / "root"
    _tree(root, {"a.txt": b"a" * 10, "s/b.txt": b"b" * 20})
    cli = make_cli(tmp_path, emulator, [(root, "/web/trashed")])
    assert summary(cli.sync()).startswith("2 uploaded")
    top = folder_id(api, "/web")
    _trash(api, top)  # the parent of the root's folder, as a user tidying up would
    (root / "new.txt").write_bytes(b"new" * 5)
    result = cli.sync()
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "is in the recycle bin with a folder above it: it is created again" in result.stderr
    assert summary(result).startswith("3 uploaded"), summary(result)
    assert_same_tree(api, "/web/trashed", local_files(root))

    # Now gone for good: trashed, then deleted from the recycle bin.
    root_folder = folder_id(api, "/web/trashed")
    _trash(api, root_folder)
    api.ok(api.post("/api/v1/file/delete", {"fileIDs": [root_folder]}))
    verify = cli.run("verify", "--config", str(cli.config))
    assert verify.returncode == 1
    assert "its 123pan folder /web/trashed is deleted: 3 files are not there" in verify.stdout
    assert not CJK.search(verify.stdout + verify.stderr), verify.stdout + verify.stderr
    # Nothing changed locally: a plain sync trusts the ledger; the remote check does not.
    result = cli.sync("--check-remote")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "is deleted: it is created again" in result.stderr
    assert summary(result).startswith("3 uploaded"), summary(result)
    assert_same_tree(api, "/web/trashed", local_files(root))
    assert cli.run("verify", "--config", str(cli.config)).returncode == 0


def test_run_notices_files_and_folders_trashed_on_123pan_and_sends_them_again(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    root = tmp_path / "root"
    local = _tree(root, {"a.txt": b"a" * 10, "sub/b.txt": b"b" * 20, "sub/c.txt": b"c" * 30})
    cli = make_cli(tmp_path, emulator, [(root, "/watched")])
    with open(cli.config, "a", encoding="utf-8") as f:
        f.write("remote_check: {interval: 1s, files: 100}\n")
    log = tmp_path / "agent.log"
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [str(BIN), "run", "--config", str(cli.config)],
            env=cli.env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait(lambda: "pass done" in log.read_text(), 60, "the startup pass")
        assert sorted(remote_files(api, "/watched")) == sorted(local)
        remote = remote_files(api, "/watched")
        _trash(api, int(remote["a.txt"]["fileId"]))
        _trash(api, folder_id(api, "/watched/sub"))
        assert sorted(remote_files(api, "/watched")) == []

        def restored() -> bool:
            return sorted(remote_files(api, "/watched")) == sorted(local)

        _wait(restored, 60, "the trashed files sent again\n" + log.read_text()[-3000:])
        assert_same_tree(api, "/watched", local)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "remote check of" in log.read_text()


@pytest.mark.parametrize("mode", ["archive", "move"])
def test_sigkill_after_uploads_were_accepted_verifies_them_instead_of_sending_again(
    tmp_path: Path, emulator: Emulator, api: Api, mode: str
) -> None:
    """Uploads are recorded the moment 123pan accepts them: a SIGKILL before their batch is
    verified costs a verification on the next run, not a second upload (and in move mode,
    the verified files are then deleted locally, as the killed pass would have done)."""
    files = 60
    workers = 2
    root = tmp_path / "root"
    local = _tree(root, {f"f{i:02d}.txt": f"content {i}\n".encode() * 9 for i in range(files)})
    emulator.add_latency("upload/v2/file/single/create", 0.1)  # the pass lasts >= 3 s
    cli = make_cli(tmp_path, emulator, [(root, "/killed")], workers=workers)
    text = cli.config.read_text()
    cli.config.write_text(text.replace('remote: "/killed"', f'remote: "/killed"\n    mode: {mode}'))
    proc = cli.popen_sync()
    try:
        _wait(
            lambda: emulator.activity()["counts"].get("single_uploads", 0) >= 20,
            60,
            "20 uploads",
        )
        assert proc.poll() is None, "the pass finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    accepted = file_uploads(emulator)
    assert accepted < files
    recorded = cli.status()["roots"][0]["counts"]
    assert recorded.get("uploaded", 0) + recorded.get("done", 0) >= accepted - workers, recorded

    emulator.clear_faults()
    result = cli.sync()
    assert result.returncode == 0, result.stderr[-3000:]
    total = file_uploads(emulator)
    # Only the uploads in flight at the kill (at most one per worker) may be sent twice.
    assert total <= files + workers, (accepted, total)
    assert_same_tree(api, "/killed", local)
    counts = cli.status()["roots"][0]["counts"]
    if mode == "move":  # files deleted locally once verified are recorded gone by a rescan
        assert set(counts) <= {"done", "gone"} and sum(counts.values()) == files, counts
        assert local_files(root) == {}
    else:
        assert counts == {"done": files}
        assert local_files(root) == local


def test_db_rebuild_recovers_a_lost_ledger_from_the_remote_without_sending_anything(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    root = tmp_path / "root"
    _tree(root, {f"d{i % 3}/f{i}.txt": f"file {i}\n".encode() * 30 for i in range(12)})
    (root / "local-only.txt").write_bytes(b"never sent")
    cli = make_cli(tmp_path, emulator, [(root, "/rebuilt")])
    assert summary(cli.sync()).startswith("13 uploaded")
    (root / "local-only.txt").write_bytes(b"changed after")  # no longer what 123pan holds
    ledger = tmp_path / "state" / "ledger.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(str(ledger) + suffix).unlink(missing_ok=True)
    ledger.write_bytes(b"this is not a database" * 100)  # a corrupt ledger
    _reset(emulator)

    result = cli.run("db", "rebuild", "--config", str(cli.config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "12 files adopted" in result.stdout, result.stdout
    assert "1 to upload" in result.stdout, result.stdout
    assert list(tmp_path.glob("state/ledger.sqlite3.corrupt-*")), "the old ledger is kept"
    status = cli.status()
    assert status["roots"][0]["counts"] == {"done": 12}, status

    again = cli.sync()
    assert again.returncode == 0, again.stderr[-3000:]
    assert summary(again).startswith("1 uploaded"), summary(again)
    assert _received(emulator) == len(b"changed after")
    assert_same_tree(api, "/rebuilt", local_files(root))
