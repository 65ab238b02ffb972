"""Recognising moves (pure): identity (dev, inode, size, mtime) of gone done files."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from syncagent.model import FileState, LedgerFacts, LocalEntry, Upload
from syncagent.renames import find_moves


def done(inode: int, remote: str, rid: int) -> LedgerFacts:
    return LedgerFacts(10, 5, 1, inode, "m" * 32, FileState.DONE.value, 0.0, None, remote, rid)


def up(rel: str, inode: int) -> Upload:
    return Upload(LocalEntry(rel, 10, 5, 5, 1, inode), rel, "new")


def test_a_renamed_folder_is_one_folder_move() -> None:
    ledger = {
        "photos/a.jpg": done(1, "photos/a.jpg", 11),
        "photos/sub/b.jpg": done(2, "photos/sub/b.jpg", 12),
    }
    uploads = [up("pictures/a.jpg", 1), up("pictures/sub/b.jpg", 2)]
    folders, files, rest = find_moves(uploads, ledger, {"pictures/a.jpg", "pictures/sub/b.jpg"})
    assert [(f.old_prefix, f.new_prefix, len(f.files)) for f in folders] == [
        ("photos", "pictures", 2)
    ]
    assert (files, rest) == ([], [])


def test_a_folder_moved_into_another() -> None:
    ledger = {"photos/a.jpg": done(1, "photos/a.jpg", 11)}
    folders, files, rest = find_moves(
        [up("archive/photos/a.jpg", 1)], ledger, {"archive/photos/a.jpg"}
    )
    assert [(f.old_remote_prefix, f.new_remote_prefix) for f in folders] == [
        ("photos", "archive/photos")
    ]
    assert (files, rest) == ([], [])


def test_partly_moved_folder_gives_file_moves() -> None:
    ledger = {"d/a": done(1, "d/a", 11), "d/b": done(2, "d/b", 12)}
    folders, files, rest = find_moves([up("e/a", 1)], ledger, {"e/a", "d/b"})
    assert folders == [] and [(m.old_rel, m.entry.rel_path, m.remote_id) for m in files] == [
        ("d/a", "e/a", 11)
    ]
    assert rest == []


def test_renamed_file_and_real_new_files() -> None:
    ledger = {"x.txt": done(1, "x.txt", 11)}
    folders, files, rest = find_moves(
        [up("y.txt", 1), up("new.txt", 9)], ledger, {"y.txt", "new.txt"}
    )
    assert [(m.old_rel, m.entry.rel_path) for m in files] == [("x.txt", "y.txt")]
    assert [u.entry.rel_path for u in rest] == ["new.txt"]
    assert folders == []


def test_a_file_still_present_is_not_a_move_source() -> None:
    ledger = {"x.txt": done(1, "x.txt", 11)}  # a hard link: both names exist
    _, files, rest = find_moves([up("link.txt", 1)], ledger, {"x.txt", "link.txt"})
    assert files == [] and len(rest) == 1


def test_ambiguous_identities_are_uploaded() -> None:
    ledger = {"a": done(1, "a", 11), "b": done(1, "b", 12)}
    _, files, rest = find_moves([up("c", 1)], ledger, {"c"})
    assert files == [] and len(rest) == 1


class CountingLedger(dict[str, LedgerFacts]):
    """A ledger view that counts how often it is walked through."""

    sweeps = 0

    def __iter__(self) -> Iterator[str]:
        self.sweeps += 1
        return super().__iter__()

    def items(self) -> Any:
        self.sweeps += 1
        return super().items()


def test_many_renamed_folders_cost_a_fixed_number_of_sweeps_of_the_ledger() -> None:
    # 1,000 renamed folders of 20 files: each folder once walked the whole ledger (quadratic:
    # minutes for 1,000 folders in 100,000 files). Now the ledger is swept a fixed number of
    # times, whatever the number of folders.
    ledger = CountingLedger()
    uploads, present = [], set()
    for d in range(1000):
        for f in range(20):
            inode = d * 100 + f + 1
            ledger[f"old{d}/f{f}"] = done(inode, f"old{d}/f{f}", inode)
            uploads.append(up(f"new{d}/f{f}", inode))
            present.add(f"new{d}/f{f}")
    started = time.process_time()
    folders, files, rest = find_moves(uploads, ledger, present)
    cpu = time.process_time() - started
    assert len(folders) == 1000 and (files, rest) == ([], [])
    assert {(fm.old_prefix, fm.new_prefix) for fm in folders} == {
        (f"old{d}", f"new{d}") for d in range(1000)
    }
    assert ledger.sweeps <= 3, ledger.sweeps
    assert cpu < 10, cpu  # ~0.1 s; the quadratic version took minutes


def with_ctime(facts: LedgerFacts, ctime_ns: int) -> LedgerFacts:
    return facts._replace(ctime_ns=ctime_ns)


def test_a_move_is_confirmed_without_hashing_only_when_the_ctime_is_unchanged() -> None:
    # The entries made by up() have ctime 5. A folder rename leaves its files' ctime alone; a
    # file renamed, or a new file on a reused inode (tar, cp -p), has a new one: hash it.
    ledger = {
        "d/a": with_ctime(done(1, "d/a", 11), 5),
        "b": with_ctime(done(2, "b", 12), 4),
        "c": done(3, "c", 13),  # a row from before ctimes were read: never trusted
    }
    folders, files, _ = find_moves(
        [up("e/a", 1), up("b2", 2), up("c2", 3)], ledger, {"e/a", "b2", "c2"}
    )
    moves = [*files, *(m for fm in folders for m in fm.files)]
    assert {m.entry.rel_path: m.confirmed for m in moves} == {
        "e/a": True,
        "b2": False,
        "c2": False,
    }
