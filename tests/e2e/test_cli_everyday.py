"""Everyday use of the installed CLI with no sync.yaml: `sync PATH` or `run PATH`, then a bare
`status` (and `status PATH`) that finds what was backed up; `-q` keeps stderr to warnings; `-vv`
logs each request with its trace ID and duration, never a secret."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

from test_run_agent import _wait
from test_sync_cli import BIN, cli_env

from syncagent.emulator import Emulator


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_bare_status_after_sync_path_and_quiet_output(emulator: Emulator, tmp_path: Path) -> None:
    photos, docs = tmp_path / "photos", tmp_path / "docs"
    for folder in (photos, docs):
        folder.mkdir()
        (folder / "a.txt").write_text(f"in {folder.name}")
    env = cli_env(tmp_path / "home", emulator)
    cwd = tmp_path / "elsewhere"  # no ./sync.yaml here, none in ~/.config either
    cwd.mkdir()
    quiet = _run(["sync", "-q", str(photos), str(docs)], env, cwd)
    assert quiet.returncode == 0, quiet.stderr
    assert " INFO " not in quiet.stderr  # -q: warnings and errors only
    assert quiet.stdout.strip().splitlines()[-1].startswith("2 uploaded")

    status = _run(["status", "--json"], env, cwd)
    assert status.returncode == 0, status.stderr
    roots = {r["local_path"]: r for r in json.loads(status.stdout)["roots"]}
    assert set(roots) == {str(photos), str(docs)}
    assert all(r["counts"] == {"done": 1} for r in roots.values())

    one = _run(["status", "--json", str(docs)], env, cwd)
    assert [r["local_path"] for r in json.loads(one.stdout)["roots"]] == [str(docs)]
    unknown = _run(["status", str(tmp_path / "never")], env, cwd)
    assert unknown.returncode == 2 and "not a root" in unknown.stderr
    text = _run(["status"], env, cwd)
    assert text.returncode == 0 and f"{photos} -> /syncagent/photos" in text.stdout


def test_vv_logs_each_request_and_no_secret(emulator: Emulator, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("a note")
    env = cli_env(tmp_path / "home", emulator)
    cwd = tmp_path
    once = _run(["sync", "-v", str(folder)], env, cwd)
    assert once.returncode == 0, once.stderr
    assert " -> code 0, trace " not in once.stderr  # -v: decisions, not requests
    (folder / "b.txt").write_text("another")
    twice = _run(["sync", "-vv", str(folder)], env, cwd)
    assert twice.returncode == 0, twice.stderr
    # method, endpoint, code, 123pan's trace ID and the duration
    assert re.search(
        r"POST upload/v2/file/single/create -> code 0, trace \S+_kong-db-emulator \(\d+ ms\)",
        twice.stderr,
    ), twice.stderr[-2000:]
    token = json.loads(next((tmp_path / "home").rglob("token.json")).read_text(encoding="utf-8"))[
        "access_token"
    ]
    for secret in (emulator.client_secret, token):
        assert secret not in twice.stderr


def test_bare_status_after_run_path(emulator: Emulator, tmp_path: Path) -> None:
    folder = tmp_path / "music"
    folder.mkdir()
    (folder / "song.txt").write_text("la la la")
    env = cli_env(tmp_path / "home", emulator)
    cwd = tmp_path / "elsewhere"  # no sync.yaml anywhere: the folder comes from the command
    cwd.mkdir()

    def roots() -> dict[str, dict[str, object]]:
        status = _run(["status", "--json"], env, cwd)
        if status.returncode != 0:
            return {}
        return {r["local_path"]: r for r in json.loads(status.stdout)["roots"]}

    with open(tmp_path / "run.log", "w", encoding="utf-8") as log:
        agent = subprocess.Popen(
            [str(BIN), "run", str(folder)], env=env, cwd=cwd, stdout=log, stderr=log, text=True
        )
    try:
        _wait(lambda: roots().get(str(folder), {}).get("counts") == {"done": 1}, 60)
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=30) == 0, (tmp_path / "run.log").read_text()
    # after it stopped too, a bare status (text and JSON) knows the root run was given
    assert roots()[str(folder)]["counts"] == {"done": 1}
    text = _run(["status"], env, cwd)
    assert text.returncode == 0 and f"{folder} -> /syncagent/music" in text.stdout, text.stdout


def test_not_a_terminal_gets_plain_lines(emulator: Emulator, tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    for i in range(20):
        (folder / f"f{i}.txt").write_text(f"file {i}")
    done = _run(["sync", str(folder)], cwd=tmp_path, env=cli_env(tmp_path / "home", emulator))
    assert done.returncode == 0, done.stderr
    for text in (done.stdout, done.stderr):  # a pipe: no live block, no escape, no \r
        assert "\x1b" not in text and "\r" not in text, text
    logged = [line for line in done.stderr.splitlines() if line.strip()]
    assert logged and all(
        re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) ", line)
        for line in logged
    ), logged
    assert sum("uploaded " in line for line in logged) == 20  # one whole line per file
