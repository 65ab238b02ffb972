"""/healthz as an operator uses it: 503 with a reason while 123pan is out of reach or a root is
missing, 200 again once things recover. The installed agent against a real emulator that is
stopped and started again on the same ports and data."""

from __future__ import annotations

import shutil
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
