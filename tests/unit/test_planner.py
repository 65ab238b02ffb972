"""The planner (pure): local facts + ledger view + policy -> actions, as tables of cases."""

from __future__ import annotations

import pytest

from syncagent.model import FileState, LedgerFacts, LocalEntry, LocalSkip
from syncagent.planner import EMPTY_FILE, MAX_FILE_SIZE, plan

E = LocalEntry("dir/a.txt", size=10, mtime_ns=100, ctime_ns=100, dev=1, inode=7)


def facts(
    state: FileState,
    *,
    size: int = 10,
    mtime_ns: int = 100,
    ctime_ns: int = 100,
    inode: int = 7,
    md5: str | None = "m" * 32,
    next_at: float = 0.0,
    reason: str | None = None,
) -> LedgerFacts:
    return LedgerFacts(
        size, mtime_ns, 1, inode, md5, state.value, next_at, reason, ctime_ns=ctime_ns
    )


CASES = [
    # (name, ledger facts or None, expected: (kind, why, md5 hint))
    ("new file", None, ("upload", "new", None)),
    ("unchanged and done", facts(FileState.DONE), ("nothing",)),
    ("size changed", facts(FileState.DONE, size=9), ("upload", "changed", None)),
    ("mtime changed", facts(FileState.DONE, mtime_ns=99), ("upload", "changed", None)),
    ("inode changed (replaced)", facts(FileState.DONE, inode=8), ("upload", "changed", None)),
    # cp -p, tar x, touch -r: new content behind the old size and mtime; only ctime tells
    ("only ctime changed, done", facts(FileState.DONE, ctime_ns=99), ("upload", "recheck", None)),
    (
        "only ctime changed, failed",
        facts(FileState.FAILED, next_at=50, ctime_ns=99),
        ("upload", "retry", None),
    ),
    ("only ctime changed, skipped", facts(FileState.SKIPPED, ctime_ns=99), ("nothing",)),
    ("failed, due", facts(FileState.FAILED, next_at=50), ("upload", "retry", "m" * 32)),
    ("failed, backing off", facts(FileState.FAILED, next_at=500), ("waiting",)),
    ("pending after repair", facts(FileState.PENDING), ("upload", "retry", "m" * 32)),
    ("skipped, unchanged", facts(FileState.SKIPPED, reason="x"), ("nothing",)),
    ("skipped, then changed", facts(FileState.SKIPPED, size=3), ("upload", "changed", None)),
]


@pytest.mark.parametrize(("name", "known", "expected"), CASES, ids=[c[0] for c in CASES])
def test_decisions(name: str, known: LedgerFacts | None, expected: tuple[str, ...]) -> None:
    ledger = {} if known is None else {E.rel_path: known}
    p = plan([E], [], ledger, names="map", now=100.0)
    if expected[0] == "upload":
        assert [(u.why, u.md5, u.remote_rel) for u in p.uploads] == [
            (expected[1], expected[2], "dir/a.txt")
        ]
        assert p.skips == [] and p.unchanged == 0
    elif expected[0] == "waiting":
        assert (p.uploads, p.waiting) == ([], 1)
    else:
        assert (p.uploads, p.skips, p.unchanged) == ([], [], 1)


@pytest.mark.parametrize(
    ("rel", "policy", "remote", "reason"),
    [
        ("a:b?.txt", "map", "a：b？.txt", None),
        ('q"<>|*\\.txt', "map", "q＂＜＞｜＊＼.txt", None),
        ("a:b.txt", "skip", None, "characters 123pan refuses: :"),
        ("ok/   /f.txt", "map", None, "only spaces"),
        ("x" * 256, "map", None, "256 characters"),
        ("c\x01.txt", "map", None, "control characters"),
        ("bad\udcff.txt", "map", None, "not valid UTF-8"),
        ("测试/文件.txt", "map", "测试/文件.txt", None),
    ],
)
def test_names(rel: str, policy: str, remote: str | None, reason: str | None) -> None:
    entry = LocalEntry(rel, 5, 1, 1, 1, 1)
    p = plan([entry], [], {}, names=policy, now=0.0)  # type: ignore[arg-type]
    if remote is not None:
        assert [u.remote_rel for u in p.uploads] == [remote]
    else:
        assert p.uploads == []
        assert reason is not None and len(p.skips) == 1
        assert reason in p.skips[0].reason


def test_empty_file_is_skipped_with_its_reason() -> None:
    p = plan([LocalEntry("e", 0, 1, 1, 1, 1)], [], {}, names="map", now=0.0)
    assert [(s.rel_path, s.reason) for s in p.skips] == [("e", EMPTY_FILE)]


def test_scanner_skips_are_recorded_once() -> None:
    skip = LocalSkip("link", "symbolic link (not followed)")
    first = plan([], [skip], {}, names="map", now=0.0)
    assert [(s.rel_path, s.reason) for s in first.skips] == [("link", skip.reason)]
    known = {"link": facts(FileState.SKIPPED, reason=skip.reason)}
    again = plan([], [skip], known, names="map", now=0.0)
    assert (again.skips, again.unchanged) == ([], 1)


def test_two_local_names_mapping_to_one_remote_name_do_not_overwrite() -> None:
    a = LocalEntry("a:b.txt", 5, 1, 1, 1, 1)
    b = LocalEntry("a：b.txt", 6, 1, 1, 1, 2)
    p = plan([b, a], [], {}, names="map", now=0.0)
    assert [u.entry.rel_path for u in p.uploads] == ["a:b.txt"]
    assert [s.rel_path for s in p.skips] == ["a：b.txt"]
    assert "already used by 'a:b.txt'" in p.skips[0].reason
    # The owner recorded in the ledger keeps its name in later passes too.
    done = {"a：b.txt": LedgerFacts(6, 1, 1, 2, "m" * 32, "done", 0.0, None, "a：b.txt")}
    later = plan([a], [], done, names="map", now=0.0)
    assert later.uploads == [] and "already used by 'a：b.txt'" in later.skips[0].reason


def test_a_done_file_with_only_a_new_ctime_is_rechecked_against_its_recorded_md5() -> None:
    p = plan([E], [], {E.rel_path: facts(FileState.DONE, ctime_ns=99)}, names="map", now=0.0)
    [u] = p.uploads
    assert (u.why, u.md5, u.recorded_md5, u.entry) == ("recheck", None, "m" * 32, E)


def test_a_file_over_10_gb_is_refused_on_its_size_before_anything_reads_it() -> None:
    big = E._replace(size=MAX_FILE_SIZE + 1)
    p = plan([big], [], {}, names="map", now=0.0)
    assert p.uploads == []
    assert [(s.rel_path, s.entry) for s in p.skips] == [(big.rel_path, big)]
    assert "10 GB" in p.skips[0].reason
    at_limit = plan([E._replace(size=MAX_FILE_SIZE)], [], {}, names="map", now=0.0)
    assert len(at_limit.uploads) == 1


@pytest.mark.parametrize(
    ("name", "known", "recorded"),
    [
        ("done, same size, new mtime", facts(FileState.DONE, mtime_ns=99), "m" * 32),
        ("done, same size, new inode", facts(FileState.DONE, inode=8), "m" * 32),
        ("done, new size", facts(FileState.DONE, size=9), None),
        ("failed, same size, new mtime", facts(FileState.FAILED, mtime_ns=99), None),
        ("pending, same size, new mtime", facts(FileState.PENDING, mtime_ns=99), None),
        ("done, no md5", facts(FileState.DONE, mtime_ns=99, md5=None), None),
    ],
)
def test_a_changed_done_file_of_its_recorded_size_is_checked_against_its_md5(
    name: str, known: LedgerFacts, recorded: str | None
) -> None:
    """Put back as it was (after a guard hold, say), a file is hashed and not sent again; the
    recorded MD5 is only a hint for a copy 123pan holds (done)."""
    [u] = plan([E], [], {E.rel_path: known}, names="map", now=100.0).uploads
    assert (u.md5, u.recorded_md5) == (None, recorded), name
