"""The long chaos run: ``.venv/bin/python -m tests.chaos --seeds 200`` (from the repo root).

Prints one line of figures per seed (operations, passes, kills, faults, files, violations)
and, for a seed that broke an invariant, the violations and the command that replays it.
``--seed N --print-ops`` prints a seed's plan and runs it alone; ``--keep`` keeps the work
dirs (``logs/`` holds every CLI run's output). Exit status 1 if any seed broke an invariant.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from .driver import SeedResult, replay_command, run_seed
from .plan import generate


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds (default 20)")
    parser.add_argument("--first", type=int, default=1, help="the first seed (default 1)")
    parser.add_argument("--seed", type=int, help="run this one seed only")
    parser.add_argument("--print-ops", action="store_true", help="print each seed's plan")
    parser.add_argument("--plan-only", action="store_true", help="print the plan, run nothing")
    parser.add_argument("--keep", action="store_true", help="keep the work dirs")
    parser.add_argument("--work", type=Path, help="where the work dirs go (default: a temp dir)")
    args = parser.parse_args(argv)
    # Ctrl-C, or SIGTERM (a background job ignores SIGINT), ends the run with its figures.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)

    seeds = (
        [args.seed] if args.seed is not None else list(range(args.first, args.first + args.seeds))
    )
    base = args.work or Path(tempfile.mkdtemp(prefix="syncagent-chaos-"))
    results: list[SeedResult] = []
    t0 = time.monotonic()
    try:
        for seed in seeds:
            plan = generate(seed)
            if args.print_ops or args.plan_only:
                print("\n".join(plan.lines()), flush=True)
            if args.plan_only:
                continue
            work = base / f"seed-{seed}"
            result = run_seed(seed, work, log=lambda m: print(m, flush=True))
            results.append(result)
            print(result.report(), flush=True)
            if not args.keep and not result.violations:
                shutil.rmtree(work, ignore_errors=True)
    except KeyboardInterrupt:  # Ctrl-C: the figures of the seeds that finished
        print(f"\ninterrupted during seed {seed}", flush=True)
    if not results:
        return 0
    bad = [r for r in results if r.violations]
    total = {
        k: sum(getattr(r, k) for r in results)
        for k in ("ops", "passes", "kills", "terms", "faults", "injected", "uploads", "files")
    }
    print(
        f"\n{len(results)} seeds in {time.monotonic() - t0:.0f} s: "
        + ", ".join(f"{v} {k}" for k, v in total.items())
        + f", {sum(len(r.violations) for r in results)} violations in {len(bad)} seeds"
    )
    for r in bad:
        print(f"  seed {r.seed}: {len(r.violations)} violations; replay: {replay_command(r.seed)}")
    if not args.keep and not bad:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
