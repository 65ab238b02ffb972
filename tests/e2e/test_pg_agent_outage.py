"""``syncagent run`` on a PostgreSQL ledger rides out a database restart: /healthz answers 503
and ``status`` says ``ledger: UNREACHABLE`` while the server is down; once it is back the
agent carries on (the file written meanwhile is uploaded) and stops cleanly."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Api
from pg_support import PgServer
from test_health import _health, _port
from test_run_agent import _config, _log, _start, _stop, _wait
from test_sync_cli import BIN, cli_env, remote_files

from syncagent.emulator import Emulator

pytestmark = pytest.mark.timeout(300)

PASSWORD = "pg-Pass-77"  # trust auth takes any; it must never be shown


@pytest.fixture
def server(pg_server: PgServer) -> Iterator[PgServer]:
    yield pg_server
    pg_server.start()  # running again for the next test, whatever this one did


def _remote(api: Api) -> set[str]:
    """The files under /agent, through one caller (each login is one of the account's 3
    live tokens: a caller per look would evict the agent's)."""
    try:
        return set(remote_files(api, "/agent"))
    except AssertionError:  # the remote root does not exist yet
        return set()


def test_agent_rides_out_a_postgresql_restart(
    server: PgServer, pg_database: str, emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "first.txt").write_text("first")
    port = _port()
    url = server.url(pg_database).replace("postgres@", f"postgres:{PASSWORD}@")
    config = _config(tmp_path, root)
    config.write_text(
        config.read_text()
        + f"monitoring: {{port: {port}, unhealthy_after: 0s}}\n"
        + f"ledger: {{url: {json.dumps(url)}}}\n"
        + "fleet: {shared: false}\n"  # one host: its files straight under /agent
    )
    env = cli_env(tmp_path, emulator)
    proc = _start(config, env, tmp_path)
    try:
        _wait(lambda: _health(port)[0] == 200 and "pass done" in _log(config), 90)
        assert _remote(api) == {"first.txt"}

        server.stop()
        (root / "during.txt").write_text("written while the database is down")
        _wait(lambda: _health(port)[0] == 503, 60)  # the pass waits for the ledger
        assert "ledger unreachable" in _health(port)[1], _health(port)
        status = subprocess.run(
            [str(BIN), "status", "--config", str(config)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 1, status
        assert "ledger: UNREACHABLE" in status.stdout, status
        assert "agent: pid" in status.stdout, status
        assert PASSWORD not in status.stdout + status.stderr
        as_json = subprocess.run(
            [str(BIN), "status", "--json", "--config", str(config)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert as_json.returncode == 1, as_json
        answer = json.loads(as_json.stdout)
        assert answer["ledger"] == "unreachable" and answer["agent"]["pid"] == proc.pid
        assert PASSWORD not in as_json.stdout
        assert proc.poll() is None, _log(config)

        server.start()
        _wait(lambda: _health(port)[0] == 200, 90)
        _wait(lambda: _remote(api) == {"first.txt", "during.txt"}, 90)
        assert "is reachable again" in _log(config)
        (root / "after.txt").write_text("written after the restart")
        _wait(lambda: _remote(api) == {"first.txt", "during.txt", "after.txt"}, 90)
    finally:
        _stop(proc)  # exits 0
    assert PASSWORD not in _log(config)
    status = subprocess.run(
        [str(BIN), "status", "--config", str(config)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status
    assert "3 done" in status.stdout, status.stdout
