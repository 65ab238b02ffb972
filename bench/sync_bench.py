"""One-pass backup benchmark: `syncagent sync` as a user runs it, against the emulator.

1. No-op pass over an unchanged tree (default 100,000 files in 1,000 folders): the wall time of
   `syncagent sync` (process start to exit) beside `find ROOT -type f -printf '%s %T@ %p\\n'`
   on the same warm tree; the sync must hash nothing and make no upload request (checked at
   the emulator); the peak RSS of one more run is reported, measured through a small
   launcher (target: within 3x of find, under 250 MiB). The
   ledger is seeded with the tree's stat facts, as a first pass would leave it (uploading
   100,000 files first would only make the benchmark slower, not different).
   Then ``--deleted`` percent of the files (default 1 %) are deleted locally, one pass records
   them (archive mode: their copies stay on 123pan and their rows are kept as gone), and the
   no-op pass is measured again beside ``find``: a local delete must not cost the fast path.
2. First pass of 2,000 files of 4 KiB (emulator rate limits off): files/s of `syncagent sync`
   (whole command) beside the official page's way, `md5sum` then `curl -F` per file, timed on
   a sample (target: at least 5x).

Usage: ``python bench/sync_bench.py [--files 100000] [--folders 1000] [--small 2000]
[--deleted 1]`` (``--small 0`` leaves out the first pass of small files).
All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from benchlib import access_token, admin_headers, start_emulator

BIN = Path(sys.executable).parent / "syncagent"


def make_tree(root: Path, files: int, folders: int, size: int) -> None:
    per = max(1, files // folders)
    n = 0
    for d in range(folders):
        folder = root / f"d{d // 100:02d}" / f"f{d:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per):
            if n >= files:
                return
            (folder / f"file{i:03d}.dat").write_bytes(n.to_bytes(8, "little") * (size // 8))
            n += 1


def write_config(path: Path, root: Path, state: Path, workers: int) -> None:
    path.write_text(
        json.dumps(
            {  # JSON is valid YAML
                "roots": [{"local": str(root), "remote": f"/bench/{root.name}"}],
                "state_dir": str(state),
                "stability": {"quiet": "0s"},
                "limits": {"qps": "off"},
                "upload": {"workers": workers},
                "logging": {"level": "warning"},
            }
        )
    )


def seed_ledger(config_path: Path) -> int:
    """Record every file of the root as uploaded, with its current stat facts."""
    from sqlalchemy import insert

    from syncagent.config import load_config
    from syncagent.ignore import IgnoreRules
    from syncagent.ledger import Ledger, repo
    from syncagent.ledger.models import FileRow
    from syncagent.scanner import scan

    config = load_config(config_path, {})
    root = config.roots[0]
    ledger = Ledger(config.ledger_url)
    ledger.migrate()
    root_id, _ = repo.ensure_root(ledger, str(root.local), root.remote, root.mode)
    repo.set_root_remote(ledger, root_id, 1)
    found = scan(root.local, IgnoreRules.for_root(root.local))
    rows = [
        {
            "root_id": root_id,
            "rel_path": e.rel_path,
            "size": e.size,
            "mtime_ns": e.mtime_ns,
            "ctime_ns": e.ctime_ns,
            "dev": e.dev,
            "inode": e.inode,
            "md5": "0" * 32,
            "remote_id": 1,
            "remote_name": e.rel_path,
            "state": "done",
        }
        for e in found.entries
    ]
    with ledger.engine.begin() as conn:
        conn.execute(insert(FileRow), rows)
    ledger.close()
    return len(rows)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, done.stdout + done.stderr


# A child's peak RSS counts the address space it had before its exec: a copy of its
# parent's. Started from this process (which holds the tree it made), every child looked
# 200 MiB big. So a small launcher starts the command and reports its rusage (the command's
# peak, and that of its helper processes) from wait4.
RSS_LAUNCHER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "sys.exit(status) if status else print(usage.ru_maxrss)\n"
)


def peak_rss_mib(cmd: list[str], env: dict[str, str]) -> float:
    """Peak RSS of one run of ``cmd`` (and of the processes it waited for), in MiB."""
    done = subprocess.run(
        [sys.executable, "-c", RSS_LAUNCHER, *cmd], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed under the RSS launcher: {done.stderr[-2000:]}")
    return int(done.stdout) / 1024


def upload_calls(info: dict[str, str]) -> int:
    state = requests.get(
        f"{info['API base URL']}/__emulator/state", headers=admin_headers(info), timeout=10
    ).json()["data"]
    endpoints: dict[str, Any] = state["activity"]["endpoints"]
    names = ("upload/v2/file/single/create", "upload/v2/file/create", "upload/v2/file/slice")
    return sum(endpoints.get(n, {}).get("calls", 0) for n in names)


def official_loop(files: list[Path], upload: str, token: str) -> float:
    """The official page's way, per file: md5sum, then curl -F single-step."""
    t0 = time.perf_counter()
    for i, f in enumerate(files):
        md5 = subprocess.run(
            ["md5sum", str(f)], capture_output=True, text=True, check=True
        ).stdout.split()[0]
        out = subprocess.run(
            [
                "curl",
                "-sS",
                "--request",
                "POST",
                "--url",
                f"{upload}/upload/v2/file/single/create",
                "--header",
                f"Authorization: Bearer {token}",
                "--header",
                "Platform: open_platform",
                "--form",
                f"file=@{f}",
                "--form",
                "parentFileID=0",
                "--form",
                f"filename=official-{i}.dat",
                "--form",
                f"etag={md5}",
                "--form",
                f"size={f.stat().st_size}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert '"code":0' in out, out
    return time.perf_counter() - t0


PHASES = """
import sys, time
t0 = time.perf_counter()
from pathlib import Path
from syncagent.config import load_config
from syncagent.ignore import IgnoreRules
from syncagent.scanner import ScanJob, default_helpers, sqlite_file
t1 = time.perf_counter()
cfg = load_config(Path(sys.argv[1]))
root = cfg.roots[0]
job = ScanJob(root.local, IgnoreRules.for_root(root.local, root.ignore),
              helpers=default_helpers(), ledger_file=sqlite_file(cfg.ledger_url))
t2 = time.perf_counter()
from syncagent.ledger import Ledger, repo
ledger = Ledger(cfg.ledger_url)
ledger.migrate()
root_id, _ = repo.ensure_root(ledger, str(root.local), root.remote, root.mode)
rows = repo.count_files(ledger, root_id)
t3 = time.perf_counter()
found = job.result()
t4 = time.perf_counter()
job.close()
alone = ScanJob(root.local, IgnoreRules.for_root(root.local, root.ignore), helpers=0,
                ledger_file=sqlite_file(cfg.ledger_url))
t5 = time.perf_counter()
alone_found = alone.result()
t6 = time.perf_counter()
print(f"imports {t1 - t0:.2f} s, config + helpers started {t2 - t1:.2f} s, "
      f"ledger library + open (helpers walking) {t3 - t2:.2f} s, "
      f"rest of the walk + compare {t4 - t3:.2f} s "
      f"({found.matched} of {rows} ledger rows matched, {default_helpers()} helper(s)); "
      f"the same walk + compare in one process: {t6 - t5:.2f} s")
"""


def phases(config: Path, env: dict[str, str]) -> str:
    """Where a no-op pass spends its time, timed in a fresh interpreter."""
    return timed([sys.executable, "-c", PHASES, str(config)], env)[1].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=1000)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--sample", type=int, default=100, help="files for the official loop")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--deleted", type=float, default=1.0, help="percent of files deleted before re-measuring"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sync-bench-") as tmp:
        work = Path(tmp)
        proc, info = start_emulator(work / "emu")
        api, upload = info["API base URL"], info["upload host"]
        env = {
            **os.environ,
            "PAN123_CLIENT_ID": info["client ID"],
            "PAN123_CLIENT_SECRET": info["client secret"],
            "PAN123_API_BASE": api,
            "HOME": str(work),
        }
        try:
            # -- 1. no-op pass ----------------------------------------------------------
            big = work / "tree"
            print(f"creating {args.files} files in {args.folders} folders…", flush=True)
            make_tree(big, args.files, args.folders, 16)
            cfg = work / "tree.yaml"
            write_config(cfg, big, work / "state-tree", workers=4)
            seeded = seed_ledger(cfg)
            find_cmd = ["find", str(big), "-type", "f", "-printf", r"%s %T@ %p\n"]
            timed(find_cmd)  # warm the dentry and inode caches for both
            sync_cmd = [str(BIN), "sync", "--config", str(cfg)]
            calls_before = upload_calls(info)
            finds, syncs, outputs = alternate(find_cmd, sync_cmd, env, args.runs)
            rss_mib = peak_rss_mib([str(BIN), "sync", "--config", str(cfg)], env)
            calls = upload_calls(info) - calls_before
            summary = [line for line in outputs[-1].splitlines() if "hashed" in line][-1]
            where = phases(cfg, env)

            # -- 1b. the same after deleting some files locally (archive mode) -------------
            every = max(1, round(100 / args.deleted)) if args.deleted > 0 else 0
            deleted = 0
            if every:
                for n, f in enumerate(sorted(big.rglob("*.dat"))):
                    if n % every == 0:
                        f.unlink()
                        deleted += 1
                _, gone_out = timed([str(BIN), "sync", "--config", str(cfg)], env)
                timed(find_cmd)
                finds_after, syncs_after, outputs_after = alternate(
                    find_cmd, sync_cmd, env, args.runs
                )
                summary_after = [ln for ln in outputs_after[-1].splitlines() if "hashed" in ln][-1]
                where_after = phases(cfg, env)

            # -- 2. first pass of small files (--small 0: left out) ----------------------
            if args.small:
                small = work / "small"
                make_tree(small, args.small, max(1, args.small // 100), 4096)
                cfg2 = work / "small.yaml"
                write_config(cfg2, small, work / "state-small", workers=8)
                first_s, out2 = timed([str(BIN), "sync", "--config", str(cfg2)], env)
                first_summary = [line for line in out2.splitlines() if "uploaded" in line][-1]
                token = access_token(info, timeout=10)
                sample = sorted(small.rglob("*.dat"))[: args.sample]
                official_s = official_loop(sample, upload, token)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    print()
    print(
        f"no-op pass over {seeded} unchanged files in {args.folders} folders "
        f"(median of {args.runs}):"
    )
    noop_report(finds, syncs, summary, where)
    print(f"  upload requests: {calls}; peak RSS of syncagent sync: {rss_mib:.0f} MiB")
    if every:
        print(
            f"after deleting {deleted} files ({args.deleted:g} %) locally, archive mode "
            f"(median of {args.runs}):"
        )
        print("  the pass that recorded them: " + gone_out.strip().splitlines()[-1])
        noop_report(finds_after, syncs_after, summary_after, where_after)
    if args.small:
        files_s = args.small / first_s
        official_rate = len(sample) / official_s
        print(f"first pass of {args.small} x 4 KiB files:")
        print(
            f"  syncagent sync (8 workers): {first_s:6.2f} s = {files_s:6.0f} files/s; "
            f"{first_summary.strip()}"
        )
        print(
            f"  official md5sum+curl loop:  {official_s:6.2f} s for {len(sample)} files = "
            f"{official_rate:6.0f} files/s"
        )
        print(f"  ratio: {files_s / official_rate:6.2f}x (target >= 5x)")


def alternate(
    find_cmd: list[str], sync_cmd: list[str], env: dict[str, str], runs: int
) -> tuple[list[float], list[float], list[str]]:
    """``runs`` timings of each command, alternating (a load that comes and goes falls on
    both sides alike); the sync's outputs too."""
    finds: list[float] = []
    syncs: list[float] = []
    outputs: list[str] = []
    for _ in range(runs):
        finds.append(timed(find_cmd)[0])
        elapsed, out = timed(sync_cmd, env)
        syncs.append(elapsed)
        outputs.append(out)
    return finds, syncs, outputs


def noop_report(finds: list[float], syncs: list[float], summary: str, where: str) -> None:
    find_s, sync_s = statistics.median(finds), statistics.median(syncs)
    print(f"  find -printf baseline:   {find_s:6.2f} s")
    print(f"  syncagent sync:          {sync_s:6.2f} s  ({', '.join(f'{s:.2f}' for s in syncs)})")
    print(f"  ratio sync/find:         {sync_s / find_s:6.2f}x (target <= 3x)")
    print(f"  summary: {summary.strip()}")
    print(f"  phases (one more pass, in a fresh interpreter): {where}")


if __name__ == "__main__":
    main()
