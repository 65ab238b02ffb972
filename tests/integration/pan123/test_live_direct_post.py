"""Uploads and JSON POSTs go straight through urllib3 (``HttpTransport._direct``), not through
requests' per-call machinery (~1 ms of CPU each: most of a small file's upload), and what
123pan receives is the same: the file's exact bytes, in single-step and in slices.

requests' ``Session.request`` is replaced by one that fails the test, so a call that still
went through it is caught.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pan123_support import SLICE, THRESHOLD, blob, make_client, stored

from syncagent.emulator import Emulator


@pytest.fixture(autouse=True)
def _small_slices(emulator: Emulator) -> None:
    emulator.configure(slice_size=SLICE)


def _no_requests(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"went through requests: {args[:2]}")


@pytest.mark.parametrize(("size", "method"), [(THRESHOLD, "single"), (5 * SLICE + 3, "chunked")])
def test_uploads_and_json_calls_go_direct_and_arrive_exact(
    emulator: Emulator, tmp_path: Path, size: int, method: str
) -> None:
    data = blob(size, 21)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    with make_client(emulator, tmp_path / "state") as client:
        client.transport._session.request = _no_requests  # type: ignore[method-assign]
        result = client.upload(path, 0, "direct/f.bin")
        assert result.method == method
        assert client.detail(result.file_id).size == size
        assert stored(emulator, client, result.file_id) == data
        client.trash([result.file_id])  # a JSON POST
        assert client.detail(result.file_id).trashed
