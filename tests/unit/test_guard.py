"""The mass-change guard's decision (pure) and its assessment of a planned pass."""

from __future__ import annotations

import os
from pathlib import Path

from syncagent.guard import (
    GuardSettings,
    Hold,
    assess,
    decide,
    gained_extensions,
    ratio,
)
from syncagent.localfile import open_below
from syncagent.model import FileState, LedgerFacts, LocalEntry, Upload

SETTINGS = GuardSettings(max_changed=0.5, min_files=20)


def _decide(
    known: int,
    changed: int = 0,
    deleted: int = 0,
    new: list[str] | None = None,
    ratios: dict[str, float] | None = None,
    found: int = 1,
    mirror: bool = False,
    settings: GuardSettings = SETTINGS,
) -> Hold | None:
    return decide(
        known=known,
        changed=[f"c{i}.txt" for i in range(changed)],
        deleted=[f"d{i}.txt" for i in range(deleted)],
        new=new or [],
        ratios=ratios or {},
        found=found,
        mirror=mirror,
        settings=settings,
    )


def test_more_than_the_fraction_and_the_floor_holds() -> None:
    hold = _decide(500, changed=200, deleted=200)
    assert hold is not None
    assert (hold.known, hold.changed, hold.deleted) == (500, 200, 200)
    assert "400 of 500" in hold.reason
    assert hold.examples == ("c0.txt", "c1.txt", "c10.txt", "c100.txt", "c101.txt")


def test_at_most_the_fraction_or_below_the_floor_goes_ahead() -> None:
    assert _decide(500, changed=250) is None  # exactly half: not more than half
    assert _decide(30, changed=19) is None  # most of the root, but fewer than the floor
    assert _decide(30, changed=20) is not None
    assert _decide(0, changed=50) is None  # nothing known: nothing to protect


def test_the_settings_change_the_thresholds_and_can_turn_it_off() -> None:
    assert _decide(100, changed=30, settings=GuardSettings(max_changed=0.25)) is not None
    assert _decide(100, changed=30, settings=GuardSettings(min_files=40)) is None
    off = GuardSettings(enabled=False)
    assert _decide(100, changed=100, settings=off) is None
    assert _decide(100, deleted=100, found=0, mirror=True, settings=off) is None


def test_an_empty_mirror_root_is_held_whatever_the_counts() -> None:
    hold = _decide(3, deleted=3, found=0, mirror=True)
    assert hold is not None and "missing, empty or not mounted" in hold.reason
    assert _decide(3, deleted=3, found=0, mirror=False) is None  # archive: nothing trashed


def test_files_renamed_to_one_new_extension_hold_below_the_fraction() -> None:
    deleted = [f"d{i}.txt" for i in range(30)]
    new = [f"d{i}.txt.locked" for i in range(30)]
    hold = decide(
        known=1000,
        changed=[],
        deleted=deleted,
        new=new,
        ratios={},
        found=1000,
        mirror=False,
        settings=SETTINGS,
    )
    assert hold is not None and "30 files were renamed to *.locked" in hold.reason
    assert hold.examples[0] == "d0.txt.locked"
    # new files that renamed nothing are just new files
    other = [f"n{i}.txt.locked" for i in range(30)]
    assert _decide(1000, deleted=30, new=other, found=1000) is None


def test_gained_extensions_pairs_renames_both_ways() -> None:
    got = gained_extensions(
        ["a.txt.locked", "b.crypt", "c.txt", "x/d.doc.enc"], ["a.txt", "b.txt", "x/d.doc"]
    )
    assert got == {"a.txt.locked": "locked", "b.crypt": "crypt", "x/d.doc.enc": "enc"}


def test_most_changed_files_turned_incompressible_hold() -> None:
    noisy = {f"c{i}.txt": 1.01 for i in range(25)}
    assert _decide(1000, changed=25, ratios=noisy) is not None
    calm = {f"c{i}.txt": 0.3 for i in range(25)}
    assert _decide(1000, changed=25, ratios=calm) is None
    photos = {f"c{i}.jpg": 1.0 for i in range(25)}  # incompressible by nature
    assert _decide(1000, changed=25, ratios=photos) is None


def test_ratio_tells_random_bytes_from_text() -> None:
    assert ratio(os.urandom(4096)) >= 0.95
    assert ratio(b"hello world " * 300) < 0.2


def test_a_hold_round_trips_through_json() -> None:
    hold = Hold("why", 10, 3, 4, ("a", "b"))
    assert Hold.from_json(hold.to_json()) == hold


def _facts(root: Path, n: int) -> dict[str, LedgerFacts]:
    out = {}
    for i in range(n):
        rel = f"f{i}.txt"
        (root / rel).write_bytes(b"original text %d\n" % i * 50)
        with open_below(root, rel) as f:
            st, md5 = f.stat(), f.md5()
        out[rel] = LedgerFacts(
            st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino, md5, FileState.DONE, remote_id=i + 1
        )
    return out


def _upload(root: Path, rel: str) -> Upload:
    st = os.stat(root / rel)
    entry = LocalEntry(rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino)
    return Upload(entry, rel, "changed")


def test_assess_holds_a_rewrite_and_lets_it_go_once_files_are_back(tmp_path: Path) -> None:
    facts = _facts(tmp_path, 40)
    originals = {rel: (tmp_path / rel).read_bytes() for rel in facts}
    for i in range(30):
        (tmp_path / f"f{i}.txt").write_bytes(os.urandom(len(originals[f"f{i}.txt"])))

    def run() -> Hold | None:
        present = {p.name for p in tmp_path.iterdir()}
        uploads = [_upload(tmp_path, f"f{i}.txt") for i in range(30)]
        return assess(
            tmp_path,
            mirror=True,
            facts=facts,
            uploads=uploads,
            handled=set(),
            present=present,
            unreadable=set(),
            found=len(present),
            settings=SETTINGS,
        )

    hold = run()
    assert hold is not None and (hold.changed, hold.deleted, hold.known) == (30, 0, 40)
    for rel, data in originals.items():  # put back (new inodes and times: planned again)
        (tmp_path / rel).unlink()
        (tmp_path / rel).write_bytes(data)
    assert run() is None


def test_assess_counts_mirror_deletions_and_leaves_new_files_alone(tmp_path: Path) -> None:
    facts = _facts(tmp_path, 40)
    for i in range(25):
        (tmp_path / f"f{i}.txt").unlink()
    present = {p.name for p in tmp_path.iterdir()}
    hold = assess(
        tmp_path,
        mirror=True,
        facts=facts,
        uploads=[],
        handled=set(),
        present=present,
        unreadable=set(),
        found=len(present),
        settings=SETTINGS,
    )
    assert hold is not None and (hold.changed, hold.deleted) == (0, 25)
    # a moved file is no deletion
    assert (
        assess(
            tmp_path,
            mirror=True,
            facts=facts,
            uploads=[],
            handled={f"f{i}.txt" for i in range(25)},
            present=present,
            unreadable=set(),
            found=len(present),
            settings=SETTINGS,
        )
        is None
    )


def test_move_mode_deleting_its_own_files_is_no_mass_deletion(tmp_path: Path) -> None:
    """Move mode deletes each file once it is backed up: 20 of 21 gone is the agent's work."""
    facts = {
        f"f{i}.txt": LedgerFacts(
            size=3, mtime_ns=1, dev=1, inode=i, md5="0" * 32, state=FileState.DONE, remote_id=i + 1
        )
        for i in range(21)
    }

    def verdict(deletes_locally: bool) -> Hold | None:
        return assess(
            tmp_path,
            mirror=False,
            facts=facts,
            uploads=[],
            deletes_locally=deletes_locally,
            handled=set(),
            present={"f20.txt"},
            unreadable=set(),
            found=1,
            settings=GuardSettings(),
        )

    assert verdict(False) is not None  # archive: 20 of 21 deleted at once is held
    assert verdict(True) is None
