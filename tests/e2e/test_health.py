"""/healthz as an operator uses it: 503 with a reason while 123pan is out of reach or a root is
missing, 200 again once things recover. The installed agent against a real emulator that is
stopped and started again on the same ports and data."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import Api
from test_run_agent import _config, _log, _start, _stop, _wait
from test_sync_cli import cli_env, remote_files

from syncagent.emulator import Emulator, EmulatorSettings

pytestmark = pytest.mark.timeout(240)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _health(port: int) -> tuple[int, str]:
    try:
        answer = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except requests.ConnectionError:
        return 0, "not listening"
    return answer.status_code, str(answer.json().get("reason"))


@pytest.fixture
def settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(
        data_dir=tmp_path / "pan",
        api_port=_port(),
        upload_port=_port(),
        rate_limits="off",
        complete_pending_polls=0,
    )


@pytest.fixture
def agent_config(tmp_path: Path) -> Iterator[tuple[Path, Path, int]]:
    root = tmp_path / "root"
    root.mkdir()
    (root / "first.txt").write_text("first")
    port = _port()
    config = _config(tmp_path, root)
    config.write_text(config.read_text() + f"monitoring: {{port: {port}, unhealthy_after: 0s}}\n")
    yield config, root, port


def test_healthz_turns_503_while_123pan_is_down_and_200_when_it_returns(
    settings: EmulatorSettings, agent_config: tuple[Path, Path, int], tmp_path: Path
) -> None:
    config, root, port = agent_config
    emu = Emulator(settings).start()
    proc: subprocess.Popen[str] | None = None
    try:
        proc = _start(config, cli_env(tmp_path, emu), tmp_path)
        _wait(lambda: _health(port)[0] == 200 and "pass done" in _log(config), 60)
        emu.stop()
        (root / "during.txt").write_text("written while 123pan is down")
        _wait(lambda: _health(port)[0] == 503, 60)
        assert "unreachable" in _health(port)[1], _health(port)
        emu = Emulator(settings).start()  # back, same ports, same data
        _wait(lambda: _health(port)[0] == 200, 120)  # the next pass reaches it again
        api = Api(emu)
        try:
            assert set(remote_files(api, "/agent")) == {"first.txt", "during.txt"}
        finally:
            api.close()
    finally:
        if proc is not None:
            _stop(proc)
        emu.stop()


def test_healthz_names_a_missing_root(
    settings: EmulatorSettings, agent_config: tuple[Path, Path, int], tmp_path: Path
) -> None:
    config, root, port = agent_config
    proc: subprocess.Popen[str] | None = None
    with Emulator(settings) as emu:
        try:
            proc = _start(config, cli_env(tmp_path, emu), tmp_path)
            _wait(lambda: _health(port)[0] == 200 and "pass done" in _log(config), 60)
            # the first screen names where each root goes and how to stop
            assert f"backing up {root} to /agent on 123pan (archive mode)" in _log(config)
            assert "press Ctrl-C or send SIGTERM" in _log(config)
            shutil.move(root, tmp_path / "elsewhere")  # unmounted, moved away
            _wait(lambda: _health(port)[0] == 503, 30)
            assert str(root) in _health(port)[1]
            shutil.move(tmp_path / "elsewhere", root)
            _wait(lambda: _health(port)[0] == 200, 30)
        finally:
            if proc is not None:
                _stop(proc)


def test_refused_credentials_keep_healthz_at_503_until_stopped_or_reloaded(
    settings: EmulatorSettings, agent_config: tuple[Path, Path, int], tmp_path: Path
) -> None:
    """A wrong secret: /healthz says so (503, "credentials") instead of going quiet; SIGTERM
    then exits with the credentials status (3), and a SIGHUP after the secrets file was put
    right starts the agent again, which backs the root up."""
    config, _root, port = agent_config
    secrets = tmp_path / "secrets.yaml"
    with Emulator(settings) as emu:
        env = cli_env(tmp_path, emu)
        for key in ("PAN123_CLIENT_ID", "PAN123_CLIENT_SECRET"):
            env.pop(key)  # from the secrets file, which a reload reads again
        config.write_text(
            config.read_text() + f"credentials: {{secrets_file: {json.dumps(str(secrets))}}}\n"
        )
        for fixed in (False, True):
            secrets.write_text(f"client_id: {emu.client_id}\nclient_secret: wrong-secret\n")
            secrets.chmod(0o600)
            proc = _start(config, env, tmp_path)
            try:
                _wait(lambda: _health(port)[0] == 503, 60)
                reason = _health(port)[1]
                assert "credentials" in reason, reason
                assert "wrong-secret" not in reason and emu.client_secret not in reason
                assert proc.poll() is None  # still serving the reason
                if not fixed:
                    proc.send_signal(signal.SIGTERM)
                    assert proc.wait(timeout=30) == 3
                    continue
                secrets.write_text(
                    f"client_id: {emu.client_id}\nclient_secret: {emu.client_secret}\n"
                )
                before = _log(config).count("pass done")  # the refused pass logs one too

                def new_pass(passes: int = before) -> bool:
                    return _log(config).count("pass done") > passes

                proc.send_signal(signal.SIGHUP)
                _wait(new_pass, 60)
                _wait(lambda: _health(port)[0] == 200, 30)
                api = Api(emu)
                try:
                    assert set(remote_files(api, "/agent")) == {"first.txt"}
                finally:
                    api.close()
            finally:
                if proc.poll() is None:
                    _stop(proc)
