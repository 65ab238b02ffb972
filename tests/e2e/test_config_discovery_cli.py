"""Config discovery as the installed CLI does it, one step at a time: --config, then
$SYNCAGENT_CONFIG, then ./sync.yaml, then $XDG_CONFIG_HOME/syncagent/sync.yaml, then
~/.config/syncagent/sync.yaml, then the system file /etc/syncagent/sync.yaml: that one in a
mount namespace of its own (``unshare -m``) where an overlay over /etc takes the writes, so the
real /etc is never touched. Then sync.yaml.example copied with only `roots` edited and the
credentials unset backs up to the embedded emulator, and a bad file is named in the error."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Api
from test_sync_cli import BIN, cli_env, remote_files

from syncagent.cli.common import SYSTEM_CONFIG
from syncagent.emulator import Emulator

EXAMPLE = Path(__file__).resolve().parents[2] / "sync.yaml.example"


def _write(path: Path, root: Path, remote: str, state: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"roots:\n  - local: {json.dumps(str(root))}\n    remote: {remote}\n"
        f"state_dir: {json.dumps(str(state))}\n",
        encoding="utf-8",
    )
    return path


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _used(env: dict[str, str], cwd: Path, *args: str) -> str:
    """The remote folder of the config the CLI picked (a dry run prints `local -> remote`)."""
    result = _run(["sync", "--dry-run", *args], env, cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[0].split(" -> ")[1]


def test_each_discovery_step_in_order(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.txt").write_text("a")
    home, state = tmp_path / "home", tmp_path / "state"
    env = cli_env(home, None)
    project = tmp_path / "project"
    flag = _write(tmp_path / "flag.yaml", root, "/flag", state)
    by_env = _write(tmp_path / "env.yaml", root, "/env", state)
    _write(project / "sync.yaml", root, "/cwd", state)
    _write(Path(env["XDG_CONFIG_HOME"]) / "syncagent" / "sync.yaml", root, "/xdg", state)
    _write(home / ".config" / "syncagent" / "sync.yaml", root, "/home-config", state)

    with_env = {**env, "SYNCAGENT_CONFIG": str(by_env)}
    assert _used(with_env, project, "--config", str(flag)) == "/flag"
    assert _used(with_env, project) == "/env"
    assert _used(env, project) == "/cwd"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert _used(env, elsewhere) == "/xdg"
    no_xdg = {k: v for k, v in env.items() if k != "XDG_CONFIG_HOME"}
    assert _used(no_xdg, elsewhere) == "/home-config"


def test_the_copied_example_with_only_roots_edited_backs_up_to_the_emulator(
    tmp_path: Path,
) -> None:
    root = tmp_path / "Documents"
    root.mkdir()
    (root / "letter.txt").write_text("dear 123pan")
    home = tmp_path / "home"
    env = cli_env(home, None)  # no PAN123_* at all
    assert not any(k.startswith("PAN123_") for k in env)
    config = Path(env["XDG_CONFIG_HOME"]) / "syncagent" / "sync.yaml"
    config.parent.mkdir(parents=True)
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "${PAN123_CLIENT_ID}" in text  # what the test is about
    config.write_text(text.replace("/home/me/Documents", str(root)), encoding="utf-8")
    result = _run(["sync"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("1 uploaded"), result.stdout
    assert (
        "credentials: PAN123_CLIENT_ID and PAN123_CLIENT_SECRET not set: backing up to the "
        "embedded local emulator" in result.stderr
    )


def test_a_config_error_names_the_file(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", None)
    project = tmp_path / "project"
    project.mkdir()
    (project / "sync.yaml").write_text("roots: 5\nupload: {workers: many}\n", encoding="utf-8")
    result = _run(["sync"], env, project)
    assert result.returncode == 2
    assert f"invalid configuration in {project / 'sync.yaml'}:" in result.stderr, result.stderr
    assert "upload.workers" in result.stderr
    # only one of the two credentials set: said, naming the file too
    (project / "sync.yaml").write_text(
        f"roots: [{{local: {json.dumps(str(project))}, remote: /p}}]\n"
        "credentials: {client_id: id-q7z, client_secret: '${UNSET_SECRET_XYZ}'}\n",
        encoding="utf-8",
    )
    half = _run(["sync"], env, project)
    assert half.returncode == 2
    assert f"in {project / 'sync.yaml'}" in half.stderr
    assert "credentials.client_secret: environment variable UNSET_SECRET_XYZ is not set" in (
        half.stderr
    )
    assert "id-q7z" not in half.stderr  # a credential never echoed


def _with_system_config(
    tmp: Path, system_config: Path, args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """The CLI with ``system_config`` at /etc/syncagent/sync.yaml, in a mount namespace of its
    own: an overlay over /etc (its writes land in ``tmp``), so the real /etc stays as it was."""
    upper, work = tmp / "etc-upper", tmp / "etc-work"
    shutil.rmtree(upper, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    upper.mkdir()
    work.mkdir()
    q = shlex.quote
    script = (
        "set -e\n"
        f"mount -t overlay overlay -o lowerdir=/etc,upperdir={q(str(upper))},"
        f"workdir={q(str(work))} /etc\n"
        f"mkdir -p {q(str(SYSTEM_CONFIG.parent))}\n"
        f"cp {q(str(system_config))} {q(str(SYSTEM_CONFIG))}\n"
        f"exec {q(str(BIN))} {' '.join(map(q, args))}\n"
    )
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_system_path_comes_last_and_is_used(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("util-linux `unshare` is missing: no mount namespace to put /etc/syncagent in")
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.txt").write_text("from the system config")
    home, state = tmp_path / "home", tmp_path / "state"
    env = cli_env(home, emulator)
    elsewhere = tmp_path / "elsewhere"  # no ./sync.yaml here
    elsewhere.mkdir()
    etc_before = SYSTEM_CONFIG.parent.exists() and sorted(SYSTEM_CONFIG.parent.iterdir())
    system = _write(tmp_path / "system.yaml", root, "/system", state)

    # nothing before it: /etc/syncagent/sync.yaml is the one, and a real pass uses it
    dry = _with_system_config(tmp_path, system, ["sync", "--dry-run"], env, elsewhere)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0].split(" -> ")[1] == "/system", dry.stdout
    real = _with_system_config(tmp_path, system, ["sync"], env, elsewhere)
    assert real.returncode == 0, real.stderr
    assert set(remote_files(api, "/system")) == {"a.txt"}

    # every step before it wins over it: ~/.config, $XDG_CONFIG_HOME, ./sync.yaml, the env
    _write(home / ".config" / "syncagent" / "sync.yaml", root, "/home-config", state)
    no_xdg = {k: v for k, v in env.items() if k != "XDG_CONFIG_HOME"}
    picked = _with_system_config(tmp_path, system, ["sync", "--dry-run"], no_xdg, elsewhere)
    assert picked.returncode == 0, picked.stderr
    assert picked.stdout.splitlines()[0].split(" -> ")[1] == "/home-config"
    _write(Path(env["XDG_CONFIG_HOME"]) / "syncagent" / "sync.yaml", root, "/xdg", state)
    picked = _with_system_config(tmp_path, system, ["sync", "--dry-run"], env, elsewhere)
    assert picked.stdout.splitlines()[0].split(" -> ")[1] == "/xdg", picked.stderr

    # the real /etc was never written
    assert (SYSTEM_CONFIG.parent.exists() and sorted(SYSTEM_CONFIG.parent.iterdir())) == (
        etc_before
    )
    assert not (SYSTEM_CONFIG.exists() and "/system" in SYSTEM_CONFIG.read_text())
