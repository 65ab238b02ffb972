"""A 123pan SDK we did not write (py-123pan-client from PyPI) works against the emulator with
only its base URL changed: proof the emulator speaks the real wire format, not just ours."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from py_123pan_client import PanClient

from syncagent.emulator import Emulator

CHUNK_THRESHOLD = 100 * 1024 * 1024  # the SDK uses single-step below this size


def _write(path: Path, size: int) -> str:
    digest = hashlib.md5()
    with open(path, "wb") as f:
        block = os.urandom(1 << 20)
        left = size
        while left:
            piece = block[: min(left, len(block))]
            f.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def test_py_123pan_client_uploads_small_and_chunked_then_lists(
    emulator: Emulator, tmp_path: Path
) -> None:
    small, big = tmp_path / "small.txt", tmp_path / "big.bin"
    small_md5 = _write(small, 4096)
    big_md5 = _write(big, CHUNK_THRESHOLD + 12345)

    with PanClient(emulator.client_id, emulator.client_secret, base_url=emulator.api_url) as client:
        small_id = client.upload_file(str(small), filename="small.txt", parent_file_id=0)
        after_small = emulator.activity()["counts"]
        big_id = client.upload_file(str(big), filename="big.bin", parent_file_id=0)
        listed = {item.filename: item for item in client.iter_files(parent_id=0)}

    # The small file took the single-step path (the SDK silently falls back to chunked on any
    # single-step error, so check at the emulator), the big one the V2 chunked path.
    assert after_small.get("single_uploads") == 1
    assert after_small.get("chunked_uploads") is None
    counts = emulator.activity()["counts"]
    assert counts["chunked_uploads"] == 1
    slices = next(iter(emulator.activity()["slices"].values()))
    assert sorted(slices) == list(range(1, 8))  # 100 MiB + a bit in 16 MiB slices

    assert set(listed) == {"small.txt", "big.bin"}
    assert listed["small.txt"].file_id == small_id
    assert listed["big.bin"].file_id == big_id
    assert listed["small.txt"].etag == small_md5 and listed["small.txt"].size == 4096
    assert listed["big.bin"].etag == big_md5 and listed["big.bin"].size == CHUNK_THRESHOLD + 12345
