"""Config discovery as the installed CLI does it, one step at a time: --config, then
$SYNCAGENT_CONFIG, then ./sync.yaml, then $XDG_CONFIG_HOME/syncagent/sync.yaml, then
~/.config/syncagent/sync.yaml (the system path is covered by tests/unit/test_config_discovery.py:
a test must not write /etc). Then sync.yaml.example copied with only `roots` edited and the
credentials unset backs up to the embedded emulator, and a bad file is named in the error."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from test_sync_cli import BIN, cli_env

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
