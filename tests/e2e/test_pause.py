"""``syncagent pause`` and ``resume`` with the real agent (the installed CLI) and the emulator:
a pause holds new files back and a resume sends them; a pause during a pass lets the uploads
in flight finish and starts no other; ``--for`` ends by itself; a pause set while no agent
runs holds the agent's startup pass; status says paused."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from conftest import Api
from test_run_agent import QUIET, _config, _log, _start, _uploaded, _wait
from test_sync_cli import BIN, cli_env

from syncagent.emulator import Emulator


def _cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args, "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _phase(config: Path, env: dict[str, str]) -> object:
    out = _cli(config, env, "status", "--json")
    info = json.loads(out.stdout).get("agent") if out.returncode == 0 else None
    return info.get("phase") if isinstance(info, dict) else None


def _run_agent(
    emulator: Emulator, tmp_path: Path, extra: str = ""
) -> tuple[subprocess.Popen[str], Path, Path, dict[str, str]]:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    config = _config(tmp_path, root)
    if extra:
        config.write_text(config.read_text(encoding="utf-8") + extra, encoding="utf-8")
    env = cli_env(tmp_path, emulator)
    return _start(config, env, tmp_path), root, config, env


def _finish(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(30)


def test_a_pause_holds_new_files_and_resume_sends_them(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    proc, root, config, env = _run_agent(emulator, tmp_path)
    try:
        _wait(lambda: "pass done" in _log(config), 60)
        paused = _cli(config, env, "pause")
        assert paused.returncode == 0, paused.stderr
        assert "the agent lets the uploads in flight finish" in paused.stdout
        _wait(lambda: _phase(config, env) == "paused", 30)
        (root / "while-paused.txt").write_text("held back")
        time.sleep(QUIET + 2)  # what an agent that is not paused needs to send it
        assert "while-paused.txt" not in _uploaded(api)
        text = _cli(config, env, "status").stdout
        assert "PAUSED: paused since" in text and "`syncagent resume`" in text
        resumed = _cli(config, env, "resume")
        assert resumed.returncode == 0 and "resumed" in resumed.stdout
        _wait(lambda: "while-paused.txt" in _uploaded(api), 60)
        assert "resumed: a full pass catches up" in _log(config)
        assert _cli(config, env, "resume").stdout.strip() == "not paused"
        assert "PAUSED" not in _cli(config, env, "status").stdout
    finally:
        _finish(proc)


def test_a_pause_during_a_pass_lets_uploads_in_flight_finish_and_starts_no_other(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    """A pass held to 100 kB/s with one worker sends one 100 kB file a second: pausing
    after the first leaves the rest unsent until the resume; each file arrives once."""
    root = tmp_path / "root"
    root.mkdir()
    names = [f"f{i:02d}.bin" for i in range(12)]
    for i, name in enumerate(names):
        (root / name).write_bytes(bytes([i]) * 100_000)
    old = time.time() - 60
    for name in names:  # settled: the pass sends them without waiting
        os.utime(root / name, (old, old))
    proc, _, config, env = _run_agent(
        emulator, tmp_path, "upload: {workers: 1}\nlimits: {qps: off, upload_bandwidth: 100k}\n"
    )
    try:
        _wait(lambda: len(_uploaded(api)) >= 1, 60)
        assert _cli(config, env, "pause").returncode == 0
        _wait(lambda: _phase(config, env) == "paused", 30)
        sent = set(_uploaded(api))
        assert 1 <= len(sent) < len(names), sent
        time.sleep(2)  # two more files' worth of time at the limit
        assert set(_uploaded(api)) == sent  # no upload started while paused
        assert _cli(config, env, "resume").returncode == 0
        _wait(lambda: set(_uploaded(api)) == set(names), 120)
        # the agent logs an upload once it is recorded, a moment after 123pan has the file
        _wait(lambda: all(f"/{name} (" in _log(config) for name in names), 60)
        log = _log(config)
        for name in names:  # each file sent once (the catalog is a create of its own)
            assert log.count(f"/{name} (") == 1, name
    finally:
        _finish(proc)


def test_a_pause_for_a_while_ends_by_itself_and_one_set_before_the_agent_holds_its_start(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "early.txt").write_text("there before the agent")
    config = _config(tmp_path, root)
    env = cli_env(tmp_path, emulator)
    bad = _cli(config, env, "pause", "--for", "soon")
    assert bad.returncode == 2 and "--for: 'soon' is not a duration" in bad.stderr
    held = _cli(config, env, "pause")
    assert held.returncode == 0 and "no agent runs now" in held.stdout, held.stdout
    proc = _start(config, env, tmp_path)
    try:
        _wait(lambda: _phase(config, env) == "paused", 60)  # the startup pass waits
        assert "early.txt" not in _uploaded(api)
        t0 = time.monotonic()
        assert _cli(config, env, "pause", "--for", "3s").returncode == 0
        _wait(lambda: "early.txt" in _uploaded(api), 60)
        assert time.monotonic() - t0 >= 3 - 0.5, "sent before the pause ended"
        log = _log(config)
        assert "no upload starts until then" in log
        assert "resumed: a full pass catches up" in log
    finally:
        _finish(proc)
