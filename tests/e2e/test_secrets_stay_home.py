"""Secrets stay home: as a user runs it, syncagent never uploads its config, secrets or state,
never shows a secret, and keeps its state and the emulator's store private to its user.

``syncagent run HOME`` backs up a home folder holding ``sync.yaml``, the secrets file, the
systemd environment file, the log file and the state dir; a run with failures, a refused secret
and a ledger URL with a password follows. Then every uploaded byte (downloaded back), every
output, log line, error message and process title is searched for the secrets.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from conftest import Api
from test_sync_cli import BIN, cli_env, remote_files

from syncagent.emulator import Emulator

LEDGER_PASSWORD = "Ledger-Pa55word-77"
REFUSED_SECRET = "refused-secret-0451"


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def _umask_022() -> None:
    os.umask(0o022)


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_umask_022,
    )


def _home(tmp: Path, emulator: Emulator) -> tuple[Path, Path, dict[str, str]]:
    """A home folder with files to back up and, inside it, everything secret."""
    home = tmp / "home"
    (home / "docs").mkdir(parents=True)
    (home / "docs" / "letter.txt").write_text("dear 123pan\n")
    (home / "docs" / "more.txt").write_text("and more\n")
    (home / "notes.txt").write_text("notes\n")
    secrets = home / ".config" / "syncagent" / "secrets.yaml"
    secrets.parent.mkdir(parents=True)
    secrets.write_text(
        f"client_id: {emulator.client_id}\nclient_secret: {emulator.client_secret}\n"
    )
    envfile = home / "syncagent.env"  # what the systemd unit's EnvironmentFile would be
    envfile.write_text(f"PAN123_CLIENT_SECRET={emulator.client_secret}\n")
    config = home / "sync.yaml"
    config.write_text(
        "roots:\n"
        f"  - local: {json.dumps(str(home))}\n"
        "    remote: /home\n"
        f"credentials: {{secrets_file: {json.dumps(str(secrets))}}}\n"
        f"api_base: {emulator.api_url}\n"
        f"logging: {{level: debug, file: {json.dumps(str(home / 'agent.log'))}}}\n"
        "stability: {quiet: 0s}\n"
        "limits: {qps: off}\n"
    )
    env = cli_env(home, None) | {"SYNCAGENT_ENVIRONMENT_FILE": str(envfile)}
    return home, config, env


@pytest.mark.slow  # eight CLI runs: ~8 s, more on a loaded machine
def test_run_home_uploads_no_secret_file_and_no_secret_shows_anywhere(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    home, config, env = _home(tmp_path, emulator)
    # one upload is refused (a failure in the ledger, status and log)
    emulator.fail_next("upload/v2/file/single/create", code=1, message="refused for the test")
    out = tmp_path / "agent.out"
    with open(out, "w", encoding="utf-8") as sink:
        proc = subprocess.Popen(
            [str(BIN), "run", "-v", "--config", str(config)],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=_umask_022,
        )
    titles: list[str] = []
    try:
        _wait(lambda: "pass done" in out.read_text(errors="replace"), 60, "the first pass")
        agent = psutil.Process(proc.pid)
        for p in [agent, *agent.children(recursive=True)]:
            titles.append(" ".join(p.cmdline()))
            titles.append(Path(f"/proc/{p.pid}/comm").read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0, out.read_text(errors="replace")[-3000:]

    remote = remote_files(api, "/home")
    # the user's files went, but one (whichever was first) failed; nothing of syncagent's did
    user_files = {"docs/letter.txt", "docs/more.txt", "notes.txt"}
    assert set(remote) < user_files and len(remote) == 2, sorted(remote)
    failed = (user_files - set(remote)).pop()
    log_text = out.read_text(errors="replace")
    assert "not backing up syncagent's own files" in log_text
    for own in ("sync.yaml", "secrets.yaml", "syncagent.env", "agent.log", ".xdg-state"):
        assert own in log_text.split("not backing up syncagent's own files")[1].splitlines()[0]

    token_file = home / ".xdg-state" / "syncagent" / "account" / "token.json"
    token = json.loads(token_file.read_text())["access_token"]
    assert len(token) > 20

    outputs = [log_text, (home / "agent.log").read_text(errors="replace"), *titles]
    outputs += [
        api.download(int(item["fileId"])).decode(errors="replace") for item in remote.values()
    ]
    cfg = ["--config", str(config)]
    status = _run([str(BIN), "status", *cfg], env, tmp_path)
    status_json = _run([str(BIN), "status", "--json", *cfg], env, tmp_path)
    assert status.returncode == status_json.returncode == 0, status.stderr
    assert failed in status.stdout and "refused for the test" in status.stdout, status.stdout
    outputs += [status.stdout, status.stderr, status_json.stdout, status_json.stderr]

    # a refused secret: exit 3, the message says what to check, never the secret itself
    emulator.expire_tokens()  # the stored token is refused: a new one is asked for
    refused = _run(
        [str(BIN), "sync", *cfg],
        env | {"PAN123_CLIENT_SECRET": REFUSED_SECRET},
        tmp_path,
    )
    assert refused.returncode == 3, refused.stderr[-2000:]
    assert "refused the client ID or secret" in refused.stderr
    outputs += [refused.stdout, refused.stderr]

    # a ledger URL with a password: every command that opens it fails without showing it
    pg = tmp_path / "pg.yaml"
    pg.write_text(
        config.read_text()
        + f'ledger: {{url: "postgresql://agent:{LEDGER_PASSWORD}@127.0.0.1:9/ledger", wait: 2s}}\n'
    )
    for command in (["status"], ["status", "--json"], ["sync"], ["db", "upgrade"], ["run"]):
        done = _run([str(BIN), *command, "--config", str(pg)], env, tmp_path)
        assert done.returncode == 1, (command, done.stderr[-2000:])
        assert "postgresql://agent:***@127.0.0.1:9/ledger" in done.stderr, done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        outputs += [done.stdout, done.stderr]

    everything = "\n".join(outputs)
    for secret in (emulator.client_secret, token, REFUSED_SECRET, LEDGER_PASSWORD):
        assert secret not in everything


def test_state_and_the_embedded_emulator_store_are_private_under_umask_022(
    tmp_path: Path,
) -> None:
    """No credentials: the embedded emulator. Every folder and file syncagent and the
    emulator create is 0700/0600; an existing 0755 state dir is made private, with a log line."""
    home = tmp_path / "home"
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("b" * 5000)
    state = home / ".xdg-state" / "syncagent"
    state.mkdir(parents=True, mode=0o755)
    state.chmod(0o755)  # as an older syncagent left it
    (state / "old.json").write_text("{}")
    (state / "old.json").chmod(0o644)
    emulator_data = home / ".xdg-data" / "syncagent" / "emulator"
    emulator_data.mkdir(parents=True, mode=0o700)
    emulator_data.parent.chmod(0o700)
    emulator_data.chmod(0o755)
    config = tmp_path / "sync.yaml"
    config.write_text(
        "roots:\n"
        f"  - local: {json.dumps(str(root))}\n"
        "    remote: /root\n"
        f"logging: {{file: {json.dumps(str(home / 'logs' / 'agent.log'))}}}\n"
        "stability: {quiet: 0s}\n"
    )
    (home / "logs").mkdir(mode=0o700)
    env = cli_env(home, None)
    done = _run([str(BIN), "sync", "--config", str(config)], env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"made {state} private (mode 0755 -> 0700)" in done.stderr
    assert f"made {state / 'old.json'} private (mode 0644 -> 0600)" in done.stderr
    assert f"made {emulator_data} private (mode 0755 -> 0700)" in done.stderr

    data = home / ".xdg-data" / "syncagent"
    made = [p for top in (state, data, home / "logs") for p in (top, *top.rglob("*"))]
    names = {p.name for p in made}
    # the walk saw what matters: ledger, lock, token, log, the emulator's catalog and blobs
    for expected in ("ledger.sqlite3", "agent.lock", "token.json", "agent.log"):
        assert expected in names, sorted(names)
    assert "emulator.sqlite3" in names and (data / "emulator" / "blobs").is_dir(), sorted(names)
    assert any(p.parent.parent.name == "blobs" for p in made), "no blob was stored"
    wrong = [
        f"{p}: {stat.S_IMODE(p.lstat().st_mode):04o}"
        for p in made
        if stat.S_IMODE(p.lstat().st_mode) not in ((0o700,) if p.is_dir() else (0o600,))
    ]
    assert not wrong, wrong


def test_the_emulator_command_keeps_its_store_private(tmp_path: Path) -> None:
    data = tmp_path / "emu"
    proc = subprocess.Popen(
        [str(BIN), "emulator", "--port", "0", "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_umask_022,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("Stop it"):
                break
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    made = [data, *data.rglob("*")]
    assert len(made) >= 5, made  # catalog, blobs, incoming, uploads
    wrong = [
        f"{p}: {stat.S_IMODE(p.lstat().st_mode):04o}"
        for p in made
        if stat.S_IMODE(p.lstat().st_mode) not in ((0o700,) if p.is_dir() else (0o600,))
    ]
    assert not wrong, wrong
