"""Which paths are never backed up: built-in junk and temp names, config patterns, and a
per-root ``.syncignore`` file, all in gitignore syntax (pathspec). Pure after construction."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pathspec
from pathspec.pattern import RegexPattern

__all__ = ["BUILTIN", "IGNORE_FILE", "IgnoreRules"]

IGNORE_FILE = ".syncignore"
# Files still being written by common programs, and system junk.
BUILTIN = (
    "*.part",
    "*.partial",
    "*.crdownload",
    "*.download",
    "*.tmp",
    "*.temp",
    "~$*",
    ".~lock.*#",
    "*.swp",
    "*.swo",
    "*.swx",
    "*~",
    ".#*",
    "#*#",
    ".DS_Store",
    "Thumbs.db",
    "desktop.ini",
    ".Trash-*/",
    ".syncagent-*",
    "__pycache__/",
    IGNORE_FILE,
)


def _combine(patterns: Sequence[object], bare_names: bool) -> re.Pattern[str] | None:
    """One regex for ``patterns``; for bare names the "any folder prefix" part is dropped."""
    regexes = [p.regex.pattern for p in patterns if isinstance(p, RegexPattern) and p.regex]
    if bare_names:
        regexes = [r.replace("^(?:.+/)?", "^", 1) for r in regexes]
    if not regexes:
        return None
    return re.compile("|".join(f"(?:{r})" for r in regexes).replace("(?P<ps_d>", "(?:"))


class IgnoreRules:
    """Gitignore-style matcher; paths are POSIX, relative to the root.

    ``file`` and ``folder`` judge a path whose parent folders were already judged (the
    scanner never enters an ignored folder), which is what makes the fast path exact.
    """

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self._spec = pathspec.GitIgnoreSpec.from_lines([*BUILTIN, *patterns])
        active = [p for p in self._spec.patterns if p.include is not None]
        # Fast path, used when there is no negation ("!pattern"): a path is ignored when any
        # pattern matches, so the patterns are combined into two regexes, one for patterns
        # that match a bare name at any depth (no "/" inside), applied to the last path
        # component only, and one for the rest, applied to the whole path. That is ~10x
        # faster than pathspec's per-pattern loop over full paths. The patterns' named group
        # is renamed away, as a group name may appear only once in a regex.
        self._names: re.Pattern[str] | None = None
        self._paths: re.Pattern[str] | None = None
        self._fast = all(
            p.include and isinstance(p, RegexPattern) and p.regex is not None for p in active
        )
        if self._fast:
            by_name = [p for p in active if "/" not in str(getattr(p, "pattern", "/")).rstrip("/")]
            by_path = [p for p in active if p not in by_name]
            self._names = _combine(by_name, bare_names=True)
            self._paths = _combine(by_path, bare_names=False)

    @classmethod
    def for_root(cls, root: Path, patterns: Iterable[str] = ()) -> IgnoreRules:
        """Built-ins + ``patterns`` + the root's ``.syncignore`` if there is one."""
        extra: list[str] = []
        with contextlib.suppress(OSError, UnicodeDecodeError):
            extra = (root / IGNORE_FILE).read_text(encoding="utf-8").splitlines()
        return cls([*patterns, *extra])

    def _match(self, path: str) -> bool:
        if not self._fast:
            return self._spec.match_file(path)
        name = (
            path.rsplit("/", 1)[-1]
            if not path.endswith("/")
            else (path[:-1].rsplit("/", 1)[-1] + "/")
        )
        if self._names is not None and self._names.match(name):
            return True
        return self._paths is not None and self._paths.match(path) is not None

    def file(self, rel_path: str) -> bool:
        return self._match(rel_path)

    def folder(self, rel_path: str) -> bool:
        return self._match(rel_path + "/")
