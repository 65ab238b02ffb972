"""SIGHUP (systemctl reload) re-reads sync.yaml in the running agent: a root added to the file
is backed up without a restart; a file that no longer loads is named in the log and the agent
goes on with what it had; SIGTERM still stops it with status 0."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from conftest import Api
from test_run_agent import _config, _log, _start, _stop, _wait
from test_sync_cli import cli_env, remote_files

from syncagent.emulator import Emulator


def _files(api: Api, remote: str) -> set[str]:
    try:
        return set(remote_files(api, remote))
    except AssertionError:  # not made yet
        return set()


def test_sighup_adds_a_root_and_survives_a_broken_file(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
    (first / "a.txt").write_text("in the first root")
    (second / "b.txt").write_text("in the root added by a reload")
    config = _config(tmp_path, first)
    proc: subprocess.Popen[str] | None = None
    try:
        proc = _start(config, cli_env(tmp_path, emulator), tmp_path)
        _wait(lambda: "pass done" in _log(config), 60)
        assert _files(api, "/second") == set()

        text = config.read_text()
        added = text.replace(
            "roots:\n",
            f"roots:\n  - local: {json.dumps(str(second))}\n    remote: /second\n",
        )
        config.write_text(added)
        proc.send_signal(signal.SIGHUP)
        _wait(lambda: _files(api, "/second") == {"b.txt"}, 60)
        assert proc.poll() is None  # reloaded, not restarted by anyone
        assert f"SIGHUP: reloaded {config}: 2 roots ({second} added" in _log(config)

        config.write_text(added + "upload: {workers: many}\n")
        proc.send_signal(signal.SIGHUP)
        _wait(lambda: f"SIGHUP: {config} was not reloaded" in _log(config), 60)
        assert "upload.workers" in _log(config)
        (first / "later.txt").write_text("still backed up after the bad reload")
        _wait(lambda: "later.txt" in _files(api, "/agent"), 60)
        assert proc.poll() is None
    finally:
        if proc is not None:
            _stop(proc)  # SIGTERM: exit 0 within 10 s
