"""Pure parts of versions: retention's choice, the tree as of a time, the catalog lines,
and the ``versions`` settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncagent.catalog.format import PLAIN_VERSION, VERSION, Entry, Header, decode_all, encode
from syncagent.config import validate
from syncagent.errors import ConfigError
from syncagent.restore.history import as_of, history, parse_time, with_version
from syncagent.versions import Kept, to_prune

DAY = 86400.0


def _kept(path: str, at: float, file_id: int) -> Kept:
    return Kept(1, file_id, path, path, f"{at}~x", 1, "m", 0, at, True)


def test_retention_drops_beyond_the_newest_n_and_older_than_the_days() -> None:
    now = 100 * DAY
    kept = [_kept("a", now - n * DAY, n) for n in range(1, 6)] + [_kept("b", now - 50 * DAY, 9)]
    assert {k.file_id for k in to_prune(kept, 2, None, now)} == {3, 4, 5}
    assert {k.file_id for k in to_prune(kept, None, 3.5, now)} == {4, 5, 9}
    assert {k.file_id for k in to_prune(kept, 10, 3.5, now)} == {4, 5, 9}
    assert to_prune(kept, None, None, now) == []


def _file(path: str, data: str, mtime_s: float, superseded: float | None = None) -> Entry:
    return Entry(
        path,
        "file",
        len(data),
        data,
        int(mtime_s * 1e9),
        file_id=1,
        remote=path,
        superseded=superseded,
    )


def test_the_tree_as_of_a_time_picks_the_content_current_then() -> None:
    versions = [_file("f", "v1", 10, superseded=20), _file("f", "v2", 15, superseded=30)]
    current = [_file("f", "v3", 25), _file("new", "n", 40), Entry("d", "dir")]
    assert [e.md5 for e in history(current, versions, "f")] == ["v1", "v2", "v3"]
    at = {t: {e.path: e.md5 for e in as_of(current, versions, t)} for t in (12, 22, 35, 50)}
    assert at[12] == {"f": "v1", "d": None}
    assert at[22] == {"f": "v2", "d": None}
    assert at[35] == {"f": "v3", "d": None}
    assert at[50] == {"f": "v3", "new": "n", "d": None}
    assert as_of(current, versions, 5) == [Entry("d", "dir")]  # before the first backup
    assert [e.md5 for e in with_version(current, versions, "f", 2) if e.path == "f"] == ["v2"]
    with pytest.raises(ConfigError):
        with_version(current, versions, "f", 4)


def test_times_parse_as_iso_or_epoch() -> None:
    assert parse_time("1970-01-01T00:01:00Z") == 60.0
    assert parse_time("1970-01-01T00:01:00") == 60.0
    assert parse_time("61.5") == 61.5
    with pytest.raises(ConfigError):
        parse_time("yesterday")


def test_a_catalog_with_versions_reads_back_and_one_without_stays_format_1() -> None:
    header = Header("h", "/r", "/remote", 1.0)
    entries = [_file("f", "v3", 25)]
    versions = [_file("f", "v1", 10, superseded=20)]
    h, cur, old = decode_all(encode(header, entries + versions))
    assert (h.version, cur, old) == (VERSION, entries, versions)
    assert decode_all(encode(header, entries))[0].version == PLAIN_VERSION


def test_versions_settings_are_checked(tmp_path: Path) -> None:
    def root(versions: object) -> dict[str, object]:
        return {"local": str(tmp_path), "remote": "/b", "versions": versions}

    base = {"state_dir": str(tmp_path / "s")}
    on = validate({**base, "roots": [root({"keep": 3, "keep_days": 30})]}, {}).roots[0]
    assert (on.versions, on.versions_keep, on.versions_keep_days) == (True, 3, 30.0)
    assert validate({**base, "roots": [root(False)]}, {}).roots[0].versions is False
    assert validate({**base, "roots": [root("off")]}, {}).roots[0].versions is False
    with pytest.raises(ConfigError) as err:
        validate({**base, "roots": [root({"keep": 0, "keep_days": "x", "kep": 1})]}, {})
    text = "\n".join(err.value.problems)
    assert "roots[0].versions.keep" in text
    assert "roots[0].versions.keep_days" in text
    assert "roots[0].versions.kep" in text


def test_orphans_are_kept_copies_the_ledger_still_calls_current() -> None:
    from syncagent.versions import Kept, orphans

    def kept(file_id: int, path: str, done: bool = True) -> Kept:
        return Kept(1, file_id, path, path, f"t~{path}", 3, "0" * 32, 1, 1.0, done)

    records = [kept(10, "a.txt"), kept(20, "b.txt"), kept(30, "c.txt", done=False)]
    # a.txt: its row still names copy 10 (the upload after keeping it aside never arrived);
    # b.txt: its row names the new copy 21; c.txt: a pass died while keeping it aside
    # (pending), and no pass finishes it unless it sends c.txt
    current = {"a.txt": 10, "b.txt": 21, "c.txt": 30}
    assert [k.file_id for k in orphans(records, current)] == [10, 30]


def test_deleted_and_displaced_copies_are_no_orphans() -> None:
    from syncagent.versions import Kept, orphans

    records = [
        Kept(1, 10, "a.txt", "a.txt", "t~a.txt", 3, "0" * 32, 1, 1.0, True, why="deleted"),
        Kept(1, 20, "x", "x", "t~x", 3, "0" * 32, 1, 1.0, True, why="displaced"),
        Kept(1, 30, "c.txt", "c.txt", "t~c.txt", 3, "0" * 32, 1, 1.0, True),
    ]
    # a crash before their rows were forgotten: the rows still name the kept copies
    assert [k.file_id for k in orphans(records, {"a.txt": 10, "x": 20, "c.txt": 30})] == [30]


def test_the_tree_as_of_a_time_has_the_file_a_folder_displaced_later() -> None:
    """``x`` was a file until 20, then a folder (holding a file made at 25); ``d`` was a
    folder of ``d/one`` until 20, then a file made at 25."""
    versions = [_file("x", "old-x", 5, superseded=20), _file("d/one", "one", 5, superseded=20)]
    current = [Entry("x", "dir"), _file("x/inner", "in", 25), _file("d", "d-file", 25)]
    assert {e.path: (e.kind, e.md5) for e in as_of(current, versions, 10)} == {
        "x": ("file", "old-x"),
        "d/one": ("file", "one"),
    }
    assert {e.path: (e.kind, e.md5) for e in as_of(current, versions, 30)} == {
        "x": ("dir", None),
        "x/inner": ("file", "in"),
        "d": ("file", "d-file"),
    }
