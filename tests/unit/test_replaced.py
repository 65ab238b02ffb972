"""A file replaced by a folder of the same 123pan name, or the reverse (pure)."""

from __future__ import annotations

from syncagent.model import FileState, LedgerFacts
from syncagent.replaced import replacements


def done(remote: str, rid: int, state: FileState = FileState.DONE) -> LedgerFacts:
    return LedgerFacts(1, 1, 1, 1, "m" * 32, state.value, 0.0, None, remote, rid)


def test_a_file_replaced_by_a_folder_is_retired() -> None:
    ledger = {"x": done("x", 11), "keep.txt": done("keep.txt", 12)}
    rep = replacements([("x/inner.txt", "x/inner.txt")], ledger, {"x/inner.txt", "keep.txt"})
    assert (rep.files, rep.folders, rep.rows, rep.skips) == ([("x", 11)], [], {"x"}, [])


def test_a_gone_file_under_a_mapped_name_is_retired_too() -> None:
    ledger = {"x：y": done("x：y", 11, FileState.GONE)}
    rep = replacements([("x:y/z.txt", "x：y/z.txt")], ledger, {"x:y/z.txt"})
    assert rep.files == [("x：y", 11)] and rep.rows == {"x：y"}


def test_a_folder_replaced_by_a_file_is_retired_with_its_rows() -> None:
    ledger = {"dir/a": done("dir/a", 11), "dir/sub/b": done("dir/sub/b", 12)}
    rep = replacements([("dir", "dir")], ledger, {"dir"})
    assert (rep.files, rep.folders, rep.rows, rep.skips) == (
        [],
        ["dir"],
        {"dir/a", "dir/sub/b"},
        [],
    )


def test_both_kinds_present_under_one_123pan_name_skip_the_newcomer() -> None:
    ledger = {"p：q": done("p：q", 11), "r:s/f": done("r：s/f", 12)}
    present = {"p：q", "p:q/f.txt", "r:s/f", "r：s"}
    rep = replacements([("p:q/f.txt", "p：q/f.txt"), ("r：s", "r：s")], ledger, present)
    assert (rep.files, rep.folders, rep.rows) == ([], [], set())
    assert {s.rel_path: s.reason for s in rep.skips} == {
        "p:q/f.txt": "its 123pan folder 'p：q' is the name of the file 'p：q' "
        "(names differing only in characters 123pan maps)",
        "r：s": "its 123pan name 'r：s' is a folder holding 'r:s/f' "
        "(names differing only in characters 123pan maps)",
    }


def test_a_file_and_a_folder_both_new_in_one_pass_keep_the_folder() -> None:
    rep = replacements([("a", "a"), ("a：/f", "a：/f")], {}, {"a", "a：/f"})
    assert [s.rel_path for s in rep.skips] == []  # different 123pan names: no clash
    rep = replacements([("b：c", "b：c"), ("b:c/f", "b：c/f")], {}, {"b：c", "b:c/f"})
    assert [s.rel_path for s in rep.skips] == ["b：c"]


def test_nothing_placed_means_nothing_to_do() -> None:
    assert not replacements([], {"x": done("x", 1)}, set())
