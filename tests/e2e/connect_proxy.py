"""A small HTTP proxy for tests, on loopback: CONNECT tunnels (HTTPS), each counted, so a test
can tell whether a client went through it. Tunnels only to loopback; plain-HTTP proxy requests
are counted and refused."""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from collections import Counter
from urllib.parse import urlsplit

__all__ = ["ConnectProxy"]


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        line = self.rfile.readline(65536).decode("latin-1")
        while self.rfile.readline(65536) not in (b"\r\n", b"\n", b""):
            pass
        parts = line.split()
        if len(parts) != 3:
            return
        method, target, _ = parts
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            self.server.count(f"CONNECT {target}")
            upstream = self._open(host.strip("[]"), int(port))
            if upstream is None:
                return
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            self._pipe(upstream)
            return
        # plain HTTP through the proxy: counted, then refused (no test needs it to work)
        url = urlsplit(target)
        self.server.count(f"{method} {url.hostname}:{url.port}")
        self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")

    def _open(self, host: str, port: int) -> socket.socket | None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return None
        return socket.create_connection((host, port), timeout=30)

    def _pipe(self, upstream: socket.socket) -> None:
        client = self.connection  # the client waited for our 200: nothing is buffered
        with upstream:
            while True:
                ready, _, _ = select.select([client, upstream], [], [], 30)
                if not ready:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, what: str) -> None:
        with self._lock:
            self.requests[what] += 1


class ConnectProxy:
    """``with ConnectProxy() as proxy:`` ... ``proxy.url``, ``proxy.requests``."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> Counter[str]:
        with self._server._lock:
            return Counter(self._server.requests)

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
