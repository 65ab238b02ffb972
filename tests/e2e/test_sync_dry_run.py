"""``syncagent sync --dry-run`` changes nothing (issue 9): no ledger is created, migrated or
written, no embedded emulator starts, no token is fetched, nothing appears under HOME.

The installed CLI runs in a subprocess; every file under the test's HOME (state and data
dirs included) is listed with its size and mtime before and after the dry run.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

from test_sync_cli import BIN, Cli, cli_env, make_cli
from test_sync_hostile import unreadable_launcher

from syncagent.emulator import Emulator


def _snapshot(home: Path, skip: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``home`` but ``skip`` (the backed-up root): (size, mtime_ns)."""
    found: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(home):
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        for name in [*dirnames, *filenames]:
            st = os.lstat(Path(dirpath, name))
            found[str(Path(dirpath, name).relative_to(home))] = (st.st_size, st.st_mtime_ns)
    return found


def _tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.txt").write_text("bravo")


def _dry_run(argv: list[str], home: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), "sync", "--dry-run", *argv],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_dry_run_on_a_fresh_install_creates_nothing_and_starts_no_emulator(
    tmp_path: Path,
) -> None:
    root = tmp_path / "docs"
    _tree(root)
    before = _snapshot(tmp_path, root)
    result = _dry_run([str(root)], tmp_path, cli_env(tmp_path, None))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [
        f"{root} -> /syncagent/docs",
        "  upload (new) a.txt -> a.txt",
        "  upload (new) sub/b.txt -> sub/b.txt",
        "  0 unchanged",
    ]
    assert "emulator" not in result.stderr, result.stderr
    assert _snapshot(tmp_path, root) == before  # no ledger, state dir or emulator data dir


def test_a_dry_run_after_a_sync_reads_the_ledger_and_writes_nothing(
    emulator: Emulator, tmp_path: Path
) -> None:
    root = tmp_path / "docs"
    _tree(root)
    cli = make_cli(tmp_path, emulator, [(root, "/backup/docs")])
    assert cli.sync(timeout=60).returncode == 0
    (root / "c.txt").write_text("charlie")
    (root / "a.txt").write_text("alpha, edited")
    calls = sum(e["calls"] for e in emulator.activity()["endpoints"].values())
    for env in (cli.env, cli_env(tmp_path, None)):  # the test's emulator, then none at all
        before = _snapshot(tmp_path, root)
        result = _dry_run(["--config", str(cli.config)], tmp_path, env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.splitlines() == [
            f"{root} -> /backup/docs",
            "  upload (changed) a.txt -> a.txt",
            "  upload (new) c.txt -> c.txt",
            "  1 unchanged",
        ]
        assert _snapshot(tmp_path, root) == before
    # no request at all: no token fetched, nothing listed
    assert sum(e["calls"] for e in emulator.activity()["endpoints"].values()) == calls
    assert "c.txt" not in {p["path"] for r in cli.status()["roots"] for p in r["problems"]}


def test_a_dry_run_refuses_a_ledger_of_another_schema_and_leaves_it_alone(
    emulator: Emulator, tmp_path: Path
) -> None:
    root = tmp_path / "docs"
    _tree(root)
    cli = make_cli(tmp_path, emulator, [(root, "/backup/docs")])
    assert cli.sync(timeout=60).returncode == 0
    ledger = tmp_path / "state" / "ledger.sqlite3"
    db = sqlite3.connect(ledger)
    with db:
        db.execute("UPDATE alembic_version SET version_num = '0000'")
    db.close()
    before = _snapshot(tmp_path, root)
    result = _dry_run(["--config", str(cli.config)], tmp_path, cli.env)
    assert result.returncode == 1, (result.stdout, result.stderr[-3000:])
    assert "Traceback" not in result.stderr
    assert "has schema revision 0000" in result.stderr
    assert "run `syncagent db upgrade`" in result.stderr
    assert _snapshot(tmp_path, root) == before


def test_a_dry_run_beside_a_running_agent_reads_the_live_ledger(
    emulator: Emulator, tmp_path: Path
) -> None:
    """While another process has the ledger open (its -wal and -shm files exist), the dry
    run reads through them, including what is not yet checkpointed into the file."""
    root = tmp_path / "docs"
    _tree(root)
    cli: Cli = make_cli(tmp_path, emulator, [(root, "/backup/docs")])
    ledger = tmp_path / "state" / "ledger.sqlite3"
    assert cli.sync(timeout=60).returncode == 0
    db = sqlite3.connect(ledger)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA wal_autocheckpoint=0")  # keep the change in the -wal file
        db.execute("DELETE FROM files WHERE rel_path = 'a.txt'")
        db.commit()
        assert (ledger.parent / "ledger.sqlite3-wal").stat().st_size > 0
        before = _snapshot(tmp_path, root)
        result = _dry_run(["--config", str(cli.config)], tmp_path, cli.env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "  upload (new) a.txt -> a.txt" in result.stdout.splitlines()
        assert "  1 unchanged" in result.stdout.splitlines()
        after = _snapshot(tmp_path, root)
        # the shared-memory index is the readers' meeting place: its mtime may move
        shm = str(Path("state") / "ledger.sqlite3-shm")
        assert {k: v for k, v in after.items() if k != shm} == {
            k: v for k, v in before.items() if k != shm
        }
    finally:
        db.close()


def test_a_dry_run_over_a_root_that_cannot_be_read_exits_1(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    _tree(root)
    config = tmp_path / "sync.yaml"
    config.write_text(f"roots: [{{local: {root}, remote: /d}}]\nstate_dir: {tmp_path / 'state'}\n")
    launcher = unreadable_launcher()
    root.chmod(0)
    try:
        probe = subprocess.run([*launcher, "/bin/ls", str(root)], capture_output=True)
        assert probe.returncode != 0, "the test cannot make a folder unreadable to the CLI"
        result = subprocess.run(
            [*launcher, str(BIN), "sync", "--dry-run", "--config", str(config)],
            env=cli_env(tmp_path, None),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        root.chmod(0o755)
    assert result.returncode == 1, (result.stdout, result.stderr[-3000:])
    assert f"{root} cannot be read (Permission denied): nothing of it was backed up" in (
        result.stderr
    )
