"""Scans with helper processes, on real trees and a real SQLite ledger.

A scan split over helpers must find exactly what the in-process walk finds (hostile entries
included), its ledger comparison must say "unchanged" only when a pass would do nothing,
and a helper that cannot start or dies must cost speed, never entries.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from pathlib import Path

import pytest

from syncagent.ignore import IgnoreRules
from syncagent.ledger import Ledger, repo
from syncagent.model import LocalEntry
from syncagent.scanner import (
    NOT_UTF8,
    Chunk,
    ScanJob,
    ScanResult,
    _chunks,
    _Helper,
    scan,
    sqlite_file,
)
from syncagent.walk import FastMatcher

pytestmark = pytest.mark.timeout(120)


def _tree(root: Path) -> None:
    """60 folders over three levels, 600 files, and one of each thing a scan must skip."""
    for a in range(3):
        for b in range(4):
            for c in range(5):
                folder = root / f"a{a}" / f"b{b}" / f"c{c}"
                folder.mkdir(parents=True)
                for i in range(10):
                    (folder / f"f{i}.txt").write_text(f"{a}{b}{c}{i}")
    (root / "top.txt").write_text("top")
    (root / "a1" / "junk.tmp").write_text("ignored")
    (root / "a2" / "node_modules").mkdir()
    (root / "a2" / "node_modules" / "m.js").write_text("ignored folder")
    (root / "a0" / "empty.txt").write_bytes(b"")
    os.symlink("/etc/passwd", root / "a0" / "b1" / "link-out")
    os.symlink(root / "a1" / "loop", root / "a1" / "loop")
    os.mkfifo(root / "a2" / "b3" / "pipe")
    with open(os.path.join(os.fsencode(root / "a2"), b"bad\xff.txt"), "wb") as f:
        f.write(b"x")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    _tree(root)
    return root


def _as_sets(result: ScanResult) -> tuple[set[tuple[object, ...]], set[tuple[str, str]]]:
    return set(result.files), set(result.raw_skips)


RULES = ["node_modules/"]


def _record(ledger: Ledger, root: Path, result: ScanResult) -> int:
    """Record a scan as a finished pass would: files done, skips skipped."""
    root_id, _ = repo.ensure_root(ledger, str(root), "/r", "archive")
    repo.record_done(
        ledger,
        [repo.Done(root_id, e, "0" * 32, 1, e.rel_path) for e in result.entries if e.size > 0],
        0,
    )
    for e in result.entries:
        if e.size == 0:
            repo.record_skip(ledger, root_id, e.rel_path, "0-byte file", e, 0)
    for s in result.skips:
        repo.record_skip(ledger, root_id, s.rel_path, s.reason, None, 0)
    return root_id


@pytest.mark.parametrize("helpers", [1, 2, 3])
def test_helpers_find_exactly_what_one_process_finds(tree: Path, helpers: int) -> None:
    alone = scan(tree, IgnoreRules(RULES))
    job = ScanJob(tree, IgnoreRules(RULES), helpers=helpers, min_rows=0)
    assert job._helpers, "the tree is big enough to share"
    shared = job.result()
    try:
        assert _as_sets(shared) == _as_sets(alone)
        assert len(shared.files) == len(alone.files) == 602  # 600 + top.txt + empty.txt
        assert len(shared.files) == len(set(shared.files))  # nothing walked twice
        skipped = dict(shared.raw_skips)
        assert "symbolic link" in skipped["a0/b1/link-out"]
        assert "symbolic link" in skipped["a1/loop"]
        assert "FIFO" in skipped["a2/b3/pipe"]
        assert skipped["a2/bad\\xff.txt/"] == "name is not valid UTF-8"
        assert not any("node_modules" in f[0] or f[0].endswith(".tmp") for f in shared.files)
    finally:
        job.close()


def test_negated_rules_are_walked_here_with_full_semantics(tree: Path) -> None:
    (tree / "a0" / "keep.log").write_text("k")
    (tree / "a0" / "drop.log").write_text("d")
    job = ScanJob(tree, IgnoreRules(["*.log", "!keep.log"]), helpers=2, min_rows=0)
    assert not job._helpers  # pathspec semantics stay in this process
    names = {f[0] for f in job.result().files}
    assert "a0/keep.log" in names and "a0/drop.log" not in names


@pytest.mark.parametrize("helpers", [0, 1, 2])
def test_ledger_comparison_says_unchanged_only_when_nothing_changed(
    tree: Path, tmp_path: Path, helpers: int
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    ledger = Ledger(url)
    ledger.migrate()
    root_id = _record(ledger, tree, scan(tree, IgnoreRules(RULES)))
    rows = repo.count_files(ledger, root_id)

    def matched() -> int | None:
        job = ScanJob(
            tree, IgnoreRules(RULES), helpers=helpers, ledger_file=sqlite_file(url), min_rows=0
        )
        assert len(job._helpers) == helpers
        try:
            return job.result().matched
        finally:
            job.close()

    assert matched() == rows  # as recorded: a pass has nothing to do

    (tree / "a1" / "b3" / "c4" / "f7.txt").write_text("edited, longer")
    assert matched() is None
    _record(ledger, tree, scan(tree, IgnoreRules(RULES)))
    assert matched() == rows

    (tree / "a2" / "b0" / "c0" / "new.txt").write_text("new")
    assert matched() is None  # a file without a row
    (tree / "a2" / "b0" / "c0" / "new.txt").unlink()
    assert matched() == rows

    (tree / "a0" / "b0" / "c0" / "f0.txt").unlink()
    found = matched()
    assert found is not None and found < rows  # a row without a file: something is gone

    (tree / "a0" / "b0" / "c0" / "f0.txt").write_text("0000")  # back, but a new inode
    assert matched() is None
    _record(ledger, tree, scan(tree, IgnoreRules(RULES)))
    assert matched() == rows

    os.unlink(tree / "a2" / "b3" / "pipe")
    (tree / "a2" / "b3" / "pipe").write_text("now a file")  # a skip became a file
    assert matched() is None
    ledger.close()


def test_no_ledger_rows_for_the_root_means_not_unchanged(tree: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    ledger = Ledger(url)
    ledger.migrate()
    job = ScanJob(tree, IgnoreRules(RULES), helpers=1, ledger_file=sqlite_file(url))
    assert job.result().matched is None
    job.close()
    ledger.close()
    missing = ScanJob(tree, IgnoreRules(RULES), helpers=1, ledger_file=str(tmp_path / "nope"))
    assert missing.result().matched is None
    missing.close()


def test_a_helper_that_cannot_start_costs_nothing(tree: Path, tmp_path: Path) -> None:
    alone = scan(tree, IgnoreRules(RULES))
    job = ScanJob(
        tree, IgnoreRules(RULES), helpers=2, min_rows=0, python=str(tmp_path / "no-python")
    )
    assert not job._helpers
    assert _as_sets(job.result()) == _as_sets(alone)


@pytest.mark.parametrize("dies", ["/bin/false", "/bin/cat"])
def test_a_helper_that_fails_has_its_folders_walked_here(
    tree: Path, tmp_path: Path, dies: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``false`` exits at once; ``cat`` echoes frames back, which are not valid answers."""
    alone = scan(tree, IgnoreRules(RULES))
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    ledger = Ledger(url)
    ledger.migrate()
    _record(ledger, tree, alone)
    job = ScanJob(
        tree, IgnoreRules(RULES), helpers=1, ledger_file=sqlite_file(url), min_rows=0, python=dies
    )
    assert job._helpers
    result = job.result()
    assert result.matched is None  # no verdict from the helper: plan the full way
    assert _as_sets(result) == _as_sets(alone)
    assert "scan helper failed" in caplog.text
    job.close()
    ledger.close()


class _GatedQueue(deque[Chunk]):
    """A chunk queue whose first take waits until ``gate`` exists (a file the fake helper
    makes once it has closed its end of the pipe)."""

    def __init__(self, chunks: list[Chunk], gate: Path) -> None:
        super().__init__(chunks)
        self._gate = gate

    def popleft(self) -> Chunk:
        deadline = time.monotonic() + 60
        while not self._gate.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return super().popleft()


def test_a_chunk_whose_write_fails_goes_back_to_the_queue(tmp_path: Path) -> None:
    """The helper reads the hello, then stops reading: the next chunk's write fails (broken
    pipe), and that chunk, taken from the queue already, must not be lost."""
    gate = tmp_path / "closed"
    fake = tmp_path / "reads-hello-then-closes"
    fake.write_text(f"#!/bin/sh\nhead -c 1 >/dev/null\nexec 0<&-\ntouch {gate}\nexec sleep 60\n")
    fake.chmod(0o755)
    queue = _GatedQueue([("a0", True), ("a1", True)], gate)
    helper = _Helper((str(tmp_path), None, None, None), queue, str(fake))
    helper.join()
    assert helper.verdict is None
    assert sorted(queue) == [("a0", True), ("a1", True)]


def test_entries_are_local_entries(tree: Path) -> None:
    result = scan(tree, IgnoreRules(RULES))
    entry = next(e for e in result.entries if e.rel_path == "top.txt")
    st = (tree / "top.txt").stat()
    assert entry == LocalEntry("top.txt", 3, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino)


def test_a_root_with_few_ledger_rows_is_walked_without_helpers(tree: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    ledger = Ledger(url)
    ledger.migrate()
    _record(ledger, tree, scan(tree, IgnoreRules(RULES)))
    small = ScanJob(tree, IgnoreRules(RULES), helpers=2, ledger_file=sqlite_file(url))
    assert not small._helpers  # 600 rows: below the default threshold
    assert small.result().matched == repo.count_files(ledger, 1)
    big = ScanJob(tree, IgnoreRules(RULES), helpers=2, ledger_file=sqlite_file(url), min_rows=600)
    assert len(big._helpers) == 2
    big.close()
    ledger.close()


def test_a_scan_waits_for_helpers_that_took_every_chunk(tmp_path: Path) -> None:
    """When the helpers hold every chunk before ``result()`` is called (a small tree, or a
    main thread busy importing), their answers must still be waited for: they were dropped,
    and the files of those chunks looked deleted (mirror mode trashes deleted files)."""
    root = tmp_path / "root"
    (root / "sub" / "deeper").mkdir(parents=True)
    wanted = ["sub/a.txt", "sub/deeper/b.txt", "top.txt"]
    for rel in wanted:
        (root / rel).write_text(rel)
    slow = tmp_path / "slow-python"  # a helper that takes a while to start
    slow.write_text(f'#!/bin/sh\nsleep 1\nexec "{sys.executable}" "$@"\n')
    slow.chmod(0o755)
    job = ScanJob(root, IgnoreRules(), helpers=2, min_rows=0, python=str(slow))
    try:
        assert len(job._helpers) == 2
        deadline = time.monotonic() + 30
        while job._queue:  # the feeder threads take two chunks each: all three are taken
            assert time.monotonic() < deadline, "the helpers never took their chunks"
            time.sleep(0.01)
        result = job.result()
        assert sorted(f[0] for f in result.files) == wanted
    finally:
        job.close()


@pytest.mark.parametrize("helpers", [0, 2])
def test_a_real_name_that_looks_escaped_and_a_name_not_in_utf8_keep_their_own_rows(
    tree: Path, tmp_path: Path, helpers: int
) -> None:
    """``esc\\xff.txt`` (a backslash, really) and ``esc<0xff>.txt`` (not UTF-8) are two
    entries with two keys, at the root and below it, and the ledger comparison holds."""
    for folder in (tree, tree / "a2"):
        (folder / "esc\\xff.txt").write_text("a real name with a backslash")
        with open(os.path.join(os.fsencode(folder), b"esc\xff.txt"), "wb") as f:
            f.write(b"not utf-8")
        with open(os.path.join(os.fsencode(folder), b"esc\\xff\xff.txt"), "wb") as f:
            f.write(b"both")
        with open(os.path.join(os.fsencode(folder), b"esc\xff\\xff.txt"), "wb") as f:
            f.write(b"both, the other way round")
    result = scan(tree, IgnoreRules(RULES))
    files = {f[0] for f in result.files}
    assert {"esc\\xff.txt", "a2/esc\\xff.txt"} <= files
    skipped = dict(result.raw_skips)
    for prefix in ("", "a2/"):
        for key in ("esc\\xff.txt/", "esc\\\\xff\\xff.txt/", "esc\\xff\\\\xff.txt/"):
            assert skipped[prefix + key] == NOT_UTF8, (prefix + key, sorted(skipped))
    assert len(files & set(skipped)) == 0

    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    ledger = Ledger(url)
    ledger.migrate()
    root_id = _record(ledger, tree, result)
    rows = repo.count_files(ledger, root_id)
    assert rows == len(result.files) + len(result.raw_skips)  # no two entries share a row

    def matched() -> int | None:
        job = ScanJob(
            tree, IgnoreRules(RULES), helpers=helpers, ledger_file=sqlite_file(url), min_rows=0
        )
        try:
            return job.result().matched
        finally:
            job.close()

    assert matched() == rows  # escaped keys sit in their folder's chunk
    (tree / "a0" / "b0" / "c0" / "f1.txt").chmod(0o600)  # only the ctime moves
    assert matched() is None
    ledger.close()


def test_rows_recorded_gone_are_not_counted(tree: Path, tmp_path: Path) -> None:
    """Both counts of a root's rows (the scan's, read with the stdlib, and the engine's)
    leave out rows recorded gone, and agree."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    ledger = Ledger(url)
    ledger.migrate()
    root_id = _record(ledger, tree, scan(tree, IgnoreRules(RULES)))
    every = repo.count_files(ledger, root_id)
    other = _record(ledger, tmp_path, scan(tree, IgnoreRules(RULES)))  # another root's rows
    gone = ["a0/b0/c0/f0.txt", "a1/b1/c1/f1.txt", "top.txt"]
    repo.mark_gone(ledger, root_id, gone, 0)
    repo.mark_gone(ledger, other, ["a2/b2/c2/f2.txt"], 0)
    assert repo.count_files(ledger, root_id) == every - len(gone)
    job = ScanJob(tree, IgnoreRules(RULES), helpers=0, ledger_file=sqlite_file(url))
    try:
        assert job._worker.rows == every - len(gone)
    finally:
        job.close()
    ledger.close()


def test_chunks_are_queued_biggest_first(tmp_path: Path) -> None:
    """Whole folders (shallowest first) before the listed folders' own entries: every
    process takes from the front, so a scan ends on small chunks."""
    root = tmp_path / "root"
    for top in range(3):
        for sub in range(4):
            (root / f"t{top}" / f"s{sub}").mkdir(parents=True)
    matcher = IgnoreRules().matcher
    assert isinstance(matcher, FastMatcher)
    chunks = _chunks(str(root), matcher, 8)
    whole = [rel for rel, below in chunks if below]
    own = [rel for rel, below in chunks if not below]
    assert len(own) == 2 and own[0] == "" and "/" not in own[1]  # the root and one top folder
    assert chunks == [(rel, True) for rel in whole] + [(rel, False) for rel in own]
    assert len(whole) == 6 and all("/" not in rel for rel in whole[:2])  # shallowest first
    assert sorted(whole[2:]) == [f"{own[1]}/s{i}" for i in range(4)]


def test_a_folders_own_entries_are_compared_by_name(tree: Path, tmp_path: Path) -> None:
    """The chunks of a folder's own entries (the root's among them) look their rows up by
    name: a changed, new or re-skipped entry right there is still caught."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    ledger = Ledger(url)
    ledger.migrate()
    _record(ledger, tree, scan(tree, IgnoreRules(RULES)))
    rows = repo.count_files(ledger, 1)
    matcher = IgnoreRules(RULES).matcher
    assert isinstance(matcher, FastMatcher)
    assert ("", False) in _chunks(str(tree), matcher, 32)  # the root's own entries: one chunk

    def matched() -> int | None:
        job = ScanJob(tree, IgnoreRules(RULES), helpers=1, ledger_file=sqlite_file(url), min_rows=0)
        try:
            return job.result().matched
        finally:
            job.close()

    assert matched() == rows
    (tree / "top.txt").write_text("top, edited")
    assert matched() is None
    _record(ledger, tree, scan(tree, IgnoreRules(RULES)))
    assert matched() == rows
    (tree / "second.txt").write_text("new at the top")
    assert matched() is None
    (tree / "second.txt").unlink()
    os.mkfifo(tree / "pipe-at-top")
    assert matched() is None  # a skip without a row
    ledger.close()
