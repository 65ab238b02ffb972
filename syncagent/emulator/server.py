"""The emulator as a running thing: two loopback listeners, started and stopped from Python.

:class:`Emulator` is the Python API tests use (``with Emulator.temporary() as emu:``) and what
``syncagent emulator`` runs. It binds the API host and the upload host (ephemeral ports unless
given), serves each from a thread, and offers the fault-injection verbs. The secret is never in
its ``repr``.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from syncagent.emulator.core import Core
from syncagent.emulator.faults import Fault, Kind, RandomProfile
from syncagent.emulator.handler import EmulatorHTTPServer
from syncagent.emulator.settings import EmulatorSettings
from syncagent.emulator.tls import TlsFiles, make_tls_files, server_context
from syncagent.errors import EmulatorError

__all__ = ["Emulator"]


class Emulator:
    """A local 123pan Open Platform: API host + upload host on loopback.

    :param settings: behaviour and where the data lives (see :class:`EmulatorSettings`).
    """

    def __init__(self, settings: EmulatorSettings) -> None:
        self._initial = settings
        self._core: Core | None = None
        self._servers: list[EmulatorHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self._tls: TlsFiles | None = None

    @classmethod
    @contextmanager
    def temporary(cls, **overrides: Any) -> Iterator[Emulator]:
        """A started emulator on a throw-away data dir, removed afterwards."""
        tmp = Path(tempfile.mkdtemp(prefix="syncagent-emulator-"))
        try:
            with cls(EmulatorSettings(data_dir=tmp, **overrides)) as emu:
                yield emu
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def __repr__(self) -> str:
        state = f"api={self.api_url}" if self._core else "stopped"
        return f"<Emulator {state} data_dir={str(self._initial.data_dir)!r}>"

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def core(self) -> Core:
        if self._core is None:
            raise EmulatorError("the emulator is not running")
        return self._core

    def start(self) -> Emulator:
        """Open the data dir and start both listeners."""
        s = self._initial
        try:
            core = Core(s)
        except OSError as exc:
            raise EmulatorError(f"cannot use data dir {s.data_dir}: {exc.strerror}") from exc
        api = _listen(s.host, s.api_port, core, "api", "the API port")
        try:
            upload = _listen(s.host, s.upload_port, core, "upload", "the upload port")
        except EmulatorError:
            api.server_close()
            raise
        if s.tls:
            try:
                self._tls = make_tls_files(s.data_dir, s.host)
                context = server_context(self._tls)
            except (OSError, ValueError) as exc:
                for srv in (api, upload):
                    srv.server_close()
                core.close()
                raise EmulatorError(f"cannot set up TLS in {s.data_dir}: {exc}") from exc
            for srv in (api, upload):
                # the handshake happens in the connection's own thread (Handler.setup)
                srv.socket = context.wrap_socket(
                    srv.socket, server_side=True, do_handshake_on_connect=False
                )
        core.api_base = _url(api, s.tls)
        core.upload_base = _url(upload, s.tls)
        self._core = core
        self._servers = [api, upload]
        for srv in self._servers:
            t = threading.Thread(
                target=srv.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"emulator-{srv.role}",
                daemon=True,
            )
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        """Stop both listeners and close the catalog; safe to call twice."""
        # Both listeners stop at once: each shutdown() waits up to one poll interval.
        stoppers = [threading.Thread(target=srv.shutdown) for srv in self._servers]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        for srv in self._servers:
            srv.drop_connections()
            srv.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._servers, self._threads = [], []
        if self._core is not None:
            self._core.close()
            self._core = None

    def open_connections(self) -> int:
        """Client connections open on both hosts now: a request being handled (a delayed
        one too) or a connection kept alive. 0 once every client has gone: nothing changes
        the emulator's data until the next connection."""
        return sum(srv.open_connections() for srv in self._servers)

    # -- where and who -------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """Base URL of the API host, e.g. ``http://127.0.0.1:43123``."""
        return self.core.api_base

    @property
    def upload_url(self) -> str:
        return self.core.upload_base

    @property
    def settings(self) -> EmulatorSettings:
        return self.core.settings

    @property
    def client_id(self) -> str:
        return self.core.settings.client_id or ""

    @property
    def client_secret(self) -> str:
        return self.core.settings.client_secret or ""

    @property
    def ca_path(self) -> Path | None:
        """The CA certificate a client must trust (``--tls``; None over plain HTTP)."""
        return self._tls.ca if self._tls is not None else None

    @property
    def admin_token(self) -> str:
        """The key of the ``/__emulator/`` admin endpoint for this run (header
        ``X-Emulator-Admin``); a new one on every start."""
        return self.core.admin_token

    def admin_headers(self) -> dict[str, str]:
        """The headers an admin request needs."""
        from syncagent.emulator.admin import TOKEN_HEADER

        return {TOKEN_HEADER: self.admin_token, "Content-Type": "application/json"}

    # -- fault injection and knobs --------------------------------------------------------

    def fail_next(
        self,
        endpoint: str,
        times: int | None = 1,
        *,
        code: int | None = None,
        http_status: int | None = None,
        message: str = "",
    ) -> None:
        """The next ``times`` calls of ``endpoint`` (``*`` = any) fail with a business
        ``code`` on HTTP 200 or with ``http_status``."""
        if (code is None) == (http_status is None):
            raise ValueError("give exactly one of code= or http_status=")
        fault = (
            Fault("code", code=code, message=message)
            if code is not None
            else Fault("http", http_status=http_status or 500, message=message)
        )
        self.core.faults.add(endpoint, fault, times)

    def drop_next(
        self, endpoint: str, times: int | None = 1, *, after_bytes: int | None = None
    ) -> None:
        """Reset the connection of the next calls after reading ``after_bytes`` of their body
        (default: half of it), without answering."""
        self.core.faults.add(endpoint, Fault("drop", after_bytes=after_bytes), times)

    def drop_next_download(
        self, file_id: int | None = None, times: int | None = 1, *, after_bytes: int | None = None
    ) -> None:
        """Cut the body of the next downloads (of ``file_id``; None = any file) after
        ``after_bytes`` (default: half of it) and reset the connection."""
        name = "download" if file_id is None else f"download/{file_id}"
        self.core.faults.add(name, Fault("drop", after_bytes=after_bytes), times)

    def corrupt_next_download(
        self, file_id: int | None = None, times: int | None = 1, *, at: int | None = None
    ) -> None:
        """Serve the next downloads (of ``file_id``; None = any file) with the byte at offset
        ``at`` of the body (default: its middle) changed."""
        name = "download" if file_id is None else f"download/{file_id}"
        self.core.faults.add(name, Fault("corrupt", after_bytes=at), times)

    def add_latency(self, endpoint: str, seconds: float, times: int | None = None) -> None:
        """Wait ``seconds`` before handling calls of ``endpoint`` (None = until cleared)."""
        self.core.faults.add(endpoint, Fault("delay", seconds=seconds), times)

    def random_faults(
        self,
        seed: int,
        probability: float = 0.05,
        kinds: tuple[Kind, ...] = ("code", "http", "drop", "delay"),
        endpoints: tuple[str, ...] = (),
        max_delay: float = 0.2,
    ) -> None:
        """A reproducible random mix of faults for soak tests."""
        self.core.faults.set_random(RandomProfile(seed, probability, kinds, max_delay, endpoints))

    def clear_faults(self) -> None:
        self.core.faults.clear()

    def expire_tokens(self) -> int:
        """Every token issued so far answers 401 from now on; returns how many."""
        return self.core.expire_tokens()

    def configure(self, **changes: Any) -> EmulatorSettings:
        """Change settings while running, e.g. ``configure(rate_limits="off")``."""
        from syncagent.emulator.admin import check_settings

        return self.core.update(**check_settings(changes))

    def activity(self) -> dict[str, Any]:
        """What clients did: counters, slices received per upload, per-endpoint rates."""
        return self.core.activity()

    def reset_activity(self) -> None:
        self.core.reset_activity()


def _listen(
    host: str, port: int, core: Core, kind: Literal["api", "upload"], role: str
) -> EmulatorHTTPServer:
    """A listener on ``host:port``, or an error naming the address, which port it was and,
    when it is taken, that it is (and what to do)."""
    try:
        return EmulatorHTTPServer((host, port), core, kind)
    except OSError as exc:
        core.close()
        where = f"{host}:{port} ({role})"
        if exc.errno == errno.EADDRINUSE:
            raise EmulatorError(
                f"cannot listen on {where}: port {port} is already in use (another emulator "
                "or program holds it); choose another port, or 0 for any free one"
            ) from exc
        raise EmulatorError(f"cannot listen on {where}: {exc.strerror or exc}") from exc


def _url(server: EmulatorHTTPServer, tls: bool) -> str:
    host, port = server.server_address[:2]
    return f"{'https' if tls else 'http'}://{host!s}:{port}"
