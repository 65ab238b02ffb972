"""/metrics as an operator reads it: per root, the files and bytes not sent yet, the failed
files by kind and code, the last successful pass. The installed agent against an emulator
that refuses uploads with a business code after a first good pass."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path

import pytest
import requests
from test_run_agent import _config, _log, _start, _stop, _wait
from test_sync_cli import cli_env

from syncagent.emulator import Emulator

pytestmark = pytest.mark.timeout(240)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _metrics(port: int) -> str:
    try:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except requests.ConnectionError:
        return ""


def _value(text: str, name: str, labels: str) -> float | None:
    m = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
    return None if m is None else float(m[1])


def test_metrics_show_pending_failures_and_last_success_per_root(
    emulator: Emulator, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "first.txt").write_text("first")
    port = _port()
    config = _config(tmp_path, root)
    config.write_text(config.read_text() + f"monitoring: {{port: {port}}}\n")
    label = f"root={json.dumps(str(root))}"
    proc: subprocess.Popen[str] | None = None
    try:
        proc = _start(config, cli_env(tmp_path, emulator), tmp_path)
        _wait(lambda: "pass done" in _log(config), 60)
        ok = _metrics(port)
        assert _value(ok, "syncagent_pending_files", label) == 0, ok
        assert _value(ok, "syncagent_pending_bytes", label) == 0, ok
        assert "syncagent_last_success_timestamp_seconds " in ok
        assert "syncagent_bytes_uploaded_total 5\n" in ok  # first.txt's 5 bytes

        emulator.fail_next("upload/v2/file/single/create", None, code=5066, message="nope")
        (root / "a.txt").write_text("a" * 100)
        (root / "b.txt").write_text("b" * 50)
        failed = f'{label},kind="123pan",code="5066",endpoint="upload/v2/file/single/create"'
        _wait(lambda: _value(_metrics(port), "syncagent_failed_files", failed) == 2, 120)
        text = _metrics(port)
        assert _value(text, "syncagent_pending_files", label) == 2, text
        assert _value(text, "syncagent_pending_bytes", label) == 150, text
    finally:
        if proc is not None:
            _stop(proc)
