"""Streaming ``multipart/form-data`` and chunked transfer-encoding decoding for the emulator.

This module owns the request-body parsing of the local 123pan emulator's HTTP handler:

* :func:`boundary_from_content_type` takes the boundary out of a ``Content-Type`` header;
* :class:`MultipartReader` walks the parts of a ``multipart/form-data`` body read from a
  stream (the handler's ``rfile``). Part bodies are handed out in pieces, so a 1 GiB upload
  never sits in memory: at most about one read chunk (1 MiB) plus one delimiter is buffered.
  With a ``Content-Length`` the reader never reads past the body, which keeps a keep-alive
  connection usable;
* :class:`ChunkedReader` decodes ``Transfer-Encoding: chunked`` bodies;
* :func:`drain` throws away a known number of body bytes (after rejecting a request).

Every malformed input raises :class:`syncagent.errors.MultipartError`. The module uses the
standard library only and must never import ``syncagent.pan123``.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from typing import Protocol, cast
from urllib.parse import unquote_to_bytes

from syncagent.errors import MultipartError

__all__ = [
    "CHUNK_SIZE",
    "MAX_HEADER_BYTES",
    "MAX_PARTS",
    "ChunkedReader",
    "MultipartReader",
    "Part",
    "Readable",
    "boundary_from_content_type",
    "drain",
]

CHUNK_SIZE = 1 << 20
"""How many bytes are asked from the stream at a time."""
MAX_HEADER_BYTES = 16 * 1024
"""Longest header block of one part."""
MAX_PARTS = 64
"""Most parts one body may hold."""
MAX_BOUNDARY = 70
"""RFC 2046: a boundary is 1 to 70 characters."""
MAX_CHUNK_LINE = 4096
"""Longest chunk-size line (size plus extensions) and longest trailer line."""
MAX_TRAILER_BYTES = 16 * 1024
"""Most trailer bytes accepted after the last chunk."""

_MAX_PADDING = 256  # transport padding (spaces, tabs) tolerated after a delimiter

# RFC 2046 bchars: DIGIT / ALPHA / "'" / "(" / ")" / "+" / "_" / "," / "-" / "." / "/" / ":" /
# "=" / "?" and space, which may not come last.
_BOUNDARY_RE = re.compile(  # RFC 2046 bchars, at most MAX_BOUNDARY, not ending in a space
    rb"[0-9A-Za-z'()+_,\-./:=? ]{0,%d}[0-9A-Za-z'()+_,\-./:=?]" % (MAX_BOUNDARY - 1)
)
# One ``; key=value`` parameter (value quoted or not) or an empty ``;`` segment.
_PARAM_RE = re.compile(
    r'[ \t]*;[ \t]*(?:([^\s=;"]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^;"]*)))?[ \t]*'
)
_UNESCAPE_RE = re.compile(r'\\([\\"])')
_PADDING_RE = re.compile(rb"[ \t]*\r\n")
_HEX_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")

# Reader states.
_PREAMBLE = 0  # before the first delimiter
_HEADERS = 1  # just after a delimiter line; the next bytes are a part's header block
_BODY = 2  # inside a part's body
_DONE = 3  # closing delimiter seen

# Verdicts of _classify.
_NOT = 0  # the match is not a delimiter after all (content that looks like one)
_PART = 1  # a delimiter that opens another part
_CLOSE = 2  # the closing delimiter


class Readable(Protocol):
    """Anything with a blocking ``read(n)`` returning at most ``n`` bytes, ``b""`` at the end."""

    def read(self, n: int, /) -> bytes: ...


def _split_params(value: str) -> tuple[str, dict[str, str]]:
    """Split ``type; a=1; b="x"`` into ``("type", {"a": "1", "b": "x"})``.

    Names are lower-cased; quoted values are unquoted (``\\"`` and ``\\\\`` unescaped). RFC 5987
    extended values (``name*=UTF-8''%E6%B5%8B``) are decoded and win over the plain form.
    """
    cut = value.find(";")
    if cut < 0:
        return value.strip().lower(), {}
    head = value[:cut].strip().lower()
    plain: dict[str, str] = {}
    extended: dict[str, str] = {}
    pos, end = cut, len(value)
    while pos < end:
        m = _PARAM_RE.match(value, pos)
        if m is None or m.end() == pos:
            raise MultipartError(f"malformed header parameters: {value!r}")
        pos = m.end()
        key = m.group(1)
        if key is None:
            continue
        quoted = m.group(2)
        if quoted is not None:
            val = _UNESCAPE_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
        else:
            val = m.group(3).strip()
        key = key.lower()
        if key.endswith("*"):
            extended[key[:-1]] = _decode_ext_value(val)
        else:
            plain[key] = val
    plain.update(extended)
    return head, plain


def _decode_ext_value(value: str) -> str:
    """Decode an RFC 5987 ``charset'lang'percent-encoded`` value."""
    charset, sep1, rest = value.partition("'")
    _lang, sep2, encoded = rest.partition("'")
    if not sep1 or not sep2:
        raise MultipartError(f"malformed RFC 5987 parameter value: {value!r}")
    try:
        codec = codecs.lookup(charset or "utf-8").name
    except LookupError:
        raise MultipartError(f"unknown charset in parameter value: {charset!r}") from None
    raw = unquote_to_bytes(encoded)
    return raw.decode(codec, "surrogateescape" if codec == "utf-8" else "replace")


def _check_boundary(boundary: bytes) -> None:
    if not isinstance(boundary, bytes) or _BOUNDARY_RE.fullmatch(boundary) is None:
        raise MultipartError(f"invalid multipart boundary: {boundary!r}")


def boundary_from_content_type(content_type: str) -> bytes:
    """Return the boundary of a ``multipart/form-data; boundary=...`` header value.

    The boundary may be quoted; parameter names are case-insensitive.

    :raises MultipartError: another media type, no boundary, or a boundary that is empty,
        longer than 70 characters or not made of RFC 2046 characters.
    """
    media, params = _split_params(content_type)
    if media != "multipart/form-data":
        raise MultipartError(f"not a multipart/form-data body: {content_type!r}")
    value = params.get("boundary")
    if not value:
        raise MultipartError("multipart/form-data without a boundary")
    try:
        boundary = value.encode("ascii")
    except UnicodeEncodeError:
        raise MultipartError(f"invalid multipart boundary: {value!r}") from None
    _check_boundary(boundary)
    return boundary


def drain(stream: Readable, length: int, chunk_size: int = CHUNK_SIZE) -> None:
    """Read and discard exactly ``length`` bytes of ``stream``, ``chunk_size`` at a time.

    :raises MultipartError: the stream ends first.
    """
    left = length
    while left > 0:
        data = stream.read(min(chunk_size, left))
        if not data:
            raise MultipartError(f"body ended {left} bytes early")
        left -= len(data)


class Part:
    """One part of a multipart body: its headers, and its body read with :meth:`read`.

    A part can only be read while it is the reader's current part; once
    :meth:`MultipartReader.next_part` moved on, :meth:`read` returns ``b""``.
    """

    __slots__ = ("_reader", "content_type", "filename", "headers", "name")

    def __init__(
        self,
        reader: MultipartReader,
        name: str,
        filename: str | None,
        content_type: str | None,
        headers: dict[str, str],
    ) -> None:
        self._reader = reader
        self.name = name
        """The ``name`` parameter of ``Content-Disposition``."""
        self.filename = filename
        """The ``filename`` (or decoded ``filename*``) parameter, or ``None`` for a field."""
        self.content_type = content_type
        """The part's ``Content-Type`` header, or ``None``."""
        self.headers = headers
        """Every header of the part, names lower-cased, values stripped."""

    def read(self, n: int = -1) -> bytes:
        """Return the next piece of the body, at most ``n`` bytes; ``b""`` at the end.

        With ``n < 0`` the piece is whatever is buffered (at most about one read chunk), not
        the whole body: loop until ``b""``, or use :meth:`read_all` for small fields.
        """
        reader = self._reader
        if reader._current is not self or reader._state != _BODY or n == 0:
            return b""
        start, end = reader._next_span(n)
        if start == end:
            return b""
        buf = reader._buf
        reader._pos = end
        return buf[start:end]

    def read_all(self, limit: int) -> bytes:
        """Return the rest of the body whole (for form fields).

        :raises MultipartError: the body is longer than ``limit`` bytes.
        """
        pieces: list[bytes] = []
        total = 0
        while True:
            piece = self.read(limit + 1 - total)
            if not piece:
                break
            total += len(piece)
            if total > limit:
                raise MultipartError(f"form field {self.name!r} is longer than {limit} bytes")
            pieces.append(piece)
        if len(pieces) == 1:
            return pieces[0]
        return b"".join(pieces)

    def __repr__(self) -> str:
        return (
            f"Part(name={self.name!r}, filename={self.filename!r}, "
            f"content_type={self.content_type!r})"
        )


class MultipartReader:
    """Walk the parts of a ``multipart/form-data`` body read from ``stream``.

    :param stream: the body source, e.g. the handler's ``rfile`` or a :class:`ChunkedReader`.
    :param boundary: the boundary, e.g. from :func:`boundary_from_content_type`.
    :param content_length: the body length. When given, the reader never reads past it and,
        once the closing delimiter is seen, consumes the rest (the epilogue) so a keep-alive
        connection stays in sync. When ``None``, it reads until the closing delimiter only.
    :param max_parts: most parts accepted.
    :param max_header_bytes: longest header block of a part.
    :param chunk_size: how many bytes are asked from the stream at a time.

    Use :meth:`next_part` (or iterate) to get each :class:`Part`; unread data of the previous
    part is skipped. The preamble and the epilogue are ignored.

    After a :class:`MultipartError` the reader is unusable. :attr:`bytes_consumed` stays exact,
    so with a ``Content-Length`` the caller can ``drain(stream, content_length -
    reader.bytes_consumed)`` to keep the connection in sync (unless the stream itself ended).
    With ``content_length=None`` over a :class:`ChunkedReader`, call its ``drain()`` afterwards
    to consume the last chunk and the trailers.
    """

    def __init__(
        self,
        stream: Readable,
        boundary: bytes,
        content_length: int | None,
        *,
        max_parts: int = MAX_PARTS,
        max_header_bytes: int = MAX_HEADER_BYTES,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        _check_boundary(boundary)
        if content_length is not None and content_length < 0:
            raise MultipartError(f"invalid content length {content_length}")
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self._stream = stream
        self._delim = b"\r\n--" + boundary
        self._dlen = len(self._delim)
        self._remaining = content_length
        self._max_parts = max_parts
        self._max_header = max_header_bytes
        self._chunk = chunk_size
        # The body may start with the delimiter right away; a virtual CRLF in front lets one
        # search for b"\r\n--boundary" find it. It is not counted in bytes_consumed.
        self._buf = b"\r\n"
        self._pos = 0
        self._hit = -2  # cached find() of the delimiter in _buf: -2 unknown, -1 none
        self._consumed = 0
        self._state = _PREAMBLE
        self._parts = 0
        self._current: Part | None = None

    @property
    def bytes_consumed(self) -> int:
        """Bytes taken from the stream so far."""
        return self._consumed

    @property
    def done(self) -> bool:
        """Whether the closing delimiter has been seen."""
        return self._state == _DONE

    def __iter__(self) -> Iterator[Part]:
        while (part := self.next_part()) is not None:
            yield part

    def next_part(self) -> Part | None:
        """Return the next part, or ``None`` after the closing delimiter.

        :raises MultipartError: the body is malformed or ends early.
        """
        state = self._state
        if state == _BODY:
            self._current = None
            while True:
                start, end = self._next_span(-1)
                if start == end:
                    break
                self._pos = end
        elif state == _PREAMBLE:
            self._skip_preamble()
        if self._state == _DONE:
            self._current = None
            return None
        part = self._read_headers()
        self._current = part
        self._state = _BODY
        return part

    # -- buffer ------------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Append stream data to the unread part of the buffer; ``False`` at the body's end."""
        rem = self._remaining
        if rem is None:
            size = self._chunk
        elif rem <= 0:
            return False
        else:
            size = min(self._chunk, rem)
        data = self._stream.read(size)
        if not data:
            if rem is not None:
                total = self._consumed + rem
                raise MultipartError(
                    f"body ended after {self._consumed} of {total} bytes (Content-Length)"
                )
            return False
        got = len(data)
        self._consumed += got
        if rem is not None:
            if got > rem:
                raise MultipartError("stream returned more bytes than asked for")
            self._remaining = rem - got
        pos = self._pos
        buf = self._buf
        self._buf = data if pos >= len(buf) else buf[pos:] + data
        self._pos = 0
        self._hit = -2
        return True

    def _classify(self) -> int:
        """Look at the delimiter match at ``_pos`` and say what it is.

        On ``_PART``, ``_pos`` is left on the CRLF ending the delimiter line; on ``_CLOSE``,
        past the ``--``; on ``_NOT``, unchanged.
        """
        dlen = self._dlen
        while len(self._buf) - self._pos < dlen + 2:
            if not self._fill():
                raise MultipartError("body ended inside a boundary delimiter")
        buf = self._buf
        p = self._pos + dlen
        tail = buf[p : p + 2]
        if tail == b"\r\n":
            self._pos = p
            return _PART
        if tail == b"--":
            self._pos = p + 2
            return _CLOSE
        if tail[0] not in b" \t":
            return _NOT
        # Transport padding: spaces and tabs before the CRLF.
        want = dlen + _MAX_PADDING + 2
        while len(self._buf) - self._pos < want and self._fill():
            pass
        buf = self._buf
        p = self._pos + dlen
        m = _PADDING_RE.match(buf, p, p + _MAX_PADDING + 2)
        if m is None:
            return _NOT
        self._pos = m.end() - 2
        return _PART

    def _on_delimiter(self, verdict: int) -> None:
        if verdict == _CLOSE:
            self._state = _DONE
            self._current = None
            self._buf = b""
            self._pos = 0
            self._hit = -2
            rem = self._remaining
            if rem:
                drain(self._stream, rem, self._chunk)
                self._consumed += rem
                self._remaining = 0
        else:
            self._state = _HEADERS
            self._current = None

    # -- parsing -----------------------------------------------------------------------------

    def _skip_preamble(self) -> None:
        delim = self._delim
        dlen = self._dlen
        while True:
            buf = self._buf
            idx = buf.find(delim, self._pos)
            if idx >= 0:
                self._pos = idx
                verdict = self._classify()
                if verdict != _NOT:
                    self._on_delimiter(verdict)
                    return
                self._pos += 1
                continue
            self._pos = max(self._pos, len(buf) - dlen + 1)
            if not self._fill():
                raise MultipartError("no multipart boundary found in the body")

    def _next_span(self, n: int) -> tuple[int, int]:
        """Find the next piece of the current part's body in ``_buf``.

        Returns ``(start, end)`` offsets into ``_buf`` (``start == _pos``); the caller moves
        ``_pos`` to ``end``. ``start == end`` means the part is over (``_state`` moved on).
        """
        delim = self._delim
        while True:
            buf = self._buf
            pos = self._pos
            hit = self._hit
            if hit < pos and hit != -1:
                hit = self._hit = buf.find(delim, pos)
            if hit == pos:
                verdict = self._classify()
                if verdict != _NOT:
                    self._on_delimiter(verdict)
                    return 0, 0
                # Content that merely starts like a delimiter: hand out at least its CR.
                buf = self._buf
                pos = self._pos
                hit = self._hit = buf.find(delim, pos + 1)
            if hit >= 0:
                end = hit
            else:
                # Hold back a tail that could be the start of a delimiter. The delimiter holds
                # a single CR (its first byte), so such a tail starts at the last CR.
                size = len(buf)
                cr = buf.rfind(b"\r", max(pos, size - self._dlen + 1))
                end = size if cr < 0 else cr
                if end <= pos:
                    if not self._fill():
                        raise MultipartError("body ended before the closing delimiter")
                    continue
            if 0 < n < end - pos:
                end = pos + n
            return pos, end

    def _read_headers(self) -> Part:
        self._parts += 1
        if self._parts > self._max_parts:
            raise MultipartError(f"more than {self._max_parts} parts in the body")
        limit = self._max_header
        while True:
            buf = self._buf
            pos = self._pos  # on the CRLF that ends the delimiter line
            idx = buf.find(b"\r\n\r\n", pos)
            if idx >= 0:
                if idx - pos - 2 > limit:
                    raise MultipartError(f"part header block longer than {limit} bytes")
                break
            if len(buf) - pos > limit + 4:
                raise MultipartError(f"part header block longer than {limit} bytes")
            if not self._fill():
                raise MultipartError("body ended inside a part header block")
        block = buf[pos + 2 : idx]
        self._pos = idx + 4
        return self._parse_headers(block)

    def _parse_headers(self, block: bytes) -> Part:
        headers: dict[str, str] = {}
        last = ""
        if block:
            for line in block.decode("utf-8", "surrogateescape").split("\r\n"):
                if line[:1] in (" ", "\t") and last:  # obsolete line folding
                    headers[last] += " " + line.strip()
                    continue
                key, sep, value = line.partition(":")
                key = key.strip().lower()
                if not sep or not key:
                    raise MultipartError(f"malformed part header line: {line!r}")
                if key in headers and key == "content-disposition":
                    raise MultipartError("part has two Content-Disposition headers")
                headers[key] = value.strip()
                last = key
        disposition = headers.get("content-disposition")
        if disposition is None:
            raise MultipartError("part without a Content-Disposition header")
        _kind, params = _split_params(disposition)
        name = params.get("name")
        if name is None:
            raise MultipartError("part without a name in Content-Disposition")
        return Part(self, name, params.get("filename"), headers.get("content-type"), headers)


class ChunkedReader:
    """Decode an HTTP/1.1 ``Transfer-Encoding: chunked`` body read from ``stream``.

    :meth:`read` returns decoded bytes; ``b""`` once the last chunk (``0``) and the trailers
    have been read, so the reader never reads past the body. Chunk extensions and trailers
    are ignored. If ``stream`` has ``readline(limit)`` (like ``rfile``) it is used for the
    size lines; otherwise they are read a byte at a time.

    :param stream: the raw connection stream.
    :param max_line: longest chunk-size line and longest trailer line.
    """

    def __init__(self, stream: Readable, *, max_line: int = MAX_CHUNK_LINE) -> None:
        self._stream = stream
        self._max_line = max_line
        readline = getattr(stream, "readline", None)
        self._readline: Callable[[int], bytes] | None = cast(
            "Callable[[int], bytes] | None", readline
        )
        self._left = 0  # data bytes left in the current chunk
        self._done = False
        self._raw = 0  # bytes taken from the stream

    @property
    def done(self) -> bool:
        """Whether the last chunk and the trailers have been read."""
        return self._done

    @property
    def bytes_consumed(self) -> int:
        """Raw (encoded) bytes taken from the stream so far."""
        return self._raw

    def read(self, n: int = -1) -> bytes:
        """Return up to ``n`` decoded bytes (all that is left if ``n < 0``); ``b""`` at the end.

        Fewer than ``n`` bytes only come back at the end of the body.

        :raises MultipartError: malformed chunk framing or a body that ends early.
        """
        if n == 0 or self._done:
            return b""
        pieces: list[bytes] = []
        want = n
        stream = self._stream
        while want != 0:
            if self._left == 0:
                size = self._read_size()
                if size == 0:
                    self._read_trailers()
                    self._done = True
                    break
                self._left = size
            # Never ask for more than a chunk at once: a BufferedReader allocates what it is
            # asked for, and the size line comes from the client.
            k = min(self._left, CHUNK_SIZE) if want < 0 else min(want, self._left, CHUNK_SIZE)
            data = stream.read(k)
            if not data:
                raise MultipartError("chunked body ended inside a chunk")
            got = len(data)
            self._raw += got
            self._left -= got
            if want > 0:
                want -= got
            pieces.append(data)
            if self._left == 0:
                self._expect_crlf()
        if len(pieces) == 1:
            return pieces[0]
        return b"".join(pieces)

    def drain(self) -> int:
        """Read and discard the rest of the body; return how many decoded bytes it held."""
        total = 0
        while piece := self.read(CHUNK_SIZE):
            total += len(piece)
        return total

    def _line(self) -> bytes:
        """Read one line (without its line ending) of at most ``max_line`` bytes."""
        limit = self._max_line + 2
        readline = self._readline
        if readline is not None:
            line = readline(limit)
        else:
            out = bytearray()
            read = self._stream.read
            while len(out) < limit:
                c = read(1)
                if not c:
                    break
                out += c
                if c == b"\n":
                    break
            line = bytes(out)
        self._raw += len(line)
        if not line.endswith(b"\n"):
            if len(line) >= limit:
                raise MultipartError(f"chunked line longer than {self._max_line} bytes")
            raise MultipartError("chunked body ended inside a chunk-size line")
        return line[:-2] if line.endswith(b"\r\n") else line[:-1]

    def _read_size(self) -> int:
        line = self._line()
        size_text = line.split(b";", 1)[0].strip(b" \t")
        if _HEX_RE.fullmatch(size_text) is None:
            raise MultipartError(f"invalid chunk size line: {line[:64]!r}")
        return int(size_text, 16)

    def _expect_crlf(self) -> None:
        crlf = self._stream.read(2)
        while 0 < len(crlf) < 2:  # a short read on a slow stream
            more = self._stream.read(2 - len(crlf))
            if not more:
                break
            crlf += more
        self._raw += len(crlf)
        if crlf != b"\r\n":
            raise MultipartError("chunk data not followed by CRLF")

    def _read_trailers(self) -> None:
        total = 0
        while True:
            line = self._line()
            if not line:
                return
            total += len(line) + 2
            if total > MAX_TRAILER_BYTES:
                raise MultipartError(f"chunked trailers longer than {MAX_TRAILER_BYTES} bytes")
