"""HTTP for the emulator: the request handler shared by the API and upload listeners.

Turns each request into one endpoint call and every outcome into the ``{code, message, data,
x-traceID}`` envelope: business errors on HTTP 200, unknown paths on 404, malformed requests
(bad JSON, wrong types, oversized headers, broken multipart) as a well-formed error envelope,
never an HTML page or a traceback. Bodies are streamed to the endpoint; a body the endpoint did
not read is drained when small or the connection is closed (with ``Connection: close``) when
large, so keep-alive clients never reuse a socket in an unknown state. ``TCP_NODELAY`` is set,
without which every keep-alive answer waits ~40 ms for Nagle's algorithm. Under network shaping
(:mod:`~syncagent.emulator.shaping`) a connection gets paced socket files and its answers wait
one round trip.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlsplit

from syncagent.emulator import admin, downloads
from syncagent.emulator.core import Core
from syncagent.emulator.faults import Fault
from syncagent.emulator.fields import Fields
from syncagent.emulator.multipart import (
    ChunkedReader,
    MultipartReader,
    boundary_from_content_type,
)
from syncagent.emulator.routes import PATHS, ROUTES, Route
from syncagent.emulator.shaping import shaped_files
from syncagent.emulator.wire import HeadError, read_headers
from syncagent.errors import EmulatorRejection, MultipartError

__all__ = ["EmulatorHTTPServer", "Handler"]

log = logging.getLogger("syncagent.emulator")

MAX_JSON_BODY = 1 << 20
DRAIN_AT_MOST = 1 << 20
MULTIPART_SLACK = 64 * 1024  # room for the form fields around the data part
ADMIN_PREFIX = "/__emulator/"
_TRACE_PREFIX = uuid.uuid4().hex[:20]
_trace_counter = itertools.count(1)


class EmulatorHTTPServer(ThreadingHTTPServer):
    """One listener (API or upload host) sharing the emulator's :class:`Core`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512  # 100+ clients connect at once in the concurrency tests

    def __init__(
        self, address: tuple[str, int], core: Core, role: Literal["api", "upload"]
    ) -> None:
        super().__init__(address, Handler)
        self.core = core
        self.role = role
        self._open: set[socket.socket] = set()  # connections being served (keep-alive too)
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def open_connections(self) -> int:
        """Connections accepted and not yet closed (a request in flight, or kept alive)."""
        with self._open_lock:
            return len(self._open)

    def drop_connections(self) -> None:
        """Cut every open connection, as a service that goes down does: without this a
        stopped emulator went on answering clients that kept a connection alive."""
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that went away mid-answer is no emulator bug: no traceback on stderr."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError | ssl.SSLError):
            # also a TLS client that refused the certificate: its side says why
            log.debug("client %s went away: %s", client_address, error)
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Body:
    """The request body, never read past ``Content-Length``; counts what was consumed."""

    def __init__(self, handler: Handler) -> None:
        te = (handler.headers.get("Transfer-Encoding") or "").lower()
        self.chunked = "chunked" in te
        self._chunks = ChunkedReader(handler.rfile) if self.chunked else None
        raw = handler.headers.get("Content-Length")
        try:
            self.length: int | None = None if self.chunked else int(raw or 0)
        except ValueError:
            raise EmulatorRejection(400, "Content-Length 不合法", http_status=400) from None
        if self.length is not None and self.length < 0:
            raise EmulatorRejection(400, "Content-Length 不合法", http_status=400)
        self._rfile = handler.rfile
        self.consumed = 0

    @property
    def left(self) -> int | None:
        """Bytes not yet read (None: chunked, unknown)."""
        if self._chunks is not None:
            return 0 if self._chunks.done else None
        assert self.length is not None
        return self.length - self.consumed

    def read(self, n: int = -1) -> bytes:
        if self._chunks is not None:
            data = self._chunks.read(n)
        else:
            left = self.left or 0
            want = left if n < 0 else min(n, left)
            data = self._rfile.read(want) if want else b""
            if want and not data:
                raise MultipartError("the request body ended before Content-Length")
        self.consumed += len(data)
        return data


class Handler(BaseHTTPRequestHandler):
    """Serves one connection; see the module docstring for the rules."""

    server: EmulatorHTTPServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 60  # a client that stops sending mid-request does not hold a thread forever
    server_version = "syncagent-emulator/1"
    sys_version = ""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header, off by ``clock_offset`` (a server with a skewed clock)."""
        now = time.time() if timestamp is None else timestamp
        return super().date_time_string(now + self.server.core.settings.clock_offset)

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()  # here, not in the accepting thread
        shaper = self.server.core.shaper
        self._shaped = shaper.active()
        if self._shaped:
            self.rfile, self.wfile = shaped_files(self.connection, shaper, self.rbufsize)
            shaper.round_trip()  # the TCP handshake's round trip

    def end_headers(self) -> None:
        """Under shaping, an answer leaves one round trip after its request was read."""
        if self._shaped:
            self.server.core.shaper.round_trip()
        super().end_headers()

    def parse_request(self) -> bool:
        """The request line and headers, without the stdlib's costly e-mail parser."""
        self.command = ""
        self.request_version = "HTTP/0.9"
        self.close_connection = True
        raw: bytes = self.raw_requestline  # type: ignore[attr-defined]  # set by the base class
        self.requestline = str(raw, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            self.send_error(400, "Bad request syntax")
            return False
        self.command, self.path, self.request_version = words
        try:
            headers = read_headers(self.rfile)
        except HeadError as exc:
            self.send_error(exc.status, exc.message)
            return False
        self.headers = headers  # type: ignore[assignment]
        connection = (headers.get("Connection") or "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive"
        )
        if (headers.get("Expect") or "").lower() == "100-continue":
            return self.handle_expect_100()
        return True

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # -- responses -----------------------------------------------------------------------

    def _send(self, status: int, payload: bytes, content_type: str, close: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _envelope(
        self, code: int, message: str, data: object = None, status: int = 200, close: bool = False
    ) -> None:
        body = {
            "code": code,
            "message": message,
            "data": data,
            "x-traceID": f"{_TRACE_PREFIX}-{next(_trace_counter):012x}_kong-db-emulator",
        }
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        self._send(status, payload, "application/json; charset=utf-8", close or self._unsettled())

    def _unsettled(self) -> bool:
        """Whether the unread rest of the body is too big (or unknown) to drain after answering."""
        body = getattr(self, "_body", None)
        if body is None:
            return False
        left = body.left
        return left is None or left > DRAIN_AT_MOST

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, huge headers...) as an envelope."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            # A garbage request line leaves http.server's HTTP/0.9 default, under which it
            # writes no status line and no headers: the answer would be a bare JSON body.
            self.request_version = self.protocol_version
        self._envelope(code, message or phrase, None, status=code, close=True)

    # -- dispatch ------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def _handle(self) -> None:
        core = self.server.core
        body: _Body | None = None
        self._body: _Body | None = None
        try:
            body = self._body = _Body(self)
            url = urlsplit(self.path)
            self._route(core, url.path, url.query, body)
        except EmulatorRejection as rej:
            self._envelope(rej.code, rej.message, None, status=rej.http_status)
        except MultipartError as exc:
            self._envelope(core.settings.error_codes.bad_request, f"参数错误: {exc}", close=True)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            return
        except Exception:
            log.exception("emulator bug while handling %s %s", self.command, self.path)
            self._envelope(1, "内部错误", close=True)
        self._settle_body(body)

    def _settle_body(self, body: _Body | None) -> None:
        """Keep the connection usable: drain a small unread body, else close."""
        if body is None or self.close_connection:
            self.close_connection = True
            return
        left = body.left
        if left is not None and left > DRAIN_AT_MOST:
            self.close_connection = True
            return
        try:
            drained = 0
            while drained <= DRAIN_AT_MOST and (piece := body.read(65536)):
                drained += len(piece)
        except (OSError, MultipartError):
            self.close_connection = True
            return
        if body.left != 0:
            self.close_connection = True

    def _route(self, core: Core, path: str, query: str, body: _Body) -> None:
        role = self.server.role
        if path.startswith(ADMIN_PREFIX) and role == "api":
            admin.check_request(core, self.command, self.headers)  # before anything is read
            data = admin.handle(core, self.command, path[len(ADMIN_PREFIX) :], self._json(body))
            self._envelope(0, "ok", data)
            return
        if path.startswith("/download/") and role == "upload" and self.command == "GET":
            self._download(core, path, query)
            return
        route = ROUTES.get((self.command, path))
        if route is None or (core.settings.strict_hosts and route.host != role):
            status = 405 if route is None and path in PATHS else 404
            raise EmulatorRejection(status, HTTPStatus(status).phrase, http_status=status)
        fault = core.faults.take(route.name)
        if fault is not None and self._inject(fault, body):
            return
        if core.settings.require_platform and self.headers.get("Platform") != "open_platform":
            raise core.reject("missing_platform", "Platform 请求头缺失或不正确")
        if not core.limiter.admit(route.name):
            raise EmulatorRejection(429, "请求太频繁")
        if route.auth:
            core.authenticate(self.headers.get("Authorization"))
        self._envelope(0, "ok", self._call(core, route, query, body))

    def _call(self, core: Core, route: Route, query: str, body: _Body) -> object:
        code = core.settings.error_codes.bad_request
        if route.body == "query":
            params = dict(parse_qsl(query, keep_blank_values=True))
            return route.handler(core, Fields(params, code))  # type: ignore[arg-type]
        if route.body == "json":
            return route.handler(core, Fields(self._json(body), code))  # type: ignore[arg-type]
        limit = (
            core.settings.single_max
            if route.name.endswith("single/create")
            else core.settings.slice_size
        ) + MULTIPART_SLACK
        if body.length is not None and body.length > limit:
            self.close_connection = True
            raise core.reject("size_limit", f"请求体过大: {body.length} 字节")
        try:
            boundary = boundary_from_content_type(self.headers.get("Content-Type") or "")
        except MultipartError as exc:
            raise EmulatorRejection(code, f"参数错误: {exc}") from None
        form = MultipartReader(body, boundary, None)
        return route.handler(core, form)  # type: ignore[arg-type]

    def _json(self, body: _Body) -> dict[str, object]:
        if body.left is not None and body.left > MAX_JSON_BODY:
            self.close_connection = True
            raise EmulatorRejection(413, "请求体过大", http_status=413)
        raw = body.read(MAX_JSON_BODY + 1)
        if len(raw) > MAX_JSON_BODY:
            self.close_connection = True
            raise EmulatorRejection(413, "请求体过大", http_status=413)
        if not raw.strip():
            return {}
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):  # too deeply nested: bad too
            code = self.server.core.settings.error_codes.bad_request
            raise EmulatorRejection(code, "参数错误: 请求体不是合法的JSON") from None
        if not isinstance(value, dict):
            code = self.server.core.settings.error_codes.bad_request
            raise EmulatorRejection(code, "参数错误: 请求体须为JSON对象")
        return value

    def _inject(self, fault: Fault, body: _Body) -> bool:
        """Carry out a fault; True when the request is finished with."""
        if fault.kind == "delay":
            time.sleep(fault.seconds)
            return False
        if fault.kind == "code":
            raise EmulatorRejection(fault.code, fault.message)
        if fault.kind == "http":
            self._envelope(
                fault.http_status,
                fault.message or HTTPStatus(fault.http_status).phrase,
                status=fault.http_status,
            )
            return True
        # drop: take part of the body, then reset the connection without an answer
        want = fault.after_bytes
        if want is None:
            want = (body.left or 0) // 2
        while want > 0 and (piece := body.read(min(want, 1 << 20))):
            want -= len(piece)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True
        return True

    def _download(self, core: Core, path: str, query: str) -> None:
        """Serve a download URL (see :mod:`~syncagent.emulator.downloads`), faults included."""
        ans = downloads.answer(core, path, query, self.headers.get("Range"))
        fault = ans.fault
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        elif fault is not None and fault.kind in ("code", "http"):
            status = fault.http_status if fault.kind == "http" else 200
            self._envelope(fault.code or status, fault.message or "injected", status=status)
            return
        cut = ans.length  # drop: send this much of the body, then reset the connection
        flip = -1  # corrupt: change the byte at this offset of the body
        if fault is not None and fault.kind == "drop":
            half = ans.length // 2
            cut = min(ans.length, half if fault.after_bytes is None else fault.after_bytes)
        elif fault is not None and fault.kind == "corrupt":
            flip = ans.length // 2 if fault.after_bytes is None else fault.after_bytes
        self.send_response(ans.status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(ans.length))
        self.send_header("Accept-Ranges", "bytes")
        if ans.content_range is not None:
            self.send_header("Content-Range", ans.content_range)
        name = quote(ans.entry.name)
        self.send_header("Content-Disposition", f"attachment; filename*=UTF-8''{name}")
        self.end_headers()
        core.count("download_answers_started")
        sent = 0
        bps = core.settings.download_bps
        step = max(1, min(64 * 1024, bps // 10)) if bps else 1 << 20
        started = time.monotonic()
        try:
            for piece in core.blobs.stream(
                ans.entry.md5, ans.entry.size, ans.start, ans.length, step
            ):
                if bps:  # throttled: this piece leaves when the rate allows it
                    time.sleep(max(0.0, started + (sent + len(piece)) / bps - time.monotonic()))
                if sent <= flip < sent + len(piece):
                    i = flip - sent
                    piece = piece[:i] + bytes([piece[i] ^ 0xFF]) + piece[i + 1 :]
                if sent + len(piece) > cut:
                    piece = piece[: cut - sent]
                self.wfile.write(piece)
                sent += len(piece)
                if sent >= cut:
                    break
        finally:  # counted when the answer ends (also when the client went away)
            core.count("download_bytes", sent)
            core.count("download_answers_ended")
        if sent < ans.length:
            # End the connection after what was sent: FIN, not a reset, which could make the
            # client's kernel discard bytes it had received but not read yet.
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.close_connection = True
            return
        core.count("downloads")
