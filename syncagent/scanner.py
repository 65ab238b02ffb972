"""Walking a root: every regular file with its stat facts, and what cannot be uploaded, why.

Never follows a symbolic link (so never leaves the root and never loops); a link, FIFO, socket
or device is reported as skipped with its reason, and so is a name that is not UTF-8 (under a
key with the bad bytes written as ``\\xff``); an unreadable folder is reported and the walk
carries on. Ignored folders are not entered. Uses ``os.scandir`` with one ``lstat`` per file.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from syncagent.ignore import IgnoreRules
from syncagent.model import LocalEntry, LocalSkip

__all__ = ["ScanResult", "scan"]

_KINDS = {
    stat.S_IFIFO: "named pipe (FIFO)",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}


NOT_UTF8 = "name is not valid UTF-8"


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.scandir gives undecodable bytes as lone surrogates
        return False
    return True


def _printable(rel: str) -> str:
    """``bad\\xff.txt`` for a name holding the byte 0xff: storable and shown as-is."""
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass
class ScanResult:
    entries: list[LocalEntry] = field(default_factory=list)
    skips: list[LocalSkip] = field(default_factory=list)


def scan(root: Path, ignore: IgnoreRules) -> ScanResult:
    """Walk ``root`` (depth first, iteratively) and classify everything below it."""
    result = ScanResult()
    stack: list[tuple[str, str]] = [("", str(root))]
    entries, skips = result.entries, result.skips
    while stack:
        rel_dir, abs_dir = stack.pop()
        try:
            it = os.scandir(abs_dir)
        except OSError as exc:
            skips.append(LocalSkip(rel_dir or ".", f"folder cannot be read: {exc.strerror}"))
            continue
        with it:
            for de in it:
                rel = f"{rel_dir}/{de.name}" if rel_dir else de.name
                if not _utf8(de.name):
                    # The ledger (and 123pan) need UTF-8: record it under a readable key.
                    skips.append(LocalSkip(_printable(rel), NOT_UTF8))
                    continue
                try:
                    if de.is_dir(follow_symlinks=False):
                        if not ignore.folder(rel):
                            stack.append((rel, de.path))
                        continue
                    if ignore.file(rel):
                        continue
                    if de.is_symlink():
                        skips.append(LocalSkip(rel, "symbolic link (not followed)"))
                        continue
                    st = de.stat(follow_symlinks=False)
                except OSError as exc:
                    skips.append(LocalSkip(rel, f"cannot be read: {exc.strerror}"))
                    continue
                if stat.S_ISREG(st.st_mode):
                    entries.append(
                        LocalEntry(
                            rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino
                        )
                    )
                else:
                    kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
                    skips.append(LocalSkip(rel, f"{kind}: only regular files are backed up"))
    return result
