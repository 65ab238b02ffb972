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
from test_sync_cli import (
    BIN,
    Cli,
    file_uploads,
    folder_id,
    make_cli,
    remote_files,
    summary,
    upload_calls,
)

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
        _quiet(cli, "3s")  # the victims keep changing for up to 3 waits of 3 s
        proc, log = _popen(cli, "sync")
        stopper.append(proc)
        # The remote root is made after the plan, just before the workers start waiting.
        _wait(lambda: _remote_root_exists(api), 60, "the pass reaches its uploads")
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
    # The remote root is made after the plan, just before the worker starts its wait.
    _wait(lambda: _remote_root_exists(api), 60, "the pass reaches its uploads")
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
    api: Api,
    stopper: list[subprocess.Popen[bytes]],
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "fresh.txt").write_bytes(b"just written\n")
    cli = make_cli(tmp_path, emulator, [(root, REMOTE)])
    _quiet(cli, "60s")
    proc, log = _popen(cli, "run")
    stopper.append(proc)
    # The startup pass finds the file fresh, makes the remote root, and waits for the file.
    _wait(lambda: _remote_root_exists(api), 60, "the startup pass reaches its uploads")
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


def test_same_size_and_mtime_with_new_content_is_sent_and_a_chmod_only_rehashes(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_bytes(b"first content\n")
    (root / "b.txt").write_bytes(b"stays as it is\n")
    cli = make_cli(tmp_path, emulator, [(root, REMOTE)])
    first = cli.sync(timeout=60)
    assert summary(first).startswith("2 uploaded"), (summary(first), first.stderr[-3000:])

    # `cp -p` / `tar x` / `touch -r`: new bytes, the same size, the old mtime.
    before = (root / "a.txt").stat()
    (root / "a.txt").write_bytes(b"other content\n")
    os.utime(root / "a.txt", ns=(before.st_atime_ns, before.st_mtime_ns))
    after = (root / "a.txt").stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    second = cli.sync(timeout=60)
    assert second.returncode == 0, second.stderr[-3000:]
    assert summary(second).startswith("1 uploaded"), summary(second)
    assert summary(second).endswith("hashed 1 files"), summary(second)
    remote = remote_files(api, REMOTE)
    assert remote["a.txt"]["etag"] == md5(b"other content\n")
    assert api.download(int(remote["a.txt"]["fileId"])) == b"other content\n"

    # Only the ctime moves (a chmod): hashed once, no file sent, then never hashed again.
    sent = file_uploads(emulator)
    (root / "b.txt").chmod(0o600)
    third = cli.sync(timeout=60)
    assert third.returncode == 0, third.stderr[-3000:]
    assert summary(third).startswith("0 uploaded"), summary(third)
    assert summary(third).endswith("hashed 1 files"), summary(third)
    fourth = cli.sync(timeout=60)
    assert summary(fourth).startswith("0 uploaded"), summary(fourth)
    assert summary(fourth).endswith("hashed 0 files"), summary(fourth)
    assert file_uploads(emulator) == sent  # only the catalog (the new mode) went up
    assert cli.status()["roots"][0]["counts"] == {"done": 2}


def _write_name(folder: Path, name: bytes, data: bytes) -> None:
    with open(os.path.join(os.fsencode(folder), name), "wb") as f:
        f.write(data)


def test_a_real_name_like_an_escaped_one_is_backed_up_beside_a_name_not_in_utf8(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    for folder in (root, root / "sub"):
        (folder / "esc\\xff.txt").write_bytes(b"a real name: backslash, x, f, f\n")
        _write_name(folder, b"esc\xff.txt", b"a name that is not UTF-8\n")
    cli = make_cli(tmp_path, emulator, [(root, REMOTE)])
    for _ in range(2):  # the second pass must agree with the first
        result = cli.sync(timeout=60)
        assert result.returncode == 0, result.stderr[-3000:]
        remote = remote_files(api, REMOTE)
        # (a backslash is mapped to its full-width look-alike on 123pan)
        assert sorted(remote) == ["esc＼xff.txt", "sub/esc＼xff.txt"], sorted(remote)
        status = cli.status()["roots"][0]
        assert status["counts"] == {"done": 2, "skipped": 2}, status["counts"]
        problems = {p["path"]: (p["state"], p["reason"]) for p in status["problems"]}
        assert problems == {
            "esc\\xff.txt/": ("skipped", "name is not valid UTF-8"),
            "sub/esc\\xff.txt/": ("skipped", "name is not valid UTF-8"),
        }, problems
    assert summary(result).startswith("0 uploaded"), summary(result)


def _mkdirs_below(folder: Path, names: list[str]) -> int:
    """Make the nested folders ``names`` below ``folder`` (deeper than a path may be, so
    each is made relative to the one above it); returns a descriptor of the last one."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    for name in names:
        os.mkdir(name, dir_fd=fd)
        next_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = next_fd
    return fd


def _write_at(fd: int, name: str, data: bytes) -> None:
    file_fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    try:
        os.write(file_fd, data)
    finally:
        os.close(file_fd)


def test_paths_beyond_path_max_and_files_over_10_gb_are_skipped_unread_with_a_reason(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.txt").write_bytes(b"fine\n")
    # Folders of 200-byte names (201 bytes of path each) until a 250-byte file name below
    # them no longer fits in PATH_MAX, whatever the length of the temp dir; the deepest
    # folder's own path still fits.
    depth = -(-(4096 - 251 - len(os.fsencode(root))) // 201)
    assert len(os.fsencode(root)) + depth * 201 < 4096
    names = [f"{i:03d}" + "d" * 197 for i in range(depth)]
    fd = _mkdirs_below(root, names)
    try:
        long_name = "f" * 250
        deep_rel = "/".join([*names, long_name])
        assert len(os.fsencode(root)) + 1 + len(deep_rel) >= 4096
        _write_at(fd, long_name, b"too deep to open by its path\n")
        os.mkdir("x" * 250, dir_fd=fd)  # a folder whose own path is too long
    finally:
        os.close(fd)
    with open(root / "huge.bin", "wb") as f:
        f.truncate(10_000_000_001)  # sparse: takes no space, but 10 GB to read
    cli = make_cli(tmp_path, emulator, [(root, REMOTE)])
    for n in range(2):  # the same outcome on every pass, never a failure
        result = cli.sync(timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        line = summary(result)
        assert line.startswith("1 uploaded" if n == 0 else "0 uploaded"), line
        # only ok.txt is ever read (on the first pass): never the 10 GB file
        assert "0 failed" in line and line.endswith(f"hashed {1 - n} files"), line
        problems = {
            p["path"]: (p["state"], p["reason"]) for p in cli.status()["roots"][0]["problems"]
        }
        assert problems[deep_rel][0] == "skipped", problems
        assert "longer than the system allows" in problems[deep_rel][1]
        assert problems["/".join([*names, "x" * 250])] == (
            "skipped",
            "folder cannot be read: path is longer than the system allows (4096 bytes): "
            "cannot be opened",
        )
        assert problems["huge.bin"] == (
            "skipped",
            "file is over 123pan's 10 GB limit (10000000001 bytes)",
        )
    assert sorted(remote_files(api, REMOTE)) == ["ok.txt"]


def test_a_link_swapped_in_during_a_chunked_upload_does_not_change_what_is_sent(
    tmp_path: Path,
    emulator: Emulator,
    api: Api,
    stopper: list[subprocess.Popen[bytes]],
) -> None:
    """Every slice is read from the descriptor opened for the upload, not from the path."""
    slice_size = 64 * 1024
    emulator.configure(slice_size=slice_size)
    emulator.add_latency("upload/v2/file/slice", 0.3)  # the slices take a while
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    content = os.urandom(12 * slice_size)
    (root / "victim.bin").write_bytes(content)
    (outside / "shadow.bin").write_bytes(
        (MARKER * (len(content) // len(MARKER) + 1))[: len(content)]
    )
    cli = make_cli(tmp_path, emulator, [(root, REMOTE)], workers=1)
    proc, log = _popen(cli, "sync")
    stopper.append(proc)

    def slices_in() -> int:
        return sum(len(s) for s in emulator.activity()["slices"].values())

    _wait(lambda: slices_in() >= 1, 60, "the first slice arrives")
    (root / "victim.bin").unlink()
    (root / "victim.bin").symlink_to(outside / "shadow.bin")
    assert slices_in() < 12, "the swap came after the last slice: nothing was tested"
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the pass never ended:\n{_text(log)[-3000:]}") from None
    output = _text(log)
    assert code == 0, output[-3000:]
    assert _emulator_holds(emulator, MARKER) == [], output[-3000:]
    remote = remote_files(api, REMOTE)
    assert remote["victim.bin"]["etag"] == md5(content), output[-3000:]
