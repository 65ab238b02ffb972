"""Moves, deletions and entries that change kind, as a user meets them: the installed CLI in a
subprocess against an emulator in the test process (helpers from ``test_sync_cli.py``).

- a new file that merely looks like a moved one (same inode, size and mtime) is uploaded;
- a local delete in archive mode keeps the no-op fast path and frees the 123pan name;
- a folder that cannot be read is unknown, not deleted, in mirror mode;
- a file replaced by a folder of the same (mapped) name, or the reverse, is replaced remotely.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conftest import Api, md5
from test_sync_cli import (
    Cli,
    assert_same_tree,
    folder_id,
    local_files,
    make_cli,
    remote_files,
    summary,
)
from test_sync_hostile import unreadable_launcher

from syncagent.emulator import Emulator
from syncagent.ignore import IgnoreRules
from syncagent.ledger import Ledger, repo
from syncagent.scanner import ScanJob


def mode_cli(tmp: Path, emulator: Emulator, root: Path, remote: str, mode: str) -> Cli:
    cli = make_cli(tmp, emulator, [(root, remote)])
    text = cli.config.read_text().replace(
        f'    remote: "{remote}"\n', f'    remote: "{remote}"\n    mode: {mode}\n'
    )
    assert text != cli.config.read_text()
    cli.config.write_text(text)
    return cli


def passes(cli: Cli) -> str:
    result = cli.sync()
    assert result.returncode == 0, (result.stdout, result.stderr[-3000:])
    assert "Traceback" not in result.stderr
    return summary(result)


def test_a_new_file_with_a_moved_files_inode_size_and_mtime_is_uploaded_not_moved(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_bytes(b"old content, 32 bytes long......")
    (root / "keep.txt").write_bytes(b"unchanged")
    cli = make_cli(tmp_path, emulator, [(root, "/reuse")])
    passes(cli)

    # What inode reuse looks like to the scan (tar x, cp -p, rsync -t): a path the ledger
    # does not know with the (dev, inode, size, mtime) of a file that is gone. Made here on
    # the same inode, so it does not depend on the filesystem reusing inode numbers.
    st = os.stat(root / "a.txt")
    os.rename(root / "a.txt", root / "b.txt")
    new = b"NEW content, same size, same mt."
    assert len(new) == st.st_size
    (root / "b.txt").write_bytes(new)
    os.utime(root / "b.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(root / "b.txt")
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
    )

    line = passes(cli)
    assert line.startswith("1 uploaded") and " 0 moved" in line, line
    remote = remote_files(api, "/reuse")
    assert api.download(int(remote["b.txt"]["fileId"])) == new
    # archive mode: the deleted file's copy stays, with its own bytes
    assert api.download(int(remote["a.txt"]["fileId"])) == b"old content, 32 bytes long......"
    check = cli.run("verify", "--config", str(cli.config))
    assert check.returncode == 0, (check.stdout, check.stderr[-2000:])


def _fast_path_holds(root: Path, ledger_url: str) -> tuple[int | None, int]:
    """(rows the scan matched, rows it must match): equal means the no-op fast path."""
    ledger = Ledger(ledger_url)
    try:
        # the root row the CLI made (it carries the CLI's host id: a Ledger opened here has none)
        ((root_id,),) = ledger.raw_rows(
            "SELECT id FROM roots WHERE local_path = :path", {"path": str(root)}
        )
        rows = repo.count_files(ledger, int(root_id))
    finally:
        ledger.close()
    job = ScanJob(
        root, IgnoreRules.for_root(root, ()), helpers=0, ledger_file=ledger_url[len("sqlite:///") :]
    )
    try:
        return job.result().matched, rows
    finally:
        job.close()


def test_a_local_delete_in_archive_mode_keeps_the_fast_path_and_frees_its_name(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    for i in range(5):
        (root / f"f{i}.txt").write_text(f"file {i}")
    (root / "a:b.txt").write_text("mapped to a：b.txt on 123pan")
    cli = mode_cli(tmp_path, emulator, root, "/archive", "archive")
    passes(cli)
    url = "sqlite:///" + str(tmp_path / "state" / "ledger.sqlite3")
    matched, rows = _fast_path_holds(root, url)
    assert matched == rows == 6

    (root / "f0.txt").unlink()
    (root / "a:b.txt").unlink()
    assert passes(cli).startswith("0 uploaded")
    assert cli.status()["roots"][0]["counts"] == {"done": 4, "gone": 2}
    # Every later pass takes the no-op fast path again: the gone rows do not count against it.
    matched, rows = _fast_path_holds(root, url)
    assert matched == rows == 4
    assert passes(cli).startswith("0 uploaded (0.0 MB), 0 moved, 4 unchanged")
    # archive mode: the copies stay on 123pan
    assert set(remote_files(api, "/archive")) == {f"f{i}.txt" for i in range(5)} | {"a：b.txt"}

    # The deleted file no longer owns its 123pan name: a new file mapping to it is uploaded.
    (root / "a：b.txt").write_text("a new file under the full-width name")
    line = passes(cli)
    assert line.startswith("1 uploaded") and "0 skipped" in line, line
    remote = remote_files(api, "/archive")
    assert (
        api.download(int(remote["a：b.txt"]["fileId"])) == b"a new file under the full-width name"
    )
    # A gone file that comes back is uploaded again and is done once more.
    (root / "f0.txt").write_text("file 0, back")
    assert passes(cli).startswith("1 uploaded")
    assert cli.status()["roots"][0]["counts"] == {"done": 6, "gone": 1}
    matched, rows = _fast_path_holds(root, url)
    assert matched == rows == 6


def test_mirror_mode_never_trashes_the_copies_of_a_folder_that_cannot_be_read(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    photos = root / "photos"
    (photos / "2024").mkdir(parents=True)
    for i in range(5):
        (photos / ("2024" if i % 2 else "") / f"p{i}.jpg").write_bytes(f"photo {i}".encode())
    (root / "notes.txt").write_text("notes")
    cli = mode_cli(tmp_path, emulator, root, "/mirror", "mirror")
    passes(cli)
    everything = local_files(root)

    # chmod 000 photos. As root, permissions do not stop reads, so the CLI runs with the
    # capabilities that bypass them dropped (see test_sync_hostile.unreadable_launcher): the
    # walk really gets EACCES on the folder.
    launcher = unreadable_launcher()
    cli.wrapper = launcher
    photos.chmod(0)
    try:
        probe = subprocess.run(
            [*launcher, "/bin/ls", str(photos)], capture_output=True, text=True, check=False
        )
        assert probe.returncode != 0 and "Permission denied" in probe.stderr, probe
        result = cli.sync()
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
        assert "recycle bin" not in result.stdout + result.stderr
        assert "cannot be read" in result.stdout + result.stderr
        assert "5 files below folders that cannot be read are left as they are" in result.stderr
        # nothing left the cloud, and the ledger still knows the five photos
        assert_same_tree(api, "/mirror", everything, download=[])
        assert cli.status()["roots"][0]["counts"].get("done") == 6
    finally:
        photos.chmod(0o755)

    # Readable again: nothing to send, nothing to trash.
    line = passes(cli)
    assert line.startswith("0 uploaded") and "6 unchanged" in line, line
    assert_same_tree(api, "/mirror", everything, download=[])
    # A real delete below it is still mirrored.
    (photos / "p0.jpg").unlink()
    result = cli.sync()
    assert result.returncode == 0 and "1 files deleted locally" in result.stdout, result.stdout
    assert_same_tree(api, "/mirror", local_files(root), download=[])


def test_a_file_replaced_by_a_folder_of_the_same_name_and_back_is_replaced_remotely(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "x").write_text("x is a file")
    (root / "x：y").write_text("a file with a full-width colon")
    (root / "dir").mkdir()
    (root / "dir" / "in.txt").write_text("in dir")
    cli = make_cli(tmp_path, emulator, [(root, "/kinds")])
    passes(cli)

    # x: file -> folder; x：y: file -> folder x:y/ (mapped to the same 123pan name);
    # dir: folder -> file.
    (root / "x").unlink()
    (root / "x").mkdir()
    (root / "x" / "inner.txt").write_text("x is a folder now")
    (root / "x：y").unlink()
    (root / "x:y").mkdir()
    (root / "x:y" / "z.txt").write_text("in the mapped folder")
    shutil.rmtree(root / "dir")
    (root / "dir").write_text("dir is a file now")
    line = passes(cli)
    assert line.startswith("3 uploaded") and "0 failed" in line, line
    remote = assert_same_tree(
        api, "/kinds", {k.replace(":", "："): v for k, v in local_files(root).items()}
    )
    assert set(remote) == {"x/inner.txt", "x：y/z.txt", "dir"}
    assert passes(cli).startswith("0 uploaded (0.0 MB), 0 moved, 3 unchanged")

    # And back: x becomes a file again.
    shutil.rmtree(root / "x")
    (root / "x").write_text("x is a file again")
    assert passes(cli).startswith("1 uploaded")
    assert api.download(int(remote_files(api, "/kinds")["x"]["fileId"])) == b"x is a file again"
    assert passes(cli).startswith("0 uploaded")


def test_a_file_and_a_folder_mapping_to_one_123pan_name_skip_the_newcomer(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "p：q").write_text("the file came first")
    cli = make_cli(tmp_path, emulator, [(root, "/clash")])
    passes(cli)
    (root / "p:q").mkdir()
    (root / "p:q" / "f.txt").write_text("cannot go under a file")
    line = passes(cli)
    assert "1 skipped, 0 failed" in line, line
    problems = {p["path"]: p["reason"] for p in cli.status()["roots"][0]["problems"]}
    assert "is the name of the file 'p：q'" in problems["p:q/f.txt"], problems
    remote = remote_files(api, "/clash")
    assert set(remote) == {"p：q"} and remote["p：q"]["etag"] == md5(b"the file came first")
    line = passes(cli)  # and it stays skipped, quietly: no pass fails on it
    assert line.startswith("0 uploaded") and "0 failed" in line, line


def test_files_moved_to_one_folder_take_one_move_call_per_100(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    (root / "inbox").mkdir(parents=True)
    for i in range(150):
        (root / "inbox" / f"m{i:03d}.txt").write_text(f"mail {i}")
    (root / "inbox" / "stays.txt").write_text("not moved: the folder itself does not move")
    cli = make_cli(tmp_path, emulator, [(root, "/batch")])
    passes(cli)
    moves_before = emulator.activity()["endpoints"].get("api/v1/file/move", {}).get("calls", 0)

    (root / "sorted").mkdir()
    for i in range(150):
        (root / "inbox" / f"m{i:03d}.txt").rename(root / "sorted" / f"m{i:03d}.txt")
    line = passes(cli)
    assert line.startswith("0 uploaded") and "150 moved" in line, line
    calls = emulator.activity()["endpoints"]["api/v1/file/move"]["calls"] - moves_before
    assert calls == 2, calls  # 100 + 50 IDs, not one call per file
    assert_same_tree(api, "/batch", local_files(root), download=[])


def test_mirror_mode_removes_a_deleted_folder_so_a_file_can_take_its_name_later(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "a.txt").write_text("a")
    (root / "d" / "sub" / "b.txt").write_text("b")
    (root / "keep.txt").write_text("keep")
    cli = mode_cli(tmp_path, emulator, root, "/mirrored", "mirror")
    passes(cli)

    shutil.rmtree(root / "d")
    result = cli.sync()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 folders removed locally went to the 123pan recycle bin" in result.stderr
    top = {i["filename"]: i for i in api.listing(folder_id(api, "/mirrored"))}
    assert top["d"]["trashed"] and not top["keep.txt"]["trashed"]

    # A later pass: a file takes the folder's name.
    (root / "d").write_text("d is a file now")
    line = passes(cli)
    assert line.startswith("1 uploaded") and "0 failed" in line, line
    assert_same_tree(api, "/mirrored", local_files(root))
