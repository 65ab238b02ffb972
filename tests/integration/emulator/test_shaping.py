"""Network shaping of the emulator (syncagent/emulator/shaping.py), measured on real sockets.

Each test times real requests against a running emulator. Lower bounds are what shaping must
cost at least; upper bounds are generous (a shared, loaded machine) and only there to tell
real pacing, where concurrent connections overlap, from waits that serialise everything.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Api  # the tests' own plain-HTTP caller (tests/conftest.py)

from syncagent.emulator import Emulator
from syncagent.emulator.shaping import parse_rate


@pytest.fixture
def shaped() -> Iterator[Emulator]:
    with Emulator.temporary(rate_limits="off", complete_pending_polls=0) as emu:
        yield emu


def timed(action: Callable[[], Any]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def fresh_api(emu: Emulator, token: str | None = None) -> Api:
    """A client on its own connection; given a token it opens that connection on first use
    (the emulator lets a client hold only three tokens)."""
    api = Api(emu)
    if token is None:
        api.login()
    else:
        api.token = token
    return api


def one_token(emu: Emulator) -> str:
    api = fresh_api(emu)
    api.close()
    assert api.token is not None
    return api.token


def test_round_trip_on_connect_and_on_every_answer(shaped: Emulator) -> None:
    api = fresh_api(shaped)  # logged in before shaping: its connection stays unshaped
    shaped.configure(rtt=0.25)
    try:
        fast = timed(lambda: api.ok(api.get("/api/v1/user/info")))
        assert fast < 0.25, "a connection opened before shaping keeps its pace"
        late = fresh_api(shaped)
        first = timed(lambda: late.ok(late.get("/api/v1/user/info")))
        second = timed(lambda: late.ok(late.get("/api/v1/user/info")))
        # login already opened this connection: each call costs one round trip, not two
        assert 0.25 <= first < 2.0, first
        assert 0.25 <= second < 2.0, second
        late.close()
        other = Api(shaped)
        other.token = late.token
        cold = timed(lambda: other.ok(other.get("/api/v1/user/info")))
        assert cold >= 0.5, f"a new connection pays the handshake too: {cold:.3f} s"
        other.close()
    finally:
        api.close()


def test_round_trips_of_concurrent_connections_overlap(shaped: Emulator) -> None:
    shaped.configure(rtt=0.3)
    token = one_token(shaped)
    clients = [fresh_api(shaped, token) for _ in range(8)]
    try:
        errors: list[BaseException] = []

        def call(api: Api) -> None:
            try:
                api.ok(api.get("/api/v1/user/info"))
            except BaseException as exc:
                errors.append(exc)

        def all_at_once() -> None:
            threads = [threading.Thread(target=call, args=(c,)) for c in clients]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)

        took = timed(all_at_once)
        assert not errors, errors
        # each pays a handshake and an answer: 0.6 s; one after the other would be 4.8 s
        assert 0.6 <= took < 3.0, took
    finally:
        for c in clients:
            c.close()


def test_jitter_adds_up_to_its_bound(shaped: Emulator) -> None:
    shaped.configure(rtt=0.05, rtt_jitter=0.2)
    api = fresh_api(shaped)
    try:
        times = [timed(lambda: api.ok(api.get("/api/v1/user/info"))) for _ in range(8)]
        assert min(times) >= 0.05, times
        assert max(times) - min(times) > 0.01, f"jitter must vary the round trip: {times}"
    finally:
        api.close()


def test_connection_cap_paces_an_upload_and_a_download(shaped: Emulator) -> None:
    shaped.configure(conn_bps=1_000_000)
    api = fresh_api(shaped)
    data = os.urandom(2_000_000)
    try:
        up = timed(lambda: api.ok(api.single("capped.bin", data)))
        assert 1.7 <= up < 8.0, f"2 MB at 1 MB/s took {up:.2f} s"
        file_id = int(next(e["fileId"] for e in api.listing() if e["filename"] == "capped.bin"))
        got: list[bytes] = []
        down = timed(lambda: got.append(api.download(file_id)))
        assert got == [data]
        assert 1.7 <= down < 8.0, f"2 MB down at 1 MB/s took {down:.2f} s"
    finally:
        api.close()


def _parallel_uploads(emu: Emulator, count: int, size: int) -> float:
    token = one_token(emu)
    clients = [fresh_api(emu, token) for _ in range(count)]
    errors: list[BaseException] = []

    def send(i: int, api: Api) -> None:
        try:
            api.ok(api.single(f"p{i}.bin", os.urandom(size)))
        except BaseException as exc:
            errors.append(exc)

    def run() -> None:
        threads = [threading.Thread(target=send, args=(i, c)) for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)

    try:
        took = timed(run)
    finally:
        for c in clients:
            c.close()
    assert not errors, errors
    return took


def test_connection_cap_is_per_connection(shaped: Emulator) -> None:
    shaped.configure(conn_bps=1_000_000)
    # three connections at 1 MB/s each send 1.5 MB in about 1.5 s, not 4.5 s
    took = _parallel_uploads(shaped, 3, 1_500_000)
    assert 1.3 <= took < 3.8, took


def test_server_cap_is_shared_by_every_connection(shaped: Emulator) -> None:
    shaped.configure(server_bps=1_000_000)
    # three connections share 1 MB/s: 4.5 MB take at least about 4.5 s
    took = _parallel_uploads(shaped, 3, 1_500_000)
    assert 4.0 <= took < 15.0, took


def test_admin_settings_validate_the_shaping_fields(shaped: Emulator) -> None:
    url = f"{shaped.api_url}/__emulator/settings"
    bad = requests.post(
        url, json={"rtt": -1, "conn_bps": "fast"}, headers=shaped.admin_headers(), timeout=10
    ).json()
    assert bad["code"] != 0
    assert "rtt" in bad["message"] and "conn_bps" in bad["message"]
    good = requests.post(
        url,
        json={"rtt": 0.04, "rtt_jitter": 0.01, "conn_bps": 20_000_000, "server_bps": 0},
        headers=shaped.admin_headers(),
        timeout=10,
    ).json()
    assert good["code"] == 0, good
    assert shaped.settings.rtt == 0.04 and shaped.settings.conn_bps == 20_000_000


def test_parse_rate_reads_decimal_units() -> None:
    assert parse_rate("20M") == 20_000_000
    assert parse_rate("500k") == 500_000
    assert parse_rate("1.5G") == 1_500_000_000
    assert parse_rate("1000") == 1000
    with pytest.raises(ValueError):
        parse_rate("fast")
    with pytest.raises(ValueError):
        parse_rate("-1M")


def test_cli_flags_set_the_shaping(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "syncagent",
            "emulator",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "pan"),
            "--rtt-ms",
            "200",
            "--rtt-jitter-ms",
            "5",
            "--conn-bps",
            "2M",
            "--server-bps",
            "10M",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while "admin token" not in seen and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            key, _, value = line.strip().partition(":")
            seen[key.strip()] = value.strip()
        assert "admin token" in seen, (seen, proc.poll())
        assert "rtt 200 ms" in seen.get("shaping", ""), seen
        api_url = seen["API base URL"]
        token = seen["admin token"].split()[0]
        state = requests.get(
            f"{api_url}/__emulator/state", headers={"X-Emulator-Admin": token}, timeout=10
        ).json()["data"]["settings"]
        assert (state["rtt"], state["rtt_jitter"]) == (0.2, 0.005)
        assert (state["conn_bps"], state["server_bps"]) == (2_000_000, 10_000_000)
        # and the emulator really waits: this state call itself paid a handshake and an answer
        took = timed(
            lambda: requests.get(
                f"{api_url}/__emulator/state", headers={"X-Emulator-Admin": token}, timeout=10
            )
        )
        assert took >= 0.4, took
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
