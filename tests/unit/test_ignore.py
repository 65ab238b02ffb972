"""Ignore rules: the fast combined-regex path agrees with pathspec's gitignore semantics."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pathspec
import pytest

from syncagent.errors import ConfigError
from syncagent.ignore import (
    BUILTIN,
    BUILTIN_NAMES,
    IgnoreRules,
    anchored,
    inside,
    read_ignore_file,
)
from syncagent.walk import FastMatcher

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


def test_own_paths_inside_the_root_become_anchored_escaped_patterns(tmp_path: Path) -> None:
    root = tmp_path / "home"
    state = root / ".local" / "state" / "sync [1]*?"
    patterns = anchored(root, [state, root, tmp_path / "elsewhere", root / "trail "])
    assert patterns == ["/.local/state/sync \\[1\\]\\*\\?", "/trail\\ "]
    rules = IgnoreRules.for_root(root, ["!*"], own=[state])  # no negation brings them back
    assert rules.folder(".local/state/sync [1]*?")
    assert rules.file(".local/state/sync [1]*?/token.json")
    assert not rules.folder(".local/state/sync 1x")
    assert not rules.file("docs/.local/state/sync [1]*?")  # anchored at the root only


def test_own_paths_are_found_through_links(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "state").mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    assert inside(tmp_path / "link", [real / "state"]) == ["state"]
    assert inside(real, [tmp_path / "link" / "state"]) == ["state"]


# -- an ignore file is never ignored silently (issue 9) -------------------------------------


def test_a_syncignore_with_a_non_utf8_byte_is_an_error_naming_file_and_line(
    tmp_path: Path,
) -> None:
    (tmp_path / ".syncignore").write_bytes(b"*.log\nsecrets/\ncaf\xe9/\n")
    with pytest.raises(ConfigError) as info:
        IgnoreRules.for_root(tmp_path)
    assert info.value.problems == [
        f"{tmp_path / '.syncignore'}: line 3: not UTF-8 (byte 0xe9 in 'caf\\\\xe9/')"
    ]


def test_every_invalid_line_of_a_syncignore_is_listed(tmp_path: Path) -> None:
    (tmp_path / ".syncignore").write_text("# keys\n!\nsecrets/\nend\\\n")
    with pytest.raises(ConfigError) as info:
        read_ignore_file(tmp_path)
    assert [p.split(": ", 2)[1] for p in info.value.problems] == ["line 2", "line 4"]
    assert all(p.startswith(f"{tmp_path / '.syncignore'}: ") for p in info.value.problems)


def test_a_syncignore_that_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ".syncignore").mkdir()  # EISDIR: the same path as EACCES, which root ignores
    with pytest.raises(ConfigError) as info:
        read_ignore_file(tmp_path)
    assert info.value.problems == [f"{tmp_path / '.syncignore'}: cannot be read: Is a directory"]


def test_no_syncignore_is_no_rules_and_a_good_one_applies(tmp_path: Path) -> None:
    assert read_ignore_file(tmp_path) == []
    (tmp_path / ".syncignore").write_text("secrets/\n*.log\n")
    rules = IgnoreRules.for_root(tmp_path)
    assert rules.folder("secrets") and rules.file("a/b.log") and not rules.file("a.txt")


def test_the_built_in_matcher_is_what_pathspec_makes_of_the_built_in_patterns() -> None:
    built = IgnoreRules([""]).matcher  # a blank line: no pattern, but the pathspec way
    assert isinstance(built, FastMatcher)
    assert (built.names_source, built.paths_source) == (BUILTIN_NAMES, None)
    fast = IgnoreRules().matcher
    assert isinstance(fast, FastMatcher)
    assert (fast.names_source, fast.paths_source) == (BUILTIN_NAMES, None)


def test_the_built_in_rules_alone_do_not_load_pathspec(tmp_path: Path) -> None:
    """A root without patterns of its own gets its rules without pathspec (a no-op pass
    pays for loading it before its scan starts); with a .syncignore, pathspec reads it."""
    code = (
        "import sys; from pathlib import Path; from syncagent.ignore import IgnoreRules; "
        "r = IgnoreRules.for_root(Path(sys.argv[1])); "
        "print('pathspec' in sys.modules, r.file('a.tmp'), r.file('a.txt'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "True", "False"]
    (tmp_path / ".syncignore").write_text("*.txt\n")
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "True", "True"]
