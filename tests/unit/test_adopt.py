"""Adoption and account binding: the pure decisions, and hashing only what could match."""

from __future__ import annotations

import hashlib
from pathlib import Path

from syncagent.adopt import adopt, match
from syncagent.binding import EMBEDDED, Account, Bound, binding_change
from syncagent.model import LocalEntry, Upload
from syncagent.pan123 import RemoteFile


def _remote(name: str, size: int, etag: str = "", folder: bool = False) -> RemoteFile:
    return RemoteFile(1, name.rsplit("/", 1)[-1], folder, size, etag, 0, False)


def _upload(root: Path, rel: str, data: bytes, remote_rel: str | None = None) -> Upload:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    st = path.stat()
    entry = LocalEntry(rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino)
    return Upload(entry, remote_rel or rel, "new")


def test_only_same_path_and_size_are_candidates(tmp_path: Path) -> None:
    same = _upload(tmp_path, "a.txt", b"12345")
    other_size = _upload(tmp_path, "b.txt", b"123")
    absent = _upload(tmp_path, "c.txt", b"1")
    folder = _upload(tmp_path, "d", b"12")
    remote = {
        "a.txt": _remote("a.txt", 5),
        "b.txt": _remote("b.txt", 4),
        "d": _remote("d", 2, folder=True),
    }
    candidates, rest = match([same, other_size, absent, folder], remote)
    assert [u.entry.rel_path for u, _ in candidates] == ["a.txt"]
    assert [u.entry.rel_path for u in rest] == ["b.txt", "c.txt", "d"]


def test_adopt_matches_by_md5_under_the_mapped_name_and_keeps_hashes(tmp_path: Path) -> None:
    good = _upload(tmp_path, "x:y.txt", b"same bytes", remote_rel="x\uff1ay.txt")
    bad = _upload(tmp_path, "z.txt", b"other byte")  # same size as the remote, other MD5
    unrelated = _upload(tmp_path, "big.bin", b"not on 123pan")
    remote = {
        "x\uff1ay.txt": _remote("x\uff1ay.txt", 10, hashlib.md5(b"same bytes").hexdigest()),
        "z.txt": _remote("z.txt", 10, hashlib.md5(b"OTHER BYTE").hexdigest()),
    }
    result = adopt(tmp_path, [good, bad, unrelated], remote)
    assert [a.upload.entry.rel_path for a in result.adopted] == ["x:y.txt"]
    assert result.hashed == 2  # the two candidates, never the file 123pan has no copy of
    rest = {u.entry.rel_path: u for u in result.rest}
    assert sorted(rest) == ["big.bin", "z.txt"]
    assert rest["z.txt"].md5 == hashlib.md5(b"other byte").hexdigest()  # not hashed twice
    assert rest["big.bin"].md5 is None


def test_binding_changes_are_named() -> None:
    real = Account("https://open-api.123pan.com", "cid")
    bound = Bound("https://open-api.123pan.com", "cid", 7, "/backup")
    assert binding_change(bound, real, "/backup") is None
    moved = binding_change(bound, real, "/elsewhere")
    assert moved == "its remote folder changed from /backup to /elsewhere"
    embedded = binding_change(bound, Account(EMBEDDED, "cid"), "/backup")
    assert embedded is not None and "this run uses the embedded local emulator" in embedded
    other = binding_change(bound, Account("https://open-api.123pan.com", "cid2"), "/backup")
    assert other is not None and "client ID cid2" in other
    legacy = binding_change(Bound(None, None, None, "/backup"), real, "/backup")
    assert legacy is not None and "older syncagent" in legacy


def test_another_uid_behind_the_same_client_is_a_change_when_it_is_read() -> None:
    real = Account("https://open-api.123pan.com", "cid")
    bound = Bound("https://open-api.123pan.com", "cid", 7, "/backup")
    assert binding_change(bound, real, "/backup", uid=7) is None
    assert binding_change(bound, real, "/backup", uid=None) is None
    assert binding_change(bound, real, "/backup", uid=8) == (
        "its ledger was made for 123pan user 7, and this account is user 8"
    )
