"""Carrying out a chaos plan: local operations on disk, faults in an emulator running in this
process, and the installed CLI (``syncagent sync`` / ``run``) as subprocesses that are killed or
stopped by condition (the emulator's count of upload calls), never by a timer; then a final
clean pass and the invariants.

Everything for one seed lives in one work dir: ``root/`` (backed up to ``/chaos``), ``outside/``
(the canary files that symlinks inside the root point at), ``state/``, ``logs/`` (each CLI
run's output) and the emulator's data dir.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncagent.emulator import Emulator, EmulatorSettings

from .invariants import Evidence, RunRecord, canary_marker, check, lost_while_present
from .observe import Tap, disk_model, local_files, read_remote, stored_bytes
from .plan import (
    CANARY,
    CANARY_BIG,
    DANGLING,
    OUTSIDE,
    UPLOAD_ENDPOINTS,
    Fault,
    Op,
    Pass,
    Plan,
    Profile,
    Tree,
    generate,
)

__all__ = ["SeedResult", "replay_command", "run_plan", "run_seed"]

BIN = Path(sys.executable).parent / "syncagent"
REMOTE = "/chaos"
SLICE = 64 * 1024  # the emulator's sliceSize; files above 64 KiB are chunked uploads
PASS_DEADLINE = 60.0  # a sync of a few dozen files that has not ended by then hangs
STOP_DEADLINE = 15.0  # SIGTERM must end a process within this
SETTLE_DEADLINE = 30.0  # an agent that has not gone idle by then is stuck
POLL = 0.01

# As root, file modes do not stop a process (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): the CLI is
# then started through this launcher, which drops those two capabilities and execs it, so that
# chmod 000 means to it what it means to an ordinary user (as in tests/e2e/test_sync_hostile).
_DROP_DAC = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "for cap in (1, 2):\n"
    "    if libc.prctl(24, cap, 0, 0, 0) != 0:\n"
    "        sys.exit(f'cannot drop capability {cap}: ' + os.strerror(ctypes.get_errno()))\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def replay_command(seed: int) -> str:
    return f".venv/bin/python -m tests.chaos --seed {seed} --print-ops --keep"


class DriverError(Exception):
    """The driver itself went wrong (not the product): the disk is not what the plan says."""


@dataclass
class SeedResult:
    seed: int
    mode: str
    ops: int = 0
    passes: int = 0
    kills: int = 0  # SIGKILLs sent to a running sync or run
    terms: int = 0  # SIGTERMs sent to a running run
    faults: int = 0  # faults armed (each a rule, an expiry, a random profile...)
    injected: int = 0  # faulty answers the emulator gave
    uploads: int = 0  # upload calls the emulator saw
    files: int = 0  # regular files in the root at the end
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)
    workdir: Path | None = None

    def line(self) -> str:
        return (
            f"seed {self.seed:4d} {self.mode:7s} ops {self.ops:3d} passes {self.passes:2d} "
            f"kills {self.kills:2d} terms {self.terms:2d} faults {self.faults:2d} "
            f"(injected {self.injected:3d}) uploads {self.uploads:4d} files {self.files:3d} "
            f"violations {len(self.violations)}  {self.seconds:5.1f} s"
        )

    def report(self) -> str:
        lines = [self.line()]
        lines += [f"  VIOLATION: {v}" for v in self.violations]
        if self.violations:
            lines.append(f"  replay: {replay_command(self.seed)}")
            if self.workdir is not None:
                lines.append(f"  work dir (logs/ has every CLI run): {self.workdir}")
        return "\n".join(lines)


def _config(work: Path, plan: Plan) -> str:
    state = work / "state"
    return "\n".join(
        [
            "roots:",
            f"  - local: {json.dumps(str(work / 'root'))}",
            f"    remote: {REMOTE}",
            f"    mode: {plan.mode}",
            "    max_deletes: 100000",
            f"state_dir: {json.dumps(str(state))}",
            f"ledger: {{url: {json.dumps('sqlite:///' + str(state / 'ledger.sqlite3'))}}}",
            f"stability: {{quiet: {plan.quiet}s}}",
            "limits: {qps: off}",
            "upload: {single_threshold: 64KiB, workers: 3, slice_workers: 2}",
            "",
        ]
    )


def _env(work: Path, emu: Emulator) -> dict[str, str]:
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
    return env


def _canary(seed: int, size: int, label: bytes) -> bytes:
    unit = b"CHAOS-CANARY-" + label + b"-%d-" % seed + random.Random(seed).randbytes(48)
    return (unit * (size // len(unit) + 1))[:size]


class Runner:
    """One seed's run: the work dir, the emulator, the CLI runs so far."""

    def __init__(self, plan: Plan, work: Path, emu: Emulator, log: Callable[[str], None]) -> None:
        self.plan = plan
        self.work = work
        self.root = work / "root"
        self.outside = work / "outside"
        self.emu = emu
        self.data_dir = emu.settings.data_dir
        self.log = log
        self.result = SeedResult(plan.seed, plan.mode, workdir=work)
        self.runs: list[RunRecord] = []
        self.snapshots: list[tuple[int, str, set[str]]] = []
        self.serial = 0
        self.config = work / "sync.yaml"
        self.env = _env(work, emu)
        self.launcher: tuple[str, ...] = (
            (sys.executable, "-c", _DROP_DAC) if os.geteuid() == 0 else ()
        )
        self.canaries = {
            CANARY: (self.outside / "canary.txt", _canary(plan.seed, 3000, b"small")),
            CANARY_BIG: (self.outside / "canary.bin", _canary(plan.seed, 150_000, b"big")),
        }
        self.tap = Tap([canary_marker(data) for _, data in self.canaries.values()])
        self.tap.install(emu)

    # -- the emulator -------------------------------------------------------------------------

    def upload_calls(self) -> int:
        endpoints = self.emu.activity()["endpoints"]
        return sum(int(endpoints.get(e, {}).get("calls", 0)) for e in UPLOAD_ENDPOINTS)

    def arm(self, faults: tuple[Fault, ...]) -> None:
        """This step's faults (the last step's are gone), then the base latency."""
        emu = self.emu
        emu.clear_faults()
        for f in faults:
            self.result.faults += 1
            if f.kind == "code":
                emu.fail_next(f.endpoint, f.times, code=f.code)
            elif f.kind == "http":
                emu.fail_next(f.endpoint, f.times, http_status=f.http_status)
            elif f.kind == "drop":
                emu.drop_next(f.endpoint, f.times, after_bytes=f.after_bytes)
            elif f.kind == "delay":
                emu.add_latency(f.endpoint, f.seconds, f.times)
            elif f.kind == "polls":
                emu.configure(complete_pending_polls=f.polls)
            elif f.kind == "expire":
                emu.expire_tokens()
            elif f.kind == "random":
                emu.random_faults(f.seed, f.probability)
            elif f.kind == "clear":
                emu.configure(complete_pending_polls=0)
        # Last, so it never hides a rule above: matching rules are taken in order.
        emu.add_latency("upload/v2/file/single/create", self.plan.base_latency)
        emu.add_latency("upload/v2/file/slice", self.plan.base_latency)

    # -- local operations ---------------------------------------------------------------------

    def _target(self, token: str, link: Path) -> str:
        if token in self.canaries:
            return str(self.canaries[token][0])
        if token == OUTSIDE:
            return str(self.outside)
        if token == DANGLING:
            return str(self.work / "nowhere" / "gone.txt")
        return os.path.relpath(self.root / token, link.parent)  # a file inside the root

    def apply(self, op: Op) -> None:
        path = self.root / op.path
        self.result.ops += 1
        if op.kind == "create":
            path.write_bytes(op.data)
        elif op.kind == "edit":
            with open(path, "r+b") as f:  # in place: same inode
                f.write(op.data)
                f.truncate()
        elif op.kind == "append":
            with open(path, "ab") as f:
                f.write(op.data)
        elif op.kind == "truncate":
            os.truncate(path, op.size)
        elif op.kind == "resave":  # like an editor: a temp file (an ignored name), renamed over
            tmp = path.with_name(path.name + ".swp")
            tmp.write_bytes(op.data)
            os.replace(tmp, path)
        elif op.kind == "same_stat":  # like cp -p / tar x: new bytes, same size, same mtime
            st = path.stat()
            with open(path, "r+b") as f:
                f.write(op.data)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        elif op.kind == "touch":  # mtime now, content unchanged
            os.utime(path)
        elif op.kind == "rename":
            os.rename(path, self.root / op.dest)
        elif op.kind == "delete":
            if path.is_dir() and not path.is_symlink():
                _rmtree(path)
            else:
                path.unlink()
        elif op.kind == "mkdir":
            path.mkdir()
        elif op.kind == "symlink":
            path.symlink_to(self._target(op.target, path))
        elif op.kind == "fifo":
            os.mkfifo(path)
        elif op.kind == "chmod":
            path.chmod(op.mode)
        else:
            raise DriverError(f"unknown op {op.kind}")

    def check_model(self, model: Tree) -> None:
        disk = disk_model(self.root)
        want, got = {}, {}
        for rel, node in model.nodes.items():
            # A relative link inside the root keeps its text when its folder moves: only the
            # targets outside the root are compared.
            outside = node.kind == "link" and node.target.startswith("@")
            target = self._target(node.target, self.root / rel) if outside else ""
            want[rel] = (node.kind, node.data, node.mode if node.kind != "link" else 0, target)
            if rel in disk.nodes:
                n = disk.nodes[rel]
                got[rel] = (n.kind, n.data, n.mode if n.kind != "link" else 0, n.target)
                if n.kind == "link" and not outside:
                    got[rel] = (*got[rel][:3], "")
        got.update({rel: ("?", b"", 0, "") for rel in disk.nodes if rel not in model.nodes})
        if want != got:
            diff = sorted(set(want.items()) ^ set(got.items()))[:6]
            raise DriverError(f"the disk differs from the plan's model: {diff}")

    # -- CLI runs -----------------------------------------------------------------------------

    def _popen(self, *args: str) -> tuple[subprocess.Popen[bytes], str, Path]:
        self.serial += 1
        what = f"#{self.serial} syncagent {args[0]}"
        base = self.work / "logs" / f"{self.serial:02d}-{args[0]}"
        with open(f"{base}.out", "wb") as out, open(f"{base}.err", "wb") as err:
            proc = subprocess.Popen(
                [*self.launcher, str(BIN), *args, "--config", str(self.config)],
                env=self.env,
                cwd=self.work,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        return proc, what, base

    def _finish(
        self, proc: subprocess.Popen[bytes], what: str, base: Path, problem: str = ""
    ) -> RunRecord:
        stderr = Path(f"{base}.err").read_text("utf-8", "replace")
        return RunRecord(what, proc.returncode, stderr, problem)

    def _wait_end(self, proc: subprocess.Popen[bytes], deadline: float) -> str:
        """Wait for ``proc`` to end; if it does not, SIGTERM then SIGKILL it and say so."""
        try:
            proc.wait(timeout=deadline)
            return ""
        except subprocess.TimeoutExpired:
            pass
        problem = f"did not end within {deadline:g} s"
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_DEADLINE)
            problem += " (SIGTERM ended it)"
        except subprocess.TimeoutExpired:
            problem += f"; SIGTERM did not end it within {STOP_DEADLINE:g} s"
            proc.kill()
            proc.wait()
        return problem

    def cli(self, *args: str, deadline: float = PASS_DEADLINE) -> tuple[RunRecord, str]:
        """Run to completion: the record and stdout."""
        proc, what, base = self._popen(*args)
        problem = self._wait_end(proc, deadline)
        record = self._finish(proc, what, base, problem)
        return record, Path(f"{base}.out").read_text("utf-8", "replace")

    def _until(self, cond: Callable[[], bool], deadline: float) -> bool:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if cond():
                return True
            time.sleep(POLL)
        return False

    def _phase(self, phase: str, since: float) -> bool:
        """The agent's activity file says ``phase``, written after ``since`` (wall clock)."""
        try:
            activity = json.loads((self.work / "state" / "activity.json").read_text())
        except (OSError, ValueError):
            return False
        return bool(activity.get("phase") == phase and activity.get("updated_at", 0) > since)

    def _settled(self, since: float) -> bool:
        """The agent has gone idle after a pass that started after ``since``."""
        return self._phase("idle", since)

    def run_pass(self, p: Pass, model: Tree) -> None:
        self.result.passes += 1
        proc, what, base = self._popen(p.command)
        try:
            self._drive(p, model, proc, what, base)
        finally:  # interrupted (Ctrl-C on a long run): leave no agent behind
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def _drive(
        self, p: Pass, model: Tree, proc: subprocess.Popen[bytes], what: str, base: Path
    ) -> None:
        start = self.upload_calls()

        def sent() -> int:
            return self.upload_calls() - start

        t_ops = time.time()
        if p.during:
            self._until(
                lambda: (
                    (p.during_after is not None and sent() >= p.during_after)
                    or proc.poll() is not None
                    or (p.command == "run" and self._settled(t_ops))
                    or (p.during_after is None and self._phase("uploading", t_ops))
                ),
                SETTLE_DEADLINE,
            )
            for op in p.during:
                self.apply(op)
                model.apply(op)
            t_ops = time.time() + self.plan.quiet
        problem = ""
        if p.command == "sync" and p.stop == "wait":
            problem = self._wait_end(proc, PASS_DEADLINE)
        elif p.command == "sync":
            reached = self._until(
                lambda: proc.poll() is not None or sent() >= (p.kill_after or 0), PASS_DEADLINE
            )
            if not reached:
                problem = (
                    f"neither ended nor made {p.kill_after} upload calls within "
                    f"{PASS_DEADLINE:g} s (stuck; SIGKILLed)"
                )
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                self.result.kills += 1
        else:
            ended = self._until(
                lambda: (
                    proc.poll() is not None
                    or (p.kill_after is not None and sent() >= p.kill_after)
                    or self._settled(t_ops)
                ),
                SETTLE_DEADLINE,
            )
            if proc.poll() is not None:
                problem = f"the agent exited by itself with status {proc.returncode}"
            elif not ended:
                problem = f"did not settle within {SETTLE_DEADLINE:g} s (stuck?)"
            if proc.poll() is not None:
                pass
            elif p.stop == "kill":
                proc.kill()
                proc.wait()
                self.result.kills += 1
            else:
                self.result.terms += 1
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=STOP_DEADLINE)
                except subprocess.TimeoutExpired:
                    late = f"SIGTERM did not stop it within {STOP_DEADLINE:g} s (SIGKILLed)"
                    problem = "; ".join(filter(None, [problem, late]))
                    proc.kill()
                    proc.wait()
                if not problem and proc.returncode != 0:
                    problem = f"SIGTERM: exit status {proc.returncode} (0 expected)"
        self.runs.append(self._finish(proc, what, base, problem))

    def quiesce(self, label: str) -> None:
        """Wait until the emulator serves no connection: a SIGKILLed CLI's requests in flight
        (a slice, a delayed upload_complete) still change its data after the process is gone,
        and reading the cloud before they end races them."""
        if not self._until(lambda: self.emu.open_connections() == 0, SETTLE_DEADLINE):
            raise DriverError(
                f"{label}: the emulator still serves {self.emu.open_connections()} connections "
                f"{SETTLE_DEADLINE:g} s after every CLI run ended"
            )

    def snapshot(self, model: Tree, label: str) -> None:
        """What is live in the cloud now, while nothing runs."""
        self.quiesce(label)
        live = set(read_remote(self.data_dir, REMOTE).files)
        self.snapshots.append((model.serial, label, live))

    # -- the whole plan -----------------------------------------------------------------------

    def run(self) -> SeedResult:
        t0 = time.monotonic()
        for sub in ("root", "outside", "state", "logs", "home"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
        for path, data in self.canaries.values():
            path.write_bytes(data)
        self.config.write_text(_config(self.work, self.plan), encoding="utf-8")
        self.emu.configure(slice_size=SLICE, complete_pending_polls=0)
        model = Tree()
        for op in self.plan.setup:
            self.apply(op)
            model.apply(op)
        for i, step in enumerate(self.plan.steps, 1):
            for op in step.ops:
                self.apply(op)
                model.apply(op)
            self.arm(step.faults)
            if step.run is not None:
                self.run_pass(step.run, model)
            self.snapshot(model, f"after step {i}")
        self.check_model(model)
        self.final(model)
        activity = self.emu.activity()
        self.result.injected = int(activity.get("faults_injected", 0))
        self.result.uploads = self.upload_calls()
        self.result.seconds = time.monotonic() - t0
        return self.result

    def final(self, model: Tree) -> None:
        """The clean pass, then every invariant."""
        self.emu.clear_faults()
        self.emu.configure(complete_pending_polls=0)
        self.quiesce("before the final pass")
        final, _ = self.cli("sync")
        status_run, status_out = self.cli("status", "--json")
        try:
            status: dict[str, Any] = json.loads(status_out)
        except ValueError:
            status = {}
            self.result.violations.append(
                f"status --json is not JSON (exit {status_run.returncode}): {status_out[:200]!r}"
            )
        verify_run, verify_out = self.cli("verify")
        self.quiesce("after verify")
        local, dirs = local_files(self.root)
        remote = read_remote(self.data_dir, REMOTE)
        evidence = Evidence(
            local=local,
            local_dirs=dirs,
            remote=remote.files,
            remote_dirs=remote.dirs,
            stored=stored_bytes(self.data_dir),
            declared_md5s=remote.declared_md5s,
            canaries=[data for _, data in self.canaries.values()],
            received_canary=self.tap.hits,
            status=status,
            verify=(
                verify_run.returncode if verify_run.returncode is not None else -1,
                verify_out + verify_run.stderr,
            ),
            final=final,
            runs=[*self.runs, status_run, verify_run],
        )
        self.result.violations += check(evidence)
        present = {rel: n.born for rel, n in model.nodes.items() if n.kind == "file"}
        self.result.violations += lost_while_present(self.snapshots, set(remote.files), present)
        self.result.files = len(local)
        # And a pass over a backed-up tree sends nothing.
        again, out = self.cli("sync")
        lines = out.strip().splitlines()
        if not lines or not lines[-1].startswith("0 uploaded"):
            said = lines[-1] if lines else again.stderr[-200:]
            self.result.violations.append(f"a second clean pass was not a no-op: {said}")


def _rmtree(path: Path) -> None:
    """Remove a folder and everything below it, whatever the modes inside."""
    _restore_modes(path)
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        for name in filenames:
            os.unlink(os.path.join(dirpath, name))
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                os.unlink(full)
            else:
                os.rmdir(full)
    os.rmdir(path)


def _restore_modes(path: Path) -> None:
    """Make a work dir removable again (chmod 000 folders inside)."""
    if not path.exists():
        return
    path.chmod(0o755)
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            with contextlib.suppress(OSError):
                full = os.path.join(dirpath, d)
                if not os.path.islink(full):
                    os.chmod(full, 0o755)


def run_plan(plan: Plan, work: Path, log: Callable[[str], None] = lambda _: None) -> SeedResult:
    """Carry out ``plan`` in ``work`` (created) against a fresh emulator in this process."""
    work.mkdir(parents=True, exist_ok=True)
    emu_dir = work / "emulator"
    settings = EmulatorSettings(data_dir=emu_dir, rate_limits="off", complete_pending_polls=0)
    with Emulator(settings) as emu:
        try:
            return Runner(plan, work, emu, log).run()
        finally:
            _restore_modes(work / "root")


def run_seed(
    seed: int, work: Path, profile: Profile | None = None, log: Callable[[str], None] = print
) -> SeedResult:
    """Run one seed; a failure of the driver itself comes back as a violation, so that it is
    reported with its replay command like any other."""
    plan = generate(seed, profile)
    try:
        return run_plan(plan, work, log)
    except Exception as exc:
        result = SeedResult(seed, plan.mode, workdir=work)
        result.violations.append(f"driver error: {type(exc).__name__}: {exc}")
        return result
