"""Recognising moves (pure): identity (dev, inode, size, mtime) of gone done files."""

from __future__ import annotations

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
