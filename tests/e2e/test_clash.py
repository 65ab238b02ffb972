"""A file and a folder of one 123pan name: whatever of the other kind is in the way of an
upload is kept aside as a version (never trashed or deleted), and the upload goes on.

Runs the installed CLI against an emulator in the test process (``test_sync_cli.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import Api
from test_sync_cli import folder_id, make_cli, remote_files

from syncagent.catalog import CATALOG_DIR
from syncagent.emulator import Emulator

VERSIONS = f"{CATALOG_DIR}/versions"


def _live(api: Api, parent: int) -> dict[str, dict[str, Any]]:
    return {i["filename"]: i for i in api.listing(parent) if not i["trashed"]}


def _kv_versions(tmp: Path) -> list[dict[str, Any]]:
    import sqlite3

    with sqlite3.connect(tmp / "state" / "ledger.sqlite3") as db:
        rows = db.execute("SELECT value FROM kv WHERE key LIKE 'version.%'").fetchall()
    return [json.loads(v) for (v,) in rows]


def test_a_folder_made_in_the_web_app_at_a_files_name_is_kept_aside(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "report.txt").write_bytes(b"the report\n")
    api.login()
    backup = int(
        api.ok(api.post("/upload/v1/file/mkdir", {"name": "backup", "parentID": 0}))["dirID"]
    )
    web = int(
        api.ok(api.post("/upload/v1/file/mkdir", {"name": "report.txt", "parentID": backup}))[
            "dirID"
        ]
    )
    assert api.single("inside.txt", b"made in the web app\n", web)["code"] == 0
    cli = make_cli(tmp_path, emulator, [(root, "/backup")])

    first = cli.sync(timeout=60)

    assert first.returncode == 0, first.stderr[-3000:]
    files = remote_files(api, "/backup")
    assert list(files) == ["report.txt"]
    assert api.download(int(files["report.txt"]["fileId"])) == b"the report\n"
    kept = _live(api, folder_id(api, f"/backup/{VERSIONS}/report.txt"))
    assert len(kept) == 1
    ((name, item),) = kept.items()
    assert name.endswith("~report.txt") and int(item["fileId"]) == web  # the same folder, whole
    assert list(_live(api, web)) == ["inside.txt"]
    again = cli.sync(timeout=60)
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1].startswith("0 uploaded")


def test_a_file_in_the_way_of_a_folder_is_kept_as_a_version_of_the_local_path(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    """``x:y/`` locally maps to ``x：y`` on 123pan, where a file the ledger does not know
    stands: it is kept as a version of ``x:y`` (the local path), not of ``x：y``."""
    root = tmp_path / "root"
    (root / "x:y").mkdir(parents=True)
    (root / "x:y" / "f.txt").write_bytes(b"in the folder\n")
    api.login()
    backup = int(
        api.ok(api.post("/upload/v1/file/mkdir", {"name": "backup", "parentID": 0}))["dirID"]
    )
    old = api.single("x：y", b"an old file\n", backup)
    assert old["code"] == 0, old
    cli = make_cli(tmp_path, emulator, [(root, "/backup")])

    first = cli.sync(timeout=60)

    assert first.returncode == 0, first.stderr[-3000:]
    assert list(remote_files(api, "/backup")) == ["x：y/f.txt"]
    kept = _kv_versions(tmp_path)
    assert [(k["path"], k["remote_rel"], k["size"], k["done"]) for k in kept] == [
        ("x:y", "x：y", len(b"an old file\n"), True)
    ]
    in_versions = _live(api, folder_id(api, f"/backup/{VERSIONS}/x：y"))
    assert [n.split("~", 1)[1] for n in in_versions] == ["x：y"]
    again = cli.sync(timeout=60)
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1].startswith("0 uploaded")


def test_a_file_replaced_by_a_folder_keeps_its_old_copy_as_a_version(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "notes").write_bytes(b"notes as a file\n")
    cli = make_cli(tmp_path, emulator, [(root, "/backup")])
    assert cli.sync(timeout=60).returncode == 0
    old_id = int(remote_files(api, "/backup")["notes"]["fileId"])
    (root / "notes").unlink()
    (root / "notes").mkdir()
    (root / "notes" / "monday.txt").write_bytes(b"notes in a folder\n")

    second = cli.sync(timeout=60)

    assert second.returncode == 0, second.stderr[-3000:]
    assert list(remote_files(api, "/backup")) == ["notes/monday.txt"]
    in_versions = _live(api, folder_id(api, f"/backup/{VERSIONS}/notes"))
    assert [int(i["fileId"]) for i in in_versions.values()] == [old_id]  # not in the bin
    assert [(k["path"], k["md5"]) for k in _kv_versions(tmp_path)] == [
        ("notes", remote_md5(b"notes as a file\n"))
    ]
    ls = cli.run("ls", "--config", str(cli.config), "--versions", "notes", "--json")
    assert ls.returncode == 0, ls.stderr


def remote_md5(data: bytes) -> str:
    import hashlib

    return hashlib.md5(data).hexdigest()
