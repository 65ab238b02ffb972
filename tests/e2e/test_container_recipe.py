"""deploy/Containerfile without a container engine (none runs here): its ENV and ENTRYPOINT
are read from the file and run as the image would run them, with the image's /state,
/config and /data moved under a temporary folder and ``syncagent`` from this install.

What this cannot check: the image build itself and the non-root user at run time (this
machine's Python is not readable by other users); the recipe's USER line is checked instead.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import Api
from test_run_agent import _stop as stop_agent
from test_run_agent import _wait
from test_sync_cli import BIN, cli_env, remote_files

from syncagent.emulator import Emulator

RECIPE = Path(__file__).resolve().parents[2] / "deploy" / "Containerfile"
pytestmark = pytest.mark.timeout(120)


def _recipe(base: Path) -> tuple[dict[str, str], list[str]]:
    """The image's ENV and ENTRYPOINT, its absolute volume paths moved under ``base``."""
    text = RECIPE.read_text(encoding="utf-8")

    def moved(value: str) -> str:
        return re.sub(r"(?<![\w/])/(state|config|data)\b", lambda m: f"{base}/{m[1]}", value)

    env: dict[str, str] = {}
    for line in re.findall(r"^ENV (.+)$", text, flags=re.M):
        for key, value in re.findall(r"(\w+)=(\S+)", line):
            env[key] = moved(value)
    entrypoint = json.loads(re.findall(r"^ENTRYPOINT (.+)$", text, flags=re.M)[-1])
    return env, [moved(arg) for arg in entrypoint]


def _run(base: Path, emulator: Emulator) -> subprocess.Popen[str]:
    image_env, entrypoint = _recipe(base)
    env = {**cli_env(base / "home", emulator), **image_env}  # -e PAN123_... plus ENV
    env["PATH"] = f"{BIN.parent}:{env.get('PATH', '')}"  # syncagent installed, as in the image
    for folder in ("state", "config", "data"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    log = open(base / "container.log", "w", encoding="utf-8")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(
        entrypoint, env=env, cwd=base, stdout=log, stderr=subprocess.STDOUT, text=True
    )


def _stop(proc: subprocess.Popen[str], base: Path) -> str:
    """``docker stop``: SIGTERM to PID 1, which the entrypoint's ``exec`` made syncagent."""
    stop_agent(proc)
    return (base / "container.log").read_text(encoding="utf-8")


def test_the_recipe_runs_as_a_non_root_user() -> None:
    users = re.findall(r"^USER (\S+)$", RECIPE.read_text(encoding="utf-8"), flags=re.M)
    assert users and users[-1] not in ("root", "0")


def test_without_a_config_the_data_volume_is_backed_up(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    (tmp_path / "data" / "photos").mkdir(parents=True)
    (tmp_path / "data" / "photos" / "cat.jpg").write_bytes(b"a cat")
    proc = _run(tmp_path, emulator)
    try:
        _wait(lambda: "photos/cat.jpg" in _remote(api, "/syncagent/data"), 30)
        (tmp_path / "data" / "later.txt").write_text("watched, not just one pass")
        _wait(lambda: "later.txt" in _remote(api, "/syncagent/data"), 15)
    finally:
        log = _stop(proc, tmp_path)
    ledgers = list((tmp_path / "state").rglob("ledger.sqlite3"))
    assert ledgers, f"the ledger is not on the /state volume: {log[-2000:]}"
    assert not (tmp_path / "home" / ".xdg-state").exists()  # nothing outside the volumes


def test_a_mounted_config_is_used(emulator: Emulator, api: Api, tmp_path: Path) -> None:
    (tmp_path / "data" / "docs").mkdir(parents=True)
    (tmp_path / "data" / "docs" / "a.txt").write_text("configured")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "sync.yaml").write_text(
        "roots:\n"
        f"  - local: {json.dumps(str(tmp_path / 'data' / 'docs'))}\n"
        "    remote: /from-config\n"
        f"state_dir: {json.dumps(str(tmp_path / 'state' / 'agent'))}\n"
        "stability: {quiet: 1s}\n",
        encoding="utf-8",
    )
    proc = _run(tmp_path, emulator)
    try:
        _wait(lambda: "a.txt" in _remote(api, "/from-config"), 30)
    finally:
        _stop(proc, tmp_path)
    assert (tmp_path / "state" / "agent" / "ledger.sqlite3").is_file()


def _remote(api: Api, path: str) -> set[str]:
    try:
        return set(remote_files(api, path))
    except AssertionError:  # not created yet
        return set()
