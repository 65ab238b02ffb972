"""A chunked upload uses the slice MD5s hashed in the same read as the file's MD5.

The emulator checks every ``sliceMD5`` against the bytes it received, so a slice sent with a
digest's MD5 that is wrong is refused: that refusal is how these tests see that the digest's
slice MD5s are what went on the wire, and that a refused slice is hashed again and resent.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from pan123_support import blob, make_client, md5, stored

from syncagent.emulator import Emulator
from syncagent.pan123.hashing import FileDigest, digest_fd

SLICE = 256 * 1024


def _digest(path: Path, slice_size: int) -> FileDigest:
    fd = os.open(path, os.O_RDONLY)
    try:
        return digest_fd(fd, slice_size)
    finally:
        os.close(fd)


def _slice_calls(emu: Emulator) -> int:
    return int(emu.activity()["endpoints"]["upload/v2/file/slice"]["calls"])


def test_the_digests_slice_md5s_go_on_the_wire(emulator: Emulator, tmp_path: Path) -> None:
    emulator.configure(slice_size=SLICE)
    data = blob(4 * SLICE + 10, 21)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    good = _digest(path, SLICE)
    assert good.md5 == md5(data) and len(good.slice_md5s) == 5
    # slice 2's MD5 made wrong: the emulator refuses it once, the client hashes it again
    wrong = list(good.slice_md5s)
    wrong[1] = "0" * 32
    bad = dataclasses.replace(good, slice_md5s=tuple(wrong))
    with make_client(emulator, tmp_path / "state", slice_workers=1) as client:
        result = client.upload(path, 0, "big.bin", md5=good.md5, digest=bad)
        assert (result.method, result.md5) == ("chunked", md5(data))
        assert stored(emulator, client, result.file_id) == data
    assert _slice_calls(emulator) == 6, "5 slices and the refused one again"


def test_a_digest_at_another_slice_size_is_not_used(emulator: Emulator, tmp_path: Path) -> None:
    emulator.configure(slice_size=SLICE)
    data = blob(3 * SLICE, 22)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    other = _digest(path, SLICE // 2)  # cut at a size 123pan did not answer
    with make_client(emulator, tmp_path / "state") as client:
        result = client.upload(path, 0, "big.bin", md5=other.md5, digest=other)
        assert stored(emulator, client, result.file_id) == data
    assert _slice_calls(emulator) == 3  # each slice hashed by itself, none refused
