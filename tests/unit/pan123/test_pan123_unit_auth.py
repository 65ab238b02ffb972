"""Unit tests of the access-token lifecycle with a fake fetch and a fake clock."""

from __future__ import annotations

import json
import os
import re
import stat
import threading
import time
from pathlib import Path

import pytest

from syncagent.errors import StateError
from syncagent.pan123.auth import (
    FileTokenStore,
    MemoryTokenStore,
    StoredToken,
    TokenManager,
    TokenStore,
    fingerprint,
)

CLIENT_ID = "client-id-0001"
SECRET = "s3cr3t-CLIENT-SECRET-value"
T0 = 1_700_000_000.0
TTL = 30 * 24 * 3600.0
AHEAD = 300.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeFetch:
    """Mints ``<prefix>-<n>`` tokens valid for ``ttl`` from the clock's now; counts calls."""

    def __init__(self, clock: Clock, prefix: str = "tok-SECRET", ttl: float = TTL) -> None:
        self.clock = clock
        self.prefix = prefix
        self.ttl = ttl
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.wait_for: threading.Event | None = None

    def __call__(self, client_id: str, secret: str) -> tuple[str, float]:
        if self.wait_for is not None:
            assert self.wait_for.wait(timeout=5)
            for _ in range(50):
                time.sleep(0)  # yield: give the other threads every chance to race
        with self.lock:
            self.calls.append((client_id, secret))
            n = len(self.calls)
        return f"{self.prefix}-{n}", self.clock() + self.ttl


def manager(
    store: TokenStore, clock: Clock, fetch: FakeFetch, client_id: str = CLIENT_ID
) -> TokenManager:
    return TokenManager(client_id, SECRET, fetch, store, clock=clock, refresh_ahead=AHEAD)


def expiry(m: TokenManager) -> float | None:
    """``m.expires_at`` read through a call, so mypy does not narrow it between reads."""
    return m.expires_at


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> TokenStore:
    if request.param == "memory":
        return MemoryTokenStore()
    return FileTokenStore(tmp_path / "state")


def test_first_call_fetches_and_later_calls_reuse(store: TokenStore) -> None:
    clock = Clock()
    fetch = FakeFetch(clock)
    m = manager(store, clock, fetch)
    assert expiry(m) is None
    assert m.token() == "tok-SECRET-1"
    clock.now += 3600
    assert m.token() == "tok-SECRET-1"
    assert m.token() == "tok-SECRET-1"
    assert fetch.calls == [(CLIENT_ID, SECRET)]
    assert m.fetches == 1
    assert expiry(m) == T0 + TTL
    stored = store.load()
    assert stored is not None
    assert (stored.access_token, stored.expires_at) == ("tok-SECRET-1", T0 + TTL)
    assert stored.client == fingerprint(CLIENT_ID, SECRET) != CLIENT_ID


def test_refresh_happens_only_when_less_than_refresh_ahead_remains(store: TokenStore) -> None:
    clock = Clock()
    fetch = FakeFetch(clock)
    m = manager(store, clock, fetch)
    m.token()
    clock.now = T0 + TTL - AHEAD - 1  # 301 s left: still good
    assert m.token() == "tok-SECRET-1"
    assert len(fetch.calls) == 1
    clock.now = T0 + TTL - AHEAD + 1  # 299 s left: refreshed ahead of expiry
    assert m.token() == "tok-SECRET-2"
    assert len(fetch.calls) == 2
    assert expiry(m) == clock.now + TTL
    clock.now += 10
    assert m.token() == "tok-SECRET-2"
    assert len(fetch.calls) == 2


def test_a_token_stored_by_another_manager_is_reused(store: TokenStore) -> None:
    clock = Clock()
    first_fetch, second_fetch = FakeFetch(clock, "first"), FakeFetch(clock, "second")
    a = manager(store, clock, first_fetch)
    b = manager(store, clock, second_fetch)
    assert a.token() == "first-1"
    assert b.token() == "first-1"
    assert second_fetch.calls == []
    assert b.fetches == 0


def test_a_token_in_the_same_state_dir_is_reused_across_store_instances(tmp_path: Path) -> None:
    clock = Clock()
    first_fetch, second_fetch = FakeFetch(clock, "first"), FakeFetch(clock, "second")
    a = manager(FileTokenStore(tmp_path), clock, first_fetch)
    assert a.token() == "first-1"
    # a new process: a new store object and a new manager, on the same directory
    clock.now += 86400
    b = manager(FileTokenStore(tmp_path), clock, second_fetch)
    assert b.token() == "first-1"
    assert second_fetch.calls == []


def test_a_stored_token_of_another_client_id_is_not_used(store: TokenStore) -> None:
    clock = Clock()
    theirs, ours = FakeFetch(clock, "theirs"), FakeFetch(clock, "ours")
    manager(store, clock, theirs, client_id="another-client").token()
    m = manager(store, clock, ours)
    assert m.token() == "ours-1"
    assert len(ours.calls) == 1
    loaded = store.load()
    assert loaded is not None
    assert loaded.client == fingerprint(CLIENT_ID, SECRET)


def test_an_expired_stored_token_is_not_used(store: TokenStore) -> None:
    clock = Clock()
    store.save(StoredToken("old-token", T0 + 100, fingerprint(CLIENT_ID, SECRET)))
    fetch = FakeFetch(clock)
    assert manager(store, clock, fetch).token() == "tok-SECRET-1"
    assert len(fetch.calls) == 1


def test_invalidate_forces_one_fetch_and_a_stale_invalidate_does_nothing(
    store: TokenStore,
) -> None:
    clock = Clock()
    fetch = FakeFetch(clock)
    m = manager(store, clock, fetch)
    old = m.token()
    m.invalidate(old)
    assert expiry(m) is None
    assert m.token() == "tok-SECRET-2"
    assert m.token() == "tok-SECRET-2"
    assert len(fetch.calls) == 2
    # a second thread's 401 for the same old token arrives late: nothing to do
    m.invalidate(old)
    assert m.token() == "tok-SECRET-2"
    assert len(fetch.calls) == 2
    stored = store.load()
    assert stored is not None
    assert stored.access_token == "tok-SECRET-2"


def test_invalidate_does_not_refetch_when_another_manager_already_did(
    store: TokenStore,
) -> None:
    clock = Clock()
    fetch_a, fetch_b = FakeFetch(clock, "a"), FakeFetch(clock, "b")
    a = manager(store, clock, fetch_a)
    b = manager(store, clock, fetch_b)
    shared = a.token()
    assert b.token() == shared
    b.invalidate(shared)  # b got the 401 first
    assert b.token() == "b-1"
    a.invalidate(shared)  # then a
    assert a.token() == "b-1"  # the replacement in the store, no second fetch
    assert fetch_a.calls == [(CLIENT_ID, SECRET)]
    assert len(fetch_b.calls) == 1


def test_invalidate_blanks_the_rejected_token_in_the_store(store: TokenStore) -> None:
    clock = Clock()
    m = manager(store, clock, FakeFetch(clock))
    rejected = m.token()
    m.invalidate(rejected)
    stored = store.load()
    assert stored is None or stored.access_token != rejected
    other = manager(store, clock, FakeFetch(clock, "fresh"))
    assert other.token() == "fresh-1"  # nobody picks the rejected token up again


def test_eight_threads_at_once_cause_exactly_one_fetch(store: TokenStore) -> None:
    clock = Clock()
    fetch = FakeFetch(clock)
    fetch.wait_for = threading.Event()
    m = manager(store, clock, fetch)
    _race(8, [m] * 8, fetch.wait_for, expect="tok-SECRET-1")
    assert len(fetch.calls) == 1
    assert m.fetches == 1


def test_managers_sharing_a_state_dir_fetch_once_between_them(tmp_path: Path) -> None:
    # One manager per "process", each with its own store object: the file lock serialises them.
    clock = Clock()
    fetch = FakeFetch(clock)
    fetch.wait_for = threading.Event()
    managers = [manager(FileTokenStore(tmp_path), clock, fetch) for _ in range(4)]
    _race(4, managers, fetch.wait_for, expect="tok-SECRET-1")
    assert len(fetch.calls) == 1


def _race(n: int, managers: list[TokenManager], go: threading.Event, expect: str) -> None:
    barrier = threading.Barrier(n)
    arrived = threading.Semaphore(0)
    got: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(m: TokenManager) -> None:
        try:
            barrier.wait(timeout=5)
            arrived.release()
            token = m.token()
            with lock:
                got.append(token)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(m,)) for m in managers]
    for t in threads:
        t.start()
    for _ in range(n):  # the fetch proceeds only once every thread is about to ask
        assert arrived.acquire(timeout=5)
    go.set()
    for t in threads:
        t.join(timeout=10)
    assert not errors
    assert got == [expect] * n


def test_token_file_is_mode_0600(tmp_path: Path) -> None:
    clock = Clock()
    old_umask = os.umask(0)
    try:
        store = FileTokenStore(tmp_path / "state")
        manager(store, clock, FakeFetch(clock)).token()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert json.loads(store.path.read_text())["access_token"] == "tok-SECRET-1"
    assert not store.path.with_suffix(".tmp").exists()


def test_a_world_readable_token_file_becomes_0600_when_rewritten(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)
    store.path.write_text("{}")
    store.path.chmod(0o644)
    store.save(StoredToken("t", T0, "fp"))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"{}",
        b"[]",
        b"null",
        b'{"access_token": "x"}',
        b'{"access_token": "x", "expires_at": "soon", "client": "c"}',
        b'{"access_token": "x", "expires_at": null, "client": "c"}',
        b"\xff\xfe\x00garbage",
        b'{"access_token": "x", "expires_at": 1e30',
    ],
    ids=repr,
)
def test_corrupt_token_file_is_treated_as_absent(tmp_path: Path, content: bytes) -> None:
    store = FileTokenStore(tmp_path)
    store.path.write_bytes(content)
    assert store.load() is None
    clock = Clock()
    fetch = FakeFetch(clock)
    assert manager(store, clock, fetch).token() == "tok-SECRET-1"
    assert len(fetch.calls) == 1
    assert store.load() == StoredToken("tok-SECRET-1", T0 + TTL, fingerprint(CLIENT_ID, SECRET), T0)


def test_missing_state_dir_is_created_on_save(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "a" / "b")
    assert store.load() is None
    store.save(StoredToken("t", 5.0, "fp"))
    assert store.load() == StoredToken("t", 5.0, "fp")


def test_reprs_never_show_the_token_or_the_secret(store: TokenStore) -> None:
    clock = Clock()
    m = manager(store, clock, FakeFetch(clock))
    texts = [repr(m), str(m)]
    token = m.token()
    texts += [repr(m), str(m)]
    stored = store.load()
    assert stored is not None
    texts += [repr(stored), str(stored), repr(store)]
    for text in texts:
        assert token not in text
        assert "SECRET" not in text
        assert SECRET not in text
    assert token == "tok-SECRET-1"
    assert fingerprint(CLIENT_ID, SECRET) in repr(m)
    assert "token=expires" in repr(m)


def test_short_lived_tokens_are_refreshed_at_half_life_not_every_call() -> None:
    from syncagent.pan123.auth import MemoryTokenStore, TokenManager

    now = [1000.0]
    fetched: list[float] = []

    def fetch(cid: str, secret: str) -> tuple[str, float]:
        fetched.append(now[0])
        return f"t{len(fetched)}", now[0] + 60.0  # lives 60 s, far less than the 300 s margin

    manager = TokenManager("cid", "secret", fetch, MemoryTokenStore(), clock=lambda: now[0])
    assert [manager.token() for _ in range(5)] == ["t1"] * 5
    now[0] += 29.0
    assert manager.token() == "t1"
    now[0] += 2.0  # past half of its life
    assert manager.token() == "t2"
    assert len(fetched) == 2


# -- a local clock far from 123pan's, a state dir that cannot keep the token ---------------


def test_a_clock_40_days_ahead_uses_one_token_for_its_whole_life(store: TokenStore) -> None:
    """123pan's expiredAt (30 days from its own now) is already past by the local clock: the
    token is used all the same, for 123pan's documented 30 days measured from the fetch."""
    server = Clock()
    local = Clock(T0 + 40 * 24 * 3600)
    fetch = FakeFetch(server)  # expiredAt in 123pan's time
    m = manager(store, local, fetch)
    tokens = {m.token() for _ in range(40)}
    assert tokens == {"tok-SECRET-1"} and len(fetch.calls) == 1
    # Another process (or a restart) sharing the store trusts it too.
    assert manager(store, local, fetch).token() == "tok-SECRET-1"
    local.now += TTL - AHEAD - 60
    server.now += TTL - AHEAD - 60
    assert m.token() == "tok-SECRET-1" and len(fetch.calls) == 1
    local.now += 120
    server.now += 120  # its life as measured here is nearly over: refreshed ahead of it
    assert m.token() == "tok-SECRET-2" and len(fetch.calls) == 2


def test_a_clock_behind_keeps_the_token_until_123pan_refuses_it(store: TokenStore) -> None:
    server = Clock()
    local = Clock(T0 - 40 * 24 * 3600)
    fetch = FakeFetch(server)
    m = manager(store, local, fetch)
    assert m.token() == "tok-SECRET-1"
    m.invalidate("tok-SECRET-1")  # the 401 after its real 30 days
    assert m.token() == "tok-SECRET-2"
    assert len(fetch.calls) == 2


def test_a_state_dir_that_cannot_keep_the_token_is_a_state_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("in the way")
    store = FileTokenStore(blocked / "state")
    with pytest.raises(StateError, match=re.escape(str(blocked / "state"))), store.lock():
        pass  # pragma: no cover
    with pytest.raises(StateError, match=r"token\.json"):
        store.save(StoredToken("tok-SECRET", T0, "x"))
    folder = FileTokenStore(tmp_path / "state")
    (tmp_path / "state" / "token.json").mkdir(parents=True)
    with pytest.raises(StateError, match="Is a directory") as info:
        folder.save(StoredToken("tok-SECRET", T0, "x"))
    assert "tok-SECRET" not in str(info.value)


def test_a_token_fetched_with_another_secret_is_not_used(store: TokenStore) -> None:
    """A secret changed in the config is checked at once (a fetch), even while the token
    fetched with the old one is still valid: a wrong secret is noticed on the next call."""
    clock = Clock()
    first = FakeFetch(clock, "old")
    TokenManager(CLIENT_ID, "the-old-secret", first, store, clock=clock).token()
    fetch = FakeFetch(clock)
    assert manager(store, clock, fetch).token() == "tok-SECRET-1"
    assert fetch.calls == [(CLIENT_ID, SECRET)]
