"""Bandwidth limits as a user sets them: ``sync --bwlimit`` and ``limits.upload_bandwidth``
hold a backup to the rate (the installed CLI, against the emulator), ``restore --bwlimit``
holds a restore to it, the limit in force is logged, and a limit written wrong exits 2 naming
it among every other wrong key.

Times are lower bounds only: a busy machine makes a pass slower, never faster.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from test_restore_cli import restore, restore_cli
from test_sync_cli import make_cli, summary

from syncagent.emulator import Emulator

SIZE = 1_200_000
RATE = 300_000  # 4 s for SIZE


def _tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(random.Random(5).randbytes(SIZE))
    (src / "note.txt").write_text("small")
    return src


def test_sync_bwlimit_holds_the_pass_to_the_rate(emulator: Emulator, tmp_path: Path) -> None:
    src = _tree(tmp_path)
    cli = make_cli(tmp_path, emulator, [(src, "/bw")])
    t0 = time.monotonic()
    done = cli.run("sync", "--config", str(cli.config), "--bwlimit", "300k")
    took = time.monotonic() - t0
    assert done.returncode == 0, done.stderr[-3000:]
    assert summary(done).startswith("2 uploaded")
    assert "upload bandwidth: 300 kB/s (300k)" in done.stderr
    assert took >= SIZE / RATE - 0.2, f"{SIZE} bytes in {took:.1f} s: faster than {RATE} B/s"


def test_the_config_limit_and_a_restore_limit(emulator: Emulator, tmp_path: Path) -> None:
    src = _tree(tmp_path)
    cli = make_cli(tmp_path, emulator, [(src, "/bw")])
    text = cli.config.read_text(encoding="utf-8")
    cli.config.write_text(
        text.replace("limits: {qps: off}", "limits: {qps: off, upload_bandwidth: '00:00,300k'}"),
        encoding="utf-8",
    )
    t0 = time.monotonic()
    done = cli.run("sync", "--config", str(cli.config))
    took = time.monotonic() - t0
    assert done.returncode == 0, done.stderr[-3000:]
    assert "upload bandwidth: 300 kB/s (00:00,300k)" in done.stderr
    assert took >= SIZE / RATE - 0.2, f"{SIZE} bytes in {took:.1f} s: faster than {RATE} B/s"
    status = cli.run("status", "--config", str(cli.config))
    assert "upload bandwidth: 300 kB/s (limits.upload_bandwidth: 00:00,300k)" in status.stdout
    assert "download bandwidth" not in status.stdout
    as_json = json.loads(cli.run("status", "--json", "--config", str(cli.config)).stdout)
    assert as_json["bandwidth"] == {
        "upload": {"limit": "00:00,300k", "rate_now": RATE},
        "download": None,
    }

    fresh = restore_cli(tmp_path, emulator)
    back = tmp_path / "back"
    t0 = time.monotonic()
    got = restore(fresh, "--root", "/bw", "--to", str(back), "--bwlimit", "300k")
    took = time.monotonic() - t0
    assert got.returncode == 0, got.stderr[-3000:]
    assert "download bandwidth: 300 kB/s (300k)" in got.stderr
    assert (back / "big.bin").read_bytes() == (src / "big.bin").read_bytes()
    assert took >= SIZE / RATE - 0.2, f"restored {SIZE} bytes in {took:.1f} s"


def test_a_wrong_limit_exits_2_naming_it_with_every_other_wrong_key(
    emulator: Emulator, tmp_path: Path
) -> None:
    src = _tree(tmp_path)
    cli = make_cli(tmp_path, emulator, [(src, "/bw")])
    text = cli.config.read_text(encoding="utf-8")
    cli.config.write_text(
        text.replace(
            "limits: {qps: off}",
            "limits: {qps: off, upload_bandwidth: '25:00,1M', download_bandwidth: fast}",
        ).replace("  workers: 4", "  workers: 0"),
        encoding="utf-8",
    )
    bad = cli.run("sync", "--config", str(cli.config))
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    for key in ("limits.upload_bandwidth", "limits.download_bandwidth", "upload.workers"):
        assert f"{key}:" in bad.stderr, bad.stderr
    cli.config.write_text(text, encoding="utf-8")
    flag = cli.run("sync", "--config", str(cli.config), "--bwlimit", "Mon-8:00,1M 9:00,off")
    assert flag.returncode == 2 and "--bwlimit: either every entry names a day" in flag.stderr
    assert "Traceback" not in flag.stderr
    assert "uploaded" not in flag.stdout
