"""syncagent beside the clients users would pick instead, on a shaped network (issue 17).

Every contender uploads the same data to a fresh emulator with the same shaping: free-tier QPS
limits on, a round-trip time (``--rtt``, default 40 and 150 ms) paid on each new connection
and each answer, and a per-connection bandwidth cap (``--conn-bps``, default 20 MB/s). The
contenders:

- ``syncagent``: ``syncagent sync`` over a root holding the files, the whole command timed
  (process start to exit), ``--workers`` files and ``--slice-workers`` slices at once. An
  untimed first pass over the still empty root comes before (ledger made, token fetched: what
  an agent does once, not per pass);
- ``py123pan``: ``py-123pan-client`` (PyPI), ``PanClient.upload_file`` in a plain loop, as its
  README shows (it has no concurrency of its own);
- ``aio123pan``: ``aio123pan`` (PyPI), ``await client.upload.upload_file`` in a plain loop, as
  its README shows (async, but it sends one file and one slice at a time);
- ``curl``: the official page's way, per file ``md5sum`` then ``curl -F`` single-step.

A peer that fails a file (the free tier answers 429 when its requests come too fast) gets the
file retried after a second, up to 5 times, as a user's loop would; retries are counted.

Phases (each contender on a fresh emulator, so nothing is instant-uploaded from a prior run):

1. ``small``: files/s for 4 KiB files. syncagent sends ``--small`` files (default 1,000); the
   peers, which go one file at a time, are timed on ``--sample`` of them (default 50): a
   sequential loop's rate does not depend on how many files follow.
   For syncagent, the same command is timed once more with nothing to send (start-up, scan
   and the fixed calls of a pass), and the rate without it is printed too.
   The limit the QPS table and the RTT allow: single-step upload has no free-tier QPS limit,
   each file is one request of one round trip on a kept-alive connection, so
   ``limit = workers / RTT`` files/s (8 / 0.040 = 200, 8 / 0.150 = 53).
2. ``large``: MB/s for one ``--large-mib`` file (default 900 MiB). syncagent writes
   ``--slice-workers`` slice bodies at once, and a written slice awaits its answer on its own
   connection outside that count, so up to twice as many connections are open; the kernel's
   send buffer lets each of them still carry bytes while its client thread has moved on.
   "Slices x per-connection cap" is therefore no bound by itself: the server's link is
   capped (``--server-bps``, default ``link`` = ``slice_workers x conn_bps``, 80 MB/s), and
   ``limit = min(2 x slice_workers x conn_bps, server_bps)`` is one no contender can pass.
   CPU seconds per GiB (user + sys of the whole ``syncagent sync`` process) are printed
   beside ``md5sum``'s on the same file. The best a single ``sync`` can do is
   ``size / (start-up + whole-file MD5 + k x RTT + size / limit)``: 123pan's create needs
   the file's MD5 before the first slice, so that hash is never overlapped with sending.

Usage (keep each run under about 3 minutes on a shared machine; split with the flags)::

    python bench/peers_bench.py --rtt 40 --phase small
    python bench/peers_bench.py --rtt 150 --phase large --contenders syncagent,py123pan

All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from benchlib import access_token, admin_headers, cli_env, start_emulator

BIN = Path(sys.executable).parent / "syncagent"
MIB = 1 << 20
CONTENDERS = ("syncagent", "py123pan", "aio123pan", "curl")
RETRIES = 5
FIXED: list[float] = []  # seconds of syncagent's no-op pass after each timed one


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rtt", default="40,150", help="round-trip times in ms, comma-separated")
    p.add_argument("--conn-bps", default="20M", help="per-connection cap (bytes/s)")
    p.add_argument(
        "--server-bps",
        default="link",
        help="cap for the whole server (0: none; link, the default: slice workers x conn cap)",
    )
    p.add_argument("--phase", default="small,large", help="small, large or both")
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    p.add_argument("--small", type=int, default=1000, help="4 KiB files syncagent sends")
    p.add_argument("--sample", type=int, default=50, help="4 KiB files each peer sends")
    p.add_argument("--large-mib", type=int, default=900)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--slice-workers", type=int, default=4)
    return p.parse_args()


def rate(text: str) -> int:
    from syncagent.emulator.shaping import parse_rate

    return parse_rate(text)


def server_cap(args: argparse.Namespace) -> int:
    """The server's link cap in bytes/s (0: none); ``link`` is what ``--slice-workers``
    connections at the per-connection cap carry together."""
    if args.server_bps == "link":
        return int(args.slice_workers) * rate(args.conn_bps)
    return rate(args.server_bps)


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f}"


@contextmanager
def shaped_emulator(
    work: Path, rtt_ms: int, conn_bps: int, server_bps: int
) -> Iterator[dict[str, str]]:
    """A fresh emulator (free-tier limits, completion on the first poll) with the shaping."""
    data = work / "emu"
    shutil.rmtree(data, ignore_errors=True)
    proc, info = start_emulator(
        data,
        drain_output=True,
        extra=[
            "--rate-limits",
            "free",
            "--rtt-ms",
            str(rtt_ms),
            "--conn-bps",
            str(conn_bps),
            "--server-bps",
            str(server_bps),
        ],
    )
    try:
        yield info
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)


def limited(info: dict[str, str]) -> int:
    """How many calls the emulator answered 429 (the free-tier limits)."""
    state = requests.get(
        f"{info['API base URL']}/__emulator/state", headers=admin_headers(info), timeout=30
    ).json()["data"]
    return sum(int(v.get("limited", 0)) for v in state["activity"]["endpoints"].values())


# -- the contenders ---------------------------------------------------------------------------


def run_syncagent(
    info: dict[str, str], files: list[Path], work: Path, args: argparse.Namespace
) -> tuple[float, float]:
    """Wall seconds of ``syncagent sync`` sending ``files``, whole command (process start to
    exit), and its CPU seconds (user + sys). A first pass over the empty root runs before,
    untimed: it makes the ledger and fetches the token, which an agent does once, not per
    pass."""
    root = work / "root"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    cfg = work / "sync.json"
    state = work / "state"
    shutil.rmtree(state, ignore_errors=True)
    cfg.write_text(
        json.dumps(
            {  # JSON is valid YAML
                "roots": [{"local": str(root), "remote": "/bench/root"}],
                "state_dir": str(state),
                "stability": {"quiet": "0s"},
                "limits": {"qps": "free"},
                "upload": {"workers": args.workers, "slice_workers": args.slice_workers},
                "logging": {"level": "warning"},
            }
        )
    )
    env = cli_env(info, work)
    cmd = [str(BIN), "sync", "--config", str(cfg)]
    subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)  # warm-up
    for f in files:
        os.link(f, root / f.name)
    c0, t0 = cpu_children(), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    took, cpu = time.perf_counter() - t0, cpu_children() - c0
    if done.returncode != 0:
        raise RuntimeError(f"syncagent sync failed ({done.returncode}): {done.stderr[-2000:]}")
    if f"{len(files)} uploaded" not in done.stdout + done.stderr:
        raise RuntimeError(f"syncagent sync did not upload every file: {done.stdout[-500:]}")
    t1 = time.perf_counter()  # the same command again, nothing to send: its fixed cost
    subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    FIXED.append(time.perf_counter() - t1)
    return took, cpu


def _retrying(send: Callable[[], object], counter: list[int]) -> None:
    for attempt in range(RETRIES):
        try:
            send()
            return
        except Exception:
            if attempt == RETRIES - 1:
                raise
            counter[0] += 1
            time.sleep(1.0)


def run_py123pan(info: dict[str, str], files: list[Path]) -> tuple[float, int]:
    from py_123pan_client import PanClient

    retries = [0]
    t0 = time.perf_counter()
    with PanClient(info["client ID"], info["client secret"], base_url=info["API base URL"]) as c:
        for f in files:

            def send(f: Path = f) -> object:
                return c.upload_file(str(f), filename=f.name, parent_file_id=0)

            _retrying(send, retries)
    return time.perf_counter() - t0, retries[0]


def run_aio123pan(info: dict[str, str], files: list[Path]) -> tuple[float, int]:
    from aio123pan import Pan123Client

    retries = [0]

    async def main() -> None:
        async with Pan123Client(
            client_id=info["client ID"],
            client_secret=info["client secret"],
            base_url=info["API base URL"],
            timeout=600,
        ) as c:
            for f in files:
                for attempt in range(RETRIES):
                    try:
                        await c.upload.upload_file(f, parent_file_id=0)
                        break
                    except Exception:
                        if attempt == RETRIES - 1:
                            raise
                        retries[0] += 1
                        await asyncio.sleep(1.0)

    t0 = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - t0, retries[0]


def run_curl(info: dict[str, str], files: list[Path]) -> tuple[float, int]:
    """The official page's way, per file: md5sum, then curl -F single-step."""
    token = access_token(info)
    upload = info["upload host"]
    retries = [0]
    t0 = time.perf_counter()
    for f in files:
        md5 = subprocess.run(
            ["md5sum", str(f)], capture_output=True, text=True, check=True
        ).stdout.split()[0]

        def send(f: Path = f, md5: str = md5) -> None:
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
                    f"filename={f.name}",
                    "--form",
                    f"etag={md5}",
                    "--form",
                    f"size={f.stat().st_size}",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            if '"code":0' not in out:
                raise RuntimeError(out[:300])

        _retrying(send, retries)
    return time.perf_counter() - t0, retries[0]


PEERS = {"py123pan": run_py123pan, "aio123pan": run_aio123pan, "curl": run_curl}


# -- the phases -------------------------------------------------------------------------------


def make_small(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(count):
        f = folder / f"s{i:05d}.dat"
        f.write_bytes(i.to_bytes(8, "little") * 512)
        files.append(f)
    return files


def make_large(path: Path, mib: int) -> None:
    block = os.urandom(MIB)
    with open(path, "wb") as f:
        for i in range(mib):
            f.write(i.to_bytes(8, "little") + block[8:])


def small_phase(work: Path, rtt: int, args: argparse.Namespace, who: list[str]) -> dict[str, float]:
    many = make_small(work / "small", args.small)
    sample = many[: args.sample]
    sample_dir = work / "sample"
    sample_dir.mkdir(exist_ok=True)
    for f in sample:
        shutil.copy(f, sample_dir / f.name)
    sample = sorted(sample_dir.iterdir())
    limit = args.workers / (rtt / 1000)
    print(f"\nsmall files, RTT {rtt} ms: limit {args.workers} / {rtt / 1000:g} s = {limit:.0f}/s")
    got: dict[str, float] = {}
    for name in who:
        with shaped_emulator(work, rtt, rate(args.conn_bps), server_cap(args)) as info:
            before = load()
            if name == "syncagent":
                (took, _), n, retries = run_syncagent(info, many, work, args), len(many), 0
            else:
                (took, retries), n = PEERS[name](info, sample), len(sample)
            got[name] = n / took
            print(
                f"  {name:10s} {n:5d} files in {took:7.2f} s = {got[name]:7.1f} files/s"
                f"  (429s {limited(info)}, retries {retries}; {before} -> {load()})",
                flush=True,
            )
            if name == "syncagent":
                fixed = FIXED[-1]
                print(
                    f"  {'':10s} a no-op pass takes {fixed:.2f} s (start-up, scan, fixed calls):"
                    f" {n / (took - fixed):.1f} files/s in the pass itself"
                )
    if "syncagent" in got:
        peers = {k: v for k, v in got.items() if k != "syncagent"}
        best = max(peers.items(), key=lambda kv: kv[1]) if peers else None
        ours = got["syncagent"]
        line = f"  syncagent = {ours / limit:.0%} of the limit (target >= 80%)"
        if best:
            line += f"; {ours / best[1]:.1f}x the best peer ({best[0]}) (target >= 3x)"
        print(line)
    return got


def large_phase(work: Path, rtt: int, args: argparse.Namespace, who: list[str]) -> dict[str, float]:
    big = work / "large.bin"
    if not big.exists():
        make_large(big, args.large_mib)
    size = big.stat().st_size
    conn, server = rate(args.conn_bps), server_cap(args)
    # syncagent writes --slice-workers bodies at once and keeps as many more requests open
    # for their answers; the kernel's send buffers let those carry bytes too, so without a
    # server cap the bound is every open connection at the per-connection cap
    opened = 2 * args.slice_workers * conn
    limit = min(opened, server) if server else opened
    print(
        f"\n{args.large_mib} MiB file, RTT {rtt} ms: limit min({2 * args.slice_workers} open "
        f"slice connections x {conn / 1e6:g} MB/s, "
        + (f"server cap {server / 1e6:g} MB/s)" if server else "no server cap)")
        + f" = {limit / 1e6:.0f} MB/s"
    )
    got: dict[str, float] = {}
    for name in who:
        with shaped_emulator(work, rtt, conn, server) as info:
            before = load()
            if name == "syncagent":
                (took, cpu_ours), retries = run_syncagent(info, [big], work, args), 0
            else:
                took, retries = PEERS[name](info, [big])
            got[name] = size / took / 1e6
            print(
                f"  {name:10s} {took:7.2f} s = {got[name]:6.1f} MB/s"
                f"  (429s {limited(info)}, retries {retries}; {before} -> {load()})",
                flush=True,
            )
        if name == "syncagent":
            c0 = cpu_children()
            subprocess.run(["md5sum", str(big)], capture_output=True, check=True)
            cpu_md5 = cpu_children() - c0
            gib = size / (1 << 30)
            print(
                f"  CPU per GiB: syncagent sync {cpu_ours / gib:.2f} s, md5sum "
                f"{cpu_md5 / gib:.2f} s = {cpu_ours / cpu_md5:.2f}x (target <= 1.5x)",
                flush=True,
            )
    if "syncagent" in got:
        peers = {k: v for k, v in got.items() if k != "syncagent"}
        ours = got["syncagent"]
        line = f"  syncagent = {ours * 1e6 / limit:.0%} of the limit (target >= 80%)"
        if peers:
            best = max(peers.items(), key=lambda kv: kv[1])
            line += f"; {ours / best[1]:.2f}x the best peer ({best[0]}) (target >= 1x)"
        print(line)
    return got


def main() -> None:
    args = parse_args()
    who = [c for c in args.contenders.split(",") if c]
    unknown = set(who) - set(CONTENDERS)
    if unknown:
        sys.exit(f"unknown contenders: {', '.join(sorted(unknown))}")
    phases = args.phase.split(",")
    print(
        f"peers bench: conn cap {args.conn_bps}B/s, server cap {server_cap(args) / 1e6:g} MB/s, "
        f"workers {args.workers}, slice workers {args.slice_workers}, free-tier QPS; {load()}"
    )
    with tempfile.TemporaryDirectory(prefix="peers-bench-") as tmp:
        work = Path(tmp)
        for rtt in (int(r) for r in args.rtt.split(",")):
            if "small" in phases:
                small_phase(work, rtt, args, who)
            if "large" in phases:
                large_phase(work, rtt, args, who)


if __name__ == "__main__":
    main()
