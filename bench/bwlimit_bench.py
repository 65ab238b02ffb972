"""How close to a bandwidth limit a backup and a restore run: ``syncagent sync --bwlimit`` and
``syncagent restore --bwlimit`` as a user runs them, against an emulator on loopback.

For each limit, a fresh emulator (so no upload is answered by 秒传 from an earlier run) and a
fresh HOME get the same tree: small files and files above the single-step threshold, so both
single-step bodies and parallel slices share the limit. Printed per run: the wall time of the
command, the rate it reached over the whole command (start-up and hashing included), that
rate as a share of the limit, and ``over``: the seconds beyond what the limit alone needs
(size / limit). Measured in the same run, the unlimited pass is the baseline: its whole time
is what a perfect limit could add at most to size / limit (start-up, hashing, the tail).

    python bench/bwlimit_bench.py                 # limits 2M, 8M, 20M; 64 MiB tree
    python bench/bwlimit_bench.py --limits 4M --mib 32
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import MIB, cli_env, start_emulator

from syncagent.config import bandwidth_limit

BIN = Path(sys.executable).with_name("syncagent")


def _tree(root: Path, mib: int) -> int:
    """Half the bytes in 64 KiB files, half in 8 MiB files (chunked above 4 MiB)."""
    rng = random.Random(7)
    total = 0
    half = mib * MIB // 2
    for i in range(half // (64 * 1024)):
        (root / f"small-{i:04d}.bin").write_bytes(rng.randbytes(64 * 1024))
        total += 64 * 1024
    for i in range(max(1, half // (8 * MIB))):
        (root / f"big-{i:02d}.bin").write_bytes(rng.randbytes(8 * MIB))
        total += 8 * MIB
    return total


def _run(args: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.monotonic()
    done = subprocess.run(
        [str(BIN), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=3600
    )
    took = time.monotonic() - t0
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return took


def _once(src: Path, work: Path, limit: str | None) -> tuple[float, float]:
    """One backup and one restore with ``limit`` (None: none), each with a new emulator's
    data; their wall times."""
    data = work / "emulator"
    proc, info = start_emulator(data, drain_output=True)
    try:
        home = work / "home"
        home.mkdir()
        config = home / "sync.yaml"
        config.write_text(
            f"roots: [{{local: '{src}', remote: /bench}}]\n"
            f"state_dir: '{home / 'state'}'\n"
            "stability: {quiet: 0s}\nlimits: {qps: off}\n"
            "upload: {single_threshold: 4MiB}\n",
            encoding="utf-8",
        )
        env = cli_env(info, home)
        flag = [] if limit is None else ["--bwlimit", limit]
        up = _run(["sync", "--config", str(config), "-q", *flag], env, home)
        back = work / "restored"
        down = _run(
            ["restore", "--config", str(config), "--root", "/bench", "--to", str(back), *flag],
            env,
            home,
        )
        assert sorted(p.name for p in back.iterdir()) == sorted(p.name for p in src.iterdir())
        return up, down
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(work)
        work.mkdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limits", nargs="+", default=["2M", "8M", "20M"])
    parser.add_argument("--mib", type=int, default=64, help="size of the tree")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bwlimit-bench-") as tmp:
        src, work = Path(tmp, "src"), Path(tmp, "work")
        src.mkdir()
        work.mkdir()
        total = _tree(src, args.mib)
        print(f"tree: {total / MIB:.0f} MiB in {len(list(src.iterdir()))} files")
        print(
            f"{'limit':>7} | {'sync s':>7} {'MB/s':>6} {'share':>6} {'over':>5} | "
            f"{'restore s':>9} {'MB/s':>6} {'share':>6} {'over':>5}"
        )
        up, down = _once(src, work, None)
        print(
            f"{'none':>7} | {up:7.2f} {total / up / 1e6:6.1f} {'-':>6} {'-':>5} | "
            f"{down:9.2f} {total / down / 1e6:6.1f} {'-':>6} {'-':>5}   (baseline)"
        )
        for limit in args.limits:
            rate = bandwidth_limit(limit).slots[0].rate  # read as --bwlimit reads it
            need = total / rate
            up, down = _once(src, work, limit)
            print(
                f"{limit:>7} | {up:7.2f} {total / up / 1e6:6.2f} {need / up:6.1%} "
                f"{up - need:5.2f} | {down:9.2f} {total / down / 1e6:6.2f} {need / down:6.1%} "
                f"{down - need:5.2f}"
            )


if __name__ == "__main__":
    main()
