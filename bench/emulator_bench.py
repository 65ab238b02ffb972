"""Emulator benchmark: is the emulator fast and lean enough never to limit the agent?

Starts ``python -m syncagent.emulator`` as a separate process (rate limits off, completion on the
first poll) so its CPU time and peak RSS (Linux VmHWM) are its own, then measures in one run:

1. a large file (default 2 GiB) through the V2 chunked flow (create, 16 MiB slices from 4
   threads, upload_complete), streamed from disk by a plain requests client: throughput and the
   emulator's peak RSS (target < 200 MiB);
2. the baseline: ``curl -F`` sending the same bytes to the same emulator as one single-step
   upload (the single-step limit is raised for this through the admin endpoint);
3. N small (4 KiB) single-step uploads from one keep-alive client: the emulator's CPU time per
   upload (target < 1 ms) and files/s.

Usage: ``python bench/emulator_bench.py [--size-mib 2048] [--small 2000]``. All traffic goes
to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests
from benchlib import MIB, access_token, admin_headers, auth_headers, start_emulator


def peak_rss_mib(pid: int) -> float:
    """Linux high-water mark of the process's resident memory."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def make_file(path: Path, size: int) -> str:
    digest = hashlib.md5()
    block = os.urandom(MIB)
    with open(path, "wb") as f:
        left = size
        i = 0
        while left:
            # vary each MiB so slices differ, cheaply
            piece = (i.to_bytes(8, "little") + block[8:])[: min(left, MIB)]
            f.write(piece)
            digest.update(piece)
            left -= len(piece)
            i += 1
    return digest.hexdigest()


def chunked_upload(
    api: str, headers: dict[str, str], path: Path, md5: str, workers: int
) -> tuple[float, float]:
    """Returns (total seconds, seconds spent in upload_complete: the emulator's verification)."""
    size = path.stat().st_size
    http = requests.Session()
    t0 = time.perf_counter()
    created = http.post(
        f"{api}/upload/v2/file/create",
        headers=headers,
        timeout=60,
        json={"parentFileID": 0, "filename": path.name, "etag": md5, "size": size, "duplicate": 2},
    ).json()["data"]
    slice_size, server = created["sliceSize"], created["servers"][0]
    count = -(-size // slice_size)

    def send(no: int) -> None:
        with open(path, "rb") as f:
            f.seek((no - 1) * slice_size)
            piece = f.read(slice_size)
        env = requests.post(
            f"{server}/upload/v2/file/slice",
            headers=headers,
            timeout=120,
            data={
                "preuploadID": created["preuploadID"],
                "sliceNo": str(no),
                "sliceMD5": hashlib.md5(piece).hexdigest(),
            },
            files={"slice": ("slice", piece)},
        ).json()
        assert env["code"] == 0, env

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(send, range(1, count + 1)))
    t_complete = time.perf_counter()
    while True:
        env = http.post(
            f"{api}/upload/v2/file/upload_complete",
            headers=headers,
            timeout=300,
            json={"preuploadID": created["preuploadID"]},
        ).json()
        if env["code"] == 0 and env["data"]["completed"]:
            break
        assert env["code"] == 20103, env
    done = time.perf_counter()
    return done - t0, done - t_complete


def curl_single(upload: str, headers: dict[str, str], path: Path, md5: str) -> float:
    cmd = [
        "curl",
        "-sS",
        "--fail",
        "--request",
        "POST",
        "--url",
        f"{upload}/upload/v2/file/single/create",
    ]
    for k, v in headers.items():
        cmd += ["--header", f"{k}: {v}"]
    cmd += [
        "--form",
        f"file=@{path}",
        "--form",
        "parentFileID=0",
        "--form",
        "filename=curl-copy.bin",
        "--form",
        f"etag={md5}",
        "--form",
        f"size={path.stat().st_size}",
        "--form",
        "duplicate=2",
    ]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    elapsed = time.perf_counter() - t0
    assert '"code":0' in out, out
    return elapsed


def small_uploads(upload: str, headers: dict[str, str], n: int) -> float:
    http = requests.Session()
    t0 = time.perf_counter()
    for i in range(n):
        data = i.to_bytes(4, "little") * 1024
        env = http.post(
            f"{upload}/upload/v2/file/single/create",
            headers=headers,
            timeout=30,
            data={
                "parentFileID": "0",
                "filename": f"small/{i}.bin",
                "etag": hashlib.md5(data).hexdigest(),
                "size": str(len(data)),
                "duplicate": "2",
                "containDir": "true",
            },
            files={"file": ("f", data)},
        ).json()
        assert env["code"] == 0, env
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="emu-bench-") as tmp:
        work = Path(tmp)
        big = work / "big.bin"
        proc, info = start_emulator(work / "emu")
        api, upload = info["API base URL"], info["upload host"]
        try:
            http = requests.Session()
            headers = auth_headers(access_token(info, http))
            rss_start = peak_rss_mib(proc.pid)

            # Small files first, on a disk that is not busy writing back gigabytes.
            os.sync()
            cpu0 = cpu_seconds(proc.pid)
            small_s = small_uploads(upload, headers, args.small)
            cpu_per_upload_ms = (cpu_seconds(proc.pid) - cpu0) / args.small * 1000

            print(f"writing a {args.size_mib} MiB test file…", flush=True)
            md5 = make_file(big, args.size_mib * MIB)
            os.sync()  # each large upload starts with no dirty pages pending
            chunked_s, complete_s = chunked_upload(api, headers, big, md5, args.workers)
            rss_after_chunked = peak_rss_mib(proc.pid)

            http.post(
                f"{api}/__emulator/settings",
                json={"single_max": 1 << 40},
                headers=admin_headers(info),
                timeout=10,
            )
            os.sync()
            curl_s = curl_single(upload, headers, big, md5)
            rss_after_curl = peak_rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    mb = args.size_mib * MIB / 1e6
    print()
    print(f"large file: {args.size_mib} MiB ({mb:.0f} MB)")
    print(
        f"  V2 chunked, {args.workers} threads, 16 MiB slices: {chunked_s:6.2f} s "
        f"= {mb / chunked_s:6.0f} MB/s"
    )
    print(f"    of which upload_complete (whole-file MD5 check): {complete_s:.2f} s")
    print(f"  baseline curl -F single-step:          {curl_s:6.2f} s = {mb / curl_s:6.0f} MB/s")
    print(f"  ratio chunked/curl time:               {chunked_s / curl_s:6.2f}x")
    print(
        f"  emulator peak RSS: start {rss_start:.0f} MiB, after chunked "
        f"{rss_after_chunked:.0f} MiB, after curl {rss_after_curl:.0f} MiB (target < 200)"
    )
    print(f"small files: {args.small} x 4 KiB single-step, one keep-alive client")
    print(
        f"  {args.small / small_s:6.0f} files/s; emulator CPU per upload "
        f"{cpu_per_upload_ms:.3f} ms (target < 1 ms)"
    )


if __name__ == "__main__":
    main()
