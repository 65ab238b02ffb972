"""Versions, retention and restoring history, as a user runs them: the installed CLI against
the emulator, whose ``duplicate=2`` destroys the replaced file (its default): whatever
history survives is what syncagent itself kept.

A file is written in each of five passes (created, then edited four times): five versions
are listed (four kept, plus the current one), ``restore --at`` the end of each pass gives
that pass's bytes from a machine with no ledger, and retention sends exactly the oldest
versions to the recycle bin.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from conftest import Api
from test_restore_cli import restore, restore_cli
from test_sync_cli import Cli, cli_env, config_text, folder_id

from syncagent.catalog import CATALOG_DIR

REMOTE = "/backup/hist"


def _cli(tmp: Path, emulator: Any, root: Path, versions: str | None) -> Cli:
    text = config_text(tmp, [(root, REMOTE)])
    if versions is not None:
        text = text.replace(f"    remote: {json.dumps(REMOTE)}\n", "", 1)
        text = text.replace(
            "roots:\n", f"roots:\n  - remote: {json.dumps(REMOTE)}\n    versions: {versions}\n", 1
        )
        text = text.replace("\n  - local:", "\n    local:", 1)
    config = tmp / "sync.yaml"
    config.write_text(text, encoding="utf-8")
    return Cli(config, cli_env(tmp, emulator), tmp)


def _five_passes(cli: Cli, root: Path) -> tuple[list[bytes], list[float]]:
    contents: list[bytes] = []
    ends: list[float] = []
    for n in range(1, 6):
        data = f"pass {n}\n".encode() * n
        (root / "notes.txt").write_bytes(data)
        result = cli.sync()
        assert result.returncode == 0, result.stderr[-3000:]
        contents.append(data)
        ends.append(time.time())
    return contents, ends


def _versions_folder(api: Api) -> list[dict[str, Any]]:
    return api.listing(folder_id(api, f"{REMOTE}/{CATALOG_DIR}/versions/notes.txt"))


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_five_passes_give_five_versions_each_restorable_at_its_time(
    tmp_path: Path, emulator: Any, api: Api
) -> None:
    assert emulator.settings.overwrite_old == "destroy"  # the strict default
    root = tmp_path / "root"
    root.mkdir()
    (root / "other.txt").write_bytes(b"never changes\n")
    backup = _cli(tmp_path, emulator, root, None)
    contents, ends = _five_passes(backup, root)

    kept = [i for i in _versions_folder(api) if not i["trashed"]]
    assert sorted(i["etag"] for i in kept) == sorted(_md5(c) for c in contents[:4])
    assert all(i["filename"].endswith("Z~notes.txt") for i in kept)

    cli = restore_cli(tmp_path, emulator)  # a machine with no ledger
    ls = cli.run("ls", "--config", str(cli.config), "--root", REMOTE, "--versions", "notes.txt")
    assert ls.returncode == 0, ls.stderr
    js = cli.run(
        "ls", "--config", str(cli.config), "--root", REMOTE, "--versions", "notes.txt", "--json"
    )
    listed = json.loads(js.stdout)["versions"]
    assert [v["md5"] for v in listed] == [_md5(c) for c in contents]
    assert [v["current"] for v in listed] == [False] * 4 + [True]
    assert len(ls.stdout.strip().splitlines()) == 5

    for n, (data, end) in enumerate(zip(contents, ends, strict=True), 1):
        target = tmp_path / f"at{n}"
        at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(end)) + f".{int(end % 1 * 1e6):06d}Z"
        r = restore(cli, "--root", REMOTE, "--to", str(target), "--at", at)
        assert r.returncode == 0, r.stdout + r.stderr
        assert (target / "notes.txt").read_bytes() == data, n
        assert (target / "other.txt").read_bytes() == b"never changes\n"

    target = tmp_path / "v2"
    r = restore(cli, "--root", REMOTE, "notes.txt", "--version", "2", "--to", str(target))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (target / "notes.txt").read_bytes() == contents[1]

    before = tmp_path / "before"  # before the first pass ended: the file had no backup yet
    r = restore(cli, "--root", REMOTE, "--to", str(before), "--at", str(ends[0] - 3600))
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (before / "notes.txt").exists()


def test_retention_keeps_the_newest_and_trashes_exactly_the_rest(
    tmp_path: Path, emulator: Any, api: Api
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    backup = _cli(tmp_path, emulator, root, "{keep: 2}")
    contents, _ = _five_passes(backup, root)
    items = _versions_folder(api)
    live = sorted(i["etag"] for i in items if not i["trashed"])
    binned = sorted(i["etag"] for i in items if i["trashed"])
    assert live == sorted(_md5(c) for c in contents[2:4])
    assert binned == sorted(_md5(c) for c in contents[:2])  # in the recycle bin, not deleted

    cli = restore_cli(tmp_path, emulator)
    js = cli.run(
        "ls", "--config", str(cli.config), "--root", REMOTE, "--versions", "notes.txt", "--json"
    )
    assert [v["md5"] for v in json.loads(js.stdout)["versions"]] == [_md5(c) for c in contents[2:]]


def test_versions_off_replaces_plainly(tmp_path: Path, emulator: Any, api: Api) -> None:
    root = tmp_path / "root"
    root.mkdir()
    backup = _cli(tmp_path, emulator, root, "off")
    _five_passes(backup, root)
    hist = folder_id(api, f"{REMOTE}/{CATALOG_DIR}")
    assert not [i for i in api.listing(hist) if i["filename"] == "versions"]


def test_keep_days_trashes_versions_older_than_that(
    tmp_path: Path, emulator: Any, api: Api
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    # 1e-9 days is 86 µs: every version is older than that once the pass that kept it has
    # uploaded and verified the new content (two HTTP round trips), when retention runs
    backup = _cli(tmp_path, emulator, root, "{keep_days: 0.000000001}")
    contents, _ = _five_passes(backup, root)
    items = _versions_folder(api)
    assert not [i for i in items if not i["trashed"]]
    assert sorted(i["etag"] for i in items) == sorted(_md5(c) for c in contents[:4])
    top = api.listing(folder_id(api, REMOTE))
    assert [(i["filename"], i["etag"]) for i in top if i["filename"] == "notes.txt"] == [
        ("notes.txt", _md5(contents[4]))
    ]
