"""The streamed multipart body (syncagent/pan123/multipart.py) reads back as the form it holds."""

from __future__ import annotations

import io

from requests_toolbelt.multipart.decoder import MultipartDecoder  # type: ignore[import-untyped]

from syncagent.pan123.multipart import MultipartBody


class _Sized(io.BytesIO):
    """A stream that knows how much it will give, like the uploader's file ranges."""

    def __len__(self) -> int:
        return len(self.getbuffer()) - self.tell()


def test_fields_then_the_file_with_its_declared_length() -> None:
    data = bytes(range(256)) * 5000
    body = MultipartBody(
        {"preuploadID": "p1", "sliceNo": "3", "filename": '照片 "a".jpg'},
        "slice",
        "照片.jpg",
        _Sized(data),
    )
    pieces: list[bytes] = []
    while piece := body.read(65536):
        assert len(piece) <= 65536 or not pieces  # the head may come whole
        pieces.append(piece)
    raw = b"".join(pieces)
    assert len(raw) == len(body)
    parts = MultipartDecoder(raw, body.content_type).parts
    names = [p.headers[b"Content-Disposition"].decode() for p in parts]
    assert [p.content for p in parts[:3]] == [b"p1", b"3", '照片 "a".jpg'.encode()]
    assert 'name="preuploadID"' in names[0]
    assert 'name="slice"' in names[3] and "filename=" in names[3]
    assert parts[3].content == data
    assert parts[3].headers[b"Content-Type"] == b"application/octet-stream"


def test_read_all_and_a_seekable_stream_without_len() -> None:
    stream = io.BytesIO(b"xxhello")
    stream.seek(2)
    body = MultipartBody({}, "file", "f", stream)
    raw = body.read()
    assert len(raw) == len(body)
    assert MultipartDecoder(raw, body.content_type).parts[0].content == b"hello"
    assert body.read(10) == b""


def test_part_headers_are_formatted_as_urllib3_formats_them() -> None:
    from urllib3.fields import RequestField

    name = 'a "q"\r\n照片.jpg'
    body = MultipartBody({"filename": name}, "file", name, _Sized(b"x"))
    raw = body.read()
    field = RequestField(name="filename", data=name)
    field.make_multipart()
    part = RequestField(name="file", data=b"", filename=name)
    part.make_multipart(content_type="application/octet-stream")
    assert field.render_headers().encode() in raw
    assert part.render_headers().encode() in raw
