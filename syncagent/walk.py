"""The stat walk: list folders, classify every entry, stat every regular file. Stdlib only.

Shared by the in-process scan and by scan helper processes (``python -m syncagent.walk``),
which is why it imports nothing heavier than ``re``: a helper must start in a few
milliseconds. Never follows a symbolic link (so never leaves the root and never loops); a
link, FIFO, socket or device is reported as skipped with its reason, and so is a name that
is not UTF-8 (under a key of its own, see :func:`escaped_key`) and a path longer than the
system allows; an unreadable folder is reported and the walk carries on; ignored folders
are not entered. A ``.syncignore`` below the root is reported too: only the root's own is
read, and one that is not must not look as if it were.

Helpers speak length-prefixed :mod:`marshal` frames over their stdin and stdout (see
:func:`_helper`).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import marshal
import os
import re
import sqlite3
import stat
import sys
import urllib.parse
from operator import itemgetter
from typing import IO, Any

__all__ = [
    "COUNT_ROWS",
    "IGNORE_FILE",
    "LINK",
    "NESTED_IGNORE_FILE",
    "NOT_UTF8",
    "PATH_MAX",
    "TOO_LONG",
    "UNREADABLE",
    "UNREADABLE_FOLDER",
    "ChunkWorker",
    "FastMatcher",
    "Folder",
    "Matcher",
    "RawFile",
    "RawSkip",
    "escaped_key",
    "not_regular",
    "read_frame",
    "subfolders",
    "walk",
    "write_frame",
]

RawFile = tuple[str, int, int, int, int, int]  # rel_path, size, mtime_ns, ctime_ns, dev, inode
RawSkip = tuple[str, str]  # rel_path, reason
Folder = tuple[str, str]  # rel_path ("" for the root), absolute path

NOT_UTF8 = "name is not valid UTF-8"
UNREADABLE_FOLDER = "folder cannot be read"  # what is below it is unknown, never gone
UNREADABLE = "cannot be read"  # an entry that could not even be classified (maybe a folder)
IGNORE_FILE = ".syncignore"
NESTED_IGNORE_FILE = (
    "not read: only the .syncignore at the top of the root applies (put these patterns there)"
)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

_KINDS = {
    stat.S_IFIFO: "named pipe (FIFO)",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}


LINK = "symbolic link (not followed)"
NAME_MAX = 255  # bytes in one name (Linux)


def _path_max() -> int:
    try:
        return os.pathconf("/", "PC_PATH_MAX")
    except (OSError, ValueError):
        return 4096


PATH_MAX = _path_max()  # bytes in a path, with its terminating NUL
TOO_LONG = f"path is longer than the system allows ({PATH_MAX} bytes): cannot be opened"


def not_regular(mode: int) -> str:
    """Why an entry of this (non-regular) mode is not backed up: the reason of its skip."""
    if stat.S_ISLNK(mode):
        return LINK
    kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
    return f"{kind}: only regular files are backed up"


class Matcher:
    """Which paths are ignored; ``name`` is the last component of ``rel_path``."""

    def file(self, rel_path: str, name: str) -> bool:
        raise NotImplementedError

    def folder(self, rel_path: str, name: str) -> bool:
        raise NotImplementedError


class FastMatcher(Matcher):
    """Ignore rules without negations, as two regexes: one for bare names (tried on the last
    component only), one for whole paths. Folders are matched with a trailing ``/``."""

    def __init__(self, names: str | None, paths: str | None) -> None:
        self.names_source, self.paths_source = names, paths
        self.names_match = re.compile(names).match if names else None
        self._paths = re.compile(paths).match if paths else None

    def file(self, rel_path: str, name: str) -> bool:
        return bool(
            (self.names_match is not None and self.names_match(name))
            or (self._paths is not None and self._paths(rel_path))
        )

    def folder(self, rel_path: str, name: str) -> bool:
        return self.file(rel_path + "/", name + "/")


def escaped_key(rel: str) -> str:
    """The ledger key of an entry whose name (the last component) is not UTF-8.

    ``bad\\xff.txt/`` for a name holding the byte 0xff: the bytes that are not UTF-8 written
    as ``\\xHH``, a backslash of the name doubled, and a trailing ``/``, which the key of a
    real file or folder never has. So the key is storable and readable, two such names never
    share one, and a file whose name really is ``bad\\xff.txt`` keeps its own key.
    """
    folder, _, name = rel.rpartition("/")
    raw = name.encode("utf-8", "surrogateescape").replace(b"\\", b"\\\\")
    return f"{folder}/" * bool(folder) + raw.decode("utf-8", "backslashreplace") + "/"


def _utf8(name: str) -> bool:
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.scandir gives undecodable bytes as lone surrogates
        return False
    return True


def walk(
    folders: list[Folder],
    ignore: Matcher,
    files: list[RawFile],
    skips: list[RawSkip],
    *,
    descend: bool = True,
) -> None:
    """Walk ``folders`` (and, with ``descend``, everything below them), appending to
    ``files`` and ``skips``."""
    ignore_file, ignore_folder = ignore.file, ignore.folder
    # The usual case (bare-name patterns only): one regex call per file name, no method call.
    names_only = (
        ignore.names_match
        if isinstance(ignore, FastMatcher) and ignore.paths_source is None
        else None
    )
    while folders:
        rel_dir, abs_dir = folders.pop()
        prefix = f"{rel_dir}/" if rel_dir else ""
        try:
            # Listing through a descriptor makes each stat an fstatat() of one name, not a
            # lookup of the whole path (~10% of the walk); O_NOFOLLOW refuses a folder that
            # was swapped for a link since it was listed.
            fd = os.open(abs_dir, _DIR_FLAGS)
        except OSError as exc:
            reason = TOO_LONG if exc.errno == errno.ENAMETOOLONG else exc.strerror
            skips.append((rel_dir or ".", f"{UNREADABLE_FOLDER}: {reason}"))
            continue
        # Bytes left for a file's name before its path is too long to open: checked per name
        # only in the (rare) folders this deep.
        room = PATH_MAX - 2 - len(os.fsencode(abs_dir))
        try:
            with os.scandir(fd) as it:
                for de in it:
                    name = de.name
                    rel = prefix + name
                    if not _utf8(name):
                        # The ledger (and 123pan) need UTF-8: record it under a readable key.
                        skips.append((escaped_key(rel), NOT_UTF8))
                        continue
                    try:
                        if de.is_dir(follow_symlinks=False):
                            if descend and not ignore_folder(rel, name):
                                folders.append((rel, f"{abs_dir}/{name}"))
                            continue
                        if name == IGNORE_FILE:  # the root's is the rules; others are not read
                            if prefix:
                                skips.append((rel, NESTED_IGNORE_FILE))
                            continue
                        if names_only(name) if names_only else ignore_file(rel, name):
                            continue
                        st = de.stat(follow_symlinks=False)
                    except OSError as exc:
                        skips.append((rel, f"{UNREADABLE}: {exc.strerror}"))
                        continue
                    mode = st.st_mode
                    if stat.S_ISREG(mode):
                        if room < NAME_MAX and len(os.fsencode(name)) > room:
                            skips.append((rel, TOO_LONG))
                            continue
                        files.append(
                            (rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino)
                        )
                    else:
                        skips.append((rel, not_regular(mode)))
        except OSError as exc:
            skips.append((rel_dir or ".", f"{UNREADABLE_FOLDER}: {exc.strerror}"))
        finally:
            os.close(fd)


def subfolders(folder: Folder, ignore: Matcher) -> list[Folder] | None:
    """The folders ``walk`` would enter below ``folder`` (None if it cannot be listed)."""
    rel_dir, abs_dir = folder
    found: list[Folder] = []
    try:
        with os.scandir(abs_dir) as it:
            for de in it:
                rel = f"{rel_dir}/{de.name}" if rel_dir else de.name
                with contextlib.suppress(OSError):
                    if (
                        _utf8(de.name)
                        and de.is_dir(follow_symlinks=False)
                        and not ignore.folder(rel, de.name)
                    ):
                        found.append((rel, de.path))
    except OSError:
        return None
    return found


# A root's rows not recorded gone. Not ``state != 'gone'``: that reads every row of the root
# (its state is not in the (root_id, rel_path) index), 45 ms CPU for 100,000 rows, and it
# ran in every helper too; all rows are counted in that index alone (6 ms), and the gone
# ones through the state index.
COUNT_ROWS = (
    "SELECT (SELECT count(*) FROM files WHERE root_id = ?)"
    " - (SELECT count(*) FROM files WHERE state = 'gone' AND root_id = ?)"
)

BY_NAME = 500  # a folder's own entries up to this many are looked up by name

# Columns in RawFile's order, so a row and a walked file compare as tuples.
_DONE_ROWS = (
    "SELECT rel_path, size, mtime_ns, ctime_ns, dev, inode FROM files "
    "WHERE root_id = ? AND state = 'done'"
)
_SKIPPED_ROWS = (
    "SELECT rel_path, size, mtime_ns, dev, inode, reason FROM files "
    "WHERE root_id = ? AND state = 'skipped'"
)


class ChunkWorker:
    """Walks chunks of a root (a folder with everything below it, or one folder's own
    entries) and, given the SQLite ledger, compares each chunk with its ledger rows.

    The comparison answers one question: would a pass over these entries do nothing? It
    does when every file has a row recorded done with the same (size, mtime_ns, ctime_ns,
    dev, inode), or recorded skipped with the same (size, mtime_ns, dev, inode) (a skip
    does not depend on the content), and every skip a row recorded skipped with the same
    reason, and (checked by the caller, against the root's count of rows not recorded gone)
    no other row exists. Anything
    else, including any ledger error, makes the answer no, and the caller plans the pass
    the full way. The ledger is opened read-only.
    """

    def __init__(self, root: str, ignore: Matcher, ledger_file: str | None) -> None:
        self.root, self._ignore = root, ignore
        self.files: list[RawFile] = []
        self.skips: list[RawSkip] = []
        self.same = ledger_file is not None  # every chunk so far matched the ledger
        self.matched = 0  # ledger rows matched so far
        self._db: sqlite3.Connection | None = None
        self._root_id = 0
        if ledger_file is not None:
            try:
                uri = f"file:{urllib.parse.quote(ledger_file)}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True)
                row = self._db.execute(
                    "SELECT id FROM roots WHERE local_path = ?", (root,)
                ).fetchone()
                self.same, self._root_id = row is not None, row[0] if row else 0
            except (sqlite3.Error, UnicodeError):  # UnicodeError: a root not in UTF-8
                self.same = False

    @functools.cached_property
    def rows(self) -> int | None:
        """The root's rows in the ledger, gone ones left out (None: it cannot be read).
        Counted on first use only: a helper never needs it."""
        if self._db is None or not self._root_id:  # no ledger, or the root is not in it
            return None if self._db is None else 0
        try:
            return int(self._db.execute(COUNT_ROWS, (self._root_id, self._root_id)).fetchone()[0])
        except sqlite3.Error:
            self.same = False
            return None

    def has_rows(self, n: int) -> bool:
        """Whether the root has at least ``n`` rows in the ledger (gone ones too): reads at
        most ``n`` index entries, where :attr:`rows` reads them all."""
        if self._db is None or not self._root_id or n <= 0:
            return n <= 0
        try:
            return (
                self._db.execute(
                    "SELECT 1 FROM files WHERE root_id = ? LIMIT 1 OFFSET ?",
                    (self._root_id, n - 1),
                ).fetchone()
                is not None
            )
        except sqlite3.Error:
            return False

    def do(self, rel: str, descend: bool) -> int:
        """Walk one chunk; returns how many entries it found."""
        files: list[RawFile] = []
        skips: list[RawSkip] = []
        folder = (rel, os.path.join(self.root, rel) if rel else self.root)
        walk([folder], self._ignore, files, skips, descend=descend)
        self.files += files
        self.skips += skips
        if self.same:
            self.same = self._compare(rel, descend, files, skips)
        return len(files) + len(skips)

    def _compare(self, rel: str, descend: bool, files: list[RawFile], skips: list[RawSkip]) -> bool:
        assert self._db is not None
        args: tuple[object, ...]
        names = [] if descend else [f[0] for f in files] + [name for name, _ in skips]
        if not descend and len(names) <= BY_NAME:
            # A folder's own entries, by name: its range (or, for the root, its rows without
            # a "/") would read every row below it, 10,000s for a top folder.
            if not names:
                return True
            sql, args = f" AND rel_path IN ({', '.join('?' * len(names))})", tuple(names)
        elif descend and not rel:  # the whole root
            sql, args = "", ()
        elif descend:
            sql, args = " AND rel_path >= ? AND rel_path < ?", (f"{rel}/", f"{rel}0")
        elif rel:  # this folder's own entries: no "/" after "rel/" (but an escaped key's last)
            sql = (
                " AND rel_path >= ? AND rel_path < ?"
                " AND instr(rtrim(substr(rel_path, ?), '/'), '/') = 0"
            )
            args = (f"{rel}/", f"{rel}0", len(rel) + 2)
        else:
            sql, args = " AND instr(rtrim(rel_path, '/'), '/') = 0", ()
        try:
            done = self._db.execute(_DONE_ROWS + sql, (self._root_id, *args)).fetchall()
            skipped: dict[str, tuple[str, int, int, int, int, str]] | None = None
            get = dict(zip(map(itemgetter(0), done), done, strict=True)).get
            for file in files:
                if get(file[0]) != file:  # a file, and its row, is (rel, size, mtime, ctime, ...)
                    if skipped is None:  # rare: a 0-byte file, a name 123pan refuses
                        skipped = self._skipped(sql, args)
                    name, size, mtime_ns, _ctime, dev, inode = file
                    row = skipped.get(name)
                    if row is None or row[1:5] != (size, mtime_ns, dev, inode):
                        return False
            if skips:
                skipped = skipped if skipped is not None else self._skipped(sql, args)
                for name, reason in skips:
                    row = skipped.get(name)
                    if row is None or row[5] != reason:
                        return False
        except (sqlite3.Error, UnicodeError):
            return False
        # Each entry matched a distinct row of this chunk; a row left unmatched (something
        # gone) shows as fewer matched rows than the root has, which the caller checks.
        self.matched += len(files) + len(skips)
        return True

    def _skipped(
        self, sql: str, args: tuple[object, ...]
    ) -> dict[str, tuple[str, int, int, int, int, str]]:
        assert self._db is not None
        rows = self._db.execute(_SKIPPED_ROWS + sql, (self._root_id, *args)).fetchall()
        return {row[0]: row for row in rows}

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def read_frame(stream: IO[bytes]) -> Any:
    """One length-prefixed marshal frame; EOFError at a clean end of stream."""
    head = stream.read(4)
    if len(head) < 4:
        raise EOFError("stream ended")
    size = int.from_bytes(head, "little")
    body = stream.read(size)
    if len(body) < size:
        raise EOFError("stream ended inside a frame")
    return marshal.loads(body)


def write_frame(stream: IO[bytes], value: Any) -> None:
    body = marshal.dumps(value)
    stream.write(len(body).to_bytes(4, "little") + body)
    stream.flush()


def _helper() -> int:
    """``python -m syncagent.walk``: a scan helper process.

    Reads ``(root, names regex, paths regex, ledger file or None)``, then chunks
    ``(rel_path, descend)`` one frame at a time, answering each with its entry count. A
    ``None`` frame ends the chunks: it answers ``(same, matched rows)`` (see
    :class:`ChunkWorker`), then sends its ``(files, skips)`` if the next frame is true.
    """
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    try:
        root, names, paths, ledger_file = read_frame(stdin)
        worker = ChunkWorker(root, FastMatcher(names, paths), ledger_file)
        while (chunk := read_frame(stdin)) is not None:
            write_frame(stdout, worker.do(*chunk))
        worker.close()
        write_frame(stdout, (worker.same, worker.matched))
        if read_frame(stdin):
            write_frame(stdout, (worker.files, worker.skips))
    except (EOFError, BrokenPipeError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(_helper())
