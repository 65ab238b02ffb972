"""Rows whose files a scan did not find (pure): unknown below unreadable folders, else gone."""

from __future__ import annotations

from syncagent.gone import unreadable_folders, vacated, vanished
from syncagent.model import FileState, LedgerFacts, LocalSkip


def row(state: FileState, remote_id: int | None) -> LedgerFacts:
    remote = "x" if remote_id else None
    return LedgerFacts(1, 1, 1, 1, "m" * 32, state.value, 0.0, None, remote, remote_id)


LEDGER = {
    "photos/a.jpg": row(FileState.DONE, 11),
    "photos/2024/b.jpg": row(FileState.DONE, 12),
    "notes.txt": row(FileState.DONE, 13),
    "old.txt": row(FileState.DONE, 14),
    "never-sent.txt": row(FileState.FAILED, None),
    "pipe": row(FileState.SKIPPED, None),
    "edited-then-deleted.txt": row(FileState.FAILED, 15),  # an older version is on 123pan
    "long-gone.txt": row(FileState.GONE, 16),
    "moved.txt": row(FileState.DONE, 17),
}


def test_everything_below_an_unreadable_folder_is_unknown_never_gone() -> None:
    skips = [LocalSkip("photos", "folder cannot be read: Permission denied")]
    out = vanished(LEDGER, {"notes.txt"}, unreadable_folders(skips), {"moved.txt"}, mirror=True)
    assert out.unknown == 2
    assert out.trash == [("old.txt", 14)]
    assert out.gone == ["edited-then-deleted.txt"]  # never trashed blind
    assert sorted(out.forget) == ["never-sent.txt", "pipe"]


def test_an_unreadable_root_leaves_every_row_alone() -> None:
    skips = [LocalSkip(".", "folder cannot be read: No such file or directory")]
    out = vanished(LEDGER, set(), unreadable_folders(skips), set(), mirror=True)
    assert (out.trash, out.gone, out.forget) == ([], [], [])
    assert out.unknown == len(LEDGER) - 1  # the row already gone is not counted


def test_archive_mode_keeps_files_with_a_copy_as_gone_and_forgets_the_rest() -> None:
    out = vanished(LEDGER, {"notes.txt"}, set(), {"moved.txt"}, mirror=False)
    assert out.trash == [] and out.unknown == 0
    assert sorted(out.gone) == [
        "edited-then-deleted.txt",
        "old.txt",
        "photos/2024/b.jpg",
        "photos/a.jpg",
    ]
    assert sorted(out.forget) == ["never-sent.txt", "pipe"]


def test_what_the_walk_could_not_read_or_classify_hides_what_is_below_it() -> None:
    skips = [
        LocalSkip("a", "folder cannot be read: Permission denied"),
        LocalSkip("b", "cannot be read: Permission denied"),  # stat failed: maybe a folder
        LocalSkip("p", "symbolic link (not followed)"),
        LocalSkip("q", "named pipe (FIFO): only regular files are backed up"),
    ]
    assert unreadable_folders(skips) == {"a", "b"}


def test_vacated_gives_the_top_most_folders_removed_locally() -> None:
    still_there = {"photos", "photos/2024"}
    trashed = ["old/a", "old/sub/b", "photos/2023/c", "photos/2024/d", "top.txt"]
    assert vacated(trashed, still_there.__contains__) == ["old", "photos/2023"]
