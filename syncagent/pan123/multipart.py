"""A ``multipart/form-data`` request body streamed from a file with one copy per byte.

An upload body is some small form fields, then the file's bytes. requests-toolbelt's
``MultipartEncoder`` passes every byte of the file through its own in-memory buffers before
the socket gets it: about as much CPU per gigabyte as hashing it (CPU-bound near 550 MB/s on
this kind of machine). :class:`MultipartBody` renders the fields and the part headers once
(formatted as urllib3 and toolbelt do: HTML5 rules, ``"`` and line breaks percent-encoded)
and hands the file's own reads to the sender unchanged: the only copy is the file read
itself. Stdlib only: ``pan123/http.py`` stays the one module that imports an HTTP library.

It is a file-like object with ``read`` and ``__len__``, which is what requests and urllib3
stream as a body with a ``Content-Length``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import IO

from syncagent.pan123.bandwidth import Throttle

__all__ = ["MultipartBody"]


class MultipartBody:
    """``fields`` then the file part ``field`` (``filename``, from ``stream``) as one body.

    :param stream: the file part's bytes: ``len(stream)`` must be the bytes it will give,
        or it must be seekable (its length is then what is left from where it is).
    :param throttle: the bandwidth limit: file pieces are read at most
        ``throttle.piece(n)`` bytes at a time and wait for ``throttle.take`` before they
        are given to the sender.
    """

    def __init__(
        self,
        fields: Mapping[str, str],
        field: str,
        filename: str,
        stream: IO[bytes],
        throttle: Throttle | None = None,
    ) -> None:
        self.boundary = secrets.token_hex(16)
        dash = f"--{self.boundary}\r\n".encode()
        head = bytearray()
        for name, value in fields.items():
            disposition = f"Content-Disposition: form-data; {_param('name', name)}\r\n\r\n"
            head += dash + disposition.encode() + value.encode() + b"\r\n"
        head += (
            dash
            + (
                f"Content-Disposition: form-data; {_param('name', field)}; "
                f"{_param('filename', filename)}\r\n"
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
        )
        self._head: bytes | None = bytes(head)
        self._tail: bytes | None = f"\r\n--{self.boundary}--\r\n".encode()
        self._stream = stream
        self._throttle = throttle
        self._left = _length(stream)
        self._length = len(self._head) + self._left + len(self._tail)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    def read(self, n: int = -1) -> bytes:
        """The next bytes of the body: the head, then file pieces as read, then the tail
        (``n < 0``: all that is left, as a file's ``read()``)."""
        if n is None or n < 0:
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        if self._head is not None:
            head, self._head = self._head, None
            return head
        if self._left > 0:
            want = min(n, self._left)
            if self._throttle is not None:
                want = self._throttle.piece(want)
            piece = self._stream.read(want)
            if piece:
                self._left -= len(piece)
                if self._throttle is not None:
                    self._throttle.take(len(piece))
                return piece
            self._left = 0  # the stream ended early: the server sees a short body and says so
        if self._tail is not None:
            tail, self._tail = self._tail, None
            return tail
        return b""


def _length(stream: IO[bytes]) -> int:
    """The bytes ``stream`` will give: its ``len()``, else what is left of a seekable one."""
    if hasattr(stream, "__len__"):
        return len(stream)
    here = stream.tell()
    end = stream.seek(0, 2)
    stream.seek(here)
    return end - here


def _param(name: str, value: str) -> str:
    """``name="value"`` as the HTML standard writes a multipart header parameter."""
    return f'{name}="{value.translate({10: "%0A", 13: "%0D", 34: "%22"})}"'
