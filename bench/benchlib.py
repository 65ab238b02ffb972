"""Helpers shared by the benchmarks in this folder (``import benchlib``: running
``python bench/x.py`` puts ``bench/`` on the import path).

An emulator in a process of its own, and a token fetched from it by plain ``requests``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import requests

MIB = 1 << 20
PLATFORM = {"Platform": "open_platform"}


def start_emulator(
    data_dir: Path,
    *,
    drain_output: bool = False,
    port: int = 0,
    extra: Sequence[str] = (),
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start ``python -m syncagent.emulator`` on ``port`` (0: a free one; rate limits off,
    completion on the first poll), storing into ``data_dir``.

    :param drain_output: keep reading its stdout after the start-up lines, so it can never
        block on a full pipe.
    :param extra: more ``syncagent emulator`` flags; a flag given here again wins (e.g.
        ``--rate-limits free``, the shaping flags ``--rtt-ms`` and ``--conn-bps``).
    :returns: the process and what it printed about itself (``API base URL``, ``upload host``,
        ``client ID``, ``client secret``, …).
    """
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "syncagent.emulator",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--rate-limits",
            "off",
            "--complete-polls",
            "0",
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    info: dict[str, str] = {}
    for line in proc.stdout:
        m = re.match(r"\s+([a-zA-Z ]+):\s+(\S+)", line)
        if m:
            info[m.group(1).strip()] = m.group(2)
        if line.startswith("Stop it"):
            break
    if drain_output:
        threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, info


def access_token(
    info: Mapping[str, str], http: requests.Session | None = None, *, timeout: float = 30
) -> str:
    """A fresh access token from the emulator ``start_emulator`` described in ``info``, fetched
    through ``http`` (a one-off session if None)."""
    post = requests.post if http is None else http.post
    env = post(
        f"{info['API base URL']}/api/v1/access_token",
        headers=PLATFORM,
        timeout=timeout,
        json={"clientID": info["client ID"], "clientSecret": info["client secret"]},
    ).json()
    return str(env["data"]["accessToken"])


def admin_headers(info: Mapping[str, str]) -> dict[str, str]:
    """The headers of a call to the admin endpoint of the emulator described in ``info``."""
    return {"X-Emulator-Admin": info["admin token"], "Content-Type": "application/json"}


def auth_headers(token: str) -> dict[str, str]:
    """The headers of an authenticated Open Platform request."""
    return {**PLATFORM, "Authorization": f"Bearer {token}"}


def cli_env(
    info: Mapping[str, str], home: Path, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment a ``syncagent`` command needs to use the emulator of ``info``, with
    ``home`` as HOME, on top of ``base`` (default: this process's environment).

    ``PYTHONDONTWRITEBYTECODE`` is left out: set in a developer's shell, it makes every timed
    command compile syncagent's modules from source again (~0.2 s here), which no user's
    install does (pip writes the ``.pyc`` files when it installs).
    """
    kept = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if k != "PYTHONDONTWRITEBYTECODE"
    }
    return {
        **kept,
        "PAN123_CLIENT_ID": info["client ID"],
        "PAN123_CLIENT_SECRET": info["client secret"],
        "PAN123_API_BASE": info["API base URL"],
        "HOME": str(home),
    }
