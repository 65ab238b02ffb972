"""The container image for the e2e tests: podman found, a base image bootstrapped, the image built.

The recipe (deploy/Containerfile) takes its base as a build argument. There is no container
registry here, so the base is bootstrapped once from Debian's packages with ``mmdebstrap``
(Python, venv on PATH) and imported into podman's storage, where later runs find it. When
the engine or the bootstrap tool is missing the tests are skipped with that reason (``.ci/run``
installs both from Debian's packages, so CI always runs them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/syncagent-base:bookworm"
IMAGE = "localhost/syncagent:test"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # packages come through a TLS proxy


class Unavailable(Exception):
    """The image cannot be built on this machine; the message says why."""


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(REPO / ".ci" / "containers.conf")}


def podman(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def _bootstrap_base() -> None:
    """A Debian bookworm base with python3 and a venv on PATH, from Debian's packages."""
    if shutil.which("mmdebstrap") is None:
        raise Unavailable("mmdebstrap is not installed (apt-get install mmdebstrap)")
    sources = next(Path("/etc/apt").glob("sources.list.d/*.sources"), Path("/etc/apt/sources.list"))
    with tempfile.TemporaryDirectory(prefix="syncagent-base-") as tmp:
        tar = Path(tmp) / "base.tar"
        subprocess.run(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                '--customize-hook=chroot "$1" python3 -m venv /opt/venv',
                '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*',
                "bookworm",
                str(tar),
                str(sources),
            ],
            check=True,
            capture_output=True,
            timeout=900,
        )
        podman(
            "import",
            "--change",
            "ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change",
            "ENV LANG=C.UTF-8",
            str(tar),
            BASE_IMAGE,
            timeout=300,
        )


def build_image() -> str:
    """Build deploy/Containerfile (cached layers make a rebuild take seconds); the tag."""
    if shutil.which("podman") is None:
        raise Unavailable("podman is not installed (.ci/run installs it: apt-get install podman)")
    probe = podman("info", check=False, timeout=60)
    if probe.returncode != 0:
        raise Unavailable(f"podman cannot run here: {probe.stderr.strip()[-500:]}")
    if podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        _bootstrap_base()
    volumes = ["-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"] if CA_BUNDLE.is_file() else []
    build = subprocess.run(
        [
            "podman",
            "build",
            "--format",
            "docker",  # HEALTHCHECK exists only in the docker image format
            "--pull=never",
            "--network",
            "host",
            "--build-arg",
            f"BASE={BASE_IMAGE}",
            *volumes,
            "-f",
            "deploy/Containerfile",
            "-t",
            IMAGE,
            ".",
        ],
        cwd=REPO,
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if build.returncode != 0:
        raise AssertionError(
            f"podman build failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
        )
    return IMAGE
