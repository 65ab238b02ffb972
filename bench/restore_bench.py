"""Restore benchmark: ``syncagent restore`` against curl + md5sum of the same URLs.

The emulator runs as its own process (rate limits off). A tree is backed up with ``syncagent
sync``, then, measured in the same run:

1. Large file (default 900 MiB): ``syncagent restore`` of it, wall time and peak RSS
   (through the same launcher as the sync benchmark); baseline: ``curl -o`` of its download
   URL, then ``md5sum`` of the result (URL fetched beforehand, not timed).
2. Small files (default 2,000 x 4 KiB): ``syncagent restore`` of them (files/s); baseline:
   a loop of ``curl -o`` + ``md5sum`` per file over the first ``--loop`` of them (URLs fetched
   beforehand, not timed), as files/s.

Usage: ``python bench/restore_bench.py [--large-mib 900] [--small 2000] [--loop 200]``.
All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from benchlib import MIB, access_token, auth_headers, start_emulator
from sync_bench import peak_rss_mib

BIN = Path(sys.executable).parent / "syncagent"


def env_for(info: dict[str, str], home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAN123_", "SYNCAGENT_"))}
    env.update(
        HOME=str(home),
        XDG_STATE_HOME=str(home / "state"),
        XDG_DATA_HOME=str(home / "data"),
        PAN123_CLIENT_ID=info["client ID"],
        PAN123_CLIENT_SECRET=info["client secret"],
        PAN123_API_BASE=info["API base URL"],
    )
    return env


def run(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[1]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def files_of(api: str, headers: dict[str, str], path: str) -> dict[str, tuple[int, str]]:
    """name -> (fileID, download URL) of the files in one remote folder."""
    http = requests.Session()
    current = 0
    for part in path.strip("/").split("/"):
        page = http.get(
            f"{api}/api/v2/file/list",
            params={"parentFileId": current, "limit": 100},
            headers=headers,
            timeout=30,
        ).json()["data"]
        current = next(
            i["fileId"] for i in page["fileList"] if i["filename"] == part and not i["trashed"]
        )
    out: dict[str, tuple[int, str]] = {}
    last = 0
    while last != -1:
        page = http.get(
            f"{api}/api/v2/file/list",
            params={"parentFileId": current, "limit": 100, "lastFileId": last},
            headers=headers,
            timeout=30,
        ).json()["data"]
        for i in page["fileList"]:
            if i["type"] == 0 and not i["trashed"]:
                url = http.get(
                    f"{api}/api/v1/file/download_info",
                    params={"fileId": i["fileId"]},
                    headers=headers,
                    timeout=30,
                ).json()["data"]["downloadUrl"]
                out[i["filename"]] = (i["fileId"], url)
        last = page["lastFileId"]
    return out


def curl_md5(url: str, target: Path) -> None:
    subprocess.run(["curl", "-s", "-f", "-o", str(target), url], check=True)
    subprocess.run(["md5sum", str(target)], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large-mib", type=int, default=900)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--loop", type=int, default=200)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="restore-bench-") as tmp_name:
        tmp = Path(tmp_name)
        proc, info = start_emulator(tmp / "emulator", drain_output=True)
        try:
            api = info["API base URL"]
            headers = auth_headers(access_token(info))
            env = env_for(info, tmp / "home")
            big_root, small_root = tmp / "big", tmp / "small"
            big_root.mkdir()
            small_root.mkdir()
            with open(big_root / "large.bin", "wb") as f:
                for _ in range(args.large_mib):
                    f.write(os.urandom(MIB))
            for i in range(args.small):
                (small_root / f"f{i:05d}.bin").write_bytes(os.urandom(4096))
            config = tmp / "sync.yaml"
            config.write_text(
                json.dumps(
                    {
                        "roots": [
                            {"local": str(big_root), "remote": "/bench/big"},
                            {"local": str(small_root), "remote": "/bench/small"},
                        ],
                        "state_dir": str(tmp / "state"),
                        "stability": {"quiet": "0s"},
                        "limits": {"qps": "off"},
                        "upload": {"workers": 4},
                        "logging": {"level": "warning"},
                    }
                )
            )
            run([str(BIN), "sync", "--config", str(config)], env)
            restore_cfg = tmp / "restore.yaml"
            restore_cfg.write_text('{"limits": {"qps": "off"}, "logging": {"level": "warning"}}')

            # 1. the large file
            out = tmp / "out-big"
            cmd = [str(BIN), "restore", "--config", str(restore_cfg), "--root", "/bench/big"]
            ours = run([*cmd, "--to", str(out)], env)
            shutil.rmtree(out)
            rss = peak_rss_mib([*cmd, "--to", str(out)], env)
            shutil.rmtree(out)
            (_, url) = files_of(api, headers, "/bench/big")["large.bin"]
            t0 = time.perf_counter()
            curl_md5(url, tmp / "curl-large.bin")
            baseline = time.perf_counter() - t0
            (tmp / "curl-large.bin").unlink()

            # 2. small files
            out = tmp / "out-small"
            cmd = [str(BIN), "restore", "--config", str(restore_cfg), "--root", "/bench/small"]
            small_s = run([*cmd, "--to", str(out)], env)
            urls = sorted(files_of(api, headers, "/bench/small").items())[: args.loop]
            loop_dir = tmp / "curl-small"
            loop_dir.mkdir()
            t0 = time.perf_counter()
            for name, (_, u) in urls:
                curl_md5(u, loop_dir / name)
            loop_s = time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    size_mb = args.large_mib * MIB / 1e6
    load_after = os.getloadavg()[0]
    print(f"load average (1 min): {load_before:.1f} at the start, {load_after:.1f} at the end")
    print(f"large file: {args.large_mib} MiB")
    print(f"  syncagent restore:      {ours:6.2f} s = {size_mb / ours:5.0f} MB/s")
    print(f"  curl -o + md5sum:       {baseline:6.2f} s = {size_mb / baseline:5.0f} MB/s")
    print(f"  ratio restore/baseline: {ours / baseline:.2f}x (target <= 1.25x)")
    print(f"  peak RSS of syncagent restore: {rss:.0f} MiB (target < 100 MiB)")
    ours_fps, loop_fps = args.small / small_s, len(urls) / loop_s
    print(f"small files: {args.small} x 4 KiB")
    print(f"  syncagent restore:      {small_s:6.2f} s = {ours_fps:6.0f} files/s")
    print(f"  curl + md5sum loop ({len(urls)} files): {loop_fps:6.0f} files/s")
    print(f"  ratio: {ours_fps / loop_fps:.1f}x (target >= 5x)")


if __name__ == "__main__":
    main()
