"""What hashing a big file costs before a chunked upload may start (issue 17).

A V2 upload needs the whole file's MD5 before create and every slice's MD5 with it. This
prints, for one file (default 1 GiB, page cache warm), the wall and CPU seconds of:

- ``md5sum`` (the floor users compare against),
- ``digest_fd`` with no slices (one MD5),
- both MD5s in one thread, piece by piece (the baseline: how ``digest_fd`` did it before),
- ``digest_fd`` with 16 MiB slices (the slice MD5s on a second thread),

and the ratios against md5sum and against the one-thread baseline, measured in the same run.

Usage: ``.venv/bin/python bench/hash_bench.py [--mib 1024] [--runs 3]`` (medians).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from syncagent.pan123.hashing import READ_PIECE, SLICE_HINT, digest_fd


def _one_thread_both(fd: int) -> str:
    """The baseline: whole-file and slice MD5s updated in turn by one thread."""
    whole, part, in_part, offset = hashlib.md5(), hashlib.md5(), 0, 0
    slices: list[str] = []
    while piece := os.pread(fd, READ_PIECE, offset):
        offset += len(piece)
        whole.update(piece)
        part.update(piece)  # READ_PIECE divides SLICE_HINT: a piece never straddles slices
        in_part += len(piece)
        if in_part == SLICE_HINT:
            slices.append(part.hexdigest())
            part, in_part = hashlib.md5(), 0
    return whole.hexdigest()


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU (user + sys, this process and its children) seconds of ``fn()``."""

    def cpu() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    c0, t0 = cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, cpu() - c0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mib", type=int, default=1024)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="hash-bench-") as tmp:
        path = Path(tmp) / "big.bin"
        with open(path, "wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(1 << 20))
        path.read_bytes()  # page cache warm
        fd = os.open(path, os.O_RDONLY)
        try:
            cases: dict[str, Callable[[], object]] = {
                "md5sum": lambda: subprocess.run(
                    ["md5sum", str(path)], check=True, capture_output=True
                ),
                "one MD5 (digest_fd, no slices)": lambda: digest_fd(fd, 0),
                "both MD5s, one thread (baseline)": lambda: _one_thread_both(fd),
                "both MD5s, digest_fd (two threads)": lambda: digest_fd(fd, SLICE_HINT),
            }
            got: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
            for _ in range(args.runs):  # alternated, so load falls on every case alike
                for name, fn in cases.items():
                    got[name].append(_timed(fn))
        finally:
            os.close(fd)
    med = {
        n: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for n, v in got.items()
    }
    gib = args.mib / 1024
    base_wall, base_cpu = med["md5sum"]
    print(f"{args.mib} MiB, medians of {args.runs}, load {os.getloadavg()[0]:.1f}")
    print(f"{'':36} {'wall':>7} {'CPU':>7} {'CPU/GiB':>8} {'CPU vs md5sum':>14}")
    for name, (wall, cpu) in med.items():
        print(f"{name:36} {wall:6.2f}s {cpu:6.2f}s {cpu / gib:7.2f}s {cpu / base_cpu:13.2f}x")
    w1 = med["both MD5s, one thread (baseline)"][0]
    w2 = med["both MD5s, digest_fd (two threads)"][0]
    print(
        f"wall before V2 create may be sent: two threads {w2:.2f} s against one thread "
        f"{w1:.2f} s = {w2 / w1:.2f}x (md5sum alone {base_wall:.2f} s)"
    )


if __name__ == "__main__":
    main()
