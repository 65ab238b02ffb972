"""What a pass retires on 123pan is kept as a version, not sent to the recycle bin: the
installed CLI against the emulator (whose ``duplicate=2`` destroys a replaced file).

- mirror mode: files deleted locally (one alone, and a whole folder) are kept under
  ``.syncagent/versions``; nothing of theirs is in the bin, ``ls --versions`` lists them and
  ``restore --at`` a time before the deletion brings them back, from a machine with no
  ledger; a rerun changes nothing; with ``versions: off`` they go to the bin as before;
- a file replaced by a folder of its name, and a folder replaced by a file: the displaced
  copies are versions (the folder's empty shell goes to the bin);
- move mode: a second ``scan.pdf`` does not destroy the first one's copy.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from conftest import Api
from test_restore_cli import restore, restore_cli
from test_sync_cli import Cli, folder_id, make_cli, remote_files

from syncagent.catalog import CATALOG_DIR
from syncagent.emulator import Emulator

FOLDER = 1


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _cli(tmp: Path, emulator: Emulator, root: Path, remote: str, extra: str) -> Cli:
    cli = make_cli(tmp, emulator, [(root, remote)])
    text = cli.config.read_text()
    new = text.replace(f'    remote: "{remote}"\n', f'    remote: "{remote}"\n{extra}')
    assert new != text
    cli.config.write_text(new)
    return cli


def _sync(cli: Cli) -> str:
    result = cli.sync()
    assert result.returncode == 0, (result.stdout, result.stderr[-3000:])
    assert "Traceback" not in result.stderr
    return result.stdout + result.stderr


def _tree(api: Api, folder: int, prefix: str = "") -> list[tuple[str, str, bool]]:
    """Every entry below ``folder``, the trashed ones too: (path, etag or "dir", trashed)."""
    out: list[tuple[str, str, bool]] = []
    for item in api.listing(folder):
        path = f"{prefix}{item['filename']}"
        if item["type"] == FOLDER:
            out.append((path, "dir", bool(item["trashed"])))
            out += _tree(api, int(item["fileId"]), f"{path}/")
        else:
            out.append((path, str(item["etag"]), bool(item["trashed"])))
    return out


def _versions(api: Api, remote: str) -> dict[str, list[str]]:
    """Live versions by their file's path: {rel path: [etag, ...]}."""
    out: dict[str, list[str]] = {}
    for path, etag, trashed in _tree(api, folder_id(api, f"{remote}/{CATALOG_DIR}/versions")):
        if etag != "dir" and not trashed:
            rel, _, name = path.rpartition("/")
            assert "Z~" in name and name.endswith(rel.rsplit("/", 1)[-1]), path
            out.setdefault(rel, []).append(etag)
    return {k: sorted(v) for k, v in out.items()}


def _trashed_files(api: Api, remote: str) -> list[str]:
    """Files in the bin below ``remote`` (catalog objects left out)."""
    return [
        p
        for p, etag, trashed in _tree(api, folder_id(api, remote))
        if trashed and etag != "dir" and not p.startswith(f"{CATALOG_DIR}/catalog-")
    ]


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def test_mirror_deletions_are_kept_as_versions_and_restorable(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    assert emulator.settings.overwrite_old == "destroy"
    root = tmp_path / "root"
    (root / "sub" / "deep").mkdir(parents=True)
    files = {
        "a.txt": b"alpha\n",
        "sub/b.txt": b"bravo\n" * 3,
        "sub/deep/c.txt": b"charlie\n" * 5,
        "keep.txt": b"stays\n",
    }
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    cli = _cli(tmp_path, emulator, root, "/m", "    mode: mirror\n")
    _sync(cli)
    before = time.time()

    (root / "a.txt").unlink()
    shutil.rmtree(root / "sub")
    out = _sync(cli)
    assert "3 files deleted locally were kept as versions" in out, out
    assert "files deleted locally went to the 123pan recycle bin" not in out
    assert "1 folders removed locally went to the 123pan recycle bin" in out  # emptied
    assert set(remote_files(api, "/m")) == {"keep.txt"}
    assert _trashed_files(api, "/m") == []  # nothing of theirs in the bin
    gone = {r: d for r, d in files.items() if r != "keep.txt"}
    assert _versions(api, "/m") == {r: [_md5(d)] for r, d in gone.items()}

    assert "0 uploaded" in _sync(cli)  # a rerun: nothing kept twice, nothing sent
    assert _versions(api, "/m") == {r: [_md5(d)] for r, d in gone.items()}

    other = restore_cli(tmp_path, emulator)  # a machine with no ledger
    js = other.run(
        "ls", "--config", str(other.config), "--root", "/m", "--versions", "sub/b.txt", "--json"
    )
    assert js.returncode == 0, js.stderr
    assert [v["md5"] for v in json.loads(js.stdout)["versions"]] == [_md5(files["sub/b.txt"])]
    then = tmp_path / "then"
    r = restore(other, "--root", "/m", "--to", str(then), "--at", _stamp(before))
    assert r.returncode == 0, r.stdout + r.stderr
    assert {p: (then / p).read_bytes() for p in files} == files
    now = tmp_path / "now"
    r = restore(other, "--root", "/m", "--to", str(now))
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in now.rglob("*") if p.is_file()) == ["keep.txt"]


def test_mirror_deletions_with_versions_off_go_to_the_recycle_bin(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_bytes(b"alpha\n")
    (root / "b.txt").write_bytes(b"bravo\n")
    cli = _cli(tmp_path, emulator, root, "/off", "    mode: mirror\n    versions: off\n")
    _sync(cli)
    (root / "a.txt").unlink()
    assert "1 files deleted locally went to the 123pan recycle bin" in _sync(cli)
    assert _trashed_files(api, "/off") == ["a.txt"]


def test_copies_displaced_by_the_other_kind_are_kept_as_versions(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "x").write_bytes(b"x was a file\n")
    (root / "d" / "one.txt").write_bytes(b"one\n")
    (root / "d" / "two.txt").write_bytes(b"two\n" * 2)
    cli = _cli(tmp_path, emulator, root, "/disp", "    mode: archive\n")
    _sync(cli)
    before = time.time()

    (root / "x").unlink()
    (root / "x").mkdir()
    (root / "x" / "inner.txt").write_bytes(b"inside x\n")
    shutil.rmtree(root / "d")
    (root / "d").write_bytes(b"d is a file now\n")
    out = _sync(cli)
    assert "0 failed" in out, out
    assert {r: f["etag"] for r, f in remote_files(api, "/disp").items()} == {
        "x/inner.txt": _md5(b"inside x\n"),
        "d": _md5(b"d is a file now\n"),
    }
    assert _versions(api, "/disp") == {
        "x": [_md5(b"x was a file\n")],
        "d/one.txt": [_md5(b"one\n")],
        "d/two.txt": [_md5(b"two\n" * 2)],
    }
    assert _trashed_files(api, "/disp") == []  # only the folder d's empty shell is binned
    assert "0 uploaded" in _sync(cli)

    other = restore_cli(tmp_path, emulator)
    then = tmp_path / "then"
    r = restore(other, "--root", "/disp", "--to", str(then), "--at", _stamp(before))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (then / "x").read_bytes() == b"x was a file\n"
    assert (then / "d" / "one.txt").read_bytes() == b"one\n"


def test_move_mode_a_second_file_of_a_name_keeps_the_first_ones_copy(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "outbox"
    root.mkdir()
    (root / "scan.pdf").write_bytes(b"first scan\n")
    cli = _cli(tmp_path, emulator, root, "/scans", "    mode: move\n")
    _sync(cli)
    assert not (root / "scan.pdf").exists()
    _sync(cli)  # the row becomes gone
    (root / "scan.pdf").write_bytes(b"second scan\n")
    _sync(cli)
    assert not (root / "scan.pdf").exists()
    assert remote_files(api, "/scans")["scan.pdf"]["etag"] == _md5(b"second scan\n")
    assert _versions(api, "/scans") == {"scan.pdf": [_md5(b"first scan\n")]}
    assert _trashed_files(api, "/scans") == []


def test_a_file_put_back_after_a_guard_hold_is_not_sent_again(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    """Held, then every file put back with its old bytes but a new mtime: the hold clears
    and nothing is uploaded or kept aside (the MD5s match the recorded ones)."""
    root = tmp_path / "root"
    root.mkdir()
    originals = {f"f{i:02d}.txt": f"file {i}\n".encode() * 10 for i in range(30)}
    for rel, data in originals.items():
        (root / rel).write_bytes(data)
    cli = _cli(tmp_path, emulator, root, "/held", "    guard: {min_files: 5}\n")
    _sync(cli)
    for rel, data in originals.items():  # same size, other bytes: all changed
        (root / rel).write_bytes(bytes(255 - b for b in data))
    held = cli.sync()
    assert "HELD by the mass-change guard" in held.stdout + held.stderr
    for rel, data in originals.items():
        (root / rel).write_bytes(data)  # put back; the mtime is new
    out = _sync(cli)
    assert "0 uploaded" in out, out
    assert "HELD" not in out
    assert {r: f["etag"] for r, f in remote_files(api, "/held").items()} == {
        r: _md5(d) for r, d in originals.items()
    }
    hist = [i["filename"] for i in api.listing(folder_id(api, f"/held/{CATALOG_DIR}"))]
    assert "versions" not in hist


def test_a_roots_own_guard_setting_holds_that_root_only(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    strict, loose = tmp_path / "strict", tmp_path / "loose"
    for root in (strict, loose):
        root.mkdir()
        for i in range(10):
            (root / f"f{i}.txt").write_bytes(f"file {i}\n".encode())
    cli = make_cli(tmp_path, emulator, [(strict, "/strict"), (loose, "/loose")])
    text = cli.config.read_text()
    text = text.replace(
        '    remote: "/loose"\n', '    remote: "/loose"\n    guard: {enabled: false}\n'
    )
    cli.config.write_text(text + "guard: {min_files: 3, max_changed: 20%}\n")
    _sync(cli)
    for root in (strict, loose):
        for i in range(6):
            (root / f"f{i}.txt").write_bytes(f"changed {i}\n".encode())
    result = cli.sync()
    out = result.stdout + result.stderr
    assert f"{strict}: pass HELD" in out and f"{loose}: pass HELD" not in out, out
    assert remote_files(api, "/loose")["f0.txt"]["etag"] == _md5(b"changed 0\n")
    assert remote_files(api, "/strict")["f0.txt"]["etag"] == _md5(b"file 0\n")
