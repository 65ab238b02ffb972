"""The mass-change guard: whether a pass would do too much to a root's known files. Pure core.

Ransomware, a wrong ``rm -rf`` or a disk that mounts empty look, to a backup agent, like a
pass that changes or deletes most of a root at once. :func:`decide` (pure) takes what a pass
would do to the files the ledger knows (content changed, gone, renamed) and the guard
settings, and returns a :class:`Hold` (reason, counts, examples) when the pass should be
held: more than ``max_changed`` of the known files and at least ``min_files`` of them changed
or gone; most of the changed files gained one new common extension (``a.txt`` ->
``a.txt.locked``); most of them became incompressible (sampled, zlib); or, in mirror mode,
a root that had files is found empty. A held pass replaces, moves and trashes nothing; new
files still upload (the engine applies it). :func:`samples` and :func:`same_content` are the
only I/O here: they read a few KiB of a file (or hash it) to feed the decision.
"""

from __future__ import annotations

import json
import os
import zlib
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from syncagent.errors import LocalFileError
from syncagent.gone import vanished
from syncagent.localfile import open_below
from syncagent.model import FileState, LedgerFacts, Upload

__all__ = [
    "GuardSettings",
    "Hold",
    "assess",
    "decide",
    "gained_extensions",
    "ratio",
    "same_content",
    "samples",
]

SAMPLE_BYTES = 4096  # read from the start of a changed file to judge its compressibility
MAX_SAMPLES = 64  # files sampled per pass at most
INCOMPRESSIBLE = 0.95  # zlib output / input at or above this: random-looking content
EXAMPLES = 5
# Content that is incompressible by nature: such files becoming so says nothing.
COMPRESSED = frozenset(
    [
        "7z",
        "avi",
        "bz2",
        "docx",
        "epub",
        "flac",
        "gif",
        "gz",
        "heic",
        "jpeg",
        "jpg",
        "m4a",
        "m4v",
        "mkv",
        "mov",
        "mp3",
        "mp4",
        "odt",
        "ogg",
        "opus",
        "pdf",
        "png",
        "pptx",
        "rar",
        "tgz",
        "webm",
        "webp",
        "xlsx",
        "xz",
        "zip",
        "zst",
    ]
)


@dataclass(frozen=True)
class GuardSettings:
    """``guard:`` in sync.yaml."""

    enabled: bool = True
    max_changed: float = 0.5  # fraction of a root's known files one pass may change or delete
    min_files: int = 20  # ...and a floor: fewer changes than this never hold a pass


@dataclass(frozen=True)
class Hold:
    """Why a root's pass is held, with counts and a few example paths."""

    reason: str
    known: int
    changed: int
    deleted: int
    examples: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Hold:
        data = json.loads(text)
        return cls(
            str(data["reason"]),
            int(data["known"]),
            int(data["changed"]),
            int(data["deleted"]),
            tuple(str(e) for e in data.get("examples", ())),
        )


def _suffix(rel: str) -> str:
    return PurePosixPath(rel).suffix.lower().lstrip(".")


def gained_extensions(new: Collection[str], deleted: Collection[str]) -> dict[str, str]:
    """New path -> the extension it gained, for new files that are deleted ones renamed to a
    new extension (``a.txt`` -> ``a.txt.locked`` or ``a.locked``). Pure."""
    gone = set(deleted)
    stems = {str(PurePosixPath(d).with_suffix("")) for d in gone}
    out: dict[str, str] = {}
    for rel in new:
        path = PurePosixPath(rel)
        ext = path.suffix.lower().lstrip(".")
        if not ext:
            continue
        base = str(path.with_suffix(""))
        if base in gone or (base in stems and rel not in gone):
            out[rel] = ext
    return out


def ratio(data: bytes) -> float:
    """zlib-compressed size over size (1.0 for nothing to judge). Pure."""
    if not data:
        return 1.0
    return len(zlib.compress(data, 6)) / len(data)


def decide(
    *,
    known: int,
    changed: Collection[str],
    deleted: Collection[str],
    new: Collection[str],
    ratios: Mapping[str, float],
    found: int,
    mirror: bool,
    settings: GuardSettings,
) -> Hold | None:
    """Whether to hold a root's pass. Pure.

    :param known: files the ledger holds a copy of on 123pan (done).
    :param changed: known files whose content the pass would replace.
    :param deleted: known files no longer found (mirror mode would trash them).
    :param new: paths the pass would upload with no copy to replace.
    :param ratios: compressibility (:func:`ratio`) of sampled changed/renamed files.
    :param found: files the scan found in the root.
    """
    if not settings.enabled or known == 0:
        return None
    nchanged, ndeleted = len(changed), len(deleted)
    examples = tuple(sorted([*changed, *deleted])[:EXAMPLES])
    if mirror and found == 0:
        return Hold(
            f"the root is missing, empty or not mounted ({known} files were backed up from it)",
            known,
            nchanged,
            ndeleted,
            examples,
        )
    total = nchanged + ndeleted
    if total < settings.min_files:
        return None
    if total > settings.max_changed * known:
        return Hold(
            f"{total} of {known} known files would change or be deleted "
            f"(more than {settings.max_changed:.0%})",
            known,
            nchanged,
            ndeleted,
            examples,
        )
    renamed = gained_extensions(new, deleted)
    if renamed:
        ext, count = Counter(renamed.values()).most_common(1)[0]
        if count >= settings.min_files and count * 2 > total:
            picked = sorted(r for r, e in renamed.items() if e == ext)[:EXAMPLES]
            return Hold(
                f"{count} files were renamed to *.{ext}", known, nchanged, ndeleted, tuple(picked)
            )
    judged = {r: v for r, v in ratios.items() if _suffix(r) not in COMPRESSED}
    noisy = sorted(r for r, v in judged.items() if v >= INCOMPRESSIBLE)
    if (
        len(judged) >= min(settings.min_files, MAX_SAMPLES // 2)
        and len(noisy) * 5 >= len(judged) * 4
    ):
        return Hold(
            f"{len(noisy)} of {len(judged)} sampled changed files became incompressible "
            "(encrypted?)",
            known,
            nchanged,
            ndeleted,
            tuple(noisy[:EXAMPLES]),
        )
    return None


def samples(root: Path, rels: Collection[str]) -> dict[str, float]:
    """The compressibility of the first :data:`SAMPLE_BYTES` of up to :data:`MAX_SAMPLES`
    files (no link followed); files that cannot be read are left out."""
    out: dict[str, float] = {}
    for rel in sorted(r for r in rels if _suffix(r) not in COMPRESSED)[:MAX_SAMPLES]:
        try:
            with open_below(root, rel) as local:
                data = os.pread(local.fd, SAMPLE_BYTES, 0)
        except (OSError, LocalFileError):
            continue
        if data:
            out[rel] = ratio(data)
    return out


def same_content(
    root: Path, rel: str, size: int, md5: str, stopped: Callable[[], bool] | None = None
) -> bool:
    """Whether the file at ``rel`` holds the recorded content again (size, then MD5)."""
    try:
        with open_below(root, rel) as local:
            return local.stat().st_size == size and local.md5(stopped) == md5
    except (OSError, LocalFileError):
        return False


def assess(
    root: Path,
    *,
    mirror: bool,
    facts: Mapping[str, LedgerFacts],
    uploads: Sequence[Upload],
    deletes_locally: bool = False,
    handled: Collection[str],
    present: Collection[str],
    unreadable: Collection[str],
    found: int,
    settings: GuardSettings,
    stopped: Callable[[], bool] | None = None,
) -> Hold | None:
    """The guard's verdict on one root's planned pass, reading files only when it matters:
    a sample of the changed ones when enough changed to judge, and, before holding, the
    changed ones of their recorded size again (a file put back as it was is no change).

    :param handled: rows the pass moves or retires (not deletions).
    :param deletes_locally: move mode: the agent itself deletes each file once it is backed
        up, so files gone locally are its own work, not a mass deletion.
    """
    done = {r: f for r, f in facts.items() if f.state == FileState.DONE and f.remote_id}
    if not settings.enabled or not done:
        return None
    changed = [u.entry.rel_path for u in uploads if u.entry.rel_path in done]
    new = [
        u.entry.rel_path
        for u in uploads
        if u.entry.rel_path not in facts or facts[u.entry.rel_path].remote_id is None
    ]
    lost = vanished(facts, present, unreadable, handled, mirror=mirror)
    deleted = [r for r, _ in lost.trash]
    if not deletes_locally:
        deleted += [r for r in lost.gone if r in done]

    def verdict(ratios: Mapping[str, float]) -> Hold | None:
        return decide(
            known=len(done),
            changed=changed,
            deleted=deleted,
            new=new,
            ratios=ratios,
            found=found,
            mirror=mirror,
            settings=settings,
        )

    ratios: dict[str, float] = {}
    hold = verdict(ratios)
    if hold is None and len(changed) + len(deleted) >= settings.min_files:
        ratios = samples(root, [*changed, *gained_extensions(new, deleted)])
        hold = verdict(ratios)
    if hold is None:
        return None
    sizes = {u.entry.rel_path: u.entry.size for u in uploads}
    back = {
        r
        for r in changed
        if done[r].md5
        and sizes[r] == done[r].size
        and same_content(root, r, done[r].size, str(done[r].md5), stopped)
    }
    if back:
        changed = [r for r in changed if r not in back]
        hold = verdict({r: v for r, v in ratios.items() if r not in back})
    return hold
