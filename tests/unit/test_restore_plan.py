"""Restore's pure parts: which paths may be written, what is done per entry, the catalog's
encoding, and mapped names mapped back."""

from __future__ import annotations

import pytest

from syncagent.catalog.format import EMPTY_MD5, Entry, Header, decode, digest, encode
from syncagent.errors import CatalogError
from syncagent.restore.plan import Local, decide, link_escapes, path_problem, select
from syncagent.restore.source import unmapped

MD5 = "0" * 32


def f(path: str, size: int = 3, **kw: object) -> Entry:
    return Entry(path, "file", size, kw.pop("md5", MD5), file_id=7, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "path",
    ["", "/etc/passwd", "../up", "a/../../up", "a/./b", "a//b", "a/", "..", "a\x00b", "x" * 256],
)
def test_paths_that_could_leave_the_target_are_refused(path: str) -> None:
    assert path_problem(path) is not None


@pytest.mark.parametrize("path", ["a", "a/b/c.txt", "...", "..a", "a..", " sp ", "报告：Q1？.txt"])
def test_ordinary_paths_are_fine(path: str) -> None:
    assert path_problem(path) is None


def test_link_escapes() -> None:
    assert link_escapes("a", b"/etc/passwd")
    assert link_escapes("a", b"..")
    assert link_escapes("d/a", b"../../x")
    assert not link_escapes("d/a", b"../x")
    assert not link_escapes("a", b"b/c")
    assert not link_escapes("a", b"\xff\xfe")


def test_select_refuses_escapes_and_paths_below_links_or_files() -> None:
    entries = [
        f("../evil"),
        f("/abs"),
        Entry("lnk", "symlink", target=b"/tmp"),
        f("lnk/evil"),
        f("file"),
        f("file/inner"),
        Entry("d", "dir"),
        f("d/ok"),
        f("d/ok"),
    ]
    sel = select(entries)
    assert [e.path for e in sel.entries] == ["d", "d/ok", "file", "lnk"]
    refused = dict(sel.refused)
    assert set(refused) == {"../evil", "/abs", "lnk/evil", "file/inner", "d/ok"}
    assert "symlink" in refused["lnk/evil"] and "listed twice" in refused["d/ok"]


def test_select_by_paths_and_unmatched() -> None:
    entries = [Entry("a", "dir"), f("a/x"), f("ab"), f("b/y")]
    sel = select(entries, ["a", "/b/y/", "nope"])
    assert [e.path for e in sel.entries] == ["a", "a/x", "b/y"]
    assert sel.unmatched == ["nope"]


def test_decide_never_replaces_a_differing_file_without_overwrite() -> None:
    e = f("x", md5="a" * 32)
    missing, same = Local("missing"), Local("file", 3, "a" * 32)
    other = Local("file", 3, "b" * 32)
    assert decide(e, missing, overwrite=False).outcome == "download"
    assert decide(e, same, overwrite=False).outcome == "same"
    assert decide(e, other, overwrite=False).outcome == "conflict"
    replacing = decide(e, other, overwrite=True)
    assert (replacing.outcome, replacing.replace) == ("download", True)
    assert decide(e, Local("dir"), overwrite=True).outcome == "conflict"  # never a folder
    assert decide(e, Local("blocked", why="w"), overwrite=True).outcome == "refused"
    assert decide(f("z", 0, md5=EMPTY_MD5), missing, overwrite=False).outcome == "empty"
    gone = Entry("g", "file", 5, None, state="failed")
    assert decide(gone, missing, overwrite=False).outcome == "unavailable"


def test_decide_links_outside_only_when_asked() -> None:
    out = Entry("l", "symlink", target=b"/etc/passwd")
    assert decide(out, Local("missing"), overwrite=False).outcome == "refused"
    assert decide(out, Local("missing"), overwrite=False, symlinks_outside=True).outcome == "link"
    inside = Entry("l", "symlink", target=b"x")
    assert decide(inside, Local("symlink", target=b"x"), overwrite=False).outcome == "same"
    assert decide(inside, Local("symlink", target=b"y"), overwrite=False).outcome == "conflict"


def test_catalog_round_trip_is_deterministic_and_torn_objects_are_refused() -> None:
    entries = [
        Entry("b/文件 😀.txt", "file", 3, MD5, 123, 0o600, 9, "b/文件 😀.txt"),
        Entry("a:b", "file", 4, MD5, 5, 0o755, 10, "a：b"),
        Entry("b", "dir", mtime_ns=1, mode=0o700),
        Entry("z", "file", 0, EMPTY_MD5, 1, 0o644),
        Entry("l", "symlink", mtime_ns=2, target=b"\xffbad"),
        Entry("p", "file", 8, None, 3, 0o644, state="failed"),
    ]
    header = Header("host", "/root", "/backup/r", 1.5)
    blob = encode(header, entries)
    assert blob == encode(header, list(reversed(entries)))
    got_header, got = decode(blob)
    # no previous versions in it: written as format version 1, which older readers take
    assert got_header == Header("host", "/root", "/backup/r", 1.5, entries=6, version=1)
    assert got == sorted(entries, key=lambda e: e.path)
    assert digest(got) == digest(entries)
    for torn in (blob[: len(blob) // 2], blob[:-4], b"", b"not gzip"):
        with pytest.raises(CatalogError):
            decode(torn)


def test_mapped_names_are_mapped_back_unless_that_collides() -> None:
    assert unmapped(["a：b？.txt", "plain", "＂q＂"]) == {
        "a：b？.txt": "a:b?.txt",
        "plain": "plain",
        "＂q＂": '"q"',
    }
    # "x：y" and a real "x:y" cannot both be remote names, but two mapped names can meet
    # one unmapped one: each keeps its own name then.
    assert unmapped(["x：y", "x:y"]) == {"x：y": "x：y", "x:y": "x:y"}
