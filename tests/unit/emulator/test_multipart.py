"""Tests of the emulator's streaming multipart/form-data and chunked decoders.

Bodies are built by hand and by encoders this project did not write (``requests_toolbelt``'s
``MultipartEncoder`` and ``urllib3``'s ``encode_multipart_formdata``).
"""

from __future__ import annotations

import hashlib
import io
import os
import random

import pytest
from requests_toolbelt import MultipartEncoder  # type: ignore[import-untyped]
from urllib3.filepost import encode_multipart_formdata

from syncagent.emulator.multipart import (
    CHUNK_SIZE,
    ChunkedReader,
    MultipartReader,
    Part,
    boundary_from_content_type,
    drain,
)
from syncagent.errors import MultipartError

BOUNDARY = b"xYzZY-boundary"

# -- helpers ------------------------------------------------------------------------------------


class SlowStream:
    """A stream that hands out data in random small pieces (1..max_piece bytes per read)."""

    def __init__(self, data: bytes, seed: int = 0, max_piece: int = 7) -> None:
        self._data = data
        self._pos = 0
        self._rng = random.Random(seed)
        self._max = max_piece

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = len(self._data) - self._pos
        k = min(n, self._rng.randint(1, self._max))
        out = self._data[self._pos : self._pos + k]
        self._pos += len(out)
        return out

    def tell(self) -> int:
        return self._pos


class RecordingStream(io.BytesIO):
    """A BytesIO that records the size of every read request."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.requests: list[int] = []

    def read(self, n: int | None = -1, /) -> bytes:
        self.requests.append(-1 if n is None else n)
        return super().read(n)


def part_bytes(
    name: str,
    body: bytes,
    filename: str | None = None,
    content_type: str | None = None,
    boundary: bytes = BOUNDARY,
) -> bytes:
    disp = f'form-data; name="{name}"'
    if filename is not None:
        disp += f'; filename="{filename}"'
    head = f"Content-Disposition: {disp}\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    return b"--" + boundary + b"\r\n" + head.encode() + b"\r\n" + body + b"\r\n"


def close(boundary: bytes = BOUNDARY) -> bytes:
    return b"--" + boundary + b"--\r\n"


def parse(
    stream: object,
    boundary: bytes,
    length: int | None,
    read_size: int = -1,
    **kwargs: int,
) -> tuple[MultipartReader, list[tuple[str, str | None, str | None, bytes]]]:
    reader = MultipartReader(stream, boundary, length, **kwargs)  # type: ignore[arg-type]
    out: list[tuple[str, str | None, str | None, bytes]] = []
    for part in reader:
        pieces = []
        while piece := part.read(read_size):
            if read_size > 0:
                assert len(piece) <= read_size
            pieces.append(piece)
        out.append((part.name, part.filename, part.content_type, b"".join(pieces)))
    return reader, out


def chunked(data: bytes, sizes: list[int], ext: bool = False, trailers: bytes = b"") -> bytes:
    out = bytearray()
    pos = 0
    i = 0
    while pos < len(data):
        size = min(sizes[i % len(sizes)], len(data) - pos)
        i += 1
        out += f"{size:x}".encode() + (b";name=value;x" if ext else b"") + b"\r\n"
        out += data[pos : pos + size] + b"\r\n"
        pos += size
    out += b"0" + (b";last=1" if ext else b"") + b"\r\n" + trailers + b"\r\n"
    return bytes(out)


# -- well-formed bodies -------------------------------------------------------------------------


@pytest.mark.parametrize("file_first", [False, True])
def test_fields_and_file_in_either_order(file_first: bool) -> None:
    fields = [
        part_bytes("parentFileID", b"0"),
        part_bytes("filename", b"a.bin"),
        part_bytes("etag", b"d41d8cd98f00b204e9800998ecf8427e"),
    ]
    file_part = part_bytes("file", b"\x00\x01binary\r\ndata", "a.bin", "application/octet-stream")
    parts = [file_part, *fields] if file_first else [*fields, file_part]
    body = b"".join(parts) + close()
    reader, got = parse(io.BytesIO(body), BOUNDARY, len(body))
    expected_fields = [
        ("parentFileID", None, None, b"0"),
        ("filename", None, None, b"a.bin"),
        ("etag", None, None, b"d41d8cd98f00b204e9800998ecf8427e"),
    ]
    expected_file = ("file", "a.bin", "application/octet-stream", b"\x00\x01binary\r\ndata")
    expected = (
        [expected_file, *expected_fields] if file_first else [*expected_fields, expected_file]
    )
    assert got == expected
    assert reader.done
    assert reader.bytes_consumed == len(body)


def test_urllib3_encoder_fields_and_file() -> None:
    content = os.urandom(100_000) + b"\r\n--" + b"\r\n"
    body, content_type = encode_multipart_formdata(
        [
            ("parentFileID", "12"),
            ("filename", "测试.exe"),
            ("file", ("测试.exe", content, "application/x-msdownload")),
            ("size", str(len(content))),
        ]
    )
    boundary = boundary_from_content_type(content_type)
    _, got = parse(io.BytesIO(body), boundary, len(body))
    assert got == [
        ("parentFileID", None, None, b"12"),
        ("filename", None, None, "测试.exe".encode()),
        ("file", "测试.exe", "application/x-msdownload", content),
        ("size", None, None, str(len(content)).encode()),
    ]


def test_requests_toolbelt_encoder_big_binary_file_md5() -> None:
    content = random.Random(7).randbytes(3 * CHUNK_SIZE + 12345)
    encoder = MultipartEncoder(
        fields=[
            ("preuploadID", "abc"),
            ("sliceNo", "1"),
            ("slice", ("测试.exe", io.BytesIO(content), "application/octet-stream")),
            ("sliceMD5", hashlib.md5(content).hexdigest()),
        ]
    )
    body = encoder.to_string()
    boundary = boundary_from_content_type(encoder.content_type)
    stream = RecordingStream(body + b"NEXT REQUEST")
    reader = MultipartReader(stream, boundary, len(body))
    parts: dict[str, bytes] = {}
    filenames: dict[str, str | None] = {}
    for part in reader:
        filenames[part.name] = part.filename
        if part.filename is None:
            parts[part.name] = part.read_all(1024)
            continue
        md5 = hashlib.md5()
        size = 0
        while piece := part.read():
            assert len(piece) <= CHUNK_SIZE
            md5.update(piece)
            size += len(piece)
        assert size == len(content)
        parts[part.name] = md5.hexdigest().encode()
    assert parts == {
        "preuploadID": b"abc",
        "sliceNo": b"1",
        "slice": hashlib.md5(content).hexdigest().encode(),
        "sliceMD5": hashlib.md5(content).hexdigest().encode(),
    }
    assert filenames["slice"] == "测试.exe"
    assert max(stream.requests) <= CHUNK_SIZE
    assert stream.tell() == len(body)
    assert stream.read() == b"NEXT REQUEST"


def test_small_reads_return_at_most_n() -> None:
    content = bytes(range(256)) * 40
    body = part_bytes("file", content, "f.bin") + close()
    _, got = parse(io.BytesIO(body), BOUNDARY, len(body), read_size=3)
    assert got == [("file", "f.bin", None, content)]


NASTY = (
    b"--"
    + BOUNDARY
    + b"\r\n--"
    + BOUNDARY[:-1]
    + b"\r\n\r\n--"
    + BOUNDARY
    + b"X\r\n--"
    + BOUNDARY
    + b"-\r\n"
    + b"\r\r\r\n\r\n-\r\n--\r\n--x"
    + b"\r\n--"
    + BOUNDARY
    + b" \tnot-a-delimiter\r\n"
    + b"\r"
)


@pytest.mark.parametrize("seed", range(12))
def test_nasty_content_through_random_small_pieces(seed: int) -> None:
    rng = random.Random(seed)
    content = b"".join(NASTY[: rng.randint(0, len(NASTY))] + rng.randbytes(5) for _ in range(30))
    body = (
        b"preamble \r\n--not it\r\n"
        + part_bytes("a", NASTY)
        + part_bytes("file", content, "n.bin")
        + part_bytes("b", b"")
        + close()
        + b"epilogue\r\n"
    )
    stream = SlowStream(body + b"tail", seed=seed)
    reader, got = parse(stream, BOUNDARY, len(body), read_size=rng.choice([-1, 1, 5, 64]))
    assert got == [
        ("a", None, None, NASTY),
        ("file", "n.bin", None, content),
        ("b", None, None, b""),
    ]
    assert stream.tell() == len(body)
    assert reader.bytes_consumed == len(body)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 8, 13, 16, 17, 18, 19, 20, 21, 31, 64, 4096])
def test_every_chunk_size_splits_delimiters_correctly(chunk_size: int) -> None:
    content = NASTY * 3
    body = part_bytes("f", content, "x") + part_bytes("g", b"v") + close()
    reader, got = parse(io.BytesIO(body), BOUNDARY, len(body), chunk_size=chunk_size)
    assert got == [("f", "x", None, content), ("g", None, None, b"v")]
    assert reader.bytes_consumed == len(body)


@pytest.mark.parametrize("shift", [-3, -1, 0, 1, 2, 5, 10, 17, 18, 19, 20, 40])
def test_one_mib_read_boundary_inside_delimiter(shift: int) -> None:
    head = part_bytes("file", b"", "big.bin")[:-2]  # without the closing CRLF of the body
    # The delimiter after the content starts `shift` bytes before the 1 MiB read boundary.
    content_len = CHUNK_SIZE - len(head) - shift
    pattern = b"\r\n--" + BOUNDARY[:5] + b"\r"
    content = (pattern * (content_len // len(pattern) + 1))[:content_len]
    body = head + content + b"\r\n" + part_bytes("tail", b"ok") + close()
    assert body.index(b"\r\n--" + BOUNDARY + b"\r\n", len(head)) == CHUNK_SIZE - shift
    stream = RecordingStream(body)
    _, got = parse(stream, BOUNDARY, len(body))
    assert got == [("file", "big.bin", None, content), ("tail", None, None, b"ok")]
    assert stream.requests[0] == CHUNK_SIZE


def test_header_block_across_read_boundary() -> None:
    first = part_bytes("pad", b"p" * 1000)
    body = first + part_bytes("x", b"value", "f.txt", "text/plain") + close()
    for cut in range(len(first), len(first) + 120, 7):
        _, got = parse(io.BytesIO(body), BOUNDARY, len(body), chunk_size=cut)
        assert got == [("pad", None, None, b"p" * 1000), ("x", "f.txt", "text/plain", b"value")]


def test_chinese_filename_and_field_value_hand_built() -> None:
    value = "上传测试"
    body = (
        part_bytes("filename", value.encode())
        + b"--"
        + BOUNDARY
        + b"\r\n"
        + 'Content-Disposition: form-data; name="file"; filename="测试.exe"\r\n'.encode()
        + b"Content-Type: application/octet-stream\r\n\r\nMZ\r\n"
        + close()
    )
    reader = MultipartReader(io.BytesIO(body), BOUNDARY, len(body))
    field = reader.next_part()
    assert field is not None
    assert field.read_all(100).decode() == value
    file_part = reader.next_part()
    assert file_part is not None
    assert file_part.filename == "测试.exe"
    assert file_part.read_all(100) == b"MZ"
    assert reader.next_part() is None


def test_undecodable_filename_bytes_are_kept_with_surrogateescape() -> None:
    body = (
        b"--"
        + BOUNDARY
        + b'\r\nContent-Disposition: form-data; name="f"; filename="a\xff.bin"\r\n\r\nz\r\n'
        + close()
    )
    reader = MultipartReader(io.BytesIO(body), BOUNDARY, len(body))
    part = reader.next_part()
    assert part is not None
    assert part.filename is not None
    assert part.filename.encode("utf-8", "surrogateescape") == b"a\xff.bin"


@pytest.mark.parametrize(
    ("disposition", "filename"),
    [
        ("form-data; name=\"f\"; filename*=UTF-8''%E6%B5%8B%E8%AF%95.exe", "测试.exe"),
        (
            'form-data; name="f"; filename="fallback.exe"; filename*=utf-8\'zh\'%E6%B5%8B.exe',
            "测.exe",
        ),
        ("form-data; filename*=UTF-8''a%20b.txt; name=\"f\"", "a b.txt"),
        ("form-data; name=\"f\"; filename*=iso-8859-1''caf%E9.txt", "café.txt"),
        ('form-data; name="f"; filename="say \\"hi\\".txt"', 'say "hi".txt'),
        ('form-data; name="f"; filename="back\\\\slash.txt"', "back\\slash.txt"),
        ('form-data; name="f"; filename="C:\\dir\\file.txt"', "C:\\dir\\file.txt"),
        ('form-data; name="f"; filename="semi;colon.txt"', "semi;colon.txt"),
        ("form-data; name=f; filename=plain.txt", "plain.txt"),
        ('FORM-DATA; NAME="f"; FILENAME="upper.txt"', "upper.txt"),
        ('form-data; name="f"; filename=""', ""),
    ],
)
def test_filename_forms(disposition: str, filename: str) -> None:
    body = (
        b"--"
        + BOUNDARY
        + b"\r\nContent-Disposition: "
        + disposition.encode()
        + b"\r\nX-Extra:  folded\r\n  more\r\n\r\ndata\r\n"
        + close()
    )
    reader = MultipartReader(io.BytesIO(body), BOUNDARY, len(body))
    part = reader.next_part()
    assert part is not None
    assert part.name == "f"
    assert part.filename == filename
    assert part.headers["x-extra"] == "folded more"
    assert part.read_all(10) == b"data"


def test_field_without_filename_has_none() -> None:
    body = part_bytes("k", b"v") + close()
    reader = MultipartReader(io.BytesIO(body), BOUNDARY, len(body))
    part = reader.next_part()
    assert isinstance(part, Part)
    assert (part.name, part.filename, part.content_type) == ("k", None, None)
    assert part.headers == {"content-disposition": 'form-data; name="k"'}


def test_extra_bytes_after_content_length_are_not_consumed() -> None:
    body = b"ignored preamble\r\n" + part_bytes("a", b"1") + close() + b"epilogue junk\r\n"
    nxt = b"POST /upload/v1/file/slice HTTP/1.1\r\nHost: x\r\n\r\n"
    stream = io.BytesIO(body + nxt)
    reader, got = parse(stream, BOUNDARY, len(body))
    assert got == [("a", None, None, b"1")]
    assert stream.tell() == len(body)
    assert reader.bytes_consumed == len(body)
    assert stream.read() == nxt


def test_stopping_early_then_drain_keeps_the_stream_in_sync() -> None:
    body = part_bytes("file", b"z" * 500_000, "z") + part_bytes("a", b"1") + close()
    stream = io.BytesIO(body + b"NEXT")
    reader = MultipartReader(stream, BOUNDARY, len(body), chunk_size=4096)
    part = reader.next_part()
    assert part is not None
    assert part.read(10) == b"z" * 10
    assert reader.bytes_consumed == 4096
    drain(stream, len(body) - reader.bytes_consumed)
    assert stream.read() == b"NEXT"


def test_next_part_skips_unread_data_and_old_part_reads_empty() -> None:
    content = b"q" * 300_000
    body = part_bytes("file", content, "q") + part_bytes("after", b"yes") + close()
    reader = MultipartReader(io.BytesIO(body), BOUNDARY, len(body), chunk_size=1000)
    first = reader.next_part()
    assert first is not None
    assert first.read(7) == b"qqqqqqq"
    second = reader.next_part()
    assert second is not None
    assert second.name == "after"
    assert first.read() == b""
    assert second.read_all(3) == b"yes"
    assert second.read() == b""
    assert reader.next_part() is None
    assert reader.next_part() is None


@pytest.mark.parametrize("ending", [b"--", b"--\r\n", b"--  trailing", b"--\r\nepilogue"])
def test_closing_delimiter_variants(ending: bytes) -> None:
    body = part_bytes("a", b"1") + b"--" + BOUNDARY + ending
    stream = io.BytesIO(body + b"X")
    reader, got = parse(stream, BOUNDARY, len(body))
    assert got == [("a", None, None, b"1")]
    assert stream.tell() == len(body)
    assert reader.bytes_consumed == len(body)


def test_transport_padding_after_delimiter() -> None:
    body = (
        b"--"
        + BOUNDARY
        + b' \t \r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--'
        + BOUNDARY
        + b'  \r\nContent-Disposition: form-data; name="b"\r\n\r\n2\r\n'
        + close()
    )
    _, got = parse(io.BytesIO(body), BOUNDARY, len(body))
    assert got == [("a", None, None, b"1"), ("b", None, None, b"2")]


def test_unknown_length_stops_at_closing_delimiter() -> None:
    body = part_bytes("a", b"hello") + close()
    stream = io.BytesIO(body)
    reader, got = parse(stream, BOUNDARY, None)
    assert got == [("a", None, None, b"hello")]
    assert reader.bytes_consumed == len(body)


# -- boundary_from_content_type -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "boundary"),
    [
        ("multipart/form-data; boundary=abc123", b"abc123"),
        ('multipart/form-data; boundary="abc 123"', b"abc 123"),
        (
            "Multipart/Form-Data; BOUNDARY=----WebKitFormBoundary7MA4YWxk",
            b"----WebKitFormBoundary7MA4YWxk",
        ),
        ("multipart/form-data; charset=utf-8; boundary=x", b"x"),
        ("multipart/form-data;boundary=x;charset=utf-8", b"x"),
        ("multipart/form-data; boundary=" + "b" * 70, b"b" * 70),
        ("multipart/form-data; boundary='()+_,-./:=?", b"'()+_,-./:=?"),
    ],
)
def test_boundary_from_content_type(header: str, boundary: bytes) -> None:
    assert boundary_from_content_type(header) == boundary


@pytest.mark.parametrize(
    "header",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=",
        'multipart/form-data; boundary=""',
        "multipart/form-data; boundary=" + "b" * 71,
        "multipart/mixed; boundary=abc",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=ab<c>",
        'multipart/form-data; boundary="ends with space "',
        "multipart/form-data; boundary=测试",
        'multipart/form-data; boundary="unterminated',
        "",
    ],
)
def test_bad_content_type_raises(header: str) -> None:
    with pytest.raises(MultipartError):
        boundary_from_content_type(header)


@pytest.mark.parametrize("boundary", [b"", b"a" * 71, b"a\r\nb", b"bad space "])
def test_reader_rejects_bad_boundary(boundary: bytes) -> None:
    with pytest.raises(MultipartError, match="boundary"):
        MultipartReader(io.BytesIO(b""), boundary, 0)


# -- malformed bodies ---------------------------------------------------------------------------


def _collect(stream: object, length: int | None, **kwargs: int) -> None:
    reader = MultipartReader(stream, BOUNDARY, length, **kwargs)  # type: ignore[arg-type]
    for part in reader:
        while part.read():
            pass


GOOD = part_bytes("a", b"1") + part_bytes("f", b"data" * 100, "f.bin") + close()


@pytest.mark.parametrize("cut", [0, 5, 20, 50, 70, 100, len(GOOD) - 30, len(GOOD) - 5])
def test_truncated_stream_raises(cut: int) -> None:
    data = GOOD[:cut]
    with pytest.raises(MultipartError):
        _collect(io.BytesIO(data), len(GOOD))
    with pytest.raises(MultipartError):
        _collect(SlowStream(data), None)


@pytest.mark.parametrize("cut", [20, 50, 100, len(GOOD) - 30, len(GOOD) - 6, len(GOOD) - 5])
def test_body_ending_before_closing_delimiter_raises(cut: int) -> None:
    data = GOOD[:cut]
    with pytest.raises(MultipartError):
        _collect(io.BytesIO(data + b"more requests"), len(data))


def test_missing_closing_delimiter_raises() -> None:
    body = part_bytes("a", b"1") + part_bytes("b", b"2")
    with pytest.raises(MultipartError, match="closing delimiter"):
        _collect(io.BytesIO(body), len(body))


def test_body_without_boundary_raises() -> None:
    body = b"just some bytes\r\n--other\r\n"
    with pytest.raises(MultipartError, match="no multipart boundary"):
        _collect(io.BytesIO(body), len(body))


def test_oversized_header_block_raises() -> None:
    big = b"X-Big: " + b"a" * 17_000 + b"\r\n"
    body = (
        b"--" + BOUNDARY + b"\r\n" + big + b'Content-Disposition: form-data; name="a"\r\n\r\n1\r\n'
    ) + close()
    with pytest.raises(MultipartError, match="header block longer"):
        _collect(io.BytesIO(body), len(body))
    # The same block is fine with a bigger cap.
    _collect(io.BytesIO(body), len(body), max_header_bytes=32_768)


def test_endless_header_block_raises_without_reading_everything() -> None:
    body = b"--" + BOUNDARY + b"\r\nX: " + b"a" * 5_000_000
    stream = RecordingStream(body)
    with pytest.raises(MultipartError, match="header block longer"):
        _collect(stream, len(body), chunk_size=4096)
    assert stream.tell() < 64 * 1024


@pytest.mark.parametrize(
    "headers",
    [
        b"",
        b"Content-Type: text/plain",
        b'Content-Disposition: form-data; filename="x"',
        b"Content-Disposition: form-data",
        b'no colon here\r\nContent-Disposition: form-data; name="a"',
        b'Content-Disposition: form-data; name="a"\r\nContent-Disposition: form-data; name="b"',
        b'Content-Disposition: form-data; name="a',
        b"Content-Disposition: form-data; name=\"a\"; filename*=bogus-charset''x",
        b'Content-Disposition: form-data; name="a"; filename*=no-quotes',
    ],
)
def test_bad_part_headers_raise(headers: bytes) -> None:
    body = b"--" + BOUNDARY + b"\r\n" + headers + b"\r\n\r\nvalue\r\n" + close()
    with pytest.raises(MultipartError):
        _collect(io.BytesIO(body), len(body))


def test_too_many_parts_raises() -> None:
    body = b"".join(part_bytes(f"f{i}", b"v") for i in range(65)) + close()
    with pytest.raises(MultipartError, match="more than 64 parts"):
        _collect(io.BytesIO(body), len(body))
    body64 = b"".join(part_bytes(f"f{i}", b"v") for i in range(64)) + close()
    _, got = parse(io.BytesIO(body64), BOUNDARY, len(body64))
    assert len(got) == 64


def test_oversized_field_raises() -> None:
    body = part_bytes("name", b"n" * 1025) + close()
    reader = MultipartReader(io.BytesIO(body), BOUNDARY, len(body))
    part = reader.next_part()
    assert part is not None
    with pytest.raises(MultipartError, match="longer than 1024 bytes"):
        part.read_all(1024)
    exact = part_bytes("name", b"n" * 1024) + close()
    reader = MultipartReader(io.BytesIO(exact), BOUNDARY, len(exact), chunk_size=100)
    part = reader.next_part()
    assert part is not None
    assert part.read_all(1024) == b"n" * 1024


def test_negative_content_length_raises() -> None:
    with pytest.raises(MultipartError):
        MultipartReader(io.BytesIO(b""), BOUNDARY, -1)


# -- ChunkedReader ------------------------------------------------------------------------------


@pytest.mark.parametrize("slow", [False, True])
def test_chunked_round_trip_with_extensions_and_trailers(slow: bool) -> None:
    data = random.Random(3).randbytes(70_000)
    encoded = chunked(data, [1, 10, 4096, 333], ext=True, trailers=b"X-Sum: 1\r\nX-Other: 2\r\n")
    raw: SlowStream | io.BytesIO
    raw = SlowStream(encoded + b"NEXT", seed=1) if slow else io.BytesIO(encoded + b"NEXT")
    reader = ChunkedReader(raw)
    pieces = []
    rng = random.Random(5)
    while piece := reader.read(rng.randint(1, 5000)):
        pieces.append(piece)
    assert b"".join(pieces) == data
    assert reader.done
    assert reader.read() == b""
    assert raw.tell() == len(encoded)
    assert reader.bytes_consumed == len(encoded)


def test_chunked_read_all_and_read_exact_sizes() -> None:
    data = b"0123456789" * 100
    reader = ChunkedReader(io.BytesIO(chunked(data, [7, 64])))
    assert reader.read(500) == data[:500]  # spans many chunks, comes back whole
    assert reader.read(-1) == data[500:]
    assert reader.read(10) == b""


def test_chunked_empty_body() -> None:
    stream = io.BytesIO(b"0\r\n\r\nNEXT")
    reader = ChunkedReader(stream)
    assert reader.read(100) == b""
    assert reader.done
    assert stream.read() == b"NEXT"


def test_chunked_drain() -> None:
    stream = io.BytesIO(chunked(b"a" * 5000, [1000]) + b"NEXT")
    reader = ChunkedReader(stream)
    assert reader.read(10) == b"a" * 10
    assert reader.drain() == 4990
    assert stream.read() == b"NEXT"


def test_multipart_over_chunked_unknown_length() -> None:
    content = random.Random(9).randbytes(200_000) + NASTY
    body, content_type = encode_multipart_formdata(
        [("a", "1"), ("file", ("测试.exe", content, "application/octet-stream"))]
    )
    encoded = chunked(body, [8192, 13, 1000], ext=True)
    stream = SlowStream(encoded + b"NEXT", seed=4, max_piece=5000)
    dechunk = ChunkedReader(stream)
    reader, got = parse(dechunk, boundary_from_content_type(content_type), None)
    assert got == [
        ("a", None, None, b"1"),
        ("file", "测试.exe", "application/octet-stream", content),
    ]
    assert reader.bytes_consumed == len(body)
    dechunk.drain()
    assert stream.tell() == len(encoded)


@pytest.mark.parametrize(
    "encoded",
    [
        b"zz\r\nabc\r\n0\r\n\r\n",  # not hex
        b"\r\nabc\r\n0\r\n\r\n",  # empty size
        b"0x3\r\nabc\r\n0\r\n\r\n",  # 0x prefix
        b"+3\r\nabc\r\n0\r\n\r\n",  # sign
        b"-3\r\nabc\r\n0\r\n\r\n",  # negative
        b"3_0\r\nabc\r\n0\r\n\r\n",  # underscore int() would accept
        b"1" * 17 + b"\r\n",  # absurdly large size
        b"3\r\nabcX\r\n0\r\n\r\n",  # data longer than its size
        b"3\r\nab",  # ends inside chunk data
        b"3\r\nabc",  # ends before the CRLF after data
        b"3\r\nabc\r\n",  # ends before the last chunk
        b"3\r\nabc\r\n0\r\n",  # ends inside trailers
        b"3" + b" " * 5000 + b"\r\nabc\r\n0\r\n\r\n",  # size line too long
        b"0\r\nX: " + b"a" * 5000 + b"\r\n\r\n",  # trailer line too long
        b"0\r\n" + b"X-T: abcdefgh\r\n" * 2000 + b"\r\n",  # trailers too long
    ],
)
def test_chunked_malformed_raises(encoded: bytes) -> None:
    for stream in (io.BytesIO(encoded), SlowStream(encoded, seed=2)):
        reader = ChunkedReader(stream)
        with pytest.raises(MultipartError):
            while reader.read(1000):
                pass


def test_chunked_size_line_with_bare_lf_and_whitespace_is_accepted() -> None:
    reader = ChunkedReader(SlowStream(b"3 ;ext\nabc\r\n0\n\n"))
    assert reader.read(-1) == b"abc"
    assert reader.done


# -- drain --------------------------------------------------------------------------------------


def test_drain_discards_exactly_length() -> None:
    data = b"a" * (2 * CHUNK_SIZE + 17) + b"NEXT"
    stream = RecordingStream(data)
    drain(stream, len(data) - 4)
    assert stream.read() == b"NEXT"
    assert max(stream.requests[:-1]) == CHUNK_SIZE


def test_drain_raises_on_early_end() -> None:
    with pytest.raises(MultipartError, match="5 bytes early"):
        drain(io.BytesIO(b"abc"), 8)
    drain(io.BytesIO(b""), 0)
