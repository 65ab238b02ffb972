"""The mass-change guard as a user meets it: the installed CLI against the emulator.

- ransomware under ``syncagent run``: 80 % of a 500-file mirror root rewritten with random
  bytes and renamed to ``*.locked``: the pass is held (no original replaced or trashed at the
  emulator), ``status``, ``/healthz`` and ``/metrics`` say why; ``approve`` lets it run;
- a mirror root emptied: held, nothing trashed; put back as it was, the hold clears.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
import requests
from conftest import Api, md5
from test_run_agent import _config, _kept, _log, _start, _stop, _trashed, _wait
from test_sync_cli import BIN, cli_env, file_uploads, folder_id, make_cli, remote_files

from syncagent.emulator import Emulator

pytestmark = pytest.mark.timeout(300)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_ransomware_is_held_visibly_until_approved(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    originals = {f"doc{i:03d}.txt": f"document {i}\n" * 20 for i in range(500)}
    for rel, text in originals.items():
        (root / rel).write_text(text)
    port = _port()
    config = _config(tmp_path, root, mode="mirror", max_deletes=1000)
    config.write_text(config.read_text() + f"monitoring: {{port: {port}}}\n")
    env = cli_env(tmp_path, emulator)
    proc = _start(config, env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: file_uploads(emulator) >= 500 and "pass done:" in _log(config), 120)
        before = {rel: f["etag"] for rel, f in remote_files(api, "/agent").items()}
        assert set(before) == set(originals)

        victims = sorted(originals)[:400]  # 80 %
        for rel in victims:  # encrypted: random bytes under a new name, the original gone
            (root / f"{rel}.locked").write_bytes(os.urandom(len(originals[rel])))
            (root / rel).unlink()
        rewritten = sorted(originals)[400:420]  # and a few more encrypted in place
        for rel in rewritten:
            (root / rel).write_bytes(os.urandom(len(originals[rel])))

        def held() -> bool:
            try:
                answer = requests.get(f"{base}/healthz", timeout=2)
            except requests.ConnectionError:
                return False
            return answer.status_code == 503

        _wait(held, 120)
        health = requests.get(f"{base}/healthz", timeout=2).json()
        assert health["status"] == "degraded"
        assert "mass-change guard" in health["reason"] and str(root) in health["reason"]
        assert "420 of 500" in health["reason"] and "syncagent approve" in health["reason"]
        metrics = requests.get(f"{base}/metrics", timeout=2).text
        assert "syncagent_guard_held_roots 1" in metrics
        assert f'syncagent_guard_held{{root="{root}"}} 1' in metrics
        assert "HELD by the mass-change guard" in _log(config)

        # at the emulator: every original is there, unchanged, and nothing is in the bin
        _wait(lambda: sum(r.endswith(".locked") for r in remote_files(api, "/agent")) == 400, 60)
        after = {rel: f["etag"] for rel, f in remote_files(api, "/agent").items()}
        assert {rel: after[rel] for rel in before} == before  # new files still went up
        assert not _trashed(api)

        status = _cli(env, tmp_path, "status", "--config", str(config))
        assert status.returncode == 0, status.stderr
        assert "HELD by the mass-change guard: 420 of 500 known files" in status.stdout
        assert "20 changed, 400 deleted of 500 known" in status.stdout
        assert "doc000.txt" in status.stdout  # an example
        as_json = json.loads(
            _cli(env, tmp_path, "status", "--json", "--config", str(config)).stdout
        )
        assert as_json["roots"][0]["held"]["deleted"] == 400

        approve = _cli(env, tmp_path, "approve", "--config", str(config), str(root))
        assert approve.returncode == 0, approve.stderr
        assert "approved" in approve.stdout
        # the running agent picks the approval up and runs the pass: mirror keeps the
        # deleted ones as versions; the 20 rewritten ones are replaced, their previous
        # content kept as versions too (under .syncagent/versions, which remote_files
        # leaves out); nothing goes to the recycle bin
        _wait(lambda: _kept(api) == set(victims) | set(rewritten), 90)
        assert not _trashed(api)
        _wait(
            lambda: all(remote_files(api, "/agent")[r]["etag"] != before[r] for r in rewritten), 30
        )
        _wait(lambda: requests.get(f"{base}/healthz", timeout=2).status_code == 200, 30)
        metrics = requests.get(f"{base}/metrics", timeout=2).text
        assert "syncagent_guard_held_roots 0" in metrics
        status = _cli(env, tmp_path, "status", "--config", str(config))
        assert "HELD" not in status.stdout
    finally:
        _stop(proc)


def test_an_emptied_mirror_root_is_held_and_clears_when_its_files_are_back(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    files = {f"f{i}.txt": f"file {i}" for i in range(5)}
    for rel, text in files.items():
        (root / rel).write_text(text)
    cli = make_cli(tmp_path, emulator, [(root, "/mirror")])
    cli.config.write_text(
        cli.config.read_text().replace(
            '    remote: "/mirror"\n', '    remote: "/mirror"\n    mode: mirror\n'
        )
    )
    assert cli.sync().returncode == 0
    for rel in files:
        (root / rel).unlink()
    result = cli.sync()
    assert result.returncode == 1
    assert "HELD by the mass-change guard" in result.stderr
    assert "missing, empty or not mounted" in result.stderr
    trashed = [i for i in api.listing(folder_id(api, "/mirror")) if i["trashed"]]
    assert trashed == []
    status = cli.run("status", "--config", str(cli.config))
    assert "HELD by the mass-change guard" in status.stdout and "5 deleted of 5" in status.stdout

    for rel, text in files.items():  # put back as they were (new inodes, new times)
        (root / rel).write_text(text)
    result = cli.sync()
    assert result.returncode == 0, result.stderr
    assert "HELD" not in result.stderr
    assert "0 uploaded" in result.stdout  # the same bytes: hashed, not sent again
    status = cli.run("status", "--config", str(cli.config))
    assert "HELD" not in status.stdout
    live = {rel: f["etag"] for rel, f in remote_files(api, "/mirror").items()}
    assert live == {rel: md5(text.encode()) for rel, text in files.items()}
