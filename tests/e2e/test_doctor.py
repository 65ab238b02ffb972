"""`syncagent doctor` against the emulator: a healthy setup passes, and each problem that can
be made here fails with its fix: a wrong secret, a missing root, a low inotify watch limit
(injected), a skewed server clock (the emulator's Date header)."""

from __future__ import annotations

import json
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
