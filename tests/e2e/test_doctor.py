"""`syncagent doctor` against the emulator: a healthy setup passes, and each problem that can
be made here fails with its fix: a wrong secret, a missing root, a low inotify watch limit
(injected), a skewed server clock (the emulator's Date header), a state dir others can read,
123pan out of reach, a full 123pan account, little free space for the state dir (a small
tmpfs in a mount namespace of its own), a root on a network share and a low inotify instance
limit (a /proc of the test's own in a mount namespace)."""

from __future__ import annotations

import json
import shlex
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from test_sync_cli import BIN, cli_env

from syncagent.emulator import Emulator


def _doctor(tmp: Path, env: dict[str, str], *extra: str) -> tuple[int, dict[str, tuple[str, str]]]:
    done = subprocess.run(
        [str(BIN), "doctor", "--config", str(tmp / "sync.yaml"), *extra],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=120,
    )
    checks: dict[str, tuple[str, str]] = {}
    lines = done.stdout.splitlines()
    for i, line in enumerate(lines):
        mark, _, rest = line.partition(" ")
        if mark in ("ok", "WARN", "FAIL"):
            name, _, detail = rest.strip().partition(": ")
            fix = lines[i + 1].strip() if i + 1 < len(lines) else ""
            checks[name] = (mark, detail + (" | " + fix if fix.startswith("fix:") else ""))
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, checks


@pytest.fixture
def setup(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for i in range(10):
        (root / f"album{i}").mkdir(parents=True)
    (tmp_path / "sync.yaml").write_text(
        "roots:\n"
        f"  - local: {json.dumps(str(root))}\n"
        "    remote: /photos\n"
        f"state_dir: {json.dumps(str(tmp_path / 'state'))}\n",
        encoding="utf-8",
    )
    return tmp_path


def test_a_healthy_setup_passes(emulator: Emulator, setup: Path) -> None:
    status, checks = _doctor(setup, cli_env(setup / "home", emulator))
    assert status == 0, checks
    assert checks["credentials"][0] == "ok" and "uid" in checks["credentials"][1]
    assert checks["clock"][0] == "ok"
    assert checks[f"root {setup / 'photos'}"][0] == "ok"
    assert checks["inotify"][0] == "ok"
    assert checks["quota"][0] == "ok"


def test_each_problem_fails_with_its_fix(emulator: Emulator, setup: Path) -> None:
    env = cli_env(setup / "home", emulator)
    env["PAN123_CLIENT_SECRET"] = "not-the-secret"
    limit = setup / "max_user_watches"
    limit.write_text("5\n")  # 11 folders to watch
    emulator.configure(clock_offset=3600)
    status, checks = _doctor(setup, env, "--inotify-limit-file", str(limit))
    assert status == 1
    assert checks["credentials"][0] == "FAIL" and "PAN123_CLIENT_SECRET" in checks["credentials"][1]
    assert checks["inotify"][0] == "FAIL" and "max_user_watches" in checks["inotify"][1]
    assert checks["clock"][0] == "FAIL" and " s behind " in checks["clock"][1]
    # the Date header has whole seconds, and a loaded machine takes a while to answer
    assert abs(int(checks["clock"][1].split(" s behind ")[0]) - 3600) <= 5, checks["clock"]
    assert "not-the-secret" not in json.dumps(checks)


def test_a_missing_root_is_a_failed_check(emulator: Emulator, setup: Path) -> None:
    text = (setup / "sync.yaml").read_text()
    (setup / "sync.yaml").write_text(
        text.replace(
            "state_dir:",
            f"  - local: {json.dumps(str(setup / 'gone'))}\n    remote: /gone\nstate_dir:",
        )
    )
    status, checks = _doctor(setup, cli_env(setup / "home", emulator))
    assert status == 2
    assert checks["config"][0] == "FAIL" and str(setup / "gone") in checks["config"][1]
    assert "fix: edit" in checks["config"][1]


def test_an_open_state_dir_is_a_warning_with_its_fix(emulator: Emulator, setup: Path) -> None:
    state = setup / "state"
    state.mkdir()
    state.chmod(0o755)
    status, checks = _doctor(setup, cli_env(setup / "home", emulator))
    assert status == 0, checks  # a warning, not a failure
    assert checks["state dir"][0] == "WARN" and "0755" in checks["state dir"][1], checks
    assert f"fix: chmod 700 {state}" in checks["state dir"][1]


def test_123pan_out_of_reach_is_a_failed_check(emulator: Emulator, setup: Path) -> None:
    env = cli_env(setup / "home", emulator)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    env["PAN123_API_BASE"] = f"http://127.0.0.1:{closed}"
    status, checks = _doctor(setup, env)
    assert status == 1, checks
    assert checks["123pan"][0] == "FAIL" and "not reachable" in checks["123pan"][1], checks
    assert f"127.0.0.1:{closed}" in checks["123pan"][1]
    assert "fix: check the network" in checks["123pan"][1]


def test_a_full_123pan_account_is_a_failed_check(setup: Path) -> None:
    with Emulator.temporary(rate_limits="off", complete_pending_polls=0, space_permanent=64) as emu:
        env = cli_env(setup / "home", emu)
        (setup / "photos" / "album0" / "big.jpg").write_bytes(b"\xff" * 100)  # over 64 bytes
        sync = subprocess.run(
            [str(BIN), "sync", "--config", str(setup / "sync.yaml")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert sync.returncode == 0, sync.stderr
        status, checks = _doctor(setup, env)
    assert status == 1, checks
    assert checks["quota"][0] == "FAIL" and "no space left" in checks["quota"][1], checks
    assert "fix: free space or upgrade" in checks["quota"][1]


def test_little_free_space_for_the_state_dir_is_a_failed_check(
    emulator: Emulator, setup: Path
) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("util-linux `unshare` is missing: no mount namespace for a small tmpfs")
    state = setup / "state"  # a 16 MiB tmpfs, in a mount namespace of the test's own
    state.mkdir(mode=0o700)
    q = shlex.quote
    done = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            f"mount -t tmpfs -o size=16m,mode=0700 tmpfs {q(str(state))} && exec {q(str(BIN))} "
            f"doctor --config {q(str(setup / 'sync.yaml'))}",
        ],
        env=cli_env(setup / "home", emulator),
        cwd=setup,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if "free space:" in x)
    assert line.startswith("FAIL") and f"MiB free at {state}" in line, done.stdout
    assert "fix: free some space" in done.stdout


def test_a_network_share_and_few_inotify_instances_are_warnings(
    emulator: Emulator, setup: Path
) -> None:
    """The kernel's facts injected: in a mount namespace of the test's own, a directory of
    the test's is bind-mounted over /proc, whose ``mounts`` puts the root on NFS and whose
    ``max_user_instances`` is 1. The real CLI reads them as it reads the real ones."""
    if shutil.which("unshare") is None:
        pytest.skip("util-linux `unshare` is missing: no mount namespace to inject /proc in")
    fake = setup / "proc"
    (fake / "sys" / "fs" / "inotify").mkdir(parents=True)
    (fake / "mounts").write_text(f"server:/export {setup / 'photos'} nfs4 rw 0 0\n")
    (fake / "sys" / "fs" / "inotify" / "max_user_watches").write_text("524288\n")
    (fake / "sys" / "fs" / "inotify" / "max_user_instances").write_text("1\n")
    q = shlex.quote
    script = (
        f"mount --bind {q(str(fake))} /proc && exec {q(str(BIN))} "
        f"doctor --config {q(str(setup / 'sync.yaml'))}"
    )
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        env=cli_env(setup / "home", emulator),
        cwd=setup,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr  # warnings only
    out = done.stdout
    assert f"WARN root {setup / 'photos'}: is on nfs4" in out, out
    assert "fix: set watch: poll for this root" in out
    assert "WARN inotify: max_user_instances is 1 for 1 watched roots" in out, out
    assert "fix: raise it: sysctl fs.inotify.max_user_instances=512" in out
