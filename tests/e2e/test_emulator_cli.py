"""``syncagent emulator`` and ``python -m syncagent.emulator`` run as a user runs them."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

BIN = Path(sys.executable).parent / "syncagent"


@contextmanager
def running(*args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """Start the emulator command; yields the process and what it printed about itself."""
    proc = subprocess.Popen(
        [*args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8"
    )
    info: dict[str, str] = {}
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.match(r"\s+([a-zA-Z ]+):\s+(\S+)", line)
            if m:
                info[m.group(1).strip()] = m.group(2)
            if line.startswith("Stop it"):
                break
        assert "API base URL" in info, (info, proc.stderr.read() if proc.stderr else "")
        yield proc, info
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _token(info: dict[str, str]) -> dict[str, object]:
    r = requests.post(
        f"{info['API base URL']}/api/v1/access_token",
        json={"clientID": info["client ID"], "clientSecret": info["client secret"]},
        headers={"Platform": "open_platform"},
        timeout=10,
    )
    return dict(r.json())


def test_prints_url_and_credentials_that_work_then_stops_on_sigterm(tmp_path: Path) -> None:
    with running(str(BIN), "emulator", "--port", "0", "--data-dir", str(tmp_path)) as (proc, info):
        assert info["API base URL"].startswith("http://127.0.0.1:")
        assert info["upload host"] != info["API base URL"]
        assert len(info["client secret"]) >= 16
        env = _token(info)
        assert env["code"] == 0
        first = dict(info)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert (tmp_path / "emulator.sqlite3").is_file()
    # Generated credentials are kept in the data dir: a restart prints the same ones.
    with running(str(BIN), "emulator", "--port", "0", "--data-dir", str(tmp_path)) as (_, info):
        assert info["client ID"] == first["client ID"]
        assert info["client secret"] == first["client secret"]
        assert _token(info)["code"] == 0


def test_python_dash_m_with_given_credentials(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "syncagent.emulator",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path),
        "--client-id",
        "my-id",
        "--client-secret",
        "my-secret-123",
        "--rate-limits",
        "off",
    ]
    with running(*cmd) as (proc, info):
        assert info["client ID"] == "my-id"
        assert info["client secret"] == "my-secret-123"
        assert info["rate limits"] == "off"
        assert _token(info)["code"] == 0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_port_in_use_is_a_clear_error_without_traceback(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [str(BIN), "emulator", "--port", str(port), "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1
    assert "cannot listen" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_bad_option_exits_2() -> None:
    done = subprocess.run(
        [str(BIN), "emulator", "--rate-limits", "gold"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert "gold" in done.stderr


def test_help_lists_the_emulator_with_an_example() -> None:
    done = subprocess.run([str(BIN), "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    assert "emulator" in done.stdout
    sub = subprocess.run(
        [str(BIN), "emulator", "--help"], capture_output=True, text=True, timeout=30
    )
    assert "Example" in sub.stdout and "--data-dir" in sub.stdout


def test_a_host_other_than_loopback_needs_allow_remote(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN), "emulator", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    assert "0.0.0.0 is not a loopback address" in done.stderr
    assert "--allow-remote" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "emulator.sqlite3").exists()  # refused before anything was made
    cmd = [str(BIN), "emulator", "--host", "0.0.0.0", "--allow-remote", "--port", "0"]
    with running(*cmd, "--data-dir", str(tmp_path)) as (proc, _):
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None and "WARNING: listening on 0.0.0.0" in proc.stderr.read()


def test_the_admin_token_is_printed_and_opens_the_admin_endpoint(tmp_path: Path) -> None:
    with running(str(BIN), "emulator", "--port", "0", "--data-dir", str(tmp_path)) as (_, info):
        state = f"{info['API base URL']}/__emulator/state"
        assert requests.get(state, timeout=10).status_code == 401
        ok = requests.get(state, headers={"X-Emulator-Admin": info["admin token"]}, timeout=10)
        assert ok.status_code == 200 and ok.json()["code"] == 0


def test_v_logs_each_request_served_and_q_keeps_quiet(tmp_path: Path) -> None:
    base = [str(BIN), "emulator", "--port", "0", "--data-dir", str(tmp_path)]
    for flag, logged in (("-v", True), ("-q", False)):
        with running(*base, flag) as (proc, info):
            assert _token(info)["code"] == 0
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
            assert proc.stderr is not None
            err = proc.stderr.read()
        said = '"POST /api/v1/access_token HTTP/1.1" 200' in err
        assert said == logged, (flag, err)
        assert info["client secret"] not in err  # the body is never logged
