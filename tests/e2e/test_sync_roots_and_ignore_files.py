"""Roots that would be read as nothing, or read twice, and ignore files that would be ignored:
the installed CLI never reports success for a root it did not read, and never backs up a
root with fewer ignore rules than the user wrote (issues 9 and 11).

Each test runs ``syncagent`` in a subprocess against the real emulator, as a user would.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import Api
from test_sync_cli import BIN, Cli, cli_env, make_cli, remote_files, summary, upload_calls
from test_sync_hostile import unreadable_launcher

from syncagent.emulator import Emulator


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]


def _secrets_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "secrets").mkdir(parents=True)
    (root / "secrets" / "id_rsa").write_text("private key")
    (root / "notes.txt").write_text("notes")
    return root


def test_a_syncignore_with_a_non_utf8_byte_stops_sync_and_run_with_its_line(
    emulator: Emulator, tmp_path: Path
) -> None:
    """It was dropped silently, and secrets/ went to the cloud."""
    root = _secrets_root(tmp_path)
    (root / ".syncignore").write_bytes(b"secrets/\n# caf\xe9\n")
    cli = make_cli(tmp_path, emulator, [(root, "/backup/root")])
    for command in ("sync", "run"):
        result = cli.run(command, "--config", str(cli.config), timeout=60)
        _no_traceback(result)
        assert result.returncode == 2, (command, result.stdout, result.stderr[-3000:])
        assert f"{root / '.syncignore'}: line 2: not UTF-8 (byte 0xe9" in result.stderr
    assert sum(upload_calls(emulator).values()) == 0  # nothing at all was sent


def test_an_invalid_pattern_in_a_syncignore_is_a_config_error_not_a_traceback(
    emulator: Emulator, tmp_path: Path
) -> None:
    root = _secrets_root(tmp_path)
    (root / ".syncignore").write_text("secrets/\n!\n")
    cli = make_cli(tmp_path, emulator, [(root, "/backup/root")])
    result = cli.sync(timeout=60)
    _no_traceback(result)
    assert result.returncode == 2, (result.stdout, result.stderr[-3000:])
    assert f"{root / '.syncignore'}: line 2: invalid pattern '!'" in result.stderr
    assert sum(upload_calls(emulator).values()) == 0


def test_a_log_file_in_a_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    root = _secrets_root(tmp_path)
    config = tmp_path / "sync.yaml"
    config.write_text(
        f"roots: [{{local: {root}, remote: /r}}]\n"
        f"state_dir: {tmp_path / 'state'}\n"
        f"logging: {{file: {tmp_path / 'logs' / 'agent.log'}}}\n"
    )
    result = Cli(config, cli_env(tmp_path, None), tmp_path).sync(timeout=60)
    _no_traceback(result)
    assert result.returncode == 2, (result.stdout, result.stderr[-3000:])
    assert f"logging.file: the folder {tmp_path / 'logs'} does not exist" in result.stderr
    assert not (tmp_path / "state").exists()


def test_a_root_that_is_a_symbolic_link_is_backed_up_as_its_folder(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    """It uploaded nothing and exited 0."""
    real = _secrets_root(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    cli = make_cli(tmp_path, emulator, [(link, "/backup/linked")])
    result = cli.sync(timeout=60)
    _no_traceback(result)
    assert result.returncode == 0, (result.stdout, result.stderr[-3000:])
    assert f"{link} is a symbolic link; backing up the folder it points to, {real}" in (
        result.stderr
    )
    assert summary(result).startswith("2 uploaded"), summary(result)
    assert sorted(remote_files(api, "/backup/linked")) == ["notes.txt", "secrets/id_rsa"]


def test_a_root_that_cannot_be_read_fails_the_pass(emulator: Emulator, tmp_path: Path) -> None:
    """A folder the agent may not list was "skipped" and the pass exited 0."""
    root = _secrets_root(tmp_path)
    cli = make_cli(tmp_path, emulator, [(root, "/backup/root")])
    cli.wrapper = unreadable_launcher()
    root.chmod(0)
    try:
        probe = subprocess.run([*cli.wrapper, "/bin/ls", str(root)], capture_output=True)
        assert probe.returncode != 0, "the test cannot make a folder unreadable to the CLI"
        result = cli.sync(timeout=60)
    finally:
        root.chmod(0o755)
    _no_traceback(result)
    assert result.returncode == 1, (result.stdout, result.stderr[-3000:])
    assert f"{root} cannot be read (Permission denied): nothing of it was backed up" in (
        result.stderr
    )
    assert sum(upload_calls(emulator).values()) == 0
    assert "NOT BACKED UP by the last pass: " in cli.status_text()
    assert cli.status()["roots"][0]["not_read"].endswith("nothing of it was backed up")


def test_overlapping_folders_on_the_command_line_are_refused(tmp_path: Path) -> None:
    root = _secrets_root(tmp_path)
    result = subprocess.run(
        [str(BIN), "sync", str(root), str(root / "secrets")],
        env=cli_env(tmp_path, None),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    _no_traceback(result)
    assert result.returncode == 2, (result.stdout, result.stderr[-3000:])
    assert "folder 2.local: " in result.stderr and "backed up twice" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]  # nothing was created


def test_a_syncignore_in_a_subfolder_is_shown_as_not_read(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    """Only the root's .syncignore is read; one in a subfolder was passed over in silence."""
    root = _secrets_root(tmp_path)
    (root / "secrets" / ".syncignore").write_text("id_rsa\n")
    cli = make_cli(tmp_path, emulator, [(root, "/backup/root")])
    result = cli.sync(timeout=60)
    _no_traceback(result)
    assert result.returncode == 0, (result.stdout, result.stderr[-3000:])
    reason = "not read: only the .syncignore at the top of the root applies"
    assert f"skipped {root / 'secrets' / '.syncignore'}: {reason}" in result.stderr
    problems = {p["path"]: p["reason"] for p in cli.status()["roots"][0]["problems"]}
    assert problems["secrets/.syncignore"].startswith(reason)
    assert sorted(remote_files(api, "/backup/root")) == ["notes.txt", "secrets/id_rsa"]
