"""Ignore rules: the fast combined-regex path agrees with pathspec's gitignore semantics."""

from __future__ import annotations

import random

import pathspec
import pytest

from syncagent.ignore import BUILTIN, IgnoreRules

NAMES = [
    "a.tmp",
    "b.txt",
    "~$x.docx",
    "x~",
    ".#a",
    "#a#",
    "Thumbs.db",
    ".Trash-1000",
    "c.part",
    "q.log",
    "node_modules",
    ".syncignore",
    "z.crdownload",
    "dir",
    "sub",
    "docs",
    "private",
    "keep.log",
    "测试.txt",
]


def _walk_ignored(rules: IgnoreRules, path: str) -> bool:
    """Ignored as the scanner decides: a parent folder ignored, or the file itself."""
    parts = path.split("/")
    for i in range(1, len(parts)):
        if rules.folder("/".join(parts[:i])):
            return True
    return rules.file(path)


@pytest.mark.parametrize("user", [["node_modules/", "*.log"], ["docs/private/", "*.txt"], []])
def test_fast_path_agrees_with_pathspec(user: list[str]) -> None:
    rules = IgnoreRules(user)
    spec = pathspec.GitIgnoreSpec.from_lines([*BUILTIN, *user])
    rng = random.Random(7)
    for _ in range(3000):
        path = "/".join(rng.choice(NAMES) for _ in range(rng.randint(1, 4)))
        assert _walk_ignored(rules, path) == spec.match_file(path), path


def test_negations_use_full_gitignore_semantics() -> None:
    rules = IgnoreRules(["*.log", "!keep.log"])
    assert rules.file("a/x.log")
    assert not rules.file("a/keep.log")


def test_builtin_temp_names() -> None:
    rules = IgnoreRules()
    for name in ["f.part", "f.crdownload", "~$report.docx", ".~lock.a.odt#", "a.swp", ".DS_Store"]:
        assert rules.file(f"dir/{name}"), name
    assert not rules.file("dir/report.docx")
