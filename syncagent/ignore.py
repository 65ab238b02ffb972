"""Which paths are never backed up: built-in junk and temp names, config patterns, and a
per-root ``.syncignore`` file, all in gitignore syntax (pathspec). Pure after construction.

An ignore file is never ignored silently: one that cannot be read, is not UTF-8 or holds an
invalid pattern raises :class:`~syncagent.errors.ConfigError` naming the file and the line
(a root whose rules are unknown is not backed up at all, rather than with too few rules).
Only the root's own ``.syncignore`` is read; the walk reports one in a subfolder as skipped,
with that reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from syncagent.errors import ConfigError
from syncagent.walk import IGNORE_FILE, FastMatcher, Matcher

if TYPE_CHECKING:  # pathspec loads only for rules beyond the built-in ones
    import pathspec

__all__ = [
    "BUILTIN",
    "IGNORE_FILE",
    "IgnoreRules",
    "anchored",
    "inside",
    "pattern_problem",
    "read_ignore_file",
]

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
    "*.syncagent-part",  # a restore's download in progress
    "*.syncagent-new",  # a restore's link or empty file about to be renamed into place
    "__pycache__/",
    IGNORE_FILE,
)


# What the fast path makes of BUILTIN alone (see IgnoreRules): the usual root, with no
# patterns of its own and none of syncagent's files inside it, gets its matcher without
# loading pathspec and compiling each pattern (~0.1 s CPU of a no-op pass, before its scan
# can start). A test checks that it is what pathspec makes of BUILTIN.
BUILTIN_NAMES = (
    "(?:^[^/]*\\.part(?:(?:/)|$))"
    "|(?:^[^/]*\\.partial(?:(?:/)|$))"
    "|(?:^[^/]*\\.crdownload(?:(?:/)|$))"
    "|(?:^[^/]*\\.download(?:(?:/)|$))"
    "|(?:^[^/]*\\.tmp(?:(?:/)|$))"
    "|(?:^[^/]*\\.temp(?:(?:/)|$))"
    "|(?:^\\~\\$[^/]*(?:(?:/)|$))"
    "|(?:^\\.\\~lock\\.[^/]*\\#(?:(?:/)|$))"
    "|(?:^[^/]*\\.swp(?:(?:/)|$))"
    "|(?:^[^/]*\\.swo(?:(?:/)|$))"
    "|(?:^[^/]*\\.swx(?:(?:/)|$))"
    "|(?:^[^/]*\\~(?:(?:/)|$))"
    "|(?:^\\.\\#[^/]*(?:(?:/)|$))"
    "|(?:^\\.DS_Store(?:(?:/)|$))"
    "|(?:^Thumbs\\.db(?:(?:/)|$))"
    "|(?:^desktop\\.ini(?:(?:/)|$))"
    "|(?:^\\.Trash\\-[^/]*(?:/))"
    "|(?:^\\.syncagent\\-[^/]*(?:(?:/)|$))"
    "|(?:^[^/]*\\.syncagent\\-part(?:(?:/)|$))"
    "|(?:^[^/]*\\.syncagent\\-new(?:(?:/)|$))"
    "|(?:^__pycache__(?:/))"
    "|(?:^\\.syncignore(?:(?:/)|$))"
)


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid gitignore pattern (None when it is)."""
    import pathspec

    try:
        pathspec.GitIgnoreSpec.from_lines([pattern])
    except (ValueError, re.error) as exc:  # pathspec's GitIgnorePatternError is a ValueError
        return f"invalid pattern {pattern!r} ({exc})"
    return None


def read_ignore_file(root: Path) -> list[str]:
    """The lines of ``root``'s ``.syncignore`` ([] when there is none).

    :raises ConfigError: the file cannot be read, is not UTF-8, or holds an invalid pattern;
        every bad line is listed, each as ``<file>: line <n>: <why>``.
    """
    path = root / IGNORE_FILE
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):  # no file (a missing root: said elsewhere)
        return []
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read: {exc.strerror or exc}"]) from None
    problems: list[str] = []
    lines: list[str] = []
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            shown = raw.decode("utf-8", "backslashreplace")
            problems.append(
                f"{path}: line {number}: not UTF-8 (byte 0x{raw[exc.start]:02x} in {shown!r})"
            )
            continue
        if (why := pattern_problem(line)) is not None:
            problems.append(f"{path}: line {number}: {why}")
        lines.append(line)
    if problems:
        raise ConfigError(problems)
    return lines


def _combine(patterns: Sequence[object], bare_names: bool) -> str | None:
    """One regex source for ``patterns``; for bare names the "any folder prefix" part is
    dropped."""
    from pathspec.pattern import RegexPattern

    regexes = [p.regex.pattern for p in patterns if isinstance(p, RegexPattern) and p.regex]
    if bare_names:
        regexes = [r.replace("^(?:.+/)?", "^", 1) for r in regexes]
    if not regexes:
        return None
    return "|".join(f"(?:{r})" for r in regexes).replace("(?P<ps_d>", "(?:")


def inside(root: Path, paths: Iterable[Path]) -> list[str]:
    """Those of ``paths`` that lie inside ``root`` (links resolved), relative to it."""
    real_root = Path(os.path.realpath(root))
    out = []
    for path in paths:
        real = Path(os.path.realpath(path))
        if real != real_root and real.is_relative_to(real_root):
            out.append(real.relative_to(real_root).as_posix())
    return out


def anchored(root: Path, paths: Iterable[Path]) -> list[str]:
    """Gitignore patterns matching exactly those ``paths`` that lie inside ``root`` (with
    everything below them), anchored at the root, special characters escaped."""
    out = []
    for rel in inside(root, paths):
        escaped = re.sub(r"([\\*?\[\]])", r"\\\1", rel)
        if escaped.endswith(" "):
            escaped = escaped[:-1] + "\\ "
        out.append("/" + escaped)
    return out


class _SpecMatcher(Matcher):
    """Full gitignore semantics through pathspec (rules with negations)."""

    def __init__(self, spec: pathspec.GitIgnoreSpec, always: pathspec.GitIgnoreSpec) -> None:
        self._spec = spec
        self._always = always  # matched first: no negation in ``spec`` can undo these

    def file(self, rel_path: str, name: str) -> bool:
        return self._always.match_file(rel_path) or self._spec.match_file(rel_path)

    def folder(self, rel_path: str, name: str) -> bool:
        return self.file(rel_path + "/", name)


class IgnoreRules:
    """Gitignore-style matcher; paths are POSIX, relative to the root.

    ``file`` and ``folder`` judge a path whose parent folders were already judged (the
    scanner never enters an ignored folder), which is what makes the fast path exact.
    """

    def __init__(self, patterns: Iterable[str] = (), always: Iterable[str] = ()) -> None:
        """``always``: patterns ignored whatever ``patterns`` say (syncagent's own files)."""
        always, patterns = list(always), list(patterns)
        self.matcher: Matcher
        if not patterns and not always:
            self.matcher = FastMatcher(BUILTIN_NAMES, None)
            return
        import pathspec
        from pathspec.pattern import RegexPattern

        spec = pathspec.GitIgnoreSpec.from_lines([*BUILTIN, *patterns, *always])
        active = [p for p in spec.patterns if p.include is not None]
        # Fast path, used when there is no negation ("!pattern"): a path is ignored when any
        # pattern matches, so the patterns are combined into two regexes, one for patterns
        # that match a bare name at any depth (no "/" inside), applied to the last path
        # component only, and one for the rest, applied to the whole path. That is ~10x
        # faster than pathspec's per-pattern loop over full paths, and, being plain regex
        # sources, it can be handed to a scan helper process. The patterns' named group is
        # renamed away, as a group name may appear only once in a regex.
        if all(p.include and isinstance(p, RegexPattern) and p.regex is not None for p in active):
            by_name = [p for p in active if "/" not in str(getattr(p, "pattern", "/")).rstrip("/")]
            by_path = [p for p in active if p not in by_name]
            self.matcher = FastMatcher(
                _combine(by_name, bare_names=True), _combine(by_path, bare_names=False)
            )
        else:
            self.matcher = _SpecMatcher(spec, pathspec.GitIgnoreSpec.from_lines(always))

    @classmethod
    def for_root(
        cls, root: Path, patterns: Iterable[str] = (), own: Iterable[Path] = ()
    ) -> IgnoreRules:
        """Built-ins + ``patterns`` + the root's ``.syncignore`` if there is one, and always
        the paths in ``own`` (syncagent's own files) that lie inside the root.

        :raises ConfigError: the ``.syncignore`` is unreadable or bad (see
            :func:`read_ignore_file`).
        """
        return cls([*patterns, *read_ignore_file(root)], always=anchored(root, own))

    def file(self, rel_path: str) -> bool:
        return self.matcher.file(rel_path, rel_path.rsplit("/", 1)[-1])

    def folder(self, rel_path: str) -> bool:
        return self.matcher.folder(rel_path, rel_path.rsplit("/", 1)[-1])
