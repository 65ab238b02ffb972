"""A fleet on one ledger (SQLite and a real PostgreSQL): migration 0003 with data, hosts,
roots per host, per-host remote folders, the fleet view, a per-host rebuild, and the
access token kept in the ledger, encrypted, fetched once under the fleet's lock."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from syncagent import fleet
from syncagent.config import SyncConfig, validate
from syncagent.errors import LedgerError
from syncagent.host import Host, load_host, read_host_id
from syncagent.ledger import SCHEMA_HEAD, Ledger, repo
from syncagent.ledger.token_store import LedgerTokenStore, stored_expiry
from syncagent.pan123.auth import FileTokenStore, StoredToken, TokenManager, fingerprint
from syncagent.rebuild import clear_rows

A = Host("a" * 32, "nas-a")
B = Host("b" * 32, "nas-b")


def _config(tmp_path: Path, url: str, **fleet_settings: object) -> SyncConfig:
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    raw: dict[str, object] = {
        "roots": [{"local": str(tmp_path / "data"), "remote": "/backup/data"}],
        "state_dir": str(tmp_path / "state"),
        "ledger": {"url": url},
    }
    if fleet_settings:
        raw["fleet"] = fleet_settings
    return validate(raw, {})


def test_migration_0003_keeps_rows_and_the_first_host_claims_them(ledger_url: str) -> None:
    old = Ledger(ledger_url)
    old.migrate("0002")
    with old.write() as conn:
        conn.execute(
            text(
                "INSERT INTO roots (local_path, remote_path, mode, created_at) "
                "VALUES ('/data', '/backup/data', 'archive', 1.0)"
            )
        )
        old_id = conn.execute(text("SELECT id FROM roots")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO files (root_id, rel_path, size, mtime_ns, ctime_ns, dev, inode, "
                "state, attempts, next_attempt_at, seen_pass) "
                "VALUES (:r, 'a.txt', 3, 0, 0, 0, 0, 'done', 0, 0, 0)"
            ),
            {"r": old_id},
        )
        conn.execute(
            text(
                "INSERT INTO passes (started_at, uploaded, failed, bytes_sent, result) "
                "VALUES (1.0, 1, 0, 3, 'ok')"
            )
        )
    old.close()

    ledger = Ledger(ledger_url)
    try:
        ledger.migrate()
        assert ledger.current_revision() == SCHEMA_HEAD == "0003"
        fleet.register(ledger, A)
        assert repo.find_root(ledger, "/data") == (old_id, None)  # claimed by the first host
        assert repo.load_facts(ledger, old_id)["a.txt"].state == "done"
        last = repo.last_pass(ledger)
        assert last is not None and last.result == "ok"

        fleet.register(ledger, B)  # another host: the same local path is a root of its own
        assert repo.find_root(ledger, "/data") is None
        b_root, _ = repo.ensure_root(ledger, "/data", "/backup/nas-b/data", "archive")
        assert b_root != old_id
        assert repo.last_pass(ledger) is None
        with pytest.raises(LedgerError), ledger.write() as conn:  # (host, path) is unique
            conn.execute(
                text(
                    "INSERT INTO roots (host_id, local_path, remote_path, mode, created_at) "
                    "VALUES (:h, '/data', '/x', 'archive', 2.0)"
                ),
                {"h": B.id},
            )
    finally:
        ledger.close()


def test_two_hosts_of_one_name_are_warned_of(
    ledger_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = Ledger(ledger_url)
    try:
        ledger.migrate()
        fleet.register(ledger, A)
        fleet.register(ledger, B)
        assert "also called" not in caplog.text
        fleet.register(ledger, Host("c" * 32, "nas-a"))
        assert "also called 'nas-a' (ID aaaaaaaa)" in caplog.text
    finally:
        ledger.close()


def test_the_host_id_is_kept_0600_and_the_name_is_a_setting(tmp_path: Path) -> None:
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'l.sqlite3'}", host="kitchen-pc")
    assert read_host_id(config.state_dir) is None
    first = load_host(config)
    assert first.name == "kitchen-pc"
    kept = config.state_dir / "host_id"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert load_host(config).id == first.id == read_host_id(config.state_dir)
    other = _config(tmp_path / "elsewhere", f"sqlite:///{tmp_path / 'l2.sqlite3'}")
    assert load_host(other).id != first.id
    assert load_host(other).name == os.uname().nodename


def test_per_host_remote_folders_on_a_shared_ledger(ledger_url: str, tmp_path: Path) -> None:
    config = _config(tmp_path, ledger_url, host="nas-a")
    ledger = Ledger(ledger_url)
    try:
        ledger.migrate()
        fleet.register(ledger, A)
        mapped = fleet.effective_config(config, ledger, "nas-a").roots[0].remote
        if ledger_url.startswith("sqlite"):  # auto: one host's own file is not shared
            assert mapped == "/backup/data"
        else:
            assert mapped == "/backup/nas-a/data"
        forced = _config(tmp_path, ledger_url, shared=True)
        assert fleet.effective_config(forced, ledger, "nas-a").roots[0].remote == (
            "/backup/nas-a/data"
        )
        off = _config(tmp_path, ledger_url, shared=False)
        assert fleet.effective_config(off, ledger, "nas-a").roots[0].remote == "/backup/data"

        # a root whose row was made for the configured folder itself keeps it
        repo.ensure_root(ledger, str(tmp_path / "data"), "/backup/data", "archive")
        assert fleet.effective_config(forced, ledger, "nas-a").roots[0].remote == "/backup/data"
    finally:
        ledger.close()


def test_shared_remote_and_the_host_placeholder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "photos").mkdir()
    url = f"sqlite:///{tmp_path / 'l.sqlite3'}"
    config = validate(
        {
            "roots": [
                {"local": str(tmp_path / "data"), "remote": "/team", "shared_remote": True},
                {"local": str(tmp_path / "photos"), "remote": "/photos/{host}/camera"},
            ],
            "state_dir": str(tmp_path / "state"),
            "ledger": {"url": url},
            "fleet": {"shared": True},
        },
        {},
    )
    ledger = Ledger(url)
    try:
        ledger.migrate()
        fleet.register(ledger, A)
        roots = fleet.effective_config(config, ledger, "odd:name*").roots
        assert [r.remote for r in roots] == ["/team", "/photos/odd_name_/camera"]
        # restore and ls open no ledger: the same folders
        assert fleet.effective_config(config, None, "odd:name*").roots == roots
    finally:
        ledger.close()
    assert fleet.host_remote("/", "h") == "/h"
    assert fleet.host_remote("/a/b/c", "h") == "/a/b/h/c"


def test_fleet_status_and_a_rebuild_of_one_host(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    try:
        ledger.migrate()
        ids = {}
        for host in (A, B):
            fleet.register(ledger, host)
            root_id, _ = repo.ensure_root(ledger, "/data", f"/b/{host.name}/data", "archive")
            ids[host.name] = root_id
            with ledger.write() as conn:
                for i, state in enumerate(("done", "done", "pending", "failed")):
                    conn.execute(
                        text(
                            "INSERT INTO files (root_id, rel_path, size, mtime_ns, ctime_ns, "
                            "dev, inode, state, attempts, next_attempt_at, seen_pass) "
                            "VALUES (:r, :p, 1, 0, 0, 0, 0, :s, 0, 0, 0)"
                        ),
                        {"r": root_id, "p": f"f{i}", "s": state},
                    )
            pass_id = repo.start_pass(ledger)
            repo.finish_pass(ledger, pass_id, uploaded=2, failed=1, bytes_sent=2, result="ok")
        hosts = fleet.fleet_status(ledger)
        assert [h.name for h in hosts] == ["nas-a", "nas-b"]
        for h in hosts:
            assert h.last_pass_result == "ok" and h.last_pass_uploaded == 2
            assert [(r.local_path, r.done, r.pending, r.failed) for r in h.roots] == [
                ("/data", 2, 1, 1)
            ]
            assert h.roots[0].remote_path == f"/b/{h.name}/data"
            assert h.last_seen >= h.first_seen

        clear_rows(ledger)  # nas-b is registered last: its rows go, nas-a's stay
        after = {h.name: h for h in fleet.fleet_status(ledger)}
        assert after["nas-b"].roots == ()
        assert after["nas-a"].roots[0].done == 2
    finally:
        ledger.close()


def test_a_token_kept_in_the_state_dir_becomes_the_fleets(ledger_url: str, tmp_path: Path) -> None:
    ledger = Ledger(ledger_url)
    ledger.migrate()
    try:
        # as auth stores it: bound to the client ID and the secret it was fetched with
        bound = fingerprint("client-1", "the-secret")
        own = StoredToken("tok-own", time.time() + 86400, bound, time.time())
        FileTokenStore(tmp_path / "a").save(own)
        FileTokenStore(tmp_path / "b").save(StoredToken("tok-b", own.expires_at, "other"))
        first = LedgerTokenStore(ledger, "client-1", "the-secret", tmp_path / "a")
        assert first.load() == own
        second = LedgerTokenStore(ledger, "client-1", "the-secret", tmp_path / "b")
        assert second.load() == own  # read from the ledger: the fleet's one token
    finally:
        ledger.close()


def test_the_token_is_sealed_in_the_ledger_and_fetched_once(
    ledger_url: str, tmp_path: Path
) -> None:
    """Eight managers (as eight hosts would be) ask at once: one fetch; the kv value holds
    neither the token nor anything readable without the secret."""
    ledger = Ledger(ledger_url)
    ledger.migrate()
    fetched: list[int] = []
    fetch_lock = threading.Lock()

    def fetch(cid: str, secret: str) -> tuple[str, float]:
        with fetch_lock:
            fetched.append(1)
        time.sleep(0.2)  # a slow 123pan: the others must wait for this one, not fetch too
        return "tok-SECRET-VALUE", time.time() + 86400

    managers = [
        TokenManager(
            "client-1",
            "the-secret",
            fetch,
            LedgerTokenStore(ledger, "client-1", "the-secret", tmp_path / f"s{i}"),
        )
        for i in range(8)
    ]
    got: list[str] = []
    threads = [threading.Thread(target=lambda m=m: got.append(m.token())) for m in managers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert got == ["tok-SECRET-VALUE"] * 8
        assert len(fetched) == 1
        raw = repo.get_values(ledger, "token:")
        assert len(raw) == 1
        value = next(iter(raw.values()))
        assert "tok-SECRET-VALUE" not in value and "the-secret" not in value
        assert stored_expiry(ledger, "client-1") == pytest.approx(time.time() + 86400, abs=60)

        other_secret = LedgerTokenStore(ledger, "client-1", "another-secret", tmp_path / "x")
        assert other_secret.load() is None  # sealed with the secret: unreadable without it
        assert "SECRET" not in repr(managers[0]) + repr(other_secret)
        other_secret.save(StoredToken("tok-2", time.time() + 60, "ignored"))
        assert json.loads(repo.get_values(ledger, "token:")[next(iter(raw))])["v"] == 1
    finally:
        ledger.close()


def test_a_kept_token_of_another_secret_is_not_the_fleets(ledger_url: str, tmp_path: Path) -> None:
    ledger = Ledger(ledger_url)
    ledger.migrate()
    try:
        stale = fingerprint("client-1", "an-old-secret")
        FileTokenStore(tmp_path).save(StoredToken("tok-old", time.time() + 86400, stale))
        assert LedgerTokenStore(ledger, "client-1", "the-secret", tmp_path).load() is None
    finally:
        ledger.close()
