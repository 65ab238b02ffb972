"""123pan's transient failures through the client, against the real emulator: what only says
"later" (429 bursts, code 1 "内部错误", also from the token call) is ridden out, and a clock far
ahead of 123pan's does not turn every call into a token fetch.

Outcomes are read from the emulator: faults injected, tokens minted, bytes stored.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pan123_support import SLICE, THRESHOLD, activity, blob, make_client, minted, stored

from syncagent.emulator import Emulator

DAY = 86400.0


def test_a_burst_of_25_429s_costs_no_file_its_upload(emulator: Emulator, tmp_path: Path) -> None:
    """Two chunked uploads at once meet 25 × 429 on create: with 5 tries allowed per call,
    both still arrive (429s are retried for a time budget, not a count)."""
    emulator.configure(slice_size=SLICE)
    paths, datas = [], []
    for i in range(2):
        data = blob(THRESHOLD + SLICE + 1000 * i, 40 + i)
        (tmp_path / f"big{i}.bin").write_bytes(data)
        paths.append(tmp_path / f"big{i}.bin")
        datas.append(data)
    emulator.fail_next("upload/v2/file/create", times=25, code=429)
    with make_client(emulator, tmp_path / "state", attempts=5) as client:
        with ThreadPoolExecutor(2) as pool:
            results = list(
                pool.map(lambda i: client.upload(paths[i], 0, f"burst/big{i}.bin"), range(2))
            )
        assert activity(emulator)["faults_injected"] == 25
        for result, data in zip(results, datas, strict=True):
            assert result.method == "chunked"
            assert stored(emulator, client, result.file_id) == data


def test_internal_errors_on_every_upload_endpoint_are_retried(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Code 1 "内部错误" 8 times on each upload endpoint, 3 tries allowed per call: both
    uploads arrive."""
    emulator.configure(slice_size=SLICE)
    small, big = blob(20_000, 50), blob(THRESHOLD + 2 * SLICE + 7, 51)
    (tmp_path / "small.txt").write_bytes(small)
    (tmp_path / "big.bin").write_bytes(big)
    for endpoint in (
        "upload/v2/file/single/create",
        "upload/v2/file/create",
        "upload/v2/file/slice",
        "upload/v2/file/upload_complete",
    ):
        emulator.fail_next(endpoint, times=8, code=1)
    with make_client(emulator, tmp_path / "state", attempts=3) as client:
        one = client.upload(tmp_path / "small.txt", 0, "internal/small.txt")
        two = client.upload(tmp_path / "big.bin", 0, "internal/big.bin")
        assert activity(emulator)["faults_injected"] == 32
        assert stored(emulator, client, one.file_id) == small
        assert stored(emulator, client, two.file_id) == big


def test_internal_errors_from_the_token_call_are_retried_not_taken_for_bad_credentials(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.fail_next("api/v1/access_token", times=3, code=1)
    with make_client(emulator, tmp_path / "state", attempts=2) as client:
        assert client.user_info()["uid"] == emulator.settings.uid
    assert minted(emulator) == 1


def test_a_clock_40_days_ahead_fetches_one_token_for_40_files(
    emulator: Emulator, tmp_path: Path
) -> None:
    """The token's expiredAt (30 days) is already past by this clock: it is used all the
    same, by every upload and after a restart, instead of one fetch per call evicting the
    tokens in use (123pan keeps 3 per client)."""
    ahead = lambda: time.time() + 40 * DAY  # noqa: E731
    for i in range(40):
        (tmp_path / f"f{i:02d}.txt").write_bytes(f"file {i}\n".encode())
    with make_client(emulator, tmp_path / "state", wall_clock=ahead) as client:
        with ThreadPoolExecutor(4) as pool:
            results = list(
                pool.map(
                    lambda i: client.upload(tmp_path / f"f{i:02d}.txt", 0, f"skew/f{i:02d}.txt"),
                    range(40),
                )
            )
        assert len({r.file_id for r in results}) == 40
    with make_client(emulator, tmp_path / "state", wall_clock=ahead) as again:  # a restart
        assert again.user_info()["uid"] == emulator.settings.uid
    assert minted(emulator) == 1
