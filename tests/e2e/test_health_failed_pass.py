"""/healthz after a pass that failed as a whole while 123pan still answers: 503 at once with the
reason (no grace period: 123pan is not unreachable, it refused), and 200 again after a later
pass succeeds. A pass with a few failed files stays healthy (docs/architecture.md, "Health").
The installed agent against the real emulator with fault injection."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import Api
from test_health import _health, _port
from test_run_agent import _config, _log, _start, _stop, _wait
from test_sync_cli import cli_env, remote_files

from syncagent.emulator import Emulator

pytestmark = pytest.mark.timeout(240)

MKDIR = "upload/v1/file/mkdir"
REFUSAL = "目录创建失败"  # a code-2 refusal: not retryable, not fatal (ApiError)


def _agent(tmp_path: Path, emulator: Emulator) -> tuple[subprocess.Popen[str], Path, Path, int]:
    root = tmp_path / "root"
    root.mkdir()
    (root / "first.txt").write_text("first")
    port = _port()
    config = _config(tmp_path, root)
    # an hour of grace for an unreachable 123pan: a 503 here can only come from the refusal
    config.write_text(config.read_text() + f"monitoring: {{port: {port}, unhealthy_after: 1h}}\n")
    return _start(config, cli_env(tmp_path, emulator), tmp_path), root, config, port


def test_healthz_is_503_while_the_last_pass_failed_as_a_whole(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    emulator.fail_next(MKDIR, None, code=2, message=REFUSAL)  # every mkdir, until cleared
    proc, root, config, port = _agent(tmp_path, emulator)
    try:
        _wait(lambda: _health(port)[0] == 503, 60)
        status, reason = _health(port)
        assert status == 503, reason
        assert reason.startswith("last pass failed: "), reason
        assert REFUSAL in reason, reason
        assert proc.poll() is None, _log(config)  # the agent goes on, it did not stop
        emulator.clear_faults()
        (root / "second.txt").write_text("second")  # a change: its root's pass comes soon
        _wait(lambda: _health(port)[0] == 200, 60)
        assert _health(port)[1] == "ok"
        _wait(lambda: set(remote_files(api, "/agent")) == {"first.txt", "second.txt"}, 60)
    finally:
        _stop(proc)


def test_healthz_stays_200_when_only_some_files_failed(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    proc, root, config, port = _agent(tmp_path, emulator)
    try:
        _wait(lambda: _health(port)[0] == 200 and "pass done" in _log(config), 60)
        for endpoint in ("upload/v2/file/create", "upload/v2/file/single/create"):
            emulator.fail_next(endpoint, None, code=2, message="文件名非法")
        (root / "refused.txt").write_text("123pan refuses this one")
        _wait(lambda: "1 failed" in _log(config), 60)
        assert _health(port) == (200, "ok"), _log(config)
    finally:
        emulator.clear_faults()
        _stop(proc)
