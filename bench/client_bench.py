"""Client benchmark: is ``Pan123Client`` as fast and as lean as the official page's way?

Starts ``python -m syncagent.emulator`` as a separate process (rate limits off, completion on the
first poll) and measures, in one run, each figure beside a baseline from the same run:

1. a large file (default 900 MiB, under the 1 GB single-step limit): ``md5sum`` then ``curl -F``
   single-step upload (the official page's way) against the client hashing and uploading the
   same file through single-step, in a child process of its own (so its peak RSS is its own).
   Each side runs twice, alternating; the file's first bytes change before every run, so every
   upload is new content and really sends its bytes (checked through the emulator's
   ``bytes_received`` counter). Targets: client time within 1.25x of the baseline; client peak
   RSS under 100 MiB;
2. a huge file (default 4 GiB), uploaded by the same child through the V2 chunked path: its peak
   RSS must be no more than 10 MiB above the large file's (streaming proven);
3. N small (4 KiB) files: a subset uploaded by the official page's loop (``md5sum`` then
   ``curl -F``, one process pair per file, sequential) against one client uploading all N from
   8 threads. Target: at least 5x the baseline's files/s.

Usage: ``python bench/client_bench.py [--large-mib 900] [--huge-mib 4096 | --skip-huge]
[--small 500] [--small-baseline 100] [--runs 2]``. All traffic goes to 127.0.0.1.

The machine is shared (2 cores): every measured step also reports the CPU that processes outside
the benchmark used meanwhile, so a slow figure can be told apart from a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests
from benchlib import MIB, access_token, admin_headers, auth_headers, start_emulator

SMALL_SIZE = 4096
SMALL_WORKERS = 8
SINGLE_STEP = 1_000_000_000  # the threshold asked for: 900 MiB goes single-step, 4 GiB chunked
ENV_API, ENV_ID, ENV_SECRET = "BENCH_API", "BENCH_CLIENT_ID", "BENCH_CLIENT_SECRET"
ENV_STATE = "BENCH_STATE_DIR"


# -- the child: the client in a process of its own ---------------------------------------------


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def child_main(argv: list[str]) -> None:
    """``--child upload PATH NAME THRESHOLD`` or ``--child small DIR COUNT``; prints one JSON line.

    The emulator's URL and credentials come from the environment (never the command line); the
    children share one token through a state directory, as the agent's processes would.
    """
    from syncagent.pan123.client import Pan123Client
    from syncagent.pan123.upload import UploadResult, UploadSettings

    mode = argv[0]
    api, cid, secret = os.environ[ENV_API], os.environ[ENV_ID], os.environ[ENV_SECRET]
    state = Path(os.environ[ENV_STATE])
    out: dict[str, Any] = {"rss_imports_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    out["rss_imports_mib"] /= 1024
    if mode == "upload":
        path, name, threshold = Path(argv[1]), argv[2], int(argv[3])
        settings = UploadSettings(single_threshold=threshold)
        marks: list[float] = []  # when the first body byte is read, and when the last one is

        def progress(done: int, total: int) -> None:
            if not marks or done == total:
                marks.append(time.perf_counter())

        with Pan123Client(
            cid, secret, api_base=api, state_dir=state, qps="off", upload=settings
        ) as client:
            c0, t0 = _cpu(), time.perf_counter()
            # the client hashes the file itself: no md5 given
            result = client.upload(path, 0, name, on_progress=progress)
            t1 = time.perf_counter()
            out["seconds"], out["cpu"] = t1 - t0, _cpu() - c0
        out["before_body"] = marks[0] - t0  # token, domain, hash (and create, slice 1's MD5)
        out["after_body"] = t1 - marks[-1]  # the answer (upload_complete) and the verification
        out["method"] = result.method
        out["slices"] = result.slices_sent
    elif mode == "small":
        folder, count = Path(argv[1]), int(argv[2])
        with Pan123Client(cid, secret, api_base=api, state_dir=state, qps="off") as client:

            def one(i: int) -> UploadResult:
                # Verified below in batches of 100 (infos), as the sync engine does, instead
                # of one detail request per file.
                return client.upload(folder / f"f{i}.bin", 0, f"small/f{i}.bin", verify=False)

            c0, t0 = _cpu(), time.perf_counter()
            with ThreadPoolExecutor(SMALL_WORKERS) as pool:
                results = list(pool.map(one, range(count)))
            stored = {f.file_id: f for f in client.infos([r.file_id for r in results])}
            bad = [
                r
                for r in results
                if (stored[r.file_id].size, stored[r.file_id].etag) != (r.size, r.md5)
            ]
            assert not bad, f"{len(bad)} uploads do not match what 123pan stored"
            out["seconds"], out["cpu"] = time.perf_counter() - t0, _cpu() - c0
            methods = [r.method for r in results]
        out["method"] = ",".join(sorted(set(methods)))
    else:
        raise SystemExit(f"unknown child mode {mode!r}")
    out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out), flush=True)


# -- the parent --------------------------------------------------------------------------------


@dataclass
class CpuWatch:
    """CPU seconds of the benchmark's own processes and of everything else on the machine."""

    emulator: psutil.Process
    marks: dict[str, float] = field(default_factory=dict)

    def sample(self) -> dict[str, float]:
        t = psutil.cpu_times()
        busy = t.user + t.nice + t.system + t.irq + t.softirq
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # md5sum, curl, client children
        e = self.emulator.cpu_times()
        return {
            "busy": busy,
            "emulator": e.user + e.system,
            "tools": kids.ru_utime + kids.ru_stime,
            "self": own.ru_utime + own.ru_stime,
        }

    @contextmanager
    def measure(self) -> Iterator[dict[str, float]]:
        """Yields a dict filled on exit: emulator, tools (waited children) and others (CPU-s)."""
        result: dict[str, float] = {}
        before, t0 = self.sample(), time.perf_counter()
        yield result
        after, wall = self.sample(), time.perf_counter() - t0
        d = {k: after[k] - before[k] for k in after}
        result["emulator"], result["tools"] = d["emulator"], d["tools"]
        result["others"] = max(0.0, d["busy"] - d["emulator"] - d["tools"] - d["self"])
        result["others_pct"] = 100 * result["others"] / (wall * (os.cpu_count() or 1))


def make_file(path: Path, size: int, tag: bytes) -> None:
    """``size`` bytes, each MiB different, distinct from any other file made with another tag."""
    block = os.urandom(MIB)
    with open(path, "wb") as f:
        left, i = size, 0
        while left:
            piece = (tag + i.to_bytes(8, "little") + block[len(tag) + 8 :])[: min(left, MIB)]
            f.write(piece)
            left -= len(piece)
            i += 1


def restamp(path: Path, run: int) -> None:
    """Change the first 8 bytes, so the file is content the emulator has never seen."""
    with open(path, "r+b") as f:
        f.write(b"run%05d" % run)


def free_emulator_copies(data_dir: Path) -> None:
    """Delete the emulator's stored copies of earlier large uploads (nothing reads them again).

    On this VM, writing 900 MiB into memory the guest has not used recently costs 2.2-2.4 s of
    kernel time instead of 0.2-0.3 s, so without this every run after the first would pay for
    the VM's memory, not for the client or curl, and the first run would look fast.
    """
    for blob in data_dir.rglob("*"):
        if blob.is_file() and blob.stat().st_size > 64 * MIB:
            blob.unlink()


def settle(data_dir: Path) -> None:
    """Each large run starts with no dirty pages pending and no earlier copies kept."""
    free_emulator_copies(data_dir)
    os.sync()
    time.sleep(0.5)


class Emulator:
    def __init__(self, info: dict[str, str], data_dir: Path, state_dir: Path) -> None:
        self.api = info["API base URL"]
        self.info = info
        self.client_id = info["client ID"]
        self.secret = info["client secret"]
        self.data_dir, self.state_dir = data_dir, state_dir
        self.http = requests.Session()
        self.http.trust_env = False
        self.headers = auth_headers(access_token(info, self.http))
        domain = self.http.get(
            f"{self.api}/upload/v2/file/domain", headers=self.headers, timeout=30
        ).json()
        self.upload = str(domain["data"][0])
        for url in (self.api, self.upload):
            assert url.startswith("http://127.0.0.1:"), url

    def counts(self) -> dict[str, int]:
        state = self.http.get(
            f"{self.api}/__emulator/state", headers=admin_headers(self.info), timeout=30
        ).json()["data"]
        return dict(state["activity"]["counts"])

    def child_env(self) -> dict[str, str]:
        return {
            **os.environ,
            ENV_API: self.api,
            ENV_ID: self.client_id,
            ENV_SECRET: self.secret,
            ENV_STATE: str(self.state_dir),
        }


def md5sum_then_curl(emu: Emulator, path: Path, name: str, contain: bool = False) -> float:
    """The official page's way: ``md5sum FILE``, then a ``curl -F`` single-step upload.

    :returns: the seconds md5sum took.
    """
    t0 = time.perf_counter()
    md5 = subprocess.run(
        ["md5sum", str(path)], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    hashed = time.perf_counter() - t0
    cmd = ["curl", "-sS", "--fail", "--noproxy", "*", "--request", "POST"]
    cmd += ["--url", f"{emu.upload}/upload/v2/file/single/create"]
    for k, v in emu.headers.items():
        cmd += ["--header", f"{k}: {v}"]
    form = [
        f"file=@{path}",
        "parentFileID=0",
        f"filename={name}",
        f"etag={md5}",
        f"size={path.stat().st_size}",
        "duplicate=2",
    ]
    if contain:
        form.append("containDir=true")
    for part in form:
        cmd += ["--form", part]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert '"code":0' in out, out
    return hashed


def run_child(emu: Emulator, *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        env=emu.child_env(),
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"client child failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def received(emu: Emulator, before: dict[str, int]) -> int:
    return emu.counts().get("bytes_received", 0) - before.get("bytes_received", 0)


@dataclass
class Small:
    base_fps: float
    client_fps: float
    report: dict[str, Any]
    base_cpu: dict[str, float]
    client_cpu: dict[str, float]


def bench_small(emu: Emulator, watch: CpuWatch, work: Path, n: int, n_base: int) -> Small:
    base_dir, client_dir = work / "small-base", work / "small-client"
    base_dir.mkdir()
    client_dir.mkdir()
    seed = os.urandom(SMALL_SIZE)
    for folder, tag, count in ((base_dir, b"B", n_base), (client_dir, b"C", n)):
        for i in range(count):
            head = tag + i.to_bytes(8, "little")
            (folder / f"f{i}.bin").write_bytes(head + seed[len(head) :])
    os.sync()

    before = emu.counts()
    with watch.measure() as base_cpu:
        t0 = time.perf_counter()
        for i in range(n_base):
            md5sum_then_curl(emu, base_dir / f"f{i}.bin", f"curl-small/f{i}.bin", contain=True)
        base_s = time.perf_counter() - t0
    after = emu.counts()
    assert after.get("single_uploads", 0) - before.get("single_uploads", 0) == n_base

    with watch.measure() as client_cpu:
        report = run_child(emu, "small", str(client_dir), str(n))
    assert emu.counts().get("single_uploads", 0) - after.get("single_uploads", 0) == n
    assert set(report["method"].split(",")) == {"single"}, report
    return Small(n_base / base_s, n / float(report["seconds"]), report, base_cpu, client_cpu)


@dataclass
class Large:
    base_times: list[float] = field(default_factory=list)
    base_hash: list[float] = field(default_factory=list)
    client_times: list[float] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    others_pct: list[float] = field(default_factory=list)


def bench_large(emu: Emulator, watch: CpuWatch, path: Path, runs: int) -> Large:
    """Baseline and client, alternating; every run sends new content (checked)."""
    size = path.stat().st_size
    res = Large()
    run = 0
    for _ in range(runs):
        for side in ("baseline", "client"):
            run += 1
            restamp(path, run)
            settle(emu.data_dir)
            before = emu.counts()
            with watch.measure() as cpu:
                if side == "baseline":
                    t0 = time.perf_counter()
                    res.base_hash.append(md5sum_then_curl(emu, path, f"large-curl-{run}.bin"))
                    took = time.perf_counter() - t0
                    res.base_times.append(took)
                    split = (
                        f"md5sum {res.base_hash[-1]:.2f} s + curl {took - res.base_hash[-1]:.2f} s"
                    )
                else:
                    name = f"large-client-{run}.bin"
                    report = run_child(emu, "upload", str(path), name, str(SINGLE_STEP))
                    assert report["method"] == "single", report
                    took = float(report["seconds"])
                    res.client_times.append(took)
                    res.reports.append(report)
                    split = (
                        f"hash etc. {report['before_body']:.2f} s + body"
                        f" {took - report['before_body'] - report['after_body']:.2f} s"
                        f" + answer/verify {report['after_body']:.2f} s;"
                        f" client CPU {report['cpu']:.2f} s"
                    )
            res.others_pct.append(cpu["others_pct"])
            got = received(emu, before)
            assert got == size, f"{side} run {run}: the emulator received {got} of {size} bytes"
            print(
                f"  run {run}: {side:8s} {took:5.2f} s ({split}); emulator CPU"
                f" {cpu['emulator']:.2f} s; other processes {cpu['others_pct']:.0f}% of the cores",
                flush=True,
            )
    return res


def bench_huge(
    emu: Emulator, watch: CpuWatch, path: Path
) -> tuple[dict[str, Any], dict[str, float]]:
    size = path.stat().st_size
    settle(emu.data_dir)
    before = emu.counts()
    with watch.measure() as cpu:
        report = run_child(emu, "upload", str(path), "huge-client.bin", str(SINGLE_STEP))
    assert report["method"] == ("chunked" if size > SINGLE_STEP else "single"), report
    got = received(emu, before)
    assert got == size, f"huge: the emulator received {got} of {size} bytes"
    return report, cpu


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--large-mib", type=int, default=900)
    parser.add_argument("--huge-mib", type=int, default=4096)
    parser.add_argument("--skip-huge", action="store_true")
    parser.add_argument("--small", type=int, default=500, help="files the client uploads")
    parser.add_argument(
        "--small-baseline", type=int, default=100, help="files the md5sum+curl loop uploads"
    )
    parser.add_argument("--runs", type=int, default=2, help="runs of each side, large file")
    args = parser.parse_args()
    t_start = time.perf_counter()
    load_start = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="client-bench-") as tmp:
        work = Path(tmp)
        (work / "state").mkdir()
        proc, info = start_emulator(work / "emu", drain_output=True)
        try:
            emu = Emulator(info, work / "emu", work / "state")
            watch = CpuWatch(psutil.Process(proc.pid))

            # Small files first, on a disk that is not busy writing back gigabytes.
            print(f"small files: {args.small_baseline} by md5sum+curl, {args.small} by the client")
            small = bench_small(emu, watch, work, args.small, args.small_baseline)

            large = work / "large.bin"
            print(f"writing a {args.large_mib} MiB test file…", flush=True)
            make_file(large, args.large_mib * MIB, b"L")
            lg = bench_large(emu, watch, large, args.runs)
            large.unlink()

            huge_report: dict[str, Any] | None = None
            huge_cpu: dict[str, float] = {}
            if not args.skip_huge:
                huge = work / "huge.bin"
                print(f"writing a {args.huge_mib} MiB test file…", flush=True)
                make_file(huge, args.huge_mib * MIB, b"H")
                huge_report, huge_cpu = bench_huge(emu, watch, huge)
                huge.unlink()
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    mb = args.large_mib * MIB / 1e6
    b_best, c_best = min(lg.base_times), min(lg.client_times)
    b_med, c_med = statistics.median(lg.base_times), statistics.median(lg.client_times)
    large_rss = [float(r["rss_mib"]) for r in lg.reports]

    def runs(xs: list[float]) -> str:
        return ", ".join(f"{x:.2f}" for x in xs)

    print()
    print(f"large file: {args.large_mib} MiB ({mb:.0f} MB), {args.runs} runs per side, alternating")
    print(
        f"  baseline md5sum + curl -F single-step: best {b_best:5.2f} s = {mb / b_best:4.0f} MB/s,"
        f" median {b_med:5.2f} s (runs {runs(lg.base_times)})"
    )
    print(
        f"  client hash + single-step upload:     best {c_best:5.2f} s = {mb / c_best:4.0f} MB/s,"
        f" median {c_med:5.2f} s (runs {runs(lg.client_times)})"
    )
    print(
        f"  ratio client/baseline time: best {c_best / b_best:.2f}x, median {c_med / b_med:.2f}x"
        f" (target <= 1.25x)"
    )
    print(
        f"  client peak RSS: {max(large_rss):.1f} MiB (runs {runs(large_rss)}; after imports"
        f" {lg.reports[0]['rss_imports_mib']:.1f}) (target < 100 MiB)"
    )
    if huge_report is not None:
        hmb = args.huge_mib * MIB / 1e6
        hs = float(huge_report["seconds"])
        body = hs - huge_report["before_body"] - huge_report["after_body"]
        diff = float(huge_report["rss_mib"]) - min(large_rss)
        print(
            f"huge file: {args.huge_mib} MiB, client V2 chunked, {huge_report['slices']} slices:"
            f" {hs:.2f} s = {hmb / hs:.0f} MB/s"
        )
        print(
            f"  hash + create {huge_report['before_body']:.2f} s, slices {body:.2f} s,"
            f" upload_complete + verify {huge_report['after_body']:.2f} s; CPU: client"
            f" {huge_report['cpu']:.1f} s, emulator {huge_cpu['emulator']:.1f} s, other"
            f" processes {huge_cpu['others_pct']:.0f}% of the cores"
        )
        print(
            f"  client peak RSS: {huge_report['rss_mib']:.1f} MiB, {diff:+.1f} MiB vs the"
            f" {args.large_mib} MiB run (target <= +10 MiB)"
        )
    print(f"small files: {SMALL_SIZE // 1024} KiB each, single-step")
    print(
        f"  baseline md5sum + curl -F per file, sequential ({args.small_baseline} files):"
        f" {small.base_fps:5.0f} files/s (emulator CPU"
        f" {small.base_cpu['emulator'] / args.small_baseline * 1000:.2f} ms/file; other"
        f" processes {small.base_cpu['others_pct']:.0f}% of the cores)"
    )
    print(
        f"  client, {SMALL_WORKERS} threads, one keep-alive client ({args.small} files):"
        f"       {small.client_fps:5.0f} files/s (emulator CPU"
        f" {small.client_cpu['emulator'] / args.small * 1000:.2f} ms/file, client CPU"
        f" {small.report['cpu'] / args.small * 1000:.2f} ms/file; other processes"
        f" {small.client_cpu['others_pct']:.0f}% of the cores); peak RSS"
        f" {small.report['rss_mib']:.0f} MiB"
    )
    print(
        f"  ratio client/baseline files/s: {small.client_fps / small.base_fps:.1f}x (target >= 5x)"
    )
    print(
        f"other processes during the large runs: {runs(lg.others_pct)} % of the cores;"
        f" load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    )
    print(f"total benchmark time: {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
