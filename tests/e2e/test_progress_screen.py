"""The live progress block of ``sync`` as a person sees it: a real terminal (tmux, 120×40)
running the installed CLI over 3,000 small files and two 200 MiB files against the emulator.

The captured screen must show the block (state, files done/total, bytes done/total, rate,
ETA, elapsed) and log lines printed above it, never torn by it. The capture taken mid-pass
is written to ``progress-screen.txt`` in the test's tmp dir (docs/progress-screen.txt is one).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from test_sync_cli import BIN, cli_env

from syncagent.emulator import Emulator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SMALL = 3000
BIG = 2
BLOCK = re.compile(
    r"^(uploading|done) [━╸╺ ]+ (\d+)/(\d+) files "
    r"[\d.]+/[\d.]+ [kMG]?B (\?|[\d.]+ ?(?:[kMG]?B|bytes)/s) ETA [-\d:]+ elapsed [-\d:]+\s*$"
)
LOG = re.compile(r"^(\d\d:\d\d:\d\d)?\s+(DEBUG|INFO|WARNING|ERROR)\s+\S")


def _tree(root: Path) -> None:
    for i in range(SMALL):
        folder = root / f"d{i % 30}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.txt").write_text(f"small file {i}\n" * 3)
    block = os.urandom(1 << 20)
    for n in range(BIG):
        with open(root / f"big{n}.bin", "wb") as f:
            for k in range(200):
                f.write(block[k:] + block[:k])


def _capture(session: str) -> list[str]:
    out = subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()


def test_the_live_block_shows_counts_bytes_rate_and_eta_and_logs_stay_whole(
    emulator: Emulator, tmp_path: Path
) -> None:
    assert shutil.which("tmux"), "tmux is needed (.ci/run installs it from Debian's packages)"
    root = tmp_path / "data"
    _tree(root)
    env = cli_env(tmp_path / "home", emulator)
    for name in ("TMUX", "COLUMNS", "LINES"):
        env.pop(name, None)
    env["TERM"] = "xterm-256color"
    done_file = tmp_path / "exit-status"
    command = " ".join(
        [
            "env",
            "-u",  # the terminal's own size, whatever the caller's environment says
            "COLUMNS",
            "-u",
            "LINES",
            *(shlex.quote(f"{k}={v}") for k, v in env.items()),
            shlex.quote(str(BIN)),
            "sync",
            shlex.quote(str(root)),
            ";",
            "echo",
            "$?",
            ">",
            shlex.quote(str(done_file)),
            ";",
            "sleep",
            "600",
        ]
    )
    session = f"syncagent-{os.getpid()}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command],
        check=True,
    )
    screens: list[list[str]] = []
    mid_pass: list[str] | None = None
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and not done_file.exists():
            screen = _capture(session)
            screens.append(screen)
            blocks = [m for line in screen if (m := BLOCK.match(line))]
            if blocks and blocks[-1][1] == "uploading" and 0 < int(blocks[-1][2]) < SMALL + BIG:
                mid_pass = screen
            time.sleep(0.5)
        assert done_file.exists(), "sync did not finish"
        screens.append(_capture(session))
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    assert done_file.read_text().strip() == "0", screens[-1]
    assert mid_pass is not None, "the block never showed a pass in progress:\n" + "\n".join(
        screens[-1]
    )
    block = next(m for line in mid_pass if (m := BLOCK.match(line)))
    assert int(block[3]) == SMALL + BIG  # files total
    for screen in screens:
        for line in screen:
            if not line.strip():
                continue
            if "━" in line or " files " in line:
                assert BLOCK.match(line), f"a torn progress line: {line!r}"
            else:
                # a log line, or the wrapped rest of one (indented), or the summary
                assert LOG.match(line) or line.startswith(" ") or "uploaded (" in line, (
                    f"a torn log line: {line!r}"
                )
    (tmp_path / "progress-screen.txt").write_text(
        "A text capture of `syncagent sync` on a 120×40 terminal (tmux), taken by\n"
        "tests/e2e/test_progress_screen.py during a pass of 3,000 small and two 200 MiB files:\n\n"
        + "\n".join(line.rstrip() for line in mid_pass if line.strip())
        + "\n",
        encoding="utf-8",
    )
