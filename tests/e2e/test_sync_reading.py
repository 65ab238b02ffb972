"""How ``syncagent`` reads and waits on a local file, run as a user runs it: the installed CLI
(``sync`` and ``run``) in a subprocess against an emulator in the test process.

- A file swapped for a link (to a file outside the root) or a FIFO while the pass waits for it
  to settle: nothing from outside the root reaches 123pan, nothing blocks, the pass ends.
- SIGTERM during the quiet wait ends ``sync`` and ``run`` at once, and nothing is sent after it.
- A file with an mtime in the future is sent once it has held still for the quiet window.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Api, md5
from test_sync_cli import BIN, Cli, folder_id, make_cli, remote_files, summary, upload_calls

from syncagent.emulator import Emulator

REMOTE = "/backup/reading"
MARKER = b"OUTSIDE-THE-ROOT-"  # in every byte of the outside files; must never reach 123pan


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``predicate`` held; fails after ``timeout``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def _quiet(cli: Cli, quiet: str) -> None:
    """Give the CLI's config a quiet window."""
    text = cli.config.read_text(encoding="utf-8")
    assert "stability: {quiet: 0s}" in text
    cli.config.write_text(text.replace("quiet: 0s", f"quiet: {quiet}"), encoding="utf-8")


def _popen(cli: Cli, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    """The CLI running ``args``; its output goes to a file (a pipe nobody reads can fill)."""
    out = cli.cwd / f"{args[0]}-{time.monotonic_ns()}.log"
    with open(out, "wb") as f:
        proc = subprocess.Popen(
            [str(BIN), *args, "--config", str(cli.config)],
            env=cli.env,
            cwd=cli.cwd,
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    return proc, out


def _text(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")


def _remote_root_exists(api: Api) -> bool:
    try:
        folder_id(api, REMOTE)
    except AssertionError:
        return False
    return True


def _emulator_holds(emulator: Emulator, needle: bytes) -> list[str]:
    """Every file of the emulator's data (stored blobs, slice parts, incoming bodies, its
    database) that contains ``needle``."""
    found = []
    for path in Path(emulator.settings.data_dir).rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            found.append(str(path))
    return found


@pytest.fixture
def stopper() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test started: killed if the test left them running."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_link_or_fifo_swapped_in_during_the_quiet_wait_is_not_read_and_the_pass_ends(
    tmp_path: Path,
    emulator: Emulator,
    api: Api,
    stopper: list[subprocess.Popen[bytes]],
) -> None:
    emulator.configure(slice_size=64 * 1024)
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    small_secret = MARKER * 10
    big_secret = MARKER * (400 * 1024 // len(MARKER))  # chunked: over the 256 KiB threshold
    (outside / "shadow").write_bytes(small_secret)
    (outside / "shadow.bin").write_bytes(big_secret)
    (root / "plain.txt").write_bytes(b"an ordinary file\n")
    victims = {
        "victim.txt": b"victim\n",
        "victim.bin": os.urandom(300 * 1024),
        "pipe.txt": b"becomes a FIFO\n",
    }
    for name, data in victims.items():
        (root / name).write_bytes(data)

    # The victims are written to until the swap, so the pass cannot have read them before it:
    # the swap happens while the pass waits for them to hold still.
    swapped = threading.Event()

    def keep_writing() -> None:
        while not swapped.is_set():
            for name in victims:
                with open(root / name, "ab") as f:
                    f.write(b".")
            time.sleep(0.1)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        cli = make_cli(tmp_path, emulator, [(root, REMOTE)])
        _quiet(cli, "2s")
        proc, log = _popen(cli, "sync")
        stopper.append(proc)
        # The remote root is made after the plan, just before the workers start waiting.
        _wait(lambda: _remote_root_exists(api), 60, "the pass reaches its uploads")
        _wait(lambda: "to hold still" in _text(log), 30, "a worker waits for a victim")
    finally:
        swapped.set()
        writer.join()
    for name in ("victim.txt", "victim.bin", "pipe.txt"):
        (root / name).unlink()
    (root / "victim.txt").symlink_to(outside / "shadow")
    (root / "victim.bin").symlink_to(outside / "shadow.bin")
    os.mkfifo(root / "pipe.txt")

    try:
        code = proc.wait(timeout=60)  # a FIFO opened for reading would block here for good
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
            ended = "SIGTERM ended it"
        except subprocess.TimeoutExpired:
            ended = "SIGTERM did not end it"
        raise AssertionError(f"the pass never ended ({ended}):\n{_text(log)[-3000:]}") from None
    output = _text(log)
    assert code == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]

    # Nothing from outside the root reached 123pan: not as a file, not in a slice.
    assert _emulator_holds(emulator, MARKER) == [], output[-3000:]
    remote = remote_files(api, REMOTE)
    assert sorted(remote) == ["plain.txt"], (sorted(remote), output[-3000:])
    assert remote["plain.txt"]["etag"] == md5(b"an ordinary file\n")
    problems = {p["path"]: (p["state"], p["reason"]) for p in cli.status()["roots"][0]["problems"]}
    assert problems == {
        "victim.txt": ("skipped", "symbolic link (not followed)"),
        "victim.bin": ("skipped", "symbolic link (not followed)"),
        "pipe.txt": ("skipped", "named pipe (FIFO): only regular files are backed up"),
    }, problems
    # The next pass agrees with the recorded skips: nothing to do, nothing read.
    again = cli.sync(timeout=60)
    assert again.returncode == 0, again.stderr[-3000:]
    assert summary(again).startswith("0 uploaded"), summary(again)
    assert _emulator_holds(emulator, MARKER) == []


def test_sigterm_during_the_quiet_wait_stops_sync_at_once_and_nothing_is_sent(
    tmp_path: Path,
    emulator: Emulator,
    api: Api,
    stopper: list[subprocess.Popen[bytes]],
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "fresh.txt").write_bytes(b"just written\n")
    cli = make_cli(tmp_path, emulator, [(root, REMOTE)])
    _quiet(cli, "60s")
    proc, log = _popen(cli, "sync")
    stopper.append(proc)
    _wait(lambda: "to hold still" in _text(log), 60, "the worker waits for fresh.txt")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"SIGTERM did not stop sync:\n{_text(log)[-3000:]}") from None
    took = time.monotonic() - t0
    assert took < 5, f"sync took {took:.1f} s to stop"
    assert code == 128 + signal.SIGTERM, _text(log)[-3000:]
    assert sum(upload_calls(emulator).values()) == 0, upload_calls(emulator)
    # Nothing is lost: the next pass (no quiet window) sends it.
    cli.config.write_text(
        cli.config.read_text(encoding="utf-8").replace("quiet: 60s", "quiet: 0s"), "utf-8"
    )
    again = cli.sync(timeout=60)
    assert again.returncode == 0, again.stderr[-3000:]
    assert remote_files(api, REMOTE)["fresh.txt"]["etag"] == md5(b"just written\n")


def test_sigterm_during_the_quiet_wait_stops_run_at_once_and_nothing_is_sent(
    tmp_path: Path,
    emulator: Emulator,
    stopper: list[subprocess.Popen[bytes]],
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "fresh.txt").write_bytes(b"just written\n")
    cli = make_cli(tmp_path, emulator, [(root, REMOTE)])
    _quiet(cli, "60s")
    proc, log = _popen(cli, "run")
    stopper.append(proc)
    # The startup pass finds the file fresh and waits for it to hold still.
    _wait(lambda: "to hold still" in _text(log), 60, "the startup pass waits for fresh.txt")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"SIGTERM did not stop run:\n{_text(log)[-3000:]}") from None
    took = time.monotonic() - t0
    assert took < 5, f"run took {took:.1f} s to stop"
    assert code == 0, _text(log)[-3000:]
    assert sum(upload_calls(emulator).values()) == 0, upload_calls(emulator)


def test_a_file_with_an_mtime_in_the_future_is_sent_after_the_quiet_window(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    future = root / "from-the-future.txt"
    future.write_bytes(b"written on a machine whose clock runs a day ahead\n")
    ahead = time.time() + 86400
    os.utime(future, (ahead, ahead))
    cli = make_cli(tmp_path, emulator, [(root, REMOTE)])
    _quiet(cli, "1s")
    t0 = time.monotonic()
    result = cli.sync(timeout=60)  # before: the worker slept until the mtime, a day
    took = time.monotonic() - t0
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary(result).startswith("1 uploaded"), summary(result)
    assert took < 30, f"sync took {took:.1f} s"
    warnings = [line for line in result.stderr.splitlines() if "in the future" in line]
    assert len(warnings) == 1 and "from-the-future.txt" in warnings[0], result.stderr[-3000:]
    remote = remote_files(api, REMOTE)
    assert remote["from-the-future.txt"]["etag"] == md5(future.read_bytes())
