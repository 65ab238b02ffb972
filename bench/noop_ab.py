"""No-op pass, this checkout against a baseline checkout, interleaved (A/B).

The same seeded tree (``sync_bench``'s seeding) is passed over by ``syncagent sync`` 7 times
with this checkout's code and 7 times with the code at ``$BASELINE_SRC`` (a worktree of the
baseline commit, put first on PYTHONPATH), alternately, so that load drifts hit both alike.

Usage: ``git worktree add --detach /tmp/main-check main;
BASELINE_SRC=/tmp/main-check python bench/noop_ab.py [--files 20000] [--runs 7]``.
All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from benchlib import cli_env, start_emulator
from sync_bench import BIN, make_tree, seed_ledger, timed, write_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    baseline = os.environ.get("BASELINE_SRC", "/tmp/main-check")
    with tempfile.TemporaryDirectory(prefix="noop-ab-") as tmp:
        work = Path(tmp)
        proc, info = start_emulator(work / "emu", drain_output=True)
        env = cli_env(info, work)
        try:
            tree = work / "tree"
            make_tree(tree, args.files, max(1, args.files // 100), 16)
            cfg = work / "tree.yaml"
            write_config(cfg, tree, work / "state", workers=4)
            seed_ledger(cfg, env)
            command = [str(BIN), "sync", "--config", str(cfg)]
            timed(command, env)  # warm the caches
            results: dict[str, list[float]] = {"this checkout": [], "baseline": []}
            for _ in range(args.runs):
                results["this checkout"].append(timed(command, env)[0])
                results["baseline"].append(timed(command, {**env, "PYTHONPATH": baseline})[0])
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    for name, times in results.items():
        print(
            f"no-op pass over {args.files} files, {name}: "
            f"median {statistics.median(times):.3f} s, min {min(times):.3f} s"
        )


if __name__ == "__main__":
    main()
