"""``syncagent restore`` and ``ls`` as a user runs them after losing a disk: the installed CLI
in a subprocess, with a new HOME (no ledger, no state), against the emulator the backup went
to. The restored tree is compared with the original entry by entry: names, bytes, modes,
mtimes (to the second), link targets, empty files and empty folders.

Bytes that crossed the wire are read from the emulator's own counter (``download_bytes``).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Api, md5
from test_sync_cli import SLICE, Cli, cli_env, folder_id, make_cli, remote_files, summary

from syncagent.catalog import CATALOG_DIR
from syncagent.catalog.format import Entry, Header, encode

FORBIDDEN = '"\\:*?|><'
OLD = 1_000_000_000  # 2001-09-09, seconds
REMOTE = "/backup/tree"


@pytest.fixture(autouse=True)
def _collect_dropped_pools() -> Iterator[None]:
    yield
    gc.collect()


def restore_cli(tmp: Path, emulator: Any, name: str = "newhome", *, config: bool = True) -> Cli:
    """The CLI on a machine that never ran syncagent: a new HOME, the account's credentials
    in the environment, and (``config``) a sync.yaml without roots that only lifts the
    client's rate limits (the emulator's are off too), so the tests stay fast."""
    home = tmp / name
    home.mkdir()
    path = home / "restore.yaml"
    if config:
        path.write_text("limits: {qps: off}\n", encoding="utf-8")
    return Cli(path, cli_env(home, emulator), home)


def restore(cli: Cli, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    extra = ("--config", str(cli.config)) if cli.config.exists() else ()
    return cli.run("restore", *extra, *args, timeout=timeout)


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry below ``root`` (links not followed): kind, content MD5, mode, mtime (s),
    link target."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            st = os.lstat(path)
            mtime = int(st.st_mtime)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path), mtime)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), mtime)
            else:
                digest = hashlib.md5(path.read_bytes()).hexdigest()
                out[rel] = ("file", st.st_size, digest, stat.S_IMODE(st.st_mode), mtime)
    return out


def assert_same_entries(original: Path, restored: Path) -> None:
    a, b = snapshot(original), snapshot(restored)
    assert sorted(a) == sorted(b), (
        f"missing: {sorted(set(a) - set(b))}, unexpected: {sorted(set(b) - set(a))}"
    )
    wrong = {rel: (a[rel], b[rel]) for rel in a if a[rel] != b[rel]}
    assert not wrong, wrong


def build_hostile_tree(root: Path) -> None:
    """Every forbidden character, CJK, emoji, spaces, a multi-slice file, empty files, empty
    folders, links, modes 0600/0755/0700, and old mtimes on everything."""
    files: dict[str, bytes] = {f"a{ch}b.txt": f"char {ch}\n".encode() for ch in FORBIDDEN}
    files.update(
        {
            "报告 2024年.txt": "中文内容\n".encode(),
            "emoji 😀🎉.md": b"# party\n",
            " leading space.txt": b"lead\n",
            "trailing space .txt": b"trail\n",
            "sub dir/with space/nested.txt": b"nested\n",
            "sub dir/chunked.bin": os.urandom(SLICE * 2 + 5),
            "dir:colon/in?side.txt": b"mapped folder\n",
            "secret.key": b"0600\n",
            "run.sh": b"#!/bin/sh\necho hi\n",
            "empty.txt": b"",
            "sub dir/empty2": b"",
        }
    )
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "empty folder").mkdir()
    (root / "deep/er/empty").mkdir(parents=True)
    (root / "private").mkdir(mode=0o700)
    (root / "private" / "note.txt").write_bytes(b"private\n")
    (root / "link-to-file").symlink_to("sub dir/with space/nested.txt")
    (root / "link-to-dir").symlink_to("sub dir")
    (root / "sub dir" / "link-up").symlink_to("../emoji 😀🎉.md")
    (root / "dangling").symlink_to("nowhere")
    os.chmod(root / "secret.key", 0o600)
    os.chmod(root / "run.sh", 0o755)
    os.chmod(root / "private", 0o700)
    # old mtimes, deepest first so setting a child's does not move its folder's again
    paths = sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True)
    for i, p in enumerate(paths):
        os.utime(p, (OLD + i * 3601, OLD + i * 3601), follow_symlinks=False)


@pytest.mark.slow
def test_a_new_machine_restores_the_tree_exactly(tmp_path: Path, emulator: Any) -> None:
    emulator.configure(slice_size=SLICE)
    root = tmp_path / "root"
    root.mkdir()
    build_hostile_tree(root)
    backup = make_cli(tmp_path, emulator, [(root, REMOTE)])
    result = backup.sync()
    assert result.returncode == 0, result.stderr[-3000:]

    cli = restore_cli(tmp_path, emulator)
    assert not (cli.cwd / ".xdg-state").exists()  # nothing of the backup machine's state
    target = tmp_path / "restored"
    r = restore(cli, "--root", REMOTE, "--to", str(target))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "catalog catalog-" in r.stderr
    assert_same_entries(root, target)
    assert not (cli.cwd / ".xdg-state" / "syncagent" / "ledger.sqlite3").exists()

    # again: everything is already there, nothing is downloaded
    emulator.reset_activity()
    again = restore(cli, "--root", REMOTE, "--to", str(target))
    assert again.returncode == 0, again.stderr
    assert emulator.activity()["counts"]["downloads"] == 1  # the catalog, no file
    assert summary(again).startswith("0 restored (0.0 MB, 0.0 MB downloaded)")
    assert_same_entries(root, target)

    # ls: original names, from the catalog
    ls = cli.run("ls", "--config", str(cli.config), "--root", REMOTE, "--json")
    assert ls.returncode == 0, ls.stderr
    listed = json.loads(ls.stdout)
    names = {e["path"] for e in listed["entries"]}
    assert {"a:b.txt", "empty folder", "link-to-dir", "报告 2024年.txt"} <= names
    assert listed["origin"] == "catalog"
    long = cli.run("ls", "--config", str(cli.config), "--root", REMOTE, "--long", "sub dir")
    assert long.returncode == 0 and "-rw-" in long.stdout and "chunked.bin" in long.stdout


def test_a_differing_local_file_is_kept_unless_overwrite(tmp_path: Path, emulator: Any) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_bytes(b"backed up\n")
    assert make_cli(tmp_path, emulator, [(root, REMOTE)]).sync().returncode == 0
    cli = restore_cli(tmp_path, emulator)
    target = tmp_path / "restored"
    target.mkdir()
    (target / "a.txt").write_bytes(b"mine, newer\n")
    kept = restore(cli, "--root", REMOTE, "--to", str(target))
    assert kept.returncode == 1 and "kept a.txt" in kept.stderr
    assert (target / "a.txt").read_bytes() == b"mine, newer\n"
    replaced = restore(cli, "--root", REMOTE, "--to", str(target), "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert (target / "a.txt").read_bytes() == b"backed up\n"


def _parts(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".syncagent-part")]


def catalog_size(api: Api) -> int:
    folder = folder_id(api, f"{REMOTE}/{CATALOG_DIR}")
    (item,) = [i for i in api.listing(folder) if not i["trashed"]]
    return int(item["size"])


@pytest.mark.slow
def test_a_killed_restore_continues_and_fetches_only_what_was_not_on_disk(
    tmp_path: Path, emulator: Any, api: Api
) -> None:
    emulator.configure(slice_size=SLICE)
    root = tmp_path / "root"
    (root / "small").mkdir(parents=True)
    big = os.urandom(SLICE * 12 + 7)  # a multi-slice ("chunk-sized") file
    (root / "big.bin").write_bytes(big)
    for i in range(60):
        (root / "small" / f"f{i:02d}.txt").write_bytes(os.urandom(4096))
    assert make_cli(tmp_path, emulator, [(root, REMOTE)]).sync().returncode == 0
    total = len(big) + 60 * 4096

    cli = restore_cli(tmp_path, emulator)
    target = tmp_path / "restored"
    emulator.configure(download_bps=400_000)  # ~8 s for big.bin: time to kill it mid-file
    extra = ("--config", str(cli.config))
    proc = subprocess.Popen(
        cli.argv("restore", *extra, "--root", REMOTE, "--to", str(target)),
        env=cli.env,
        cwd=cli.cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            parts = _parts(target) if target.exists() else []
            if parts and parts[0].stat().st_size >= 600_000:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the big file's partial download never reached 600 kB")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # nothing partial under a final name: every file there is whole
    originals = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.*")}
    durable = 0
    for path in target.rglob("*"):
        if path.is_file() and not path.name.endswith(".syncagent-part"):
            assert path.read_bytes() == originals[path.relative_to(target).as_posix()]
            durable += path.stat().st_size
    partial = sum(p.stat().st_size for p in _parts(target))
    assert partial >= 600_000

    # the killed run's answers are counted when they end: wait for that, then count anew
    deadline = time.monotonic() + 60
    while (c := emulator.activity()["counts"])["download_answers_started"] != c.get(
        "download_answers_ended", 0
    ):
        assert time.monotonic() < deadline, c
        time.sleep(0.05)
    emulator.configure(download_bps=0)
    emulator.reset_activity()
    r = restore(cli, "--root", REMOTE, "--to", str(target))
    assert r.returncode == 0, r.stdout + r.stderr
    fetched = emulator.activity()["counts"].get("download_bytes", 0)
    catalog = catalog_size(api)  # read again by the second run
    assert 0 < fetched - catalog <= total - durable - partial, (fetched, total, durable, partial)
    assert _parts(target) == []
    assert_same_entries(root, target)


def test_wrong_and_cut_downloads_are_retried_and_a_file_that_stays_wrong_fails(
    tmp_path: Path, emulator: Any, api: Api
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    data = {name: os.urandom(300_000) for name in ("corrupt.bin", "cut.bin", "bad.bin", "ok.bin")}
    for name, body in data.items():
        (root / name).write_bytes(body)
    assert make_cli(tmp_path, emulator, [(root, REMOTE)]).sync().returncode == 0
    ids = {rel: int(item["fileId"]) for rel, item in remote_files(api, REMOTE).items()}
    emulator.corrupt_next_download(ids["corrupt.bin"])
    emulator.drop_next_download(ids["cut.bin"], after_bytes=100_000)
    emulator.corrupt_next_download(ids["bad.bin"], times=None)  # wrong every time
    cli = restore_cli(tmp_path, emulator)
    target = tmp_path / "restored"
    r = restore(cli, "--root", REMOTE, "--to", str(target))
    emulator.clear_faults()
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED bad.bin: download failed after" in r.stderr
    assert "3 restored" in summary(r) and "1 failed" in summary(r)
    for name in ("corrupt.bin", "cut.bin", "ok.bin"):
        assert (target / name).read_bytes() == data[name]
    assert not (target / "bad.bin").exists()
    assert _parts(target) == []


def _upload_catalog(api: Api, entries: list[Entry]) -> None:
    """A newer catalog object with ``entries``, as a hostile or buggy writer could leave."""
    root_id = folder_id(api, REMOTE)
    folder = next(
        int(i["fileId"])
        for i in api.listing(root_id)
        if i["filename"] == CATALOG_DIR and not i["trashed"]
    )
    blob = encode(Header("evil", "/x", REMOTE, time.time()), entries)
    name = "catalog-29991231T235959000000-00000000.jsonl.gz"
    api.ok(api.single(name, blob, parent=folder, duplicate=2))


def test_catalog_paths_and_remote_names_that_escape_write_nothing_outside(
    tmp_path: Path, emulator: Any, api: Api
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "good.txt").write_bytes(b"good\n")
    assert make_cli(tmp_path, emulator, [(root, REMOTE)]).sync().returncode == 0
    good = remote_files(api, REMOTE)["good.txt"]
    fid, etag = int(good["fileId"]), str(good["etag"])

    def content(path: str) -> Entry:
        return Entry(path, "file", 5, etag, OLD * 10**9, 0o644, fid, "good.txt")

    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "jail" / "restored"
    target.mkdir(parents=True)
    (target / "pre").symlink_to(outside)  # a link already on disk, pointing out
    _upload_catalog(
        api,
        [
            content("good.txt"),
            content("../escaped.txt"),
            content("../../escaped.txt"),
            content(str(outside / "absolute.txt")),
            content("ok/../../escaped2.txt"),
            content("pre/through-link.txt"),
            Entry("up", "symlink", target=b"../.."),
            content("up/through-new-link.txt"),
            Entry("abs-link", "symlink", target=str(outside).encode()),
        ],
    )
    cli = restore_cli(tmp_path, emulator)
    before = sorted(p for p in tmp_path.rglob("*") if target not in p.parents)
    r = restore(cli, "--root", REMOTE, "--to", str(target))
    assert r.returncode == 1, r.stdout + r.stderr
    after = sorted(p for p in tmp_path.rglob("*") if target not in p.parents)
    new = [p for p in after if p not in before and "newhome" not in p.parts]
    assert new == [], new
    assert list(outside.iterdir()) == []
    assert (target / "good.txt").read_bytes() == b"good\n"
    for refused in (
        "../escaped.txt",
        "ok/../../escaped2.txt",
        "pre/through-link.txt",
        "up/through-new-link.txt",
        "abs-link",
    ):
        assert f"refused {refused}" in r.stderr, (refused, r.stderr)
    assert not (target / "up").is_symlink() and not (target / "abs-link").is_symlink()

    # without a catalog, a remote folder named ".." is refused too
    root_id = folder_id(api, REMOTE)
    catalog = next(i for i in api.listing(root_id) if i["filename"] == CATALOG_DIR)
    api.ok(api.post("/api/v1/file/trash", {"fileIDs": [int(catalog["fileId"])]}))
    # (the emulator takes ".." as a folder name; whether 123pan does is not documented)
    dotdot = int(
        api.ok(api.post("/upload/v1/file/mkdir", {"name": "..", "parentID": root_id}))["dirID"]
    )
    api.ok(api.single("evil.txt", b"evil\n", parent=dotdot))
    r = restore(cli, "--root", REMOTE, "--to", str(target))
    assert r.returncode == 1 and "no catalog found" in r.stderr
    assert "refused ..: path has a '..' component" in r.stderr, r.stderr
    assert "refused ../evil.txt" in r.stderr, r.stderr
    assert list(outside.iterdir()) == [] and not (tmp_path / "jail" / "evil.txt").exists()


def test_without_a_catalog_every_file_comes_back_with_names_mapped_back(
    tmp_path: Path, emulator: Any, api: Api
) -> None:
    root = tmp_path / "root"
    (root / "dir:one").mkdir(parents=True)
    files = {
        "a?b.txt": b"question\n",
        "dir:one/x*y.txt": b"star\n",
        "plain.txt": b"plain\n",
        "中文 😀.txt": b"wide\n",
    }
    for rel, body in files.items():
        (root / rel).write_bytes(body)
    assert make_cli(tmp_path, emulator, [(root, REMOTE)]).sync().returncode == 0
    root_id = folder_id(api, REMOTE)
    catalog = next(i for i in api.listing(root_id) if i["filename"] == CATALOG_DIR)
    api.ok(api.post("/api/v1/file/trash", {"fileIDs": [int(catalog["fileId"])]}))

    cli = restore_cli(tmp_path, emulator, config=False)  # the environment alone
    target = tmp_path / "restored"
    r = restore(cli, "--root", REMOTE, "--to", str(target))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no catalog found" in r.stderr
    got = {
        p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*") if p.is_file()
    }
    assert got == files
    assert md5(got["plain.txt"]) == md5(b"plain\n")


def test_ls_lists_the_roots_and_restore_asks_which_one(tmp_path: Path, emulator: Any) -> None:
    for name in ("alpha", "beta"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.txt").write_bytes(name.encode())
    backup = Cli(tmp_path / "none.yaml", cli_env(tmp_path, emulator), tmp_path)
    done = backup.run("sync", str(tmp_path / "alpha"), str(tmp_path / "beta"))
    assert done.returncode == 0, done.stderr
    cli = restore_cli(tmp_path, emulator, config=False)
    ls = cli.run("ls")
    assert ls.returncode == 0, ls.stderr
    assert ls.stdout.split() == ["/syncagent/alpha", "/syncagent/beta"]
    which = restore(cli, "--to", str(tmp_path / "out"))
    assert (
        which.returncode == 2 and "choose one of: /syncagent/alpha, /syncagent/beta" in which.stderr
    )
    assert "Traceback" not in which.stderr
    one = restore(cli, "--root", "beta", "--to", str(tmp_path / "out"))
    assert one.returncode == 0, one.stderr
    assert (tmp_path / "out" / "beta.txt").read_bytes() == b"beta"
    unknown = restore(cli, "--root", "beta", "nope.txt", "--to", str(tmp_path / "out"))
    assert unknown.returncode == 2 and "nope.txt is not in the backup" in unknown.stderr


def test_without_credentials_restore_reads_the_embedded_emulator(tmp_path: Path) -> None:
    """As `sync` backs up to the embedded emulator without credentials, restore reads it."""
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a:b.txt").write_bytes(b"embedded\n")
    (folder / "empty").write_bytes(b"")
    cli = Cli(tmp_path / "none.yaml", cli_env(tmp_path, None), tmp_path)
    done = cli.run("sync", str(folder))
    assert done.returncode == 0, done.stderr
    r = cli.run("restore", "--root", "docs", "--to", str(tmp_path / "back"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "No 123pan credentials set: reading from the embedded local emulator" in r.stderr
    assert (tmp_path / "back" / "sub" / "a:b.txt").read_bytes() == b"embedded\n"
    assert (tmp_path / "back" / "empty").read_bytes() == b""
