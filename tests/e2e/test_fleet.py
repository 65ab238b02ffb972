"""A fleet: five agents (separate processes, state dirs and host IDs, one client ID) start at
once on one empty PostgreSQL ledger and one emulator; PostgreSQL restarts mid-pass.

Every host backs up the same local path string, ``<tmp>/mnt/data``, each with its own files:
each agent runs in a mount namespace of its own (``unshare -m``) where its host's folder is
bind-mounted there, as every container backing up ``/data`` would. Expected: all migrate,
all back up, each host's files land in its own remote folder (``/fleet/<host>/data``), one
access token is ever minted, nothing is uploaded twice, and ``status --fleet`` lists all five.

A ``sync`` rides the restart out (its cut writes run again, ``ledger/outage.py``) or, when
it cannot, stops with "tried again once it answers"; then it is started again, as its timer
or restart policy would, and must finish the pass sending again at most the files that were
in flight at the cut.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Api, md5
from pg_support import PgServer
from test_sync_cli import BIN, cli_env, file_uploads, remote_files

from syncagent.emulator import Emulator

pytestmark = pytest.mark.slow

HOSTS = 5
FILES = 24  # per host and round
WORKERS = 2


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def _host_files(i: int, rounds: int = 2) -> dict[str, bytes]:
    """Host i's files of the first ``rounds`` rounds: the same names on every host,
    different contents."""
    return {
        f"r{r}/d{n % 3}/f{n:03}.txt": f"host {i} round {r} file {n}\n".encode() * (n + 1)
        for r in range(rounds)
        for n in range(FILES)
    }


def _start(script: str, config: Path, emulator: Emulator) -> subprocess.Popen[str]:
    """``sh -c script`` in a mount namespace of its own, output appended to sync.log."""
    with open(config.parent / "sync.log", "a", encoding="utf-8") as log:
        return subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            env=cli_env(config.parent, emulator),
            cwd=config.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _config(tmp: Path, i: int, mountpoint: Path, url: str) -> Path:
    config = tmp / f"host{i}" / "sync.yaml"
    (config.parent / "data").mkdir(parents=True)  # bind-mounted on the shared path
    config.write_text(
        "roots:\n"
        f"  - local: {json.dumps(str(mountpoint))}\n"
        "    remote: /fleet/data\n"
        f"state_dir: {json.dumps(str(tmp / f'host{i}' / 'state'))}\n"
        f"ledger: {{url: {json.dumps(url)}}}\n"
        f"fleet: {{host: host-{i}}}\n"
        f"upload: {{workers: {WORKERS}}}\n"
        "stability: {quiet: 0s}\n"
        "limits: {qps: off}\n",
        encoding="utf-8",
    )
    return config


def test_five_hosts_on_one_postgresql_ledger(
    tmp_path: Path, emulator: Emulator, pg_server: PgServer, pg_database: str
) -> None:
    assert shutil.which("unshare"), "util-linux unshare is needed (mount namespaces)"
    url = pg_server.url(pg_database)
    mountpoint = tmp_path / "mnt" / "data"
    mountpoint.mkdir(parents=True)
    configs = [_config(tmp_path, i, mountpoint, url) for i in range(HOSTS)]
    scripts = [
        f"mount --bind {shlex.quote(str(c.parent / 'data'))} {shlex.quote(str(mountpoint))} "
        f"&& exec {shlex.quote(str(BIN))} sync --config {shlex.quote(str(c))}"
        for c in configs
    ]
    agents: list[subprocess.Popen[str]] = []

    def logs() -> str:
        return "\n".join(
            f"--- host{i} (exit {p.poll()}) ---\n" + (c.parent / "sync.log").read_text()[-2500:]
            for i, (p, c) in enumerate(zip(agents, configs, strict=False))
        )

    def run_round(r: int, restart: bool) -> int:
        """Every host gets FILES new files and all five sync at once; returns how many were
        cut by the database restart (and started again)."""
        for i, config in enumerate(configs):
            for rel, content in _host_files(i, r + 1).items():
                path = config.parent / "data" / rel
                if not path.exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(content)
        before = file_uploads(emulator)
        agents[:] = [_start(scripts[i], configs[i], emulator) for i in range(HOSTS)]
        try:
            if restart:  # PostgreSQL goes away mid-pass: some files are up, most are not
                _wait(
                    lambda: file_uploads(emulator) >= before + HOSTS * FILES // 5,
                    90,
                    "uploads began\n" + logs(),
                )
                running = sum(p.poll() is None for p in agents)
                pg_server.restart()
                assert running, "every pass had ended before the restart"  # so: mid-pass
            for proc in agents:
                proc.wait(timeout=120)
            cut = [i for i, p in enumerate(agents) if p.returncode != 0]
            for i in cut:  # started again, once: the pass resumes where the ledger says
                assert "the work is tried again once it answers" in logs(), logs()
                agents[i] = _start(scripts[i], configs[i], emulator)
                agents[i].wait(timeout=120)
        finally:
            for proc in agents:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        assert [p.returncode for p in agents] == [0] * HOSTS, logs()
        return len(cut)

    # 1. five first starts at once on an empty database: all migrate, each file sent once
    assert run_round(0, restart=False) == 0
    assert file_uploads(emulator) == HOSTS * FILES, emulator.activity()["counts"]

    # 2. new files everywhere, the database restarted mid-pass: the cut passes finish when
    #    started again; only a file in flight at the cut (accepted by 123pan, its ledger
    #    write rolled back) can be sent a second time
    cut = run_round(1, restart=True)
    counts = emulator.activity()["counts"]
    assert int(counts.get("tokens_minted", 0)) == 1, counts  # read before Api mints its own
    resent = file_uploads(emulator) - 2 * HOSTS * FILES
    assert 0 <= resent <= cut * WORKERS, (cut, counts)

    api = Api(emulator)
    try:
        for i in range(HOSTS):
            remote = remote_files(api, f"/fleet/host-{i}/data")
            assert {rel: item["etag"] for rel, item in remote.items()} == {
                rel: md5(content) for rel, content in _host_files(i).items()
            }, f"host-{i}"
    finally:
        api.close()

    # the fleet view lists every host, all done; the three views are asked at once
    config0 = configs[0]
    env0 = cli_env(config0.parent, emulator)
    views = {
        name: subprocess.Popen(
            [str(BIN), "status", *flags, "--config", str(config0)],
            env=env0,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, flags in (("json", ["--fleet", "--json"]), ("text", ["--fleet"]), ("own", []))
    }
    out = {}
    for name, proc in views.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, (name, stderr)
        out[name] = stdout
    hosts = json.loads(out["json"])["hosts"]
    assert sorted(h["name"] for h in hosts) == [f"host-{i}" for i in range(HOSTS)]
    for h in hosts:
        assert h["last_pass_result"] == "ok", h
        ((root,),) = [h["roots"]]
        assert (root["local_path"], root["remote_path"]) == (
            str(mountpoint),
            f"/fleet/{h['name']}/data",
        )
        assert (root["done"], root["pending"], root["failed"]) == (2 * FILES, 0, 0), h
    assert sum(h["this_host"] for h in hosts) == 1
    assert "5 hosts; 0 files pending, 0 failed" in out["text"], out["text"]
    assert "host-3" in out["text"]
    # this host's own view; the fleet's token is read from the ledger
    assert "access token expires: never" not in out["own"], out["own"]
    assert "/fleet/host-0/data" in out["own"] and "host-1" not in out["own"]
    assert os.listdir(mountpoint) == []  # the binds lived in the agents' namespaces only


def test_one_host_on_sqlite_keeps_its_folder_and_sees_itself(
    tmp_path: Path, emulator: Emulator
) -> None:
    """fleet.shared: auto on an SQLite ledger is not shared: the configured folder is used
    as configured, the token stays in the state dir, and the fleet view has this one host."""
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.txt").write_bytes(b"alpha\n")
    config = tmp_path / "sync.yaml"
    config.write_text(
        "roots:\n"
        f"  - local: {json.dumps(str(root))}\n"
        "    remote: /solo/docs\n"
        f"state_dir: {json.dumps(str(tmp_path / 'state'))}\n"
        "fleet: {host: desk}\n"
        "limits: {qps: off}\n",
        encoding="utf-8",
    )
    env = cli_env(tmp_path, emulator)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), *args, "--config", str(config)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    synced = cli("sync")
    assert synced.returncode == 0, synced.stderr
    assert (tmp_path / "state" / "account" / "token.json").exists()
    view = cli("status", "--fleet")
    assert view.returncode == 0, view.stderr
    assert view.stdout.splitlines()[0].startswith("desk (this host) [")
    assert f"{root} -> /solo/docs: 1 done, 0 pending, 0 failed" in view.stdout
    assert view.stdout.rstrip().endswith("1 host; 0 files pending, 0 failed")
    api = Api(emulator)
    try:
        assert set(remote_files(api, "/solo/docs")) == {"a.txt"}
    finally:
        api.close()
