"""Pure generation of a chaos run from one seed: the steps, never their execution.

A :class:`Plan` is a list of :class:`Step` s, each some local operations (:class:`Op`), some
emulator faults (:class:`Fault`) and maybe a pass of the CLI (:class:`Pass`: ``sync`` or
``run``, with operations done *during* it and a SIGKILL or SIGTERM after the emulator has seen
a number of upload calls). Generation keeps a model of the tree (:class:`Tree`) so that every
operation is valid when it runs; the driver checks the disk against the same model at the end.
The same seed and profile always give the same plan, and :meth:`Plan.lines` prints it.
"""

from __future__ import annotations

import hashlib
import posixpath
import random
from collections import Counter
from dataclasses import dataclass, field

__all__ = [
    "CANARY",
    "CANARY_BIG",
    "OUTSIDE",
    "Fault",
    "Node",
    "Op",
    "Pass",
    "Plan",
    "Profile",
    "Step",
    "Tree",
    "generate",
]

# Symlink targets outside the root, resolved by the driver.
CANARY = "@canary"  # a small file outside the root: its bytes must never reach the emulator
CANARY_BIG = "@canary_big"  # the same, big enough for a chunked upload
OUTSIDE = "@outside"  # the folder outside the root that holds both
DANGLING = "@dangling"

UPLOAD_ENDPOINTS = (
    "upload/v2/file/single/create",
    "upload/v2/file/create",
    "upload/v2/file/slice",
    "upload/v2/file/upload_complete",
)
OTHER_ENDPOINTS = (
    "api/v2/file/list",
    "api/v1/file/infos",
    "upload/v1/file/mkdir",
    "api/v1/file/move",
    "api/v1/file/trash",
    "upload/v2/file/domain",
    "api/v1/access_token",
)


@dataclass(frozen=True)
class Op:
    """One local operation. ``kind`` is one of: create, edit, append, truncate, resave
    (write a temp file with an ignored name, rename it over), same_stat (new bytes, same size,
    mtime put back), touch, rename (a file or a folder), delete (anything; folders with their
    contents), mkdir, symlink, fifo, chmod. ``note`` names the composite it belongs to."""

    kind: str
    path: str
    dest: str = ""
    data: bytes = b""
    size: int = 0
    mode: int = 0
    target: str = ""
    note: str = ""

    def describe(self) -> str:
        text = f"{self.kind} {self.path!r}"
        if self.kind == "rename":
            text += f" -> {self.dest!r}"
        if self.kind in ("create", "edit", "append", "resave", "same_stat"):
            digest = hashlib.md5(self.data).hexdigest()[:8]
            text += f" ({len(self.data)} B, md5 {digest})"
        if self.kind == "truncate":
            text += f" to {self.size} B"
        if self.kind == "chmod":
            text += f" {self.mode:03o}"
        if self.kind == "symlink":
            text += f" -> {self.target}"
        return text + (f"  [{self.note}]" if self.note else "")


@dataclass(frozen=True)
class Fault:
    """One emulator fault: ``code`` (a business code ``times`` times on ``endpoint``),
    ``http`` (an HTTP status), ``drop`` (reset mid-body), ``delay`` (latency), ``polls``
    (``upload_complete`` answers 20103 ``polls`` times), ``expire`` (every token -> 401),
    ``random`` (a seeded random mix with ``probability``), ``clear`` (all faults gone)."""

    kind: str
    endpoint: str = "*"
    times: int = 1
    code: int = 0
    http_status: int = 0
    seconds: float = 0.0
    after_bytes: int = 0
    polls: int = 0
    probability: float = 0.0
    seed: int = 0

    def describe(self) -> str:
        if self.kind == "code":
            return f"fault: code {self.code} x{self.times} on {self.endpoint}"
        if self.kind == "http":
            return f"fault: HTTP {self.http_status} x{self.times} on {self.endpoint}"
        if self.kind == "drop":
            return f"fault: drop after {self.after_bytes} B x{self.times} on {self.endpoint}"
        if self.kind == "delay":
            return f"fault: +{self.seconds:.2f} s x{self.times} on {self.endpoint}"
        if self.kind == "polls":
            return f"fault: upload_complete answers 20103 {self.polls} times"
        if self.kind == "random":
            return f"fault: random p={self.probability:.2f} seed {self.seed}"
        return f"fault: {self.kind}"


@dataclass(frozen=True)
class Pass:
    """A CLI run: ``sync`` or ``run`` (the watch agent).

    ``during`` runs once the emulator has seen ``during_after`` upload calls since the start
    (``None``, for ``run``: once the agent says it has planned a pass's uploads), or the
    process ended. Then: ``stop="wait"`` lets a ``sync`` finish; ``kill`` / ``term``
    send SIGKILL / SIGTERM once ``kill_after`` upload calls were seen since the start (for
    ``run``, or ``kill_after`` None: once it settled)."""

    command: str
    stop: str
    kill_after: int | None = None
    during_after: int | None = 0
    during: tuple[Op, ...] = ()

    def describe(self) -> str:
        text = f"{self.command}"
        if self.stop == "wait":
            text += ", to completion"
        else:
            when = "once settled" if self.kill_after is None else f"after {self.kill_after} uploads"
            text += f", SIG{self.stop.upper()} {when}"
        if self.during:
            when = "once planned" if self.during_after is None else f"after {self.during_after}"
            text += f"; during it, {when} uploads:"
        return text


@dataclass(frozen=True)
class Step:
    ops: tuple[Op, ...] = ()
    faults: tuple[Fault, ...] = ()
    run: Pass | None = None


@dataclass(frozen=True)
class Profile:
    """How big a run is. The CI and the long runs use the same profile: CI seeds are a
    prefix of a long run."""

    files: int = 14  # regular files created before the first pass
    dirs: int = 4
    rounds: int = 6  # steps after the setup, each ending in a pass
    ops_per_round: tuple[int, int] = (1, 4)
    during_ops: tuple[int, int] = (0, 3)
    mirror_share: float = 0.35  # seeds whose root is in mirror mode


@dataclass
class Node:
    kind: str  # file, dir, link, fifo
    data: bytes = b""
    mode: int = 0o644
    target: str = ""
    born: int = 0  # the model's op count when this node came to be at this path


@dataclass
class Tree:
    """The model of the root (paths relative to it, "" is the root itself)."""

    nodes: dict[str, Node] = field(default_factory=lambda: {"": Node("dir", mode=0o755)})
    serial: int = 0  # ops applied so far

    def open_to_walk(self, path: str) -> bool:
        """The folder ``path`` and every folder above it can be listed and entered."""
        while True:
            node = self.nodes.get(path)
            if node is None or node.kind != "dir" or node.mode & 0o500 != 0o500:
                return False
            if path == "":
                return True
            path = posixpath.dirname(path)

    def reachable(self, path: str) -> bool:
        return self.open_to_walk(posixpath.dirname(path))

    def of_kind(self, kind: str) -> list[str]:
        return sorted(
            p for p, n in self.nodes.items() if p and n.kind == kind and self.reachable(p)
        )

    def below(self, path: str) -> list[str]:
        return sorted(p for p in self.nodes if p.startswith(path + "/"))

    def apply(self, op: Op) -> None:
        self.serial += 1
        n, born = self.nodes, self.serial
        if op.kind in ("create", "resave"):
            n[op.path] = Node("file", op.data, born=born)
        elif op.kind in ("edit", "same_stat"):
            n[op.path].data = op.data
        elif op.kind == "append":
            n[op.path].data += op.data
        elif op.kind == "truncate":
            n[op.path].data = n[op.path].data[: op.size]
        elif op.kind == "touch":
            pass
        elif op.kind == "rename":
            moved = [op.path, *self.below(op.path)]
            for p in moved:
                node = n[op.dest + p[len(op.path) :]] = n.pop(p)
                node.born = born
        elif op.kind == "delete":
            for p in [op.path, *self.below(op.path)]:
                del n[p]
        elif op.kind == "mkdir":
            n[op.path] = Node("dir", mode=0o755, born=born)
        elif op.kind == "symlink":
            n[op.path] = Node("link", target=op.target, born=born)
        elif op.kind == "fifo":
            n[op.path] = Node("fifo", born=born)
        elif op.kind == "chmod":
            n[op.path].mode = op.mode
        else:
            raise ValueError(f"unknown op {op.kind}")


@dataclass(frozen=True)
class Plan:
    seed: int
    mode: str  # archive or mirror
    quiet: float  # stability.quiet, seconds
    base_latency: float  # added to every single-step upload and slice: kills land mid-pass
    setup: tuple[Op, ...]
    steps: tuple[Step, ...]

    def all_ops(self) -> list[Op]:
        ops = list(self.setup)
        for step in self.steps:
            ops += step.ops
            if step.run is not None:
                ops += step.run.during
        return ops

    def figures(self) -> dict[str, int]:
        runs = [s.run for s in self.steps if s.run is not None]
        return {
            "ops": len(self.all_ops()),
            "planned_stops": sum(1 for r in runs if r.stop != "wait"),
            "faults": sum(len(s.faults) for s in self.steps),
        }

    def op_kinds(self) -> Counter[str]:
        return Counter(op.note or op.kind for op in self.all_ops())

    def lines(self) -> list[str]:
        out = [
            f"seed {self.seed}: mode {self.mode}, quiet {self.quiet:g} s, "
            f"upload latency {self.base_latency:.2f} s",
            "setup:",
        ]
        out += [f"  {op.describe()}" for op in self.setup]
        for i, step in enumerate(self.steps, 1):
            out.append(f"step {i}:")
            out += [f"  {op.describe()}" for op in step.ops]
            out += [f"  {f.describe()}" for f in step.faults]
            if step.run is not None:
                out.append(f"  {step.run.describe()}")
                out += [f"    {op.describe()}" for op in step.run.during]
        return out


# -- generation -----------------------------------------------------------------------------

_EXTS = (".txt", ".bin", "", ".jpg", ".tar.gz", ".md")
_ODD = ("a:b", "q?", "ü", "文件", "sp ace", "x*y")


class _Gen:
    def __init__(self, seed: int, profile: Profile) -> None:
        self.rng = random.Random(seed)
        self.profile = profile
        self.tree = Tree()
        self.serial = 0
        self.pending: set[str] = set()  # files changed since the last pass was generated

    # names and contents

    def name(self, folder: bool) -> str:
        self.serial += 1
        base = self.rng.choice(_ODD) if self.rng.random() < 0.1 else ("d" if folder else "f")
        return f"{base}{self.serial}" + ("" if folder else self.rng.choice(_EXTS))

    def new_path(self, folder: bool = False) -> str:
        parent = self.rng.choice(["", *self.tree.of_kind("dir")])
        if not self.tree.open_to_walk(parent):
            parent = ""
        return posixpath.join(parent, self.name(folder)) if parent else self.name(folder)

    def data(self) -> bytes:
        r = self.rng.random()
        if r < 0.03:
            size = 0
        elif r < 0.72:
            size = self.rng.randint(1, 3000)
        elif r < 0.92:
            size = self.rng.randint(3000, 30000)
        else:
            size = self.rng.randint(70_000, 300_000)  # chunked: several 64 KiB slices
        return self.rng.randbytes(size)

    def emit(self, ops: list[Op], op: Op) -> None:
        self.tree.apply(op)
        ops.append(op)
        if op.kind in ("create", "edit", "append", "resave", "touch"):
            self.pending.add(op.path)  # the next pass has it to upload

    def racy_target(self, files: list[str], during: bool) -> str | None:
        """For a swap during a pass: a file the pass has to upload (it is swapped between
        the scan and the upload), else the biggest (the likeliest in flight), else None."""
        if not during:
            return None
        pending = [f for f in sorted(self.pending) if f in files]
        if pending and self.rng.random() < 0.6:
            return self.rng.choice(pending)
        if self.rng.random() < 0.5:
            return max(files, key=lambda f: (len(self.tree.nodes[f].data), f))
        return None

    # one local operation (maybe a composite of several Ops)

    def local(self, during: bool) -> list[Op]:
        t, rng = self.tree, self.rng
        ops: list[Op] = []
        files = t.of_kind("file")
        dirs = t.of_kind("dir")
        weights = {
            "create": 14 if len(files) < 2 * self.profile.files else 3,
            "edit": 10,
            "append": 6,
            "truncate": 4,
            "resave": 5,
            "same_stat": 5,
            "touch": 3,
            "rename": 7,
            "move_dir": 0 if during else 4,
            "delete": 5,
            "delete_dir": 0 if during else 2,
            "mkdir": 0 if during else 3,
            "file_to_dir": 3,
            "dir_to_file": 0 if during else 2,
            "file_to_link": 6 if during else 3,
            "file_to_fifo": 5 if during else 2,
            "back_to_file": 4,
            "chmod_file": 3,
            "chmod_dir": 0 if during else 3,
            "new_link": 0 if during else 2,
        }
        kind = rng.choices(list(weights), list(weights.values()))[0]
        movable = [d for d in dirs if t.open_to_walk(d)]
        odd = [p for p in (*t.of_kind("link"), *t.of_kind("fifo"))]
        writable = [f for f in files if t.nodes[f].mode == 0o644]
        if kind in ("edit", "append", "truncate", "same_stat", "touch"):
            if not writable:
                kind = "create"
            else:
                path = rng.choice(writable)
        elif kind in (
            "resave",
            "rename",
            "delete",
            "file_to_dir",
            "file_to_link",
            "file_to_fifo",
            "chmod_file",
        ):
            if not files:
                kind = "create"
            else:
                path = rng.choice(files)
        if kind == "create":
            self.emit(ops, Op("create", self.new_path(), data=self.data()))
        elif kind == "edit":
            old = t.nodes[path].data
            new = bytearray(old or b"x")
            at = rng.randrange(len(new))
            piece = rng.randbytes(rng.randint(1, 64))
            new[at : at + len(piece)] = piece
            if rng.random() < 0.3:
                new += rng.randbytes(rng.randint(1, 5000))
            self.emit(ops, Op("edit", path, data=bytes(new)))
        elif kind == "append":
            self.emit(ops, Op("append", path, data=rng.randbytes(rng.randint(1, 4000))))
        elif kind == "truncate":
            size = len(t.nodes[path].data)
            self.emit(ops, Op("truncate", path, size=rng.randint(0, size) if size else 0))
        elif kind == "resave":
            self.emit(ops, Op("resave", path, data=self.data()))
        elif kind == "same_stat":
            size = len(t.nodes[path].data)
            self.emit(ops, Op("same_stat", path, data=rng.randbytes(size)))
        elif kind == "touch":
            self.emit(ops, Op("touch", path))
        elif kind == "rename":
            self.emit(ops, Op("rename", path, dest=self.new_path()))
        elif kind == "move_dir" and movable:
            src = rng.choice(movable)
            dest = self.new_path(folder=True)
            if dest.startswith(src + "/"):
                dest = self.name(folder=True)
            self.emit(ops, Op("rename", src, dest=dest, note="move folder"))
        elif kind == "delete":
            self.emit(ops, Op("delete", path))
        elif kind == "delete_dir" and movable:
            self.emit(ops, Op("delete", rng.choice(movable), note="delete folder"))
        elif kind == "mkdir":
            self.emit(ops, Op("mkdir", self.new_path(folder=True)))
        elif kind == "file_to_dir":
            note = "swap file->folder"
            self.emit(ops, Op("delete", path, note=note))
            self.emit(ops, Op("mkdir", path, note=note))
            self.emit(ops, Op("create", f"{path}/{self.name(False)}", data=self.data(), note=note))
        elif kind == "dir_to_file" and movable:
            path = rng.choice(movable)
            note = "swap folder->file"
            self.emit(ops, Op("delete", path, note=note))
            self.emit(ops, Op("create", path, data=self.data(), note=note))
        elif kind == "file_to_link":
            path = self.racy_target(files, during) or path
            inside = [f for f in files if f != path]
            targets = [CANARY, CANARY, CANARY_BIG, OUTSIDE, DANGLING]
            if inside:
                targets.append(rng.choice(inside))
            note = "swap file->symlink"
            self.emit(ops, Op("delete", path, note=note))
            self.emit(ops, Op("symlink", path, target=rng.choice(targets), note=note))
        elif kind == "file_to_fifo":
            path = self.racy_target(files, during) or path
            note = "swap file->FIFO"
            self.emit(ops, Op("delete", path, note=note))
            self.emit(ops, Op("fifo", path, note=note))
        elif kind == "back_to_file" and odd:
            path = rng.choice(odd)
            note = f"swap {t.nodes[path].kind}->file"
            self.emit(ops, Op("delete", path, note=note))
            self.emit(ops, Op("create", path, data=self.data(), note=note))
        elif kind == "chmod_file":
            mode = 0o644 if t.nodes[path].mode != 0o644 else rng.choice([0o000, 0o200])
            self.emit(ops, Op("chmod", path, mode=mode, note="chmod file"))
        elif kind == "chmod_dir" and dirs:
            path = rng.choice(dirs)
            mode = 0o755 if t.nodes[path].mode != 0o755 else rng.choice([0o000, 0o300, 0o100])
            self.emit(ops, Op("chmod", path, mode=mode, note="chmod folder"))
        elif kind == "new_link":
            target = rng.choice([CANARY, CANARY_BIG, OUTSIDE])
            self.emit(ops, Op("symlink", self.new_path(), target=target, note="link outside"))
        else:  # the kind had no target: make something instead
            self.emit(ops, Op("create", self.new_path(), data=self.data()))
        return ops

    def fault(self) -> Fault:
        rng = self.rng
        kind = rng.choices(
            ["code", "http", "drop", "delay", "polls", "expire", "random", "clear"],
            [6, 4, 4, 3, 3, 2, 2, 1],
        )[0]
        endpoint = rng.choice(UPLOAD_ENDPOINTS * 3 + OTHER_ENDPOINTS)
        if kind == "code":
            return Fault("code", endpoint, rng.randint(1, 4), code=rng.choice([1, 429, 429]))
        if kind == "http":
            status = rng.choice([500, 502, 503, 504])
            return Fault("http", endpoint, rng.randint(1, 3), http_status=status)
        if kind == "drop":
            droppable = ("upload/v2/file/single/create", "upload/v2/file/slice", endpoint)
            return Fault(
                "drop", rng.choice(droppable), rng.randint(1, 2), after_bytes=rng.randint(0, 2000)
            )
        if kind == "delay":
            return Fault(
                "delay",
                rng.choice(UPLOAD_ENDPOINTS),
                rng.randint(2, 10),
                seconds=round(rng.uniform(0.05, 0.4), 2),
            )
        if kind == "polls":
            return Fault("polls", polls=rng.randint(0, 4))
        if kind == "random":
            return Fault(
                "random", probability=round(rng.uniform(0.03, 0.12), 2), seed=rng.randrange(10**6)
            )
        return Fault(kind)

    def run(self) -> Pass:
        rng = self.rng
        shape = rng.choices(["sync", "sync_kill", "run_kill", "run_term"], [35, 30, 20, 15])[0]
        lo, hi = self.profile.during_ops
        during: list[Op] = []
        for _ in range(rng.randint(lo, hi)):
            during += self.local(during=True)
        self.pending.clear()
        after: int | None = rng.randint(0, 4)
        if shape == "sync":
            return Pass("sync", "wait", None, after, tuple(during))
        if shape == "sync_kill":
            return Pass("sync", "kill", rng.randint(1, 12), after, tuple(during))
        if rng.random() < 0.5:
            after = None
        kill_after = rng.choice([None, rng.randint(1, 12)])
        stop = "kill" if shape == "run_kill" else "term"
        return Pass("run", stop, kill_after, after, tuple(during))


def generate(seed: int, profile: Profile | None = None) -> Plan:
    """The plan of ``seed``: always the same for the same seed and profile."""
    profile = profile or Profile()
    g = _Gen(seed, profile)
    rng = g.rng
    mode = "mirror" if rng.random() < profile.mirror_share else "archive"
    # A long quiet window holds files the pass has to upload between its scan and their
    # upload: what is swapped meanwhile is the race the stat-then-open code must survive.
    quiet = rng.choice([0.0, 0.0, 0.3, 3.0])
    base_latency = round(rng.uniform(0.02, 0.1), 2)
    setup: list[Op] = []
    for _ in range(profile.dirs):
        g.emit(setup, Op("mkdir", g.new_path(folder=True)))
    for _ in range(profile.files):
        g.emit(setup, Op("create", g.new_path(), data=g.data()))
    g.emit(setup, Op("symlink", g.new_path(), target=CANARY, note="link outside"))
    g.emit(setup, Op("symlink", g.new_path(), target=OUTSIDE, note="link outside"))
    steps: list[Step] = []
    lo, hi = profile.ops_per_round
    expiry = rng.randrange(profile.rounds)  # every run sees its tokens expire once
    for i in range(profile.rounds):
        ops: list[Op] = []
        for _ in range(rng.randint(lo, hi)):
            ops += g.local(during=False)
        faults = tuple(g.fault() for _ in range(rng.choice([0, 1, 1, 2])))
        if i == expiry:
            faults += (Fault("expire"),)
        steps.append(Step(tuple(ops), faults, g.run()))
    return Plan(seed, mode, quiet, base_latency, tuple(setup), tuple(steps))
