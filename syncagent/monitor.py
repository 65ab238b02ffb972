"""Optional ``/healthz`` and Prometheus ``/metrics`` for the watch agent, on loopback unless
``monitoring.allow_remote`` is set.

``/healthz`` answers 200 while the agent's loop runs and its work gets done (a long first scan
counts as healthy), and 503 with the reason (:func:`health`, pure) when it stopped on a fatal
error (refused credentials, no quota), while its ledger's database server is unreachable
(a PostgreSQL restart: the agent waits for it), when the last pass failed as a whole though
123pan answered (it refused to make the remote root...: at once, until a pass gets through),
when 123pan has been unreachable (passes failing as a whole) for longer than
``monitoring.unhealthy_after``, or when a root is missing; 503
"degraded" while the mass-change guard holds a root's passes. ``/metrics``
exposes pass and upload counters in the Prometheus text format, and with the snapshot's
``ledger_facts`` what :mod:`syncagent.monitor_facts` adds per root. Served by the standard
library on its own daemon thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from syncagent.errors import ConfigError

__all__ = ["HELD", "MonitorServer", "health", "render_metrics"]

HELD = "held by the mass-change guard: "

Snapshot = Callable[[], dict[str, Any]]

_COUNTERS = {
    "passes": "Sync passes completed.",
    "uploaded": "Files uploaded and verified.",
    "bytes_uploaded": "Bytes of files uploaded and verified.",
    "failed": "File uploads that failed (each attempt).",
}


def health(snap: dict[str, Any], now: float) -> tuple[bool, str]:
    """Whether the agent is healthy, and why not. Pure.

    Keys read: ``healthy`` (the loop runs), ``fatal``, ``failing_since`` (wall time of the
    first pass that failed as a whole in the current outage, or None), ``unhealthy_after``
    (seconds of outage tolerated), ``pass_failed`` (why the last pass failed as a whole
    though 123pan answered, or None), ``missing_roots`` and ``held`` (root -> why the
    mass-change guard holds its passes: degraded until ``syncagent approve``),
    ``ledger_down_since`` (wall time the ledger's server stopped answering, or None) and
    ``ledger_error``.
    """
    if snap.get("fatal"):
        return False, f"stopped: {snap['fatal']}"
    if not snap.get("healthy"):
        return False, "stopped"
    down = snap.get("ledger_down_since")
    if down is not None:
        return False, (
            f"ledger unreachable for {now - float(down):.0f} s: {snap.get('ledger_error')}"
        )
    missing = snap.get("missing_roots") or []
    if missing:
        return False, "root missing: " + ", ".join(map(str, missing))
    held = snap.get("held") or {}
    if held:
        return False, "; ".join(
            f"{HELD}{root}: {why} (syncagent approve {root})" for root, why in held.items()
        )
    if snap.get("pass_failed"):
        return False, f"last pass failed: {snap['pass_failed']}"
    since = snap.get("failing_since")
    if since is not None and now - float(since) >= float(snap.get("unhealthy_after", 0)):
        return False, f"123pan unreachable for {now - float(since):.0f} s: {snap.get('last_error')}"
    return True, "ok"


def render_metrics(snap: dict[str, Any]) -> str:
    """The Prometheus text exposition of a snapshot. Pure."""
    lines = []
    for name, help_text in _COUNTERS.items():
        metric = f"syncagent_{name}_total"
        lines += [
            f"# HELP {metric} {help_text}",
            f"# TYPE {metric} counter",
            f"{metric} {int(snap.get(name, 0))}",
        ]
    lines += [
        "# HELP syncagent_up 1 while the agent's loop runs.",
        "# TYPE syncagent_up gauge",
        f"syncagent_up {1 if snap.get('healthy') else 0}",
    ]
    lines += [
        "# HELP syncagent_ledger_reachable 0 while the ledger's database server is unreachable.",
        "# TYPE syncagent_ledger_reachable gauge",
        f"syncagent_ledger_reachable {0 if snap.get('ledger_down_since') is not None else 1}",
    ]
    phase = str(snap.get("phase", "unknown"))
    lines += [
        "# HELP syncagent_phase What the agent is doing now.",
        "# TYPE syncagent_phase gauge",
        f'syncagent_phase{{phase="{phase}"}} 1',
    ]
    held = snap.get("held") or {}
    lines += [
        "# HELP syncagent_guard_held_roots Roots whose passes the mass-change guard holds.",
        "# TYPE syncagent_guard_held_roots gauge",
        f"syncagent_guard_held_roots {len(held)}",
        "# HELP syncagent_guard_held 1 for a root whose passes the mass-change guard holds.",
        "# TYPE syncagent_guard_held gauge",
        *(f'syncagent_guard_held{{root="{_label(str(r))}"}} 1' for r in held),
    ]
    if snap.get("last_pass_at"):
        lines += [
            "# TYPE syncagent_last_pass_timestamp_seconds gauge",
            f"syncagent_last_pass_timestamp_seconds {float(snap['last_pass_at']):.3f}",
        ]
    if "ledger_facts" in snap:  # per root, from the ledger (see syncagent.monitor_facts)
        from syncagent.monitor_facts import render

        lines += render(snap["ledger_facts"])
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    """A Prometheus label value, escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MonitorServer:
    """Serves a snapshot function over HTTP on ``host:port`` (port 0 = any free port)."""

    def __init__(
        self,
        snapshot: Snapshot,
        host: str = "127.0.0.1",
        port: int = 0,
        facts: Snapshot | None = None,
    ) -> None:
        """``facts`` (optional) adds ``ledger_facts`` to ``/metrics`` only: ``/healthz``
        never reads the ledger, so it answers at once while the ledger's server is away."""

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                snap = snapshot()
                if self.path == "/metrics" and facts is not None:
                    snap = {**snap, "ledger_facts": facts()}
                if self.path == "/healthz":
                    ok, reason = health(snap, time.time())
                    body = json.dumps(
                        {
                            "status": "ok"
                            if ok
                            else "degraded"
                            if reason.startswith(HELD)
                            else "unhealthy",
                            "reason": reason,
                            "phase": snap.get("phase"),
                        }
                    ).encode()
                    self._send(200 if ok else 503, body, "application/json")
                elif self.path == "/metrics":
                    self._send(200, render_metrics(snap).encode(), "text/plain; version=0.0.4")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise ConfigError(
                [f"monitoring.port: cannot listen on {host}:{port}: {exc.strerror}"]
            ) from exc
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="monitor"
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> MonitorServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
