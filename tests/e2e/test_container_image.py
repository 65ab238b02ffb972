"""The container image, built from deploy/Containerfile and run for real with podman.

The container runs with ``--network host`` against an emulator in this process: it backs up a
bind-mounted folder, follows a later change through inotify on the bind mount, reports healthy
through its HEALTHCHECK (``/healthz``), answers ``podman exec ... syncagent status --json``,
and ``podman stop`` ends it with exit 0 within 10 s. Skipped, with the reason, only where no
container engine can run (``.ci/run`` installs podman, so CI runs these).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Api
from container_support import Unavailable, build_image, podman
from test_run_agent import _wait
from test_sync_cli import remote_files

from syncagent.emulator import Emulator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def image() -> str:
    try:
        return build_image()
    except Unavailable as why:
        pytest.skip(f"no container engine: {why}")


@pytest.fixture
def container_name() -> Iterator[str]:
    name = f"syncagent-test-{uuid.uuid4().hex[:8]}"
    yield name
    podman("rm", "--force", "--volumes", name, check=False)
    podman("volume", "rm", "--force", f"{name}-state", check=False)


def _readable_tree(root: Path) -> None:
    """The image runs as uid 10001: the mounted folder must be readable by it."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _remote(api: Api, path: str) -> set[str]:
    try:
        return set(remote_files(api, path))
    except AssertionError:  # not created yet
        return set()


def _run(image: str, name: str, emulator: Emulator, *mounts: str, port: int) -> None:
    podman(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "-v",
        f"{name}-state:/state",
        *(arg for m in mounts for arg in ("-v", m)),
        "-e",
        f"PAN123_CLIENT_ID={emulator.client_id}",
        "-e",
        f"PAN123_CLIENT_SECRET={emulator.client_secret}",
        "-e",
        f"PAN123_API_BASE={emulator.api_url}",
        "-e",
        f"SYNCAGENT_MONITOR_PORT={port}",  # host network: a port of its own per test
        image,
    )


def _logs(name: str) -> str:
    out = podman("logs", name, check=False)
    return out.stdout + out.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_image_backs_up_a_mounted_folder_follows_changes_and_stops_cleanly(
    image: str, container_name: str, emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (data / "photos").mkdir(parents=True)
    (data / "photos" / "cat.jpg").write_bytes(b"a cat")
    _readable_tree(data)
    _run(image, container_name, emulator, f"{data}:/data:ro", port=_free_port())
    try:
        _wait(lambda: "photos/cat.jpg" in _remote(api, "/syncagent/data"), 120)
        later = data / "photos" / "later.txt"
        later.write_text("seen through inotify on the bind mount")
        later.chmod(0o644)
        _wait(lambda: "photos/later.txt" in _remote(api, "/syncagent/data"), 60)
        # The image's own HEALTHCHECK (podman runs the command inside the container).
        _wait(lambda: podman("healthcheck", "run", container_name, check=False).returncode == 0, 60)
        status = json.loads(podman("exec", container_name, "syncagent", "status", "--json").stdout)
        assert status["roots"][0]["local_path"] == "/data"
        assert status["roots"][0]["counts"] == {"done": 2}
        assert status["agent"]["pid"] == 1
        user = podman("exec", container_name, "id", "-u").stdout.strip()
        assert user == "10001"
        t0 = time.monotonic()
        podman("stop", "--time", "10", container_name, timeout=60)
        stopped_in = time.monotonic() - t0
    except BaseException:
        print(_logs(container_name)[-4000:])
        raise
    state = podman("inspect", container_name, "--format", "{{.State.ExitCode}}").stdout.strip()
    logs = _logs(container_name)
    assert state == "0", logs[-3000:]
    assert stopped_in < 10, stopped_in
    assert "syncagent stopped" in logs
    remote = remote_files(api, "/syncagent/data")
    assert remote["photos/later.txt"]["size"] == len("seen through inotify on the bind mount")


def test_a_mounted_config_is_used_and_the_postgres_driver_is_there(
    image: str, container_name: str, emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    data = tmp_path / "docs"
    data.mkdir()
    (data / "a.txt").write_text("configured")
    config = tmp_path / "config"
    config.mkdir()
    (config / "sync.yaml").write_text(
        "roots:\n  - local: /data/docs\n    remote: /from-config\nstability: {quiet: 1s}\n",
        encoding="utf-8",
    )
    _readable_tree(data)
    _readable_tree(config)
    _run(
        image,
        container_name,
        emulator,
        f"{data}:/data/docs:ro",
        f"{config / 'sync.yaml'}:/config/sync.yaml:ro",
        port=_free_port(),
    )
    try:
        _wait(lambda: "a.txt" in _remote(api, "/from-config"), 120)
        status = json.loads(podman("exec", container_name, "syncagent", "status", "--json").stdout)
        assert [r["remote_path"] for r in status["roots"]] == ["/from-config"]
        # A postgresql+psycopg ledger URL finds its driver in the image.
        probe = podman("exec", container_name, "python3", "-c", "import psycopg; print('ok')")
        assert probe.stdout.strip() == "ok"
    except BaseException:
        print(_logs(container_name)[-4000:])
        raise
    finally:
        podman("stop", "--time", "10", container_name, check=False, timeout=60)
