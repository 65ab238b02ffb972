"""Scanning a root: every regular file with its stat facts, and what cannot be uploaded, why.

The walk itself is :mod:`syncagent.walk`. A large tree is walked by helper processes as
well as this one: the Python cost of a stat walk (~4 µs a file) is per-process CPU, so a
second core halves it, and a scan started before the ledger's libraries are imported runs
while they load. The root is cut into chunks by listing its first folders; the chunks form
one queue that helpers and this process take from, and each chunk is compared with the
ledger where it was walked (see :class:`~syncagent.walk.ChunkWorker`). A helper that cannot
start or fails has its chunks walked here again, so helpers only ever make a scan faster.
Ignore rules with negations (``!pattern``) need pathspec and are walked in this process only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from syncagent.ignore import IgnoreRules
from syncagent.model import LocalEntry, LocalSkip
from syncagent.walk import (
    NOT_UTF8,
    ChunkWorker,
    FastMatcher,
    Folder,
    RawFile,
    RawSkip,
    read_frame,
    subfolders,
    write_frame,
)

__all__ = [
    "NOT_UTF8",
    "ScanJob",
    "ScanResult",
    "default_helpers",
    "root_problem",
    "scan",
    "sqlite_file",
]

log = logging.getLogger("syncagent")

CHUNKS_PER_WORKER = 16  # chunks queued up front per process, so the shares even out
MAX_HELPERS = 3
HELPERS_FROM = 20_000  # ledger rows of a root before its scans use helpers (each costs ~40 ms)


def default_helpers() -> int:
    """Helper processes for a large tree: one per core beyond this process's own."""
    return min(MAX_HELPERS, (os.cpu_count() or 1) - 1)


@dataclass
class ScanResult:
    """Files as plain tuples (``LocalEntry`` fields, in order) and skips.

    ``matched`` is the number of ledger rows the tree matched when every chunk matched (see
    :class:`~syncagent.walk.ChunkWorker`), else None; when it equals the root's row count a
    pass has nothing to do, and ``files`` (fetched from helpers on first use) is never
    needed.
    """

    matched: int | None
    _fetch: Callable[[], tuple[list[RawFile], list[RawSkip]]]

    @cached_property
    def _all(self) -> tuple[list[RawFile], list[RawSkip]]:
        return self._fetch()

    @property
    def files(self) -> list[RawFile]:
        return self._all[0]

    @property
    def raw_skips(self) -> list[RawSkip]:
        return self._all[1]

    @cached_property
    def entries(self) -> list[LocalEntry]:
        return [LocalEntry._make(f) for f in self.files]

    @cached_property
    def skips(self) -> list[LocalSkip]:
        return [LocalSkip(rel, reason) for rel, reason in self.raw_skips]


def scan(root: Path, ignore: IgnoreRules) -> ScanResult:
    """Walk ``root`` in this process and classify everything below it."""
    return ScanJob(root, ignore, helpers=0).result()


def root_problem(root: Path) -> str | None:
    """Why the folder of a root cannot be walked (None: it can). The walk opens it the same
    way and would report "nothing found": a pass must not call that a success."""
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        why = "it is a symbolic link" if os.path.islink(root) else exc.strerror or str(exc)
        return f"{root} cannot be read ({why}): nothing of it was backed up"
    os.close(fd)
    return None


def sqlite_file(ledger_url: str) -> str | None:
    """The file of an SQLite ledger URL (helpers read it with the stdlib), else None."""
    if ledger_url.startswith("sqlite:///") and len(ledger_url) > len("sqlite:///"):
        return ledger_url.removeprefix("sqlite:///").split("?", 1)[0]
    return None


Chunk = tuple[str, bool]  # (rel_path, descend): a folder with all below it, or its own entries


class _Helper:
    """One ``python -m syncagent.walk`` process and the thread that feeds it chunks.

    The thread keeps two chunks in flight, so the helper never waits on this process (whose
    main thread may be busy importing or walking). If the helper fails, the chunks it held
    go back to the shared queue and this process walks them.
    """

    def __init__(
        self,
        hello: tuple[str, str | None, str | None, str | None],
        queue: deque[Chunk],
        python: str,
    ) -> None:
        self._queue = queue
        self.done: list[Chunk] = []  # walked by the helper, answers held there
        self.verdict: tuple[bool, int] | None = None  # (same, matched), once all chunks ran
        self._proc = subprocess.Popen(
            [python, "-m", "syncagent.walk"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONSAFEPATH": "1"},  # never import from the cwd
        )
        self._thread = threading.Thread(
            target=self._feed, args=(hello,), name="scan-helper", daemon=True
        )
        self._thread.start()

    def _take(self) -> Chunk | None:
        try:
            return self._queue.popleft()
        except IndexError:
            return None

    def _feed(self, hello: tuple[str, str | None, str | None, str | None]) -> None:
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None
        in_flight: deque[Chunk] = deque()
        try:
            write_frame(stdin, hello)
            while True:
                while len(in_flight) < 2 and (chunk := self._take()) is not None:
                    in_flight.append(chunk)  # before the write: a write that fails returns it
                    write_frame(stdin, chunk)
                if not in_flight:
                    break
                if not isinstance(read_frame(stdout), int):
                    raise ValueError("not a chunk answer")
                self.done.append(in_flight.popleft())
            write_frame(stdin, None)
            verdict = read_frame(stdout)
            if not (
                isinstance(verdict, tuple)
                and len(verdict) == 2
                and isinstance(verdict[0], bool)
                and isinstance(verdict[1], int)
            ):
                raise ValueError("not a verdict")
            self.verdict = verdict
        except (OSError, EOFError, ValueError, TypeError) as exc:
            log.warning("scan helper failed (%s); scanning its folders here", exc)
            self._queue.extend([*self.done, *in_flight])
            self.done = []
            self._stop()

    def join(self) -> None:
        self._thread.join()

    def fetch(self) -> tuple[list[RawFile], list[RawSkip]] | None:
        """Everything the helper found (after :meth:`join`); None if it cannot say, and
        then its chunks (``done``) must be walked again."""
        if self.verdict is None:
            return None
        assert self._proc.stdin is not None and self._proc.stdout is not None
        try:
            write_frame(self._proc.stdin, True)
            answer = read_frame(self._proc.stdout)
            if not (isinstance(answer, tuple) and len(answer) == 2):
                raise ValueError("not a scan answer")
            files, skips = answer
            if not (isinstance(files, list) and isinstance(skips, list)):
                raise ValueError("not a scan answer")
            return files, skips
        except (OSError, EOFError, ValueError, TypeError) as exc:
            log.warning("scan helper failed (%s); scanning its folders here", exc)
            return None
        finally:
            self._stop()

    def _stop(self) -> None:
        self._proc.kill()
        self._proc.wait()
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def kill(self) -> None:
        self._proc.kill()
        self._thread.join()
        self._stop()


class ScanJob:
    """A scan under way: helpers start at construction, :meth:`result` finishes the walk.

    The parent lists the first folders (names only) until there are enough to share; the
    chunks form one queue that each helper's feeder thread and :meth:`result` take from
    until it is empty, so the work balances itself.

    :param helpers: helper processes to use at most; 0 walks in this process only.
    :param ledger_file: the SQLite ledger, to compare chunks with as they are walked.
    :param rows: the root's ledger rows, when the caller knows them (else they are counted
        in ``ledger_file``); helpers are used only from ``min_rows`` rows on (a small or
        first scan is not worth starting processes for).
    :param python: the interpreter for helpers (this one by default).
    """

    def __init__(
        self,
        root: Path,
        ignore: IgnoreRules,
        *,
        helpers: int,
        ledger_file: str | None = None,
        rows: int | None = None,
        min_rows: int = HELPERS_FROM,
        python: str = sys.executable,
    ) -> None:
        matcher = ignore.matcher
        self._result: ScanResult | None = None
        self._worker = ChunkWorker(str(root), matcher, ledger_file)
        self._queue: deque[Chunk] = deque([("", True)])
        self._helpers: list[_Helper] = []
        if not (rows >= min_rows if rows is not None else self._worker.has_rows(min_rows)):
            helpers = 0
        if helpers <= 0 or not isinstance(matcher, FastMatcher):
            return
        self._queue = deque(_chunks(str(root), matcher, (helpers + 1) * CHUNKS_PER_WORKER))
        hello = (str(root), matcher.names_source, matcher.paths_source, ledger_file)
        for _ in range(helpers):
            try:
                self._helpers.append(_Helper(hello, self._queue, python))
            except OSError as exc:
                log.warning("cannot start a scan helper (%s); scanning here", exc)
                break

    def result(self) -> ScanResult:
        """Walk from the queue here until it is empty, then merge the helpers' verdicts
        (once: a second call returns the same result)."""
        if self._result is None:
            self._result = self._finish()
        return self._result

    def _finish(self) -> ScanResult:
        worker = self._worker
        while True:  # the helpers are joined even when they took every chunk before this
            while True:
                try:
                    chunk = self._queue.popleft()  # the biggest left (see _chunks)
                except IndexError:
                    break
                worker.do(*chunk)
            for helper in self._helpers:
                helper.join()  # a helper that failed put its chunks back in the queue
            if not self._queue:
                break
        worker.close()
        verdicts = [h.verdict for h in self._helpers]
        matched: int | None = None
        if worker.same and all(v is not None and v[0] for v in verdicts):
            matched = worker.matched + sum(v[1] for v in verdicts if v is not None)
        return ScanResult(matched, self._fetch)

    def _fetch(self) -> tuple[list[RawFile], list[RawSkip]]:
        worker = self._worker
        helpers, self._helpers = self._helpers, []
        for helper in helpers:
            answer = helper.fetch()
            if answer is None:
                worker.same = False  # no comparing now (the ledger is closed)
                for chunk in helper.done:
                    worker.do(*chunk)
            else:
                worker.files.extend(answer[0])
                worker.skips.extend(answer[1])
        return worker.files, worker.skips

    def close(self) -> None:
        """Stop the helpers (a scan whose result, or whose files, are not wanted)."""
        self._queue.clear()
        for helper in self._helpers:
            helper.kill()
        self._helpers = []
        self._worker.close()


def _chunks(root: str, ignore: FastMatcher, want: int) -> list[Chunk]:
    """Split a root into about ``want`` chunks by listing its first folders, widest first:
    each listed folder becomes a chunk of its own entries, each folder not listed a chunk
    with everything below it. In the order they should be walked in: biggest first."""
    listed: list[Chunk] = []
    pending: deque[Folder] = deque([("", root)])
    while pending and len(pending) + len(listed) < want:
        folder = pending.popleft()
        below = subfolders(folder, ignore)
        if below is None:  # unreadable: its chunk reports why
            listed.append((folder[0], True))
            continue
        listed.append((folder[0], False))
        pending.extend(below)
    # Biggest first (every process takes from the front): whole folders, the shallowest
    # (most below them) first, then the listed folders' own entries. The queue ends with
    # small chunks, so the processes finish together instead of one walking a big chunk
    # while the others wait for it.
    return [(rel, True) for rel, _ in pending] + listed
