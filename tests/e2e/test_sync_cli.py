"""``syncagent sync`` and ``status`` run as a user runs them: the installed CLI in a subprocess,
backing up real folders to an emulator started in the test process.

Everything is checked from the outside: the remote tree is walked and downloaded with plain
HTTP (the ``Api`` helper of ``conftest.py``, not syncagent's client), upload requests are counted
by the emulator, and the ledger is read through ``status --json``.

The helpers at the top (``Cli``, ``make_cli``, ``remote_files``...) are also used by
``test_sync_hostile.py`` and ``test_sync_config_errors.py``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Api, md5

from syncagent.catalog import CATALOG_DIR
from syncagent.catalog.remote import NAME as CATALOG_NAME
from syncagent.emulator import Emulator
from syncagent.emulator.catalog import Entry

BIN = Path(sys.executable).parent / "syncagent"
FOLDER = 1  # the "type" of a folder in a 123pan listing
UPLOAD_ENDPOINTS = (
    "upload/v2/file/single/create",
    "upload/v2/file/create",
    "upload/v2/file/slice",
    "upload/v2/file/upload_complete",
)
SLICE = 256 * 1024  # the emulator's sliceSize in these tests (configured per test)


# -- helpers shared by the e2e sync tests ---------------------------------------------------


def config_text(
    tmp: Path,
    roots: Sequence[tuple[Path, str]],
    *,
    workers: int = 4,
    names: str | None = None,
) -> str:
    """A sync.yaml with everything under ``tmp``; paths are JSON strings (valid YAML)."""
    lines = ["roots:"]
    for local, remote in roots:
        lines += [f"  - local: {json.dumps(str(local))}", f"    remote: {json.dumps(remote)}"]
    state = tmp / "state"
    lines += [
        f"state_dir: {json.dumps(str(state))}",
        f"ledger: {{url: {json.dumps('sqlite:///' + str(state / 'ledger.sqlite3'))}}}",
        "stability: {quiet: 0s}",
        "limits: {qps: off}",  # a bare `off` (YAML 1.1 reads it as false) must work
        "upload:",
        "  single_threshold: 256KiB",
        f"  workers: {workers}",
    ]
    if names is not None:
        lines.append(f"  names: {names}")
    return "\n".join(lines) + "\n"


def cli_env(home: Path, emulator: Emulator | None) -> dict[str, str]:
    """The environment of a CLI run: HOME in the test's tmp dir, credentials of ``emulator``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAN123_", "SYNCAGENT_"))}
    env.update(HOME=str(home), XDG_STATE_HOME=str(home / ".xdg-state"), LC_ALL="C.UTF-8")
    env.update(XDG_DATA_HOME=str(home / ".xdg-data"), XDG_CONFIG_HOME=str(home / ".xdg-config"))
    if emulator is not None:
        env.update(
            PAN123_CLIENT_ID=emulator.client_id,
            PAN123_CLIENT_SECRET=emulator.client_secret,
            PAN123_API_BASE=emulator.api_url,
        )
    return env


@dataclass
class Cli:
    """Runs the installed ``syncagent`` with one config and environment."""

    config: Path
    env: dict[str, str]
    cwd: Path
    wrapper: tuple[str, ...] = ()  # e.g. a privilege-dropping launcher

    def argv(self, *args: str) -> list[str]:
        return [*self.wrapper, str(BIN), *args]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
        )

    def sync(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.run("sync", "--config", str(self.config), *args, timeout=timeout)

    def popen_sync(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv("sync", "--config", str(self.config)),
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )

    def status(self) -> dict[str, Any]:
        r = self.run("status", "--json", "--config", str(self.config), timeout=60)
        assert r.returncode == 0, r.stderr
        return dict(json.loads(r.stdout))

    def status_text(self) -> str:
        r = self.run("status", "--config", str(self.config), timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout


def make_cli(
    tmp: Path,
    emulator: Emulator,
    roots: Sequence[tuple[Path, str]],
    *,
    workers: int = 4,
    names: str | None = None,
) -> Cli:
    config = tmp / "sync.yaml"
    config.write_text(config_text(tmp, roots, workers=workers, names=names), encoding="utf-8")
    return Cli(config, cli_env(tmp, emulator), tmp)


def summary(result: subprocess.CompletedProcess[str]) -> str:
    """The CLI's last stdout line: ``N uploaded (...), N unchanged, ...; hashed N files``."""
    lines = result.stdout.strip().splitlines()
    assert lines, (result.returncode, result.stderr[-3000:])
    return lines[-1]


def upload_calls(emulator: Emulator) -> dict[str, int]:
    endpoints = emulator.activity()["endpoints"]
    return {name: int(endpoints.get(name, {}).get("calls", 0)) for name in UPLOAD_ENDPOINTS}


def folder_id(api: Api, remote_path: str) -> int:
    """The ID of an existing remote folder, by its absolute path."""
    current = 0
    for part in remote_path.strip("/").split("/"):
        found = [
            i
            for i in api.listing(current)
            if i["filename"] == part and i["type"] == FOLDER and not i["trashed"]
        ]
        assert len(found) == 1, (remote_path, part, found)
        current = int(found[0]["fileId"])
    return current


def remote_files(api: Api, remote_path: str) -> dict[str, dict[str, Any]]:
    """Every file under ``remote_path`` that is not in the recycle bin, by relative path;
    syncagent's own catalog folder (``.syncagent`` at the top) is left out.

    Fails on a name listed twice in one folder (a duplicate upload).
    """
    files: dict[str, dict[str, Any]] = {}
    folders = [("", folder_id(api, remote_path))]
    while folders:
        prefix, parent = folders.pop()
        seen: set[str] = set()
        for item in api.listing(parent):
            if item["trashed"]:
                continue
            name = str(item["filename"])
            assert name not in seen, f"{prefix}{name} is listed twice"
            seen.add(name)
            if item["type"] == FOLDER:
                if not (prefix == "" and name == CATALOG_DIR):
                    folders.append((f"{prefix}{name}/", int(item["fileId"])))
            else:
                files[prefix + name] = item
    return files


def catalog_objects(emulator: Emulator) -> list[Entry]:
    """Every catalog object on the emulator's drive, the ones since trashed too: each was one
    single-step upload (see syncagent.catalog). Read from the emulator's own store: no
    request, no token (a token minted here could push the agent's out: 3 per client)."""
    found = emulator.core.catalog.search("catalog-", False, 0, 1_000_000)
    return [e for e in found if e.type == 0 and CATALOG_NAME.fullmatch(e.name)]


def file_uploads(emulator: Emulator) -> int:
    """Single-step uploads the emulator took, catalog objects left out."""
    singles = int(emulator.activity()["counts"].get("single_uploads", 0))
    return singles - len(catalog_objects(emulator))


def catalog_item(api: Api, remote_path: str) -> dict[str, Any]:
    """The one live catalog object of a root (see syncagent.catalog)."""
    folder = folder_id(api, f"{remote_path}/{CATALOG_DIR}")
    (item,) = [i for i in api.listing(folder) if not i["trashed"]]
    return item


def local_files(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` (no links), by POSIX relative path."""
    out: dict[str, bytes] = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_file() and not path.is_symlink():
                out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def assert_same_tree(
    api: Api, remote_path: str, local: dict[str, bytes], download: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The remote tree has exactly ``local``'s paths, sizes and MD5s; ``download`` (default:
    all) are downloaded and compared byte for byte. Returns the remote items."""
    remote = remote_files(api, remote_path)
    assert sorted(remote) == sorted(local), (
        f"missing remotely: {sorted(set(local) - set(remote))[:10]}, "
        f"unexpected: {sorted(set(remote) - set(local))[:10]}"
    )
    wrong = [
        rel
        for rel, data in local.items()
        if (remote[rel]["size"], remote[rel]["etag"]) != (len(data), md5(data))
    ]
    assert not wrong, f"{len(wrong)} files differ in size or etag, e.g. {wrong[:5]}"
    for rel in local if download is None else download:
        assert api.download(int(remote[rel]["fileId"])) == local[rel], rel
    return remote


# -- the 2,000-file tree ----------------------------------------------------------------------


def build_tree(root: Path) -> None:
    """40 folders x 50 files (some 2-3 levels deep, distinct content) + 3 multi-slice files."""
    rng = random.Random(4)
    for d in range(40):
        folder = root / f"dir{d:02d}"
        if d % 4 == 1:
            folder = folder / "level2"
        elif d % 4 == 2:
            folder = folder / "level2" / "level3"
        folder.mkdir(parents=True)
        for f in range(50):
            body = f"file {d}/{f}\n".encode() * rng.randint(1, 40)
            (folder / f"file{f:02d}.txt").write_bytes(body)
    for i, size in enumerate((SLICE * 4, SLICE * 3 + 1234, SLICE * 2 + 1)):
        (root / f"big{i}.bin").write_bytes(rng.randbytes(size))


@dataclass
class FirstPass:
    emulator: Emulator
    api: Api
    cli: Cli
    root: Path
    result: subprocess.CompletedProcess[str]
    seconds: float
    status: dict[str, Any]
    activity: dict[str, Any]


REMOTE = "/backup/tree"


@pytest.fixture(scope="module")
def first_pass(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstPass]:
    """One emulator for the three 2,000-file tests, after one pass over the fresh tree.

    The tests that follow it may change the tree, but each leaves it fully backed up, so they
    hold in any order.
    """
    tmp = tmp_path_factory.mktemp("tree")
    root = tmp / "root"
    build_tree(root)
    with Emulator.temporary(rate_limits="off", complete_pending_polls=0) as emu:
        emu.configure(slice_size=SLICE)
        api = Api(emu)
        try:
            cli = make_cli(tmp, emu, [(root, REMOTE)], workers=6)
            t0 = time.monotonic()
            result = cli.sync()
            seconds = time.monotonic() - t0
            yield FirstPass(emu, api, cli, root, result, seconds, cli.status(), emu.activity())
        finally:
            api.close()


@pytest.fixture
def tree(first_pass: FirstPass) -> Iterator[FirstPass]:
    """The module's tree; the test's HTTP connections are closed when it ends (an open
    keep-alive connection keeps an emulator thread alive, which the leak check waits for)."""
    yield first_pass
    for adapter in first_pass.api.http.adapters.values():
        adapter.poolmanager.clear()  # type: ignore[attr-defined]


@pytest.mark.slow
def test_first_pass_recreates_the_tree_with_the_same_content(tree: FirstPass) -> None:
    fp = tree
    assert fp.result.returncode == 0, fp.result.stderr[-3000:]
    assert summary(fp.result).startswith("2003 uploaded"), summary(fp.result)
    assert "0 failed" in summary(fp.result)
    assert fp.seconds < 60, f"the first pass took {fp.seconds:.1f} s"
    counts = fp.activity["counts"]
    # 2,000 single-step uploads (+ the catalog) and 3 chunked ones, each of several slices.
    assert counts["single_uploads"] == 2000 + 1, counts
    assert counts["chunked_uploads"] == 3, counts
    assert sorted(len(s) for s in fp.activity["slices"].values()) == [3, 4, 4]
    roots = fp.status["roots"]
    assert len(roots) == 1 and roots[0]["counts"] == {"done": 2003}, roots
    assert roots[0]["bytes_pending"] == 0 and roots[0]["problems"] == []
    assert fp.status["last_pass"]["result"] == "ok"
    # Every file: same relative path, size and MD5; every one downloaded and compared.
    local = local_files(fp.root)
    assert len(local) == 2003
    remote = assert_same_tree(fp.api, REMOTE, local)
    assert "dir02/level2/level3/file49.txt" in remote


def test_second_pass_sends_nothing_and_hashes_nothing(tree: FirstPass) -> None:
    fp = tree
    assert fp.result.returncode == 0, fp.result.stderr[-3000:]
    before = upload_calls(fp.emulator)
    result = fp.cli.sync()
    assert result.returncode == 0, result.stderr[-3000:]
    line = summary(result)
    assert line.startswith("0 uploaded"), line
    assert line.endswith("hashed 0 files"), line
    assert " 0 failed" in line
    assert upload_calls(fp.emulator) == before
    assert fp.cli.status()["last_pass"]["uploaded"] == 0


def test_ten_edits_and_five_new_files_send_exactly_those_fifteen(tree: FirstPass) -> None:
    fp = tree
    assert fp.result.returncode == 0, fp.result.stderr[-3000:]
    ids_before = {rel: item["fileId"] for rel, item in remote_files(fp.api, REMOTE).items()}
    root = fp.root
    edited = [
        "dir00/file00.txt",  # longer
        "dir03/file10.txt",  # shorter
        "dir05/level2/file20.txt",
        "dir06/level2/level3/file30.txt",
        "dir10/level2/level3/file31.txt",
        "dir20/file40.txt",
        "dir33/level2/file41.txt",
        "dir39/file49.txt",
        "big1.bin",  # a chunked upload again
    ]
    for i, rel in enumerate(edited):
        path = root / rel
        old = path.read_bytes()
        path.write_bytes(old[: len(old) // 2] if i == 1 else old + f"edit {i}\n".encode())
    # Same size and content, later mtime: hashed again, and not sent (its recorded MD5).
    touched = "dir13/level2/file05.txt"
    st = (root / touched).stat()
    os.utime(root / touched, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    added = [
        "new0.txt",
        "dir07/new1.txt",
        "dir08/level2/new2.txt",
        "fresh/deep/er/new3.txt",
        "fresh/new4.bin",
    ]
    for i, rel in enumerate(added):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(
            random.Random(i).randbytes(SLICE + 7) if rel.endswith(".bin") else b"new %d\n" % i
        )
    changed = {*edited, touched, *added}
    assert len(changed) == 15

    before = upload_calls(fp.emulator)
    result = fp.cli.sync()
    assert result.returncode == 0, result.stderr[-3000:]
    line = summary(result)
    assert line.startswith("14 uploaded"), line
    assert line.endswith("hashed 15 files"), line
    after = upload_calls(fp.emulator)
    # One upload request per changed file: single-step, or V2 create for the two big ones;
    # and the root's new catalog.
    sent = {k: after[k] - before[k] for k in UPLOAD_ENDPOINTS}
    assert sent["upload/v2/file/single/create"] == 12 + 1, sent
    assert sent["upload/v2/file/create"] == 2, sent

    local = local_files(root)
    remote = assert_same_tree(fp.api, REMOTE, local, download=sorted(changed))
    # Exactly the 14 with new content got a new remote file; every other kept its file ID.
    replaced = {rel for rel, item in remote.items() if ids_before.get(rel) != item["fileId"]}
    assert replaced == changed - {touched}
    assert fp.cli.status()["roots"][0]["counts"] == {"done": 2008}


# -- killed mid-pass ------------------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_mid_pass_then_a_new_pass_leaves_no_duplicate_and_no_partial_file(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    root = tmp_path / "root"
    rng = random.Random(9)
    for d in range(30):
        (root / f"d{d:02d}").mkdir(parents=True)
        for f in range(50):
            (root / f"d{d:02d}" / f"f{f:02d}.txt").write_bytes(rng.randbytes(rng.randint(1, 900)))
    # Top-level files are scanned (and so sent) first: these two are in flight early.
    for i in range(2):
        (root / f"big{i}.bin").write_bytes(rng.randbytes(SLICE * 10 + 99))
    local = local_files(root)
    emulator.configure(slice_size=SLICE)
    emulator.add_latency("upload/v2/file/single/create", 0.01)
    emulator.add_latency("upload/v2/file/slice", 1.0)
    # The two chunked uploads cannot complete while this holds ("still verifying", polled):
    # however slow the machine, the kill lands before they are done.
    emulator.fail_next("upload/v2/file/upload_complete", None, code=20103)
    cli = make_cli(tmp_path, emulator, [(root, "/backup/killed")])

    proc = cli.popen_sync()
    try:
        # Kill once the ledger holds some files (a verified batch is recorded) and slices of
        # the big files have arrived: conditions, not counts that a batch size can outrun.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if any(emulator.activity()["slices"].values()):
                counts = cli.status()["roots"]
                if counts and counts[0]["counts"].get("done", 0) > 0:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, "the pass finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed_at = emulator.activity()["counts"]
    assert killed_at.get("chunked_uploads", 0) == 0, killed_at  # killed mid-upload
    assert 0 < killed_at["single_uploads"] <= 1500, killed_at
    counts_before = cli.status()["roots"][0]["counts"]
    # recorded: verified (done), or accepted by 123pan and verified by the next pass
    done_before = counts_before.get("done", 0) + counts_before.get("uploaded", 0)
    assert 0 < done_before < 1502

    emulator.clear_faults()
    result = cli.sync()
    assert result.returncode == 0, result.stderr[-3000:]
    line = summary(result)
    assert line.startswith(f"{1502 - done_before} uploaded"), line
    assert f"{done_before} unchanged" in line, line
    # Each file exactly once among the live items, with its full size and MD5.
    big = [rel for rel in local if rel.startswith("big")]
    assert_same_tree(api, "/backup/killed", local, download=[*big, *sorted(local)[:50]])
    assert cli.status()["roots"][0]["counts"] == {"done": 1502}
    # The two interrupted chunked uploads were resumed (their sessions are in the ledger),
    # not started again.
    counts = emulator.activity()["counts"]
    assert (counts["preuploads"], counts["chunked_uploads"]) == (2, 2), counts


def test_renaming_a_folder_and_moving_files_sends_no_file_bytes(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    emulator.configure(slice_size=SLICE)
    root = tmp_path / "root"
    photos = root / "photos"
    (photos / "2024").mkdir(parents=True)
    for i in range(100):
        (photos / ("2024" if i % 2 else "") / f"p{i:03d}.jpg").write_bytes(f"photo {i}".encode())
    (root / "notes").mkdir()
    (root / "notes" / "a.txt").write_text("note a")
    (root / "loose.txt").write_text("loose")
    cli = make_cli(tmp_path, emulator, [(root, "/renames")])
    assert cli.sync().returncode == 0
    received = emulator.activity()["counts"].get("bytes_received", 0)
    calls_before = upload_calls(emulator)

    photos.rename(root / "pictures")  # a folder of 100 files
    (root / "notes" / "a.txt").rename(root / "notes" / "b.txt")  # a file renamed
    (root / "loose.txt").rename(root / "notes" / "loose.txt")  # a file moved
    result = cli.sync()
    assert result.returncode == 0, result.stderr[-2000:]
    assert "102 moved" in summary(result), summary(result)
    # The two files renamed themselves are read to confirm their content (a new file on a
    # reused inode would look the same); the folder's 100 keep their ctime: not read.
    assert "hashed 2 files" in summary(result)
    # no file bytes: only the root's new catalog was sent
    catalog = int(catalog_item(api, "/renames")["size"])
    assert emulator.activity()["counts"].get("bytes_received", 0) == received + catalog
    calls_before["upload/v2/file/single/create"] += 1  # the catalog
    assert upload_calls(emulator) == calls_before
    assert_same_tree(api, "/renames", local_files(root))
    top = _live_names(api, "/renames")
    assert top == {"pictures", "notes"}  # the folder itself moved: no empty "photos" is left
    # the next pass has nothing to do
    assert summary(cli.sync()).startswith("0 uploaded")


def _mode_cli(tmp: Path, emulator: Emulator, root: Path, mode: str, max_deletes: int) -> Cli:
    cli = make_cli(tmp, emulator, [(root, f"/{mode}")])
    text = cli.config.read_text().replace(
        f'    remote: "/{mode}"\n',
        f'    remote: "/{mode}"\n    mode: {mode}\n    max_deletes: {max_deletes}\n',
    )
    cli.config.write_text(text)
    return cli


def _live_names(api: Api, remote: str) -> set[str]:
    """The live names at the top of a root, syncagent's catalog folder left out."""
    items = api.listing(folder_id(api, remote))
    return {i["filename"] for i in items if not i["trashed"]} - {CATALOG_DIR}


def test_archive_mode_deletes_change_nothing_remote(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    for i in range(3):
        (root / f"f{i}.txt").write_text(f"file {i}")
    cli = _mode_cli(tmp_path, emulator, root, "archive", 100)
    assert cli.sync().returncode == 0
    (root / "f0.txt").unlink()
    assert cli.sync().returncode == 0
    assert _live_names(api, "/archive") == {"f0.txt", "f1.txt", "f2.txt"}


def test_mirror_mode_trashes_deleted_files_with_guards(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    for i in range(6):
        (root / f"f{i}.txt").write_text(f"file {i}")
    cli = _mode_cli(tmp_path, emulator, root, "mirror", 2)
    assert cli.sync().returncode == 0
    (root / "f0.txt").unlink()
    result = cli.sync()
    assert result.returncode == 0
    assert "1 files deleted locally were kept as versions" in result.stdout
    assert _live_names(api, "/mirror") == {f"f{i}.txt" for i in range(1, 6)}
    # kept under .syncagent/versions (not the recycle bin, which empties itself)
    assert not [i for i in api.listing(folder_id(api, "/mirror")) if i["trashed"]]
    kept = api.listing(folder_id(api, f"/mirror/{CATALOG_DIR}/versions/f0.txt"))
    assert [i["filename"].endswith("Z~f0.txt") and not i["trashed"] for i in kept] == [True]
    # more deletions than max_deletes: refused, nothing trashed
    for i in (1, 2, 3):
        (root / f"f{i}.txt").unlink()
    result = cli.sync()
    assert "more than max_deletes" in result.stderr
    assert _live_names(api, "/mirror") == {f"f{i}.txt" for i in range(1, 6)}
    # an emptied root (or an unmounted one) trashes nothing either
    for f in root.iterdir():
        f.unlink()
    result = cli.sync()
    assert "missing, empty or not mounted" in result.stderr
    assert _live_names(api, "/mirror") == {f"f{i}.txt" for i in range(1, 6)}


def test_move_mode_deletes_the_local_file_after_a_verified_upload(
    emulator: Emulator, api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "outbox"
    root.mkdir()
    (root / "a.txt").write_text("to the cloud")
    cli = _mode_cli(tmp_path, emulator, root, "move", 100)
    result = cli.sync()
    assert result.returncode == 0 and "1 files deleted locally after upload" in result.stdout
    assert not (root / "a.txt").exists()
    assert _live_names(api, "/move") == {"a.txt"}
    assert cli.sync().returncode == 0  # the gone file is not trashed remotely
    assert _live_names(api, "/move") == {"a.txt"}


def test_backing_up_a_home_folder_never_sends_syncagents_own_files(tmp_path: Path) -> None:
    """`syncagent sync ~` holds the default state dir (token, ledger) and the embedded
    emulator's data: none of it may be uploaded (the token is a secret, and they change on
    every pass), and a second pass must find nothing to do."""
    home = tmp_path / "home"
    (home / "docs").mkdir(parents=True)
    (home / "docs" / "a.txt").write_text("mine")
    (home / "b.txt").write_text("mine too")
    env = cli_env(home, None)  # no credentials: the embedded emulator, its data under home
    assert env["XDG_STATE_HOME"].startswith(str(home))
    run = [str(BIN), "sync", str(home)]
    first = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]
    assert summary(first).startswith("2 uploaded"), summary(first)
    assert "token.json" not in first.stderr and ".sqlite3" not in first.stderr
    again = subprocess.run(run, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert summary(again) == (
        "0 uploaded (0.0 MB), 0 moved, 2 unchanged, 0 skipped, 0 failed; hashed 0 files"
    )
    assert any((home / ".xdg-state").rglob("token.json"))  # it was there to be sent


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_a_pass_at_once_and_the_next_one_sends_the_rest(
    emulator: Emulator, api: Api, tmp_path: Path, signum: int
) -> None:
    root = tmp_path / "root"
    for i in range(2000):
        (root / f"d{i % 20}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 20}" / f"f{i}.txt").write_text(f"file {i}")
    cli = make_cli(tmp_path, emulator, [(root, "/stopped")])
    proc = subprocess.Popen(
        [str(BIN), "sync", "--config", str(cli.config)],
        env=cli.env,
        cwd=cli.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while emulator.activity()["counts"].get("single_uploads", 0) < 100:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    t0 = time.monotonic()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=20)
    assert time.monotonic() - t0 < 5  # not after the whole queue
    assert proc.returncode == 128 + signum, err[-2000:]
    assert "interrupted by" in err and "Traceback" not in err
    first = int(out.strip().splitlines()[-1].split()[0])
    assert 100 <= first < 2000
    rest = cli.sync()
    assert rest.returncode == 0 and summary(rest).startswith(f"{2000 - first} uploaded")
    assert_same_tree(api, "/stopped", local_files(root), download=[])  # each once, no partial
