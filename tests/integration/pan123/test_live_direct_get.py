"""Plain GETs go straight through urllib3 (``HttpTransport._direct``) but keep what requests
did for them: a download URL that answers with a redirect is followed (a CDN may hand a
download to another host), and a large file written with O_DIRECT comes out exact.

The redirecting host is a real HTTP server on 127.0.0.1 (stdlib ``http.server``) in front
of the emulator's download URL.
"""

from __future__ import annotations

import gc
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import md5
from pan123_support import blob, make_client, put

from syncagent.emulator import Emulator
from syncagent.pan123 import Pan123Client
from syncagent.pan123.download import THREADED


@pytest.fixture(autouse=True)
def _collect_dropped_pools() -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture
def client(tmp_path: Path, emulator: Emulator) -> Iterator[Pan123Client]:
    c = make_client(emulator, tmp_path / "state")
    yield c
    c.close()


@pytest.fixture
def redirector() -> Iterator[tuple[str, dict[str, str], list[str]]]:
    """(base URL, path -> Location, paths asked for) of a server that answers 302."""
    locations: dict[str, str] = {}
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(302)
            self.send_header("Location", locations[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", locations, asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


def test_a_redirected_download_is_followed(
    emulator: Emulator,
    client: Pan123Client,
    redirector: tuple[str, dict[str, str], list[str]],
) -> None:
    base, locations, asked = redirector
    data = blob(300_000, 7)
    fid = put(emulator, "r.bin", data)
    locations["/file/r.bin"] = client.api.download_url(fid)
    with client.transport.stream(f"{base}/file/r.bin") as answer:
        assert answer.status == 200
        body = b"".join(answer.pieces(1 << 16))
    assert body == data
    assert asked[:1] == ["/file/r.bin"]


def test_a_large_download_through_the_direct_path_is_exact(
    tmp_path: Path, emulator: Emulator, client: Pan123Client
) -> None:
    data = blob(THREADED * 2 + 4096 * 5 + 3, 8)  # whole blocks, then a tail
    fid = put(emulator, "big.bin", data)
    target = tmp_path / "big.bin"
    result = client.download(fid, target, size=len(data), md5=md5(data), mode=0o600)
    assert target.read_bytes() == data
    assert result.fetched == len(data)


def test_a_large_download_cut_mid_block_resumes_without_fetching_a_byte_twice(
    tmp_path: Path, emulator: Emulator, client: Pan123Client
) -> None:
    """The block writer keeps every byte received before the cut (the partial block too),
    and the resume starts at that unaligned offset, written the ordinary way."""
    data = blob(THREADED * 2 + 999, 9)
    fid = put(emulator, "cut-big.bin", data)
    emulator.reset_activity()
    emulator.drop_next_download(fid, after_bytes=THREADED + 4096 * 3 + 123)
    target = tmp_path / "cut-big.bin"
    result = client.download(fid, target, size=len(data), md5=md5(data))
    assert target.read_bytes() == data
    assert result.attempts == 2
    assert int(emulator.activity()["counts"].get("download_bytes", 0)) == len(data)
    assert [p for p in tmp_path.iterdir() if p.name.endswith(".syncagent-part")] == []
