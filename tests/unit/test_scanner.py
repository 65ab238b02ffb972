"""The scanner on a real temporary tree: files, links, FIFOs, ignore rules."""

from __future__ import annotations

import os
from pathlib import Path

from syncagent.ignore import IgnoreRules
from syncagent.model import LocalSkip
from syncagent.scanner import ScanJob, scan
from syncagent.walk import NESTED_IGNORE_FILE


def test_walks_files_and_reports_what_it_cannot_upload(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f.txt").write_text("x")
    (root / "top.txt").write_text("yy")
    (root / "junk.tmp").write_text("temp")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "m.js").write_text("m")
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    os.symlink(outside, root / "link-out")
    os.symlink(root / "loop2", root / "loop1")
    os.symlink(root / "loop1", root / "loop2")
    os.symlink(root / "a", root / "dirlink")
    os.mkfifo(root / "pipe")
    result = scan(root, IgnoreRules(["node_modules/"]))
    files = {e.rel_path: e.size for e in result.entries}
    assert files == {"a/b/f.txt": 1, "top.txt": 2}
    reasons = {s.rel_path: s.reason for s in result.skips}
    assert set(reasons) == {"link-out", "loop1", "loop2", "dirlink", "pipe"}
    assert "symbolic link" in reasons["link-out"]
    assert "FIFO" in reasons["pipe"]
    entry = next(e for e in result.entries if e.rel_path == "top.txt")
    st = (root / "top.txt").stat()
    assert (entry.mtime_ns, entry.inode, entry.dev) == (st.st_mtime_ns, st.st_ino, st.st_dev)


def test_syncignore_file_in_the_root(tmp_path: Path) -> None:
    (tmp_path / ".syncignore").write_text("*.log\nbuild/\n")
    (tmp_path / "keep.txt").write_text("k")
    (tmp_path / "x.log").write_text("l")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "out.bin").write_text("b")
    result = scan(tmp_path, IgnoreRules.for_root(tmp_path))
    assert [e.rel_path for e in result.entries] == ["keep.txt"]
    assert result.skips == []  # the root's own ignore file is the rules, not a file


def test_a_syncignore_in_a_subfolder_is_reported_as_not_read(tmp_path: Path) -> None:
    """Only the root's .syncignore is read: one below it is listed with that reason, never
    passed over in silence (nor uploaded), whichever process walks its folder."""
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / ".syncignore").write_text("*.key\n")
    (tmp_path / "sub" / "deeper" / ".syncignore").write_text("*.key\n")
    (tmp_path / "sub" / "x.key").write_text("k")
    for helpers in (0, 2):
        job = ScanJob(tmp_path, IgnoreRules.for_root(tmp_path), helpers=helpers, min_rows=0)
        try:
            result = job.result()
            assert sorted(e.rel_path for e in result.entries) == ["sub/x.key"]
            assert sorted(result.skips, key=str) == [
                LocalSkip("sub/.syncignore", NESTED_IGNORE_FILE),
                LocalSkip("sub/deeper/.syncignore", NESTED_IGNORE_FILE),
            ]
        finally:
            job.close()
    assert NESTED_IGNORE_FILE.startswith("not read: only the .syncignore at the top of the root")


def test_negated_pattern_falls_back_to_full_gitignore_semantics() -> None:
    rules = IgnoreRules(["*.log", "!keep.log"])
    assert rules.file("x.log") and not rules.file("keep.log") and not rules.file("a.txt")
