"""Seeded SIGKILLs of the installed CLI during passes that keep versions, then a rerun.

One seed: a root of a dozen files (a few large enough for chunked uploads) in archive or
mirror mode, then five rounds. Each round changes files (new bytes, sometimes of the same
size), deletes some (mirror), and sometimes turns a file into a folder or a folder into a
file; then ``syncagent sync`` is SIGKILLed once or twice after a seeded number of API calls
(counted by the emulator in this process; never a timer), and run again to completion. After
each round:

- every content a file had at the end of an earlier round is on 123pan exactly once: as a
  version under ``.syncagent/versions/<path>/`` (or, for the current one, at its path);
- every file present locally is at its path with its bytes;
- no ``name(1)`` names anywhere below the remote root;

and at the end ``syncagent verify`` exits 0 and one more ``sync`` uploads nothing.

``python -m tests.chaos.versions_kill --seeds 20`` runs seeds 1..20 (a line each, exit 1 on
any violation); ``--seed N --keep`` replays one and keeps its work dir (``logs/``).
``tests/chaos/test_versions_kill.py`` runs :data:`CI_SEEDS` in CI.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from syncagent.emulator import Emulator, EmulatorSettings

from .observe import read_remote

__all__ = ["CI_SEEDS", "KillResult", "run_seed"]

BIN = Path(sys.executable).parent / "syncagent"
REMOTE = "/vkill"
VERSIONS = ".syncagent/versions/"
ROUNDS = 5
PASS_DEADLINE = 90.0  # a pass over a dozen files that has not ended by then hangs
LATENCY = 0.02  # s per call of the endpoints below: kills land between calls, not after many
SLOW = (
    "api/v1/file/name",
    "api/v1/file/move",
    "api/v1/file/trash",
    "upload/v2/file/single/create",
    "upload/v2/file/create",
    "upload/v2/file/slice",
    "upload/v2/file/upload_complete",
    "upload/v1/file/mkdir",
)
DUPLICATE_NAME = re.compile(r"\(\d+\)(\.[^.]*)?$")
# Quick seeds (52-71 s at load ~15 on 2 cores): two archive, one mirror; 15 kills between them.
CI_SEEDS = (4, 5, 6)


@dataclass
class KillResult:
    seed: int
    mode: str = ""
    kills: int = 0
    passes: int = 0
    versions: int = 0  # versions on 123pan at the end
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)
    workdir: Path | None = None

    def line(self) -> str:
        return (
            f"seed {self.seed:3d} {self.mode:7s} kills {self.kills:2d} passes {self.passes:2d} "
            f"versions {self.versions:3d} violations {len(self.violations)}  "
            f"{self.seconds:5.1f} s"
        )

    def report(self) -> str:
        lines = [self.line(), *(f"  VIOLATION: {v}" for v in self.violations)]
        if self.violations:
            lines.append(
                f"  replay: .venv/bin/python -m tests.chaos.versions_kill --seed {self.seed} --keep"
            )
        return "\n".join(lines)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class _Run:
    def __init__(self, seed: int, work: Path, emu: Emulator) -> None:
        self.rng = random.Random(seed)
        work.mkdir(parents=True, exist_ok=True)
        self.work = work
        self.root = work / "root"
        self.emu = emu
        self.result = KillResult(seed, workdir=work)
        self.mode = self.rng.choice(["archive", "mirror"])
        self.result.mode = self.mode
        self.files: dict[str, bytes] = {}  # the local tree now
        self.history: dict[str, list[bytes]] = {}  # every content backed up, per path
        self.serial = 0
        self.config = work / "sync.yaml"
        state = work / "state"
        self.config.write_text(
            "\n".join(
                [
                    "roots:",
                    f"  - local: {json.dumps(str(self.root))}",
                    f"    remote: {REMOTE}",
                    f"    mode: {self.mode}",
                    "    max_deletes: 100000",
                    "    guard: {enabled: false}",
                    f"state_dir: {json.dumps(str(state))}",
                    f"ledger: {{url: {json.dumps('sqlite:///' + str(state / 'ledger.sqlite3'))}}}",
                    "stability: {quiet: 0s}",
                    "limits: {qps: off}",
                    "upload: {single_threshold: 64KiB, workers: 3, slice_workers: 2}",
                    "",
                ]
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PAN123_", "SYNCAGENT_"))}
        env = {k: v for k, v in env.items() if not k.upper().endswith("_PROXY")}
        home = work / "home"
        env.update(HOME=str(home), XDG_STATE_HOME=str(home / "state"), LC_ALL="C.UTF-8")
        env.update(XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"))
        env.update(
            PAN123_CLIENT_ID=emu.client_id,
            PAN123_CLIENT_SECRET=emu.client_secret,
            PAN123_API_BASE=emu.api_url,
        )
        self.env = env
        (work / "logs").mkdir(parents=True)

    # -- the local tree ------------------------------------------------------------------------

    def _content(self, path: str, round_no: int, size: int | None = None) -> bytes:
        head = f"{path} round {round_no} {self.rng.random()}\n".encode()
        if size is None:
            size = self.rng.choice([40, 300, 2000, 90_000, 150_000])
        return (head + self.rng.randbytes(max(0, size - len(head))))[: max(size, len(head))]

    def _write(self, path: str, data: bytes) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        self.files[path] = data

    def _delete(self, path: str) -> None:
        (self.root / path).unlink()
        del self.files[path]
        parent = (self.root / path).parent
        while parent != self.root and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def create(self) -> None:
        self.root.mkdir()
        for i in range(self.rng.randint(8, 14)):
            folder = self.rng.choice(["", "a/", "b/", "a/c/"])
            self._write(f"{folder}f{i}.txt", self._content(f"f{i}", 0))

    def change(self, round_no: int) -> None:
        paths = sorted(self.files)
        for path in self.rng.sample(paths, max(1, len(paths) // 2)):
            same = self.rng.random() < 0.3  # new bytes, the same size
            size = len(self.files[path]) if same else None
            self._write(path, self._content(path, round_no, size))
        if self.mode == "mirror" and len(self.files) > 4 and self.rng.random() < 0.7:
            for path in self.rng.sample(sorted(self.files), 2):
                self._delete(path)
        top_files = [p for p in sorted(self.files) if "/" not in p]
        if top_files and self.rng.random() < 0.3:  # a file becomes a folder
            path = self.rng.choice(top_files)
            self._delete(path)
            self._write(f"{path}/inner.txt", self._content(f"{path}/inner", round_no))
        folders = sorted({p.split("/", 1)[0] for p in self.files if "/" in p})
        if folders and self.rng.random() < 0.2:  # a folder becomes a file
            folder = self.rng.choice(folders)
            for path in [p for p in self.files if p.startswith(f"{folder}/")]:
                del self.files[path]
            shutil.rmtree(self.root / folder)
            self._write(folder, self._content(folder, round_no))
        if self.rng.random() < 0.5:
            self._write(f"new{round_no}.txt", self._content(f"new{round_no}", round_no))

    def backed_up(self) -> None:
        """A pass completed: the tree as it is now is (part of) the history."""
        for path, data in self.files.items():
            seen = self.history.setdefault(path, [])
            if not seen or seen[-1] != data:
                seen.append(data)

    # -- CLI runs ------------------------------------------------------------------------------

    def _calls(self) -> int:
        endpoints = self.emu.activity()["endpoints"]
        return sum(int(e.get("calls", 0)) for e in endpoints.values())

    def _start(self, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        self.serial += 1
        base = self.work / "logs" / f"{self.serial:02d}-{args[0]}"
        with open(f"{base}.out", "wb") as out, open(f"{base}.err", "wb") as err:
            proc = subprocess.Popen(
                [str(BIN), *args, "--config", str(self.config)],
                env=self.env,
                cwd=self.work,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        return proc, base

    def killed_pass(self, after: int) -> None:
        """``sync``, SIGKILLed once the emulator has seen ``after`` more calls (if the pass
        ends first, it is simply a pass)."""
        base_calls = self._calls()
        proc, log = self._start("sync")
        deadline = time.monotonic() + PASS_DEADLINE
        while proc.poll() is None and time.monotonic() < deadline:
            if self._calls() >= base_calls + after:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                self.result.kills += 1
                return
            time.sleep(0.002)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            self.result.violations.append(f"{log.name}: did not end within {PASS_DEADLINE:g} s")
            return
        self.result.passes += 1
        self._no_traceback(log)

    def full_pass(self, *args: str) -> str:
        proc, log = self._start("sync", *args)
        try:
            proc.wait(timeout=PASS_DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self.result.violations.append(f"{log.name}: did not end within {PASS_DEADLINE:g} s")
        self.result.passes += 1
        self._no_traceback(log)
        out = Path(f"{log}.out").read_text("utf-8", "replace")
        if proc.returncode != 0:
            err = Path(f"{log}.err").read_text("utf-8", "replace")
            self.result.violations.append(f"{log.name}: exit {proc.returncode}: {err[-800:]}")
        return out

    def _no_traceback(self, log: Path) -> None:
        if "Traceback" in Path(f"{log}.err").read_text("utf-8", "replace"):
            self.result.violations.append(f"{log.name}: printed a traceback")

    # -- the invariants ------------------------------------------------------------------------

    def check(self, when: str) -> None:
        tree = read_remote(self.emu.settings.data_dir, REMOTE)
        bad = self.result.violations
        for rel in [*tree.files, *tree.dirs]:
            if DUPLICATE_NAME.search(rel.rsplit("/", 1)[-1]):
                bad.append(f"{when}: a duplicate name on 123pan: {rel}")
        kept: dict[str, Counter[str]] = {}
        for rel, f in tree.files.items():
            if rel.startswith(VERSIONS):
                path, _, name = rel[len(VERSIONS) :].rpartition("/")
                if "Z~" not in name:
                    bad.append(f"{when}: a file in the versions folder that is no version: {rel}")
                kept.setdefault(path, Counter())[f.md5] += 1
        for path, data in self.files.items():
            at = tree.files.get(path)
            if at is None or at.md5 != _md5(data):
                bad.append(f"{when}: {path} is not on 123pan with its bytes")
        for path, contents in self.history.items():
            current = self.files.get(path)
            for data in contents:
                if data == current:
                    if kept.get(path, Counter())[_md5(data)]:
                        bad.append(f"{when}: {path}: the current content is a version too")
                    continue
                n = kept.get(path, Counter())[_md5(data)]
                if n != 1:
                    bad.append(f"{when}: {path}: an earlier content is kept {n} times, not once")
        expected = {
            path: {_md5(d) for d in contents if d != self.files.get(path)}
            for path, contents in self.history.items()
        }
        for path, counter in kept.items():
            extra = set(counter) - expected.get(path, set())
            if extra:
                bad.append(f"{when}: {path}: versions of no recorded content: {sorted(extra)}")
        self.result.versions = sum(sum(c.values()) for c in kept.values())

    # -- the whole seed ------------------------------------------------------------------------

    def run(self) -> KillResult:
        for endpoint in SLOW:
            self.emu.add_latency(endpoint, LATENCY)
        self.create()
        self.full_pass()
        self.backed_up()
        self.check("first pass")
        for round_no in range(1, ROUNDS + 1):
            self.change(round_no)
            changed = len(self.files) + 2
            for _ in range(self.rng.choice([1, 1, 2])):
                self.killed_pass(self.rng.randint(1, 4 * changed))
            self.full_pass()
            self.backed_up()
            self.check(f"round {round_no}")
            if self.result.violations:
                return self.result
        out = self.full_pass()
        if not re.search(r"\b0 uploaded\b", out):
            self.result.violations.append(f"the last sync uploaded something: {out[-300:]}")
        proc, log = self._start("verify")
        try:
            proc.wait(timeout=PASS_DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.returncode != 0:
            text = Path(f"{log}.out").read_text("utf-8", "replace")
            self.result.violations.append(f"verify exit {proc.returncode}: {text[-800:]}")
        return self.result


def run_seed(seed: int, work: Path) -> KillResult:
    """One seed in ``work`` (created), with its own emulator."""
    work.mkdir(parents=True)
    started = time.monotonic()
    settings = EmulatorSettings(
        data_dir=work / "emulator", rate_limits="off", complete_pending_polls=0
    )
    with Emulator(settings) as emu:
        result = _Run(seed, work, emu).run()
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos.versions_kill", description=__doc__
    )
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds (default 20)")
    parser.add_argument("--first", type=int, default=1, help="the first seed (default 1)")
    parser.add_argument("--seed", type=int, help="run this one seed only")
    parser.add_argument("--keep", action="store_true", help="keep the work dirs")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else range(args.first, args.first + args.seeds)
    base = Path(tempfile.mkdtemp(prefix="syncagent-vkill-"))
    failed = kills = 0
    t0 = time.monotonic()
    for seed in seeds:
        result = run_seed(seed, base / f"seed-{seed}")
        print(result.report(), flush=True)
        kills += result.kills
        failed += bool(result.violations)
        if not args.keep and not result.violations:
            shutil.rmtree(base / f"seed-{seed}", ignore_errors=True)
    print(
        f"{len(list(seeds))} seeds, {failed} failed, {kills} kills, "
        f"{time.monotonic() - t0:.0f} s (work dirs: {base})"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
