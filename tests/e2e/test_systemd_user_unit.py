"""deploy/syncagent-user.service: the desktop (``systemctl --user``) unit, checked by systemd."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

from test_sync_cli import BIN

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "syncagent-user.service"
VENV_BIN = "%h/.local/lib/syncagent-venv/bin/syncagent"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def test_the_user_unit_runs_the_agent_from_the_users_own_files() -> None:
    unit = _unit()
    service = unit["Service"]
    assert service["ExecStart"] == f"{VENV_BIN} run"
    assert "User" not in service  # a user unit runs as the user who enabled it
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"  # systemctl --user reload
    assert service["KillSignal"] == "SIGTERM"
    # a bad config (2) or refused credentials (3): no restart loop
    assert {"2", "3"} <= set(service["RestartPreventExitStatus"].split())
    # credentials from an optional 0600 file in the user's config dir, never in the unit
    assert service["EnvironmentFile"] == "-%h/.config/syncagent/credentials"
    assert "PAN123_" not in service.get("Environment", "")
    assert unit["Install"]["WantedBy"] == "default.target"  # what `--user enable` hooks into


def _verify(unit: Path, runtime: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is needed to check the unit"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return subprocess.run(
        [analyze, "--user", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=unit.parent,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},  # a user manager needs one
    )


def test_systemd_user_verify_finds_nothing_wrong(tmp_path: Path) -> None:
    unit = tmp_path / "syncagent.service"  # the same unit, pointing at this install
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(VENV_BIN, str(BIN)), encoding="utf-8")
    done = _verify(unit, tmp_path / "runtime")
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stderr


def test_systemd_user_verify_can_fail(tmp_path: Path) -> None:
    """The check above is real: the unit as shipped, before install, names a missing program."""
    unit = tmp_path / "syncagent.service"
    unit.write_text(
        UNIT.read_text(encoding="utf-8").replace(VENV_BIN, str(tmp_path / "missing")),
        encoding="utf-8",
    )
    done = _verify(unit, tmp_path / "runtime")
    assert done.returncode != 0 and "missing" in done.stderr
