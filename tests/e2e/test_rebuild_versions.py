"""``syncagent db rebuild`` reads the cloud catalog: the previous versions it lists get their
ledger records back, so the next pass's catalog still lists them (installed CLI, emulator)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Api
from test_sync_cli import make_cli, summary

from syncagent.emulator import Emulator


def test_db_rebuild_keeps_the_versions_the_cloud_catalog_lists(
    tmp_path: Path, emulator: Emulator, api: Api
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    cli = make_cli(tmp_path, emulator, [(root, "/notes")])
    for n in range(1, 4):  # three contents: two previous versions
        (root / "notes.txt").write_bytes(b"notes, edition %d\n" % n * n)
        assert summary(cli.sync()).startswith("1 uploaded")

    def versions() -> list[dict[str, object]]:
        r = cli.run(
            "ls", "--config", str(cli.config), "--root", "/notes", "--versions", "notes.txt",
            "--json",
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        return list(json.loads(r.stdout)["versions"])

    assert len(versions()) == 3
    ledger = tmp_path / "state" / "ledger.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(str(ledger) + suffix).unlink(missing_ok=True)
    ledger.write_bytes(b"this is not a database" * 100)

    rebuilt = cli.run("db", "rebuild", "--config", str(cli.config))

    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "1 files adopted" in rebuilt.stdout, rebuilt.stdout
    assert "2 previous versions from the cloud catalog" in rebuilt.stdout, rebuilt.stdout
    (root / "notes.txt").write_bytes(b"notes, edition 4\n" * 4)
    assert summary(cli.sync()).startswith("1 uploaded")
    listed = versions()
    assert len(listed) == 4, listed  # three previous versions and the current file
    assert [v["current"] for v in listed] == [False, False, False, True]
