"""One-pass backup benchmark: `syncagent sync` as a user runs it, against the emulator.

1. No-op pass over an unchanged tree (default 100,000 files in 1,000 folders), after a REAL
   first pass: `syncagent sync` uploads the whole tree to the emulator first, so the ledger
   is the one users get (row order, pass history, kv, remote folders). Then the wall and CPU
   time of `syncagent sync` (process start to exit, helper processes included) beside
   `find ROOT -type f -printf '%s %T@ %p\\n'` on the same warm tree, alternating, medians of
   ``--runs``; the sync must hash nothing and make no upload request (checked at the
   emulator); the peak RSS of one more run is reported, measured through a small launcher
   (target: within 3x of find, under 250 MiB).
   A second line, labelled as seeded, measures the same pass against a ledger seeded
   directly with the tree's stat facts (what this benchmark measured before).
   Then ``--deleted`` percent of the files (default 1 %) are deleted locally, one pass
   records them (archive mode: their copies stay on 123pan and their rows are kept as gone),
   and the no-op pass is measured again beside ``find``: a local delete must not cost the
   fast path. Afterwards the files are written back and a pass uploads them again, so the
   tree and its ledger stay a real pass's for the next run (``--keep``).
2. First pass of ``--small`` files of 4 KiB (emulator rate limits off): files/s of
   `syncagent sync` (whole command) beside the official page's way, `md5sum` then `curl -F`
   per file, timed on a sample (target: at least 5x).

A real first pass of 100,000 files takes minutes: ``--keep DIR`` keeps the tree, the
emulator's store and the state dir in DIR, and a later run with the same ``--files``,
``--folders`` and ``--size`` reuses them (the emulator is started on the same port, so the
ledger's rows stay bound to the same account).

Usage: ``python bench/sync_bench.py [--files 100000] [--folders 1000] [--size 16] [--runs 3]
[--small 2000] [--deleted 1] [--keep DIR] [--no-seeded] [--baseline CHECKOUT]`` (``--small 0``
leaves out the first pass of small files). All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from benchlib import access_token, admin_headers, cli_env, start_emulator

BIN = Path(sys.executable).parent / "syncagent"
QUICK = "pass recorded without loading the ledger"  # syncagent.noop's -v line


def make_tree(root: Path, files: int, folders: int, size: int) -> None:
    """``files`` files of ``size`` bytes (each its own content) in ``folders`` folders."""
    per = max(1, -(-files // folders))
    n = 0
    for d in range(folders):
        folder = root / f"d{d // 100:02d}" / f"f{d:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per):
            if n >= files:
                return
            (folder / f"file{i:03d}.dat").write_bytes(content(n, size))
            n += 1


def content(n: int, size: int) -> bytes:
    return (n.to_bytes(8, "little") * (size // 8 + 1))[:size]


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


def seed_ledger(config_path: Path, env: dict[str, str]) -> int:
    """Record every file of the root as uploaded, with its current stat facts, for the
    account in ``env`` (rows bound to no account would be re-checked against the remote)."""
    from sqlalchemy import insert

    from syncagent.binding import Account
    from syncagent.config import load_config
    from syncagent.ignore import IgnoreRules
    from syncagent.ledger import Ledger, repo, trust
    from syncagent.ledger.models import FileRow
    from syncagent.scanner import scan

    config = load_config(config_path, env)
    root = config.roots[0]
    ledger = Ledger(config.ledger_url)
    ledger.migrate()
    root_id, _ = repo.ensure_root(ledger, str(root.local), root.remote, root.mode)
    assert config.credentials is not None
    account = Account(config.api_base, config.credentials.client_id)
    trust.bind_root(ledger, root_id, account, None, root.remote, reason=None)
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


@dataclass
class Run:
    wall: float
    cpu: float  # user + system, of the command and of the children it waited for
    out: str


def run(cmd: list[str], env: dict[str, str] | None = None) -> Run:
    """Run ``cmd``; its wall time, and its CPU time from ``wait4``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {out[-2000:]}")
    return Run(elapsed, usage.ru_utime + usage.ru_stime, out)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    done = run(cmd, env)
    return done.wall, done.out


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
rows = job._worker.rows
t2 = time.perf_counter()
from syncagent.noop import quick_pass
unchanged = quick_pass(cfg, {root.local: job})
t3 = time.perf_counter()
job.close()
alone = ScanJob(root.local, IgnoreRules.for_root(root.local, root.ignore), helpers=0,
                ledger_file=sqlite_file(cfg.ledger_url))
t5 = time.perf_counter()
alone_found = alone.result()
t6 = time.perf_counter()
print(f"imports {t1 - t0:.2f} s, config + rules + helpers started {t2 - t1:.2f} s, "
      f"ledger checks + walk + compare {t3 - t2:.2f} s "
      f"(quick no-op: {unchanged} of {rows} ledger rows unchanged, {default_helpers()} "
      f"helper(s)); the same walk + compare in one process: {t6 - t5:.2f} s")
"""


def phases(config: Path, env: dict[str, str]) -> str:
    """Where a no-op pass spends its time, timed in a fresh interpreter."""
    return timed([sys.executable, "-c", PHASES, str(config)], env)[1].strip()


@dataclass
class NoopFigures:
    """One no-op measurement: find and sync alternated, wall and CPU seconds."""

    label: str
    finds: list[Run] = field(default_factory=list)
    syncs: list[Run] = field(default_factory=list)
    baseline: list[Run] = field(default_factory=list)  # the sync with --baseline's code
    calls: int = 0
    rss_mib: float | None = None
    quick: bool = False  # decided without loading the ledger's libraries (syncagent.noop)
    where: str = ""

    @property
    def summary(self) -> str:
        return [ln for ln in self.syncs[-1].out.splitlines() if "hashed" in ln][-1].strip()


def measure_noop(
    label: str,
    find_cmd: list[str],
    sync_cmd: list[str],
    env: dict[str, str],
    info: dict[str, str],
    runs: int,
    *,
    rss: bool = False,
    baseline: str | None = None,
) -> NoopFigures:
    """``runs`` timings of each command, alternating (a load that comes and goes falls on
    both sides alike), after one warm-up run of each; with ``baseline`` (a checkout's
    path), the same sync with that checkout's code too."""
    base_env = {**env, "PYTHONPATH": baseline} if baseline else None
    run(find_cmd)
    run(sync_cmd, env)  # warm-up: the first pass after a change may still record things
    if base_env is not None:
        run(sync_cmd, base_env)
    figures = NoopFigures(label)
    before = upload_calls(info)
    for _ in range(runs):
        figures.finds.append(run(find_cmd))
        figures.syncs.append(run(sync_cmd, env))
        if base_env is not None:
            figures.baseline.append(run(sync_cmd, base_env))
    if rss:
        figures.rss_mib = peak_rss_mib(sync_cmd, env)
    figures.calls = upload_calls(info) - before
    figures.quick = QUICK in run([*sync_cmd, "-v"], env).out
    figures.where = phases(Path(sync_cmd[-1]), env)
    return figures


def report(figures: NoopFigures) -> None:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    find_s, sync_s = med([r.wall for r in figures.finds]), med([r.wall for r in figures.syncs])
    find_c, sync_c = med([r.cpu for r in figures.finds]), med([r.cpu for r in figures.syncs])
    walls = ", ".join(f"{r.wall:.2f}" for r in figures.syncs)
    cpus = ", ".join(f"{r.cpu:.2f}" for r in figures.syncs)
    print(f"{figures.label}:")
    print(f"  find -printf baseline:   {find_s:6.2f} s wall, {find_c:6.2f} s CPU")
    print(f"  syncagent sync:          {sync_s:6.2f} s wall ({walls}),")
    print(f"                           {sync_c:6.2f} s CPU ({cpus})")
    print(
        f"  ratio sync/find:         {sync_s / find_s:6.2f}x wall (target <= 3x), "
        f"{sync_c / max(find_c, 1e-3):6.2f}x CPU"
    )
    if figures.baseline:
        base_s = med([r.wall for r in figures.baseline])
        base_c = med([r.cpu for r in figures.baseline])
        print(
            f"  the same with --baseline's code: {base_s:6.2f} s wall, {base_c:6.2f} s CPU "
            f"({base_s / find_s:.2f}x, {base_c / max(find_c, 1e-3):.2f}x CPU of find)"
        )
    print(f"  summary: {figures.summary}; upload requests: {figures.calls}")
    way = "quick (syncagent.noop, no SQLAlchemy)" if figures.quick else "FULL (engine)"
    print(f"  the way the pass took: {way}")
    if figures.rss_mib is not None:
        print(f"  peak RSS of syncagent sync: {figures.rss_mib:.0f} MiB (target < 250 MiB)")
    print(f"  phases (one more pass, in a fresh interpreter): {figures.where}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def work_dir(keep: Path | None) -> Iterator[Path]:
    """``keep`` (made if missing), or a temporary folder removed afterwards."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="sync-bench-") as tmp:
        yield Path(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=None, help="default: files / 100")
    parser.add_argument("--size", type=int, default=16, help="bytes per file of the no-op tree")
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--sample", type=int, default=100, help="files for the official loop")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--deleted", type=float, default=1.0, help="percent of files deleted before re-measuring"
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the tree, store and ledger here for reuse"
    )
    parser.add_argument("--no-seeded", action="store_true", help="leave out the seeded line")
    parser.add_argument(
        "--baseline",
        default=None,
        help="a checkout (e.g. git worktree add --detach /tmp/main-check main) whose code "
        "runs the real-ledger no-op pass too, alternated with this one (PYTHONPATH)",
    )
    args = parser.parse_args()
    folders = args.folders or max(1, args.files // 100)

    with work_dir(args.keep) as work:
        shape = {"files": args.files, "folders": folders, "size": args.size}
        meta_path = work / "bench.json"
        meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        if meta.get("shape") != shape or not meta.get("first_pass"):
            for name in ("tree", "emu", "state-tree", "tree.yaml", "bench.json"):
                path = work / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
            meta = {"shape": shape, "port": free_port()}
        for name in ("small", "state-small", "state-seeded"):
            shutil.rmtree(work / name, ignore_errors=True)
        proc, info = start_emulator(work / "emu", drain_output=True, port=meta["port"])
        if "upload host" not in info:  # e.g. the kept port is taken now
            proc.kill()
            sys.exit(f"the emulator did not start on port {meta['port']} (taken?)")
        upload = info["upload host"]
        # Compiled modules, as an installed package has (pip compiles them at install; an
        # editable checkout run with PYTHONDONTWRITEBYTECODE=1 recompiles every module
        # every run, ~0.05 s CPU more).
        env = cli_env(
            info,
            work,
            {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        )
        try:
            # -- 1. the real first pass (or the one a earlier --keep run made) ---------------
            big = work / "tree"
            cfg = work / "tree.yaml"
            write_config(cfg, big, work / "state-tree", workers=8)
            if not meta.get("first_pass"):
                print(f"creating {args.files} files in {folders} folders…", flush=True)
                make_tree(big, args.files, folders, args.size)
                print("real first pass (syncagent sync uploading everything)…", flush=True)
                first = run([str(BIN), "sync", "--config", str(cfg)], env)
                meta["first_pass"] = {
                    "wall": round(first.wall, 1),
                    "cpu": round(first.cpu, 1),
                    "summary": first.out.strip().splitlines()[-1],
                    "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                }
                meta_path.write_text(json.dumps(meta))
            first_pass = meta["first_pass"]
            find_cmd = ["find", str(big), "-type", "f", "-printf", r"%s %T@ %p\n"]
            sync_cmd = [str(BIN), "sync", "--config", str(cfg)]
            results = [
                measure_noop(
                    "no-op pass after a real first pass",
                    find_cmd,
                    sync_cmd,
                    env,
                    info,
                    args.runs,
                    rss=True,
                    baseline=args.baseline,
                )
            ]

            # -- 1a. the same tree against a seeded ledger ---------------------------------
            if not args.no_seeded:
                cfg_seeded = work / "seeded.yaml"
                write_config(cfg_seeded, big, work / "state-seeded", workers=8)
                seed_ledger(cfg_seeded, env)
                seeded_cmd = [str(BIN), "sync", "--config", str(cfg_seeded)]
                results.append(
                    measure_noop(
                        "no-op pass against a SEEDED ledger (stat facts inserted, no real pass)",
                        find_cmd,
                        seeded_cmd,
                        env,
                        info,
                        args.runs,
                    )
                )

            # -- 1b. the real ledger after deleting some files locally (archive mode) ------
            every = max(1, round(100 / args.deleted)) if args.deleted > 0 else 0
            gone_line = ""
            if every:
                # make_tree's names sort in the order it wrote them: n is the content's number
                victims = [
                    (n, f) for n, f in enumerate(sorted(big.rglob("*.dat"))) if n % every == 0
                ]
                for _, f in victims:
                    f.unlink()
                gone_line = run(sync_cmd, env).out.strip().splitlines()[-1]
                results.append(
                    measure_noop(
                        f"no-op pass after deleting {len(victims)} files "
                        f"({args.deleted:g} %) locally, archive mode (real ledger)",
                        find_cmd,
                        sync_cmd,
                        env,
                        info,
                        args.runs,
                    )
                )
                for n, f in victims:  # back as they were, so the tree can be kept for next time
                    f.write_bytes(content(n, args.size))
                run(sync_cmd, env)

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
        f"tree: {args.files} files of {args.size} bytes in {folders} folders; "
        f"real first pass ({first_pass['at']}): {first_pass['wall']} s wall, "
        f"{first_pass['cpu']} s CPU; {first_pass['summary']}"
    )
    print(f"medians of {args.runs}, find and sync alternated; load: {os.getloadavg()}")
    for figures in results:
        report(figures)
    if every:
        print(f"  (the pass that recorded the deletions: {gone_line})")
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


if __name__ == "__main__":
    main()
