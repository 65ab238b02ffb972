"""The client's token lifecycle against the real emulator over HTTP, and secrets kept out of sight.

Every check that matters is read back from the emulator (``activity()``: how many tokens it
minted) or from the state directory, not from the client's own account of what it did.
"""

from __future__ import annotations

import logging
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pan123_support import SLICE, blob, make_client, mint_plain, minted, stored, stored_token

from syncagent.emulator import Emulator
from syncagent.errors import (
    AuthError,
    InternalError,
    ServerError,
    TokenLimitError,
)
from syncagent.pan123 import Pan123Client


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


# -- token reuse ---------------------------------------------------------------------------


def test_two_clients_sharing_a_state_dir_mint_one_token(
    emulator: Emulator, state_dir: Path
) -> None:
    with make_client(emulator, state_dir) as a, make_client(emulator, state_dir) as b:
        assert a.user_info()["uid"] == emulator.settings.uid
        assert b.user_info()["uid"] == emulator.settings.uid
        assert a.tokens.token() == b.tokens.token() == stored_token(state_dir)
    # a restart: a third instance later on, same state dir
    with make_client(emulator, state_dir) as c:
        c.user_info()
    assert minted(emulator) == 1
    assert stat.S_IMODE((state_dir / "token.json").stat().st_mode) == 0o600


def test_many_threads_of_two_fresh_clients_fetch_one_token(
    emulator: Emulator, state_dir: Path
) -> None:
    """Sixteen threads, two client instances, no token yet: exactly one fetch reaches 123pan."""
    emulator.add_latency("api/v1/access_token", 0.2, times=None)  # widen the race window
    start = threading.Barrier(16)
    errors: list[BaseException] = []

    def work(client: Pan123Client) -> None:
        try:
            start.wait()
            client.user_info()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    with make_client(emulator, state_dir) as a, make_client(emulator, state_dir) as b:
        threads = [threading.Thread(target=work, args=(a if i % 2 else b,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert minted(emulator) == 1
    assert emulator.activity()["endpoints"]["api/v1/user/info"]["calls"] == 16


def test_separate_state_dirs_mint_one_token_each(emulator: Emulator, tmp_path: Path) -> None:
    with (
        make_client(emulator, tmp_path / "one") as a,
        make_client(emulator, tmp_path / "two") as b,
    ):
        a.user_info()
        b.user_info()
        assert stored_token(tmp_path / "one") != stored_token(tmp_path / "two")
    assert minted(emulator) == 2


def test_a_stored_token_of_another_client_id_is_not_used(
    emulator: Emulator, state_dir: Path
) -> None:
    with make_client(emulator, state_dir) as a:
        a.user_info()
    before = (state_dir / "token.json").read_bytes()
    # The emulator would accept the stored token from anyone; the client must not offer it.
    with (
        make_client(emulator, state_dir, client_id="someone-else") as other,
        pytest.raises(AuthError) as info,
    ):
        other.user_info()
    assert info.value.fatal
    assert info.value.endpoint == "api/v1/access_token"
    assert (state_dir / "token.json").read_bytes() == before
    assert emulator.activity()["endpoints"]["api/v1/user/info"]["calls"] == 1
    assert minted(emulator) == 1


# -- expiry and the token limit --------------------------------------------------------------


def test_token_expired_mid_upload_is_refreshed_once(emulator: Emulator, state_dir: Path) -> None:
    emulator.configure(slice_size=SLICE)
    data = blob(6 * SLICE + 123, seed=1)
    path = state_dir.parent / "big.bin"
    path.write_bytes(data)
    lock = threading.Lock()
    expired: list[int] = []

    def on_progress(done: int, total: int) -> None:
        with lock:
            if done >= SLICE and not expired:
                expired.append(emulator.expire_tokens())

    with make_client(emulator, state_dir) as client:
        client.user_info()
        first = stored_token(state_dir)
        result = client.upload(path, 0, "expiry/big.bin", on_progress=on_progress)
        second = stored_token(state_dir)
        assert expired == [1]  # the client's one token was live, and is now refused
        assert result.method == "chunked"
        assert result.size == len(data)
        assert second != first
        assert minted(emulator) == 2  # the first token, and exactly one refresh
        assert client.detail(result.file_id).name == "big.bin"
        assert stored(emulator, client, result.file_id) == data
    slices = emulator.activity()["slices"]
    assert [sorted(v) for v in slices.values()] == [list(range(1, 8))]
    assert minted(emulator) == 2


def test_token_limit_stops_without_fetching_more(emulator: Emulator, state_dir: Path) -> None:
    with make_client(emulator, state_dir) as client:
        client.user_info()
        mint_plain(emulator, 3)  # another program takes the three slots: the client's is evicted
        before = minted(emulator)
        assert before == 4
        with pytest.raises(TokenLimitError) as info:
            client.user_info()
        err = info.value
        assert err.fatal and not err.retryable
        assert "tokens number has exceeded the limit" in str(err)
        assert "3 live access tokens" in err.explained  # the explanation
        path = state_dir.parent / "small.txt"
        path.write_bytes(b"hello")
        with pytest.raises(TokenLimitError):
            client.upload(path, 0, "small.txt")
        assert minted(emulator) == before
    # a restart with the same state dir does not fetch either
    with make_client(emulator, state_dir) as again, pytest.raises(TokenLimitError):
        again.user_info()
    assert minted(emulator) == before
    assert emulator.activity()["counts"].get("single_uploads", 0) == 0


# -- secrets -------------------------------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def test_secrets_never_in_logs_reprs_or_errors(
    emulator: Emulator, state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emulator.configure(slice_size=SLICE)
    small, big = state_dir.parent / "small.txt", state_dir.parent / "big.bin"
    small.write_bytes(blob(3000, seed=2))
    big.write_bytes(blob(3 * SLICE + 5, seed=3))
    big2 = state_dir.parent / "big2.bin"
    big2.write_bytes(blob(3 * SLICE + 5, seed=4))
    errors: list[BaseException] = []
    tokens: set[str] = set()
    texts: list[str] = []
    wrong_secret = "wrong-" + emulator.client_secret[::-1]

    with make_client(emulator, state_dir, attempts=2) as client:
        client.upload(small, 0, "s/small.txt")
        tokens.add(stored_token(state_dir))
        emulator.expire_tokens()  # the next call gets a 401 and refreshes
        client.upload(big, 0, "s/big.bin")
        tokens.add(stored_token(state_dir))
        emulator.fail_next("upload/v2/file/single/create", times=None, http_status=500)
        try:
            client.upload(small, 0, "s/again.txt")
        except ServerError as exc:
            errors.append(exc)
        emulator.clear_faults()
        emulator.fail_next("upload/v2/file/slice", times=None, code=1, message="内部错误")
        try:
            client.upload(big2, 0, "s/big2.bin")  # retried for the time budget, then raised
        except InternalError as exc:
            errors.append(exc)
        emulator.clear_faults()
        mint_plain(emulator, 3)
        try:
            client.user_info()
        except TokenLimitError as exc:
            errors.append(exc)
        texts += [repr(client), repr(client.tokens), repr(client.transport), str(client)]
    with make_client(emulator, state_dir.parent / "other", client_secret=wrong_secret) as bad:
        try:
            bad.user_info()
        except AuthError as exc:
            errors.append(exc)
        texts.append(repr(bad))

    assert [type(e) for e in errors] == [ServerError, InternalError, TokenLimitError, AuthError]
    assert len(tokens) == 2 and all(tokens)
    for error in errors:
        for link in _chain(error):
            texts += [str(link), repr(link)]
    texts.append(caplog.text)
    assert "retrying" in caplog.text  # the failures were logged, so the logs were looked at
    everything = "\n".join(texts)
    for secret in [emulator.client_secret, wrong_secret, *tokens]:
        assert secret not in everything
    # also no piece of a token's signature (the part after the last dot)
    for token in tokens:
        assert token.rsplit(".", 1)[-1] not in everything
