"""deploy/syncagent.service: what the agent relies on, and systemd's own check of the unit."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_sync_cli import BIN

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "syncagent.service"


def _service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser["Service"]


def test_the_unit_runs_the_agent_as_its_own_user_and_stops_it_with_sigterm() -> None:
    service = _service()
    assert service["ExecStart"].endswith("/syncagent run")
    assert service["User"] not in ("root", "0")
    assert service["KillSignal"] == "SIGTERM"  # what the agent handles: finish, stay resumable
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"  # systemctl reload: SIGHUP
    assert int(service["TimeoutStopSec"]) >= 10  # the agent stops within 10 s
    # credentials come from a 0600 file, never from the (world-readable) unit itself
    assert service["EnvironmentFile"].startswith("/etc/syncagent/")
    assert "PAN123_" not in service.get("Environment", "")
    assert "/var/lib/syncagent" in service["ReadWritePaths"].split()  # the state dir


@pytest.mark.parametrize("unit", ["syncagent.service", "syncagent-user.service"])
def test_the_agent_runs_below_the_machines_own_work(unit: str) -> None:
    """A backup in the background: a lower CPU priority and the lowest best-effort disk
    priority (not ``idle``, which a busy NAS would never serve)."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((UNIT.parent / unit).read_text(encoding="utf-8"))
    service = parser["Service"]
    assert int(service["Nice"]) >= 5
    assert service["IOSchedulingClass"] == "best-effort"
    assert service["IOSchedulingPriority"] == "7"


def test_a_bad_config_or_refused_credentials_are_not_restarted_every_30_s() -> None:
    """Exit 2 (configuration) and 3 (credentials refused) need a person, not a restart."""
    from syncagent.cli.common import EXIT_CONFIG, EXIT_CREDENTIALS

    service = _service()
    assert service["Restart"] == "on-failure"
    prevented = set(service["RestartPreventExitStatus"].split())
    assert {str(EXIT_CONFIG), str(EXIT_CREDENTIALS)} <= prevented
    assert service["UMask"] == "0077"
    # inotify and the network stay: the agent watches folders and talks HTTPS
    lines = UNIT.read_text(encoding="utf-8").splitlines()
    assert "SystemCallFilter=@system-service" in lines  # holds inotify_init1/add_watch
    assert set(service["RestrictAddressFamilies"].split()) >= {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert service.get("PrivateNetwork", "no") == "no"


def test_systemd_rates_the_unit_below_5(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    done = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    assert m, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert float(m.group(1)) < 5, done.stdout


def test_systemd_finds_nothing_wrong_with_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is needed to check the unit"
    unit = tmp_path / "syncagent.service"  # the same unit, pointing at this install
    unit.write_text(
        UNIT.read_text(encoding="utf-8").replace("/opt/syncagent/bin/syncagent", str(BIN)),
        encoding="utf-8",
    )
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stderr
