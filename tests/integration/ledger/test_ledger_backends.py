"""The ledger's reads and writes hold on every backend: SQLite and a real PostgreSQL server.

Each test writes through one :class:`Ledger` and reads back through a second one (a fresh
connection pool), so a write that was never committed cannot pass for one that was.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pg_support import PgServer

from syncagent.ledger import Ledger, repo
from syncagent.model import LocalEntry
from syncagent.pan123.upload import UploadSession


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    led = Ledger(ledger_url)
    led.migrate()
    yield led
    led.close()


def _reopened(url: str) -> Ledger:
    return Ledger(url)


def test_orm_writes_are_committed(ledger: Ledger, ledger_url: str) -> None:
    """ensure_root, kv settings, passes, holds and upload sessions go through ORM sessions:
    each must be in the database for the next connection."""
    root_id, _ = repo.ensure_root(ledger, "/data/photos", "/backup", "upload")
    repo.set_root_remote(ledger, root_id, 4242)
    repo.set_value(ledger, "answer", "42")
    pass_id = repo.start_pass(ledger)
    repo.finish_pass(ledger, pass_id, uploaded=3, failed=1, bytes_sent=99, result="ok")
    repo.set_hold(ledger, root_id, '{"held": true}')
    repo.set_root_problem(ledger, root_id, "cannot be read")
    LedgerUploadState = repo.LedgerUploadState
    LedgerUploadState(ledger).save(
        "k1", UploadSession("pre-1", 1024, "http://127.0.0.1:1", "abc", 4096, frozenset({1}))
    )
    LedgerUploadState(ledger).mark_slice("k1", 2)

    other = _reopened(ledger_url)
    try:
        assert repo.find_root(other, "/data/photos") == (root_id, 4242)
        assert repo.get_value(other, "answer") == "42"
        last = repo.last_pass(other)
        assert last is not None and (last.id, last.uploaded, last.result) == (pass_id, 3, "ok")
        assert repo.guard_state(other)[0] == {root_id: '{"held": true}'}
        assert repo.root_problems(other) == {root_id: "cannot be read"}
        saved = LedgerUploadState(other).load("k1")
        assert saved is not None and saved.done == frozenset({1, 2})
    finally:
        other.close()


def test_core_writes_and_raw_reads(ledger: Ledger, ledger_url: str) -> None:
    root_id, _ = repo.ensure_root(ledger, "/r", "/remote", "upload")
    pass_id = repo.start_pass(ledger)
    entries = [LocalEntry(f"d/f{i}.jpg", 10 + i, 1000 + i, 2000 + i, 1, 500 + i) for i in range(5)]
    repo.record_done(
        ledger,
        [repo.Done(root_id, e, f"md5-{i}", 900 + i, e.rel_path) for i, e in enumerate(entries)],
        pass_id,
    )
    repo.mark_gone(ledger, root_id, ["d/f4.jpg"], pass_id)
    other = _reopened(ledger_url)
    try:
        facts = repo.load_facts(other, root_id)
        assert sorted(facts) == [e.rel_path for e in entries]
        assert facts["d/f1.jpg"].md5 == "md5-1" and facts["d/f4.jpg"].state == "gone"
        assert repo.count_files(other, root_id) == 4
        assert len(repo.catalog_rows(other, root_id)) == 5
    finally:
        other.close()


@pytest.mark.parametrize("via_socket", [False, True])
def test_pg8000_driver_reads_and_writes(
    pg_server: PgServer, pg_database: str, via_socket: bool
) -> None:
    """pg8000 takes ``%s`` parameters, not ``%(name)s``: the raw reads use the dialect's."""
    url = pg_server.url(pg_database, driver="pg8000", socket=via_socket)
    ledger = Ledger(url)
    try:
        ledger.migrate()
        root_id, _ = repo.ensure_root(ledger, "/r", "/remote", "upload")
        entry = LocalEntry("a.jpg", 10, 1000, 2000, 1, 500)
        repo.record_done(ledger, [repo.Done(root_id, entry, "m", 7, "a.jpg")], 1)
        assert set(repo.load_facts(ledger, root_id)) == {"a.jpg"}
        assert repo.count_files(ledger, root_id) == 1
        repo.set_value(ledger, "guard_x", "y")
        assert repo.get_values(ledger, "guard_") == {"guard_x": "y"}
    finally:
        ledger.close()
