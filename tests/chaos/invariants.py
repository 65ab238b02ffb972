"""What must hold after a chaos run, whatever happened during it (pure).

:func:`check` takes the evidence gathered after the final clean pass (the local tree, the
emulator's live tree and stored bytes, ``status --json``, ``verify``, every CLI run) and
returns one line per violation; an empty list means the run held. :func:`lost_while_present`
compares the end with snapshots of the cloud taken between passes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Evidence",
    "LocalFile",
    "RemoteFile",
    "RunRecord",
    "canary_marker",
    "check",
    "lost_while_present",
    "remote_path",
]

# 123pan refuses these; syncagent's default policy maps them to full-width look-alikes. Kept
# here on its own (not imported) so that a mistake in the product's table cannot hide.
_FULL_WIDTH = str.maketrans(
    {'"': "＂", "\\": "＼", ":": "：", "*": "＊", "?": "？", "|": "｜", ">": "＞", "<": "＜"}
)
# 123pan's "keep both" names: name(1).ext, name(2).ext ...
_DUPLICATE = re.compile(r"\(\d+\)(\.[^.]*)?$")


def remote_path(rel: str) -> str:
    return rel.translate(_FULL_WIDTH)


def canary_marker(canary: bytes) -> bytes:
    """What identifies a canary's bytes in any piece of it: its first 64 bytes (the canaries
    repeat a shorter unit, so any long enough piece of one holds them)."""
    return canary[:64]


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@dataclass(frozen=True)
class LocalFile:
    """A regular file below the root; ``readable``: the CLI can list its folders and read it."""

    data: bytes
    readable: bool


@dataclass(frozen=True)
class RemoteFile:
    """A live (not trashed) file below the remote root; ``content`` as the emulator stores
    it (None: no blob for it)."""

    size: int
    md5: str
    content: bytes | None


@dataclass(frozen=True)
class RunRecord:
    """One CLI run: what it was, how it ended, its stderr; ``problem`` if it misbehaved (for
    example it did not end on its own or on SIGTERM)."""

    what: str
    returncode: int | None
    stderr: str
    problem: str = ""


@dataclass
class Evidence:
    local: dict[str, LocalFile]  # every regular file below the root, by relative path
    local_dirs: set[str]  # every folder below the root
    remote: dict[str, RemoteFile]  # every live file below the remote root, by remote path
    remote_dirs: set[str]  # every live folder below the remote root
    stored: Mapping[str, bytes]  # every file of the emulator's data dir except its catalog
    declared_md5s: set[str]  # every MD5 the emulator's catalog mentions (files, uploads)
    canaries: list[bytes]  # contents of the files outside the root
    received_canary: list[str]  # request bodies the emulator got holding canary bytes
    status: dict[str, Any]  # syncagent status --json
    verify: tuple[int, str]  # syncagent verify: exit status, output
    final: RunRecord  # the final clean pass
    runs: list[RunRecord] = field(default_factory=list)  # every CLI run before it


def _reasons(status: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for root in status.get("roots", []):
        for p in root.get("problems", []):
            out[str(p["path"])] = str(p.get("reason") or "")
    return out


def _has_reason(rel: str, reasons: dict[str, str]) -> bool:
    """The file, or a folder above it (an unreadable folder), has a reason in status."""
    parts = rel.split("/")
    return any(reasons.get("/".join(parts[:i])) for i in range(len(parts), 0, -1)) or bool(
        reasons.get(".")
    )


def _crash(record: RunRecord) -> str | None:
    if "Traceback (most recent call last)" in record.stderr:
        tail = [line for line in record.stderr.strip().splitlines() if line.strip()][-1:]
        return f"{record.what} printed a traceback: {' '.join(tail)[:300]}"
    return None


def check(ev: Evidence) -> list[str]:
    """Every violated invariant, one line each."""
    bad: list[str] = []
    reasons = _reasons(ev.status)

    # 1. Every regular readable file is in the cloud with its final bytes; any other file
    #    that is not there has a reason in status.
    for rel, f in sorted(ev.local.items()):
        item = ev.remote.get(remote_path(rel))
        there = (
            item is not None
            and (item.size, item.md5) == (len(f.data), _md5(f.data))
            and item.content == f.data
        )
        if there:
            continue
        if f.readable and f.data:
            if item is None:
                bad.append(f"missing in the cloud: {rel} ({len(f.data)} B)")
            else:
                bad.append(
                    f"wrong bytes in the cloud: {rel} (local {len(f.data)} B md5 "
                    f"{_md5(f.data)[:8]}, cloud {item.size} B md5 {item.md5[:8]}"
                    + (", blob differs" if item.md5 == _md5(f.data) else "")
                    + ")"
                )
        elif not _has_reason(rel, reasons):
            why = "unreadable" if f.readable is False else "0-byte"
            bad.append(f"not in the cloud and no reason in status: {rel} ({why})")

    # 2. Nothing from outside the root reached the emulator.
    for canary in ev.canaries:
        marker = canary_marker(canary)
        for name, data in sorted(ev.stored.items()):
            if marker in data:
                bad.append(f"bytes from outside the root stored by the emulator: {name}")
        if _md5(canary) in ev.declared_md5s:
            bad.append(
                f"the MD5 of a file outside the root ({_md5(canary)[:8]}, {len(canary)} B) "
                "was sent to the emulator"
            )

    for what in sorted(set(ev.received_canary)):
        bad.append(f"bytes from outside the root were sent to the emulator in {what}")

    # 3. No "name(n)" duplicates.
    expected = {remote_path(p) for p in (*ev.local, *ev.local_dirs)}
    for path in sorted((*ev.remote, *ev.remote_dirs)):
        if _DUPLICATE.search(path.rsplit("/", 1)[-1]) and path not in expected:
            bad.append(f"duplicate in the cloud: {path}")

    # 4. The ledger agrees with the remote.
    code, output = ev.verify
    if code != 0:
        lines = [line for line in output.strip().splitlines() if line.strip()]
        bad.append(f"verify exited {code}: {' | '.join(lines[-4:])[:400]}")

    # 5. Every failure has a reason.
    for rel, reason in sorted(reasons.items()):
        if not reason.strip():
            bad.append(f"a problem without a reason in status: {rel}")
    failed = sum(
        int(root.get("counts", {}).get("failed", 0)) for root in ev.status.get("roots", [])
    )
    if ev.final.returncode not in (0, 1):
        bad.append(f"the final pass exited {ev.final.returncode}")
    elif ev.final.returncode == 1 and failed == 0:
        tail = ev.final.stderr.strip().splitlines()[-2:]
        bad.append(f"the final pass exited 1 with no failed file in status: {' | '.join(tail)}")

    # 6. No run crashed or hung.
    for record in [*ev.runs, ev.final]:
        if record.problem:
            bad.append(f"{record.what}: {record.problem}")
        crash = _crash(record)
        if crash:
            bad.append(crash)
    return bad


def lost_while_present(
    snapshots: Iterable[tuple[int, str, set[str]]],
    live_now: set[str],
    present: Mapping[str, int],
) -> list[str]:
    """Remote files that went although their local file is still there.

    ``snapshots``: (op count, label, live remote paths) taken while nothing ran; ``present``:
    every local regular file now (readable or not) with the op count at which it came to be at
    its path. A file live in the cloud after it came to be, and there ever since, must still
    be live: a folder the walk could not read is unknown, never gone.
    """
    lost: dict[str, str] = {}
    for serial, label, live in snapshots:
        for rel, born in present.items():
            path = remote_path(rel)
            if born <= serial and path in live and path not in live_now and rel not in lost:
                lost[rel] = label
    return [
        f"removed from the cloud while present locally: {rel} (live {label})"
        for rel, label in sorted(lost.items())
    ]
