"""Watch-agent benchmark: event-to-uploaded latency, and CPU use while idle on a large root.

1. Latency: ``syncagent run`` on an empty root (quiet window 1 s); 200 small files are written
   one by one, 50 ms apart; for each, the time from its close to its first appearance in the
   emulator's listing (polled every 50 ms) is recorded: median and p99.
2. Idle CPU: the agent on a root of 100,000 unchanged files in 1,000 folders (ledger seeded as a
   first pass would leave it); after its startup pass, the CPU time it uses over 60 s of
   idleness, as % of one core (target: under 1 %).

Usage: ``python bench/agent_bench.py [--files 200] [--idle-files 100000] [--idle-seconds 60]``.
All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests
from benchlib import access_token, auth_headers, start_emulator
from sync_bench import make_tree, seed_ledger

BIN = Path(sys.executable).parent / "syncagent"


def write_config(path: Path, root: Path, state: Path, remote_check: bool = True) -> None:
    path.write_text(
        json.dumps(
            {
                "roots": [{"local": str(root), "remote": f"/agent/{root.name}"}],
                "state_dir": str(state),
                "stability": {"quiet": "1s"},
                "limits": {"qps": "off"},
                "logging": {"level": "warning"},
                # a seeded ledger's fileIDs are made up: a remote check would send it all
                "remote_check": {"interval": "15m" if remote_check else 0},
            }
        )
    )


def listing(api: str, headers: dict[str, str], name: str) -> dict[str, int]:
    """Files of /agent/<name> -> id (empty until the folder exists)."""
    folder = 0
    for part in ("agent", name):
        items = requests.get(
            f"{api}/api/v2/file/list",
            headers=headers,
            timeout=10,
            params={"parentFileId": folder, "limit": 100},
        ).json()["data"]
        match = [i for i in items["fileList"] if i["filename"] == part and i["type"] == 1]
        if not match:
            return {}
        folder = match[0]["fileId"]
    found: dict[str, int] = {}
    last = 0
    while True:
        data = requests.get(
            f"{api}/api/v2/file/list",
            headers=headers,
            timeout=10,
            params={"parentFileId": folder, "limit": 100, "lastFileId": last},
        ).json()["data"]
        found.update({i["filename"]: i["fileId"] for i in data["fileList"] if not i["trashed"]})
        if data["lastFileId"] == -1:
            return found
        last = data["lastFileId"]


def stop(proc: subprocess.Popen[bytes]) -> float:
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--idle-files", type=int, default=100_000)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp:
        work = Path(tmp)
        emu, info = start_emulator(work / "emu")
        api = info["API base URL"]
        headers = auth_headers(access_token(info))
        env = {
            **os.environ,
            "PAN123_CLIENT_ID": info["client ID"],
            "PAN123_CLIENT_SECRET": info["client secret"],
            "PAN123_API_BASE": api,
            "HOME": str(work),
        }
        try:
            # -- 1. latency ---------------------------------------------------------------
            root = work / "live"
            root.mkdir()
            cfg = work / "live.yaml"
            write_config(cfg, root, work / "state-live")
            agent = subprocess.Popen(
                [str(BIN), "run", "--config", str(cfg)], env=env, stderr=subprocess.DEVNULL
            )
            time.sleep(2.0)  # startup pass on an empty root, watchers on
            closed: dict[str, float] = {}
            seen: dict[str, float] = {}
            deadline = time.monotonic() + args.files * 0.05 + 120
            next_write = time.monotonic()
            i = 0
            while len(seen) < args.files and time.monotonic() < deadline:
                now = time.monotonic()
                if i < args.files and now >= next_write:
                    name = f"f{i:04d}.txt"
                    (root / name).write_text(f"file {i}\n")
                    closed[name] = time.monotonic()
                    i += 1
                    next_write = now + 0.05
                for name in listing(api, headers, "live"):
                    seen.setdefault(name, time.monotonic())
                time.sleep(0.05)
            stop(agent)
            latencies = sorted(seen[n] - closed[n] for n in seen if n in closed)

            # -- 2. idle CPU on a large root --------------------------------------------------
            big = work / "big"
            print(f"creating {args.idle_files} files…", flush=True)
            make_tree(big, args.idle_files, max(1, args.idle_files // 100), 16)
            cfg2 = work / "big.yaml"
            write_config(cfg2, big, work / "state-big", remote_check=False)
            seed_ledger(cfg2, env)
            agent = subprocess.Popen(
                [str(BIN), "run", "--config", str(cfg2)], env=env, stderr=subprocess.DEVNULL
            )
            ps = psutil.Process(agent.pid)
            time.sleep(10.0)  # the startup pass (a no-op rescan) and the watches
            c0 = sum(ps.cpu_times()[:2])
            time.sleep(args.idle_seconds)
            idle_cpu = sum(ps.cpu_times()[:2]) - c0
            rss = ps.memory_info().rss / (1 << 20)
            stop_s = stop(agent)
        finally:
            emu.terminate()
            emu.wait(timeout=30)

    print()
    if latencies:
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"event-to-uploaded latency, {len(latencies)}/{args.files} files written 50 ms "
            f"apart (quiet window 1 s):"
        )
        print(
            f"  median {statistics.median(latencies):.2f} s, p99 {p99:.2f} s, "
            f"max {latencies[-1]:.2f} s"
        )
    else:
        print("event-to-uploaded latency: no file arrived")
    print(
        f"idle agent on {args.idle_files} files for {args.idle_seconds:.0f} s: "
        f"{idle_cpu:.2f} s CPU = {100 * idle_cpu / args.idle_seconds:.2f} % of one core "
        f"(target < 1 %); RSS {rss:.0f} MiB; stopped in {stop_s:.2f} s after SIGTERM"
    )


if __name__ == "__main__":
    main()
