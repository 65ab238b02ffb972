"""syncagent's own parts failing under it: the ledger, the state dir, the 123pan token call.

Each test runs the installed CLI as a user would, against an emulator in the test process, and
checks what the user sees: the exit status, a message that names the real culprit (the ledger
or the state dir, never a file being backed up), no traceback, and that a later run works.
"""

from __future__ import annotations

import resource
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Api
from test_run_agent import _config, _log, _start, _stop, _uploaded, _wait
from test_sync_cli import Cli, assert_same_tree, cli_env, make_cli, summary
from test_sync_hostile import unreadable_launcher

from syncagent.emulator import Emulator

FILES = 12


def small_tree(root: Path, n: int = FILES, prefix: str = "f") -> dict[str, bytes]:
    root.mkdir(exist_ok=True)
    made = {}
    for i in range(n):
        data = f"{prefix} {i} {root}\n".encode() * (i + 1)
        (root / f"{prefix}{i:02d}.txt").write_bytes(data)
        made[f"{prefix}{i:02d}.txt"] = data
    return made


def setup(tmp_path: Path, emulator: Emulator) -> tuple[Cli, Path, dict[str, bytes]]:
    root = tmp_path / "root"
    files = small_tree(root)
    return make_cli(tmp_path, emulator, [(root, "/backup")]), root, files


def ledger_file(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ledger.sqlite3"


def run_with(
    cli: Cli, *args: str, preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli.argv(*args, "--config", str(cli.config)),
        env=cli.env,
        cwd=cli.cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=120,
        check=False,
        preexec_fn=preexec,
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 1, a message holding ``words``, no traceback, and no file blamed for it."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert "FAILED" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


def tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return sorted(r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'"))


# -- the ledger ---------------------------------------------------------------------------


def test_a_first_upgrade_cut_short_by_a_full_disk_leaves_no_half_schema(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    """The disk fills up halfway through the first ``db upgrade`` (a file size limit stands in
    for a tiny filesystem): nothing is left half-made, and once there is room, it all works."""
    cli, _, files = setup(tmp_path, emulator)

    def tiny_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))

    cut = run_with(cli, "db", "upgrade", preexec=tiny_disk)
    assert cut.returncode == 1, (cut.stdout, cut.stderr)
    assert str(ledger_file(tmp_path)) in cut.stderr and "Traceback" not in cut.stderr
    assert tables(ledger_file(tmp_path)) == []  # all or nothing: nothing

    first = cli.sync()
    assert first.returncode == 0, first.stderr
    assert summary(first).startswith(f"{FILES} uploaded")
    assert_same_tree(api, "/backup", files)


def test_a_ledger_half_made_by_an_older_syncagent_is_made_again(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    """What a kill during the first upgrade left before migrations were one transaction: the
    version table and ``kv``, both empty. It used to fail with "table kv already exists"."""
    cli, _, files = setup(tmp_path, emulator)
    ledger_file(tmp_path).parent.mkdir()
    with sqlite3.connect(ledger_file(tmp_path)) as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        db.execute("CREATE TABLE kv (key VARCHAR(64) NOT NULL PRIMARY KEY, value TEXT NOT NULL)")
    result = cli.sync()
    assert result.returncode == 0, result.stderr
    assert summary(result).startswith(f"{FILES} uploaded")
    assert_same_tree(api, "/backup", files)
    assert cli.status()["roots"][0]["counts"] == {"done": FILES}


def test_a_garbled_ledger_page_is_reported_naming_the_ledger(
    tmp_path: Path, emulator: Emulator
) -> None:
    cli, _, _ = setup(tmp_path, emulator)
    assert cli.sync().returncode == 0
    path = ledger_file(tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'files'").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
    with open(path, "r+b") as f:
        f.seek((page - 1) * size)
        f.write(b"\x55" * size)
    for command in ("sync", "status"):
        result = run_with(cli, command)
        assert_clean_failure(result, str(path), "damaged")


@pytest.mark.slow
def test_a_ledger_locked_by_another_program_for_a_while_is_waited_for(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    """Another program holds the ledger's write lock for longer than SQLite's own wait
    (10 s; syncagent says it is waiting only once that is over): the pass waits it out
    instead of exiting 1."""
    cli, root, files = setup(tmp_path, emulator)
    assert cli.sync().returncode == 0
    files |= small_tree(root, 5, prefix="new")
    holder = sqlite3.connect(ledger_file(tmp_path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    proc = cli.popen_sync()
    err: list[str] = []
    waiting = threading.Event()

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err.append(line)
            if "is locked by another program; waiting" in line:
                waiting.set()

    reader = threading.Thread(target=read_stderr)
    reader.start()
    try:
        # Past SQLite's own 10 s wait (the old code exited 1 here), and a little more.
        _wait(lambda: waiting.is_set() or proc.poll() is not None, 90)
        assert proc.poll() is None, "".join(err)
        time.sleep(1.0)
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert proc.stdout is not None
    out = proc.stdout.read()
    assert proc.wait(timeout=120) == 0, "".join(err)
    reader.join(timeout=30)
    assert out.strip().splitlines()[-1].startswith("5 uploaded"), out
    assert_same_tree(api, "/backup", files)


@pytest.mark.slow
def test_the_agent_outlives_a_ledger_locked_by_another_program_for_a_while(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    """The agent used to exit 1 when a change arrived while another program held the
    ledger's write lock for longer than SQLite's own wait (10 s)."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "first.txt").write_text("first")
    config = _config(tmp_path, root)
    proc = _start(config, cli_env(tmp_path, emulator), tmp_path)
    try:
        _wait(lambda: "first.txt" in _uploaded(api), 60)
        _wait(lambda: "pass done" in _log(config), 30)
        holder = sqlite3.connect(
            tmp_path / "state" / "ledger.sqlite3", isolation_level=None, check_same_thread=False
        )
        holder.execute("BEGIN IMMEDIATE")
        try:
            (root / "second.txt").write_text("second")
            _wait(lambda: "is locked by another" in _log(config) or proc.poll() is not None, 60)
            time.sleep(12)  # past SQLite's own 10 s wait: the agent must still be there
            assert proc.poll() is None, _log(config)
        finally:
            holder.execute("COMMIT")
            holder.close()
        _wait(lambda: "second.txt" in _uploaded(api), 60)
        assert "Traceback" not in _log(config)
    finally:
        _stop(proc)


# -- the state dir --------------------------------------------------------------------------


def test_a_state_dir_blocked_by_a_file_is_named(tmp_path: Path, emulator: Emulator) -> None:
    cli, _, _ = setup(tmp_path, emulator)
    (tmp_path / "state").write_text("not a folder")
    result = run_with(cli, "sync")
    assert_clean_failure(result, str(tmp_path / "state"))


def test_a_read_only_state_dir_is_named(tmp_path: Path, emulator: Emulator) -> None:
    cli, _, _ = setup(tmp_path, emulator)
    (tmp_path / "state").mkdir()
    (tmp_path / "state").chmod(0o555)
    cli.wrapper = unreadable_launcher()  # root ignores modes: drop that power
    try:
        result = run_with(cli, "sync")
    finally:
        (tmp_path / "state").chmod(0o755)
    assert_clean_failure(result, str(tmp_path / "state"), "Permission denied")


def test_a_state_dir_with_no_room_for_the_pid_still_backs_up(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    """``agent.lock`` on a full disk (``/dev/full`` answers every write with ENOSPC): the
    lock holds all the same, the PID is only for messages."""
    cli, _, files = setup(tmp_path, emulator)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "agent.lock").symlink_to("/dev/full")
    result = cli.sync()
    assert result.returncode == 0, result.stderr
    assert "cannot write the PID" in result.stderr and "No space left" in result.stderr
    assert "Traceback" not in result.stderr
    assert_same_tree(api, "/backup", files)


@pytest.mark.parametrize("when", ["first run", "later run"])
def test_a_token_that_cannot_be_kept_is_blamed_on_the_state_dir_not_on_the_files(
    tmp_path: Path, emulator: Emulator, when: str
) -> None:
    """``token.json`` is a folder. On a later run the token is fetched by an upload worker,
    where the error used to be recorded against each file ("cannot be read: Is a directory").
    The message names the token's path, and no file is recorded as failed."""
    cli, root, _ = setup(tmp_path, emulator)
    token = tmp_path / "state" / "account" / "token.json"
    if when == "later run":
        assert cli.sync().returncode == 0  # the remote root is known from now on
        token.unlink()
        small_tree(root, 4, prefix="new")
    token.mkdir(parents=True)
    result = run_with(cli, "sync")
    assert_clean_failure(result, str(token), "Is a directory")
    counts = cli.status()["roots"][0]["counts"]
    assert "failed" not in counts, counts


# -- 123pan's transient errors ----------------------------------------------------------------


def test_one_transient_internal_error_from_access_token_does_not_stop_the_sync(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    cli, _, files = setup(tmp_path, emulator)
    emulator.fail_next("api/v1/access_token", code=1)  # "内部错误", not about the credentials
    result = cli.sync()
    assert result.returncode == 0, result.stderr
    assert summary(result).startswith(f"{FILES} uploaded")
    assert emulator.activity()["faults_injected"] == 1
    assert_same_tree(api, "/backup", files)


def test_wrong_credentials_still_stop_the_sync_at_once(tmp_path: Path, emulator: Emulator) -> None:
    cli, _, _ = setup(tmp_path, emulator)
    cli.env["PAN123_CLIENT_SECRET"] = "wrong"
    result = cli.sync()
    assert result.returncode == 3  # refused credentials have their own exit status
    assert "123pan refused the client ID or secret" in result.stderr
    assert emulator.activity()["endpoints"]["api/v1/access_token"]["calls"] == 1


def test_internal_errors_on_uploads_are_retried_not_recorded_as_failures(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    cli, _, files = setup(tmp_path, emulator)
    emulator.fail_next("upload/v2/file/single/create", times=6, code=1)  # "内部错误"
    result = cli.sync()
    assert result.returncode == 0, result.stderr
    assert summary(result).startswith(f"{FILES} uploaded"), summary(result)
    assert emulator.activity()["faults_injected"] == 6
    assert_same_tree(api, "/backup", files)
